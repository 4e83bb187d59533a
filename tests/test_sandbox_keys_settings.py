"""Pointing a project at ``python -m django_papay.sandbox --keys-dir DIR``: ``DemoKeys.papay_settings`` puts each
file of the folder in its PAPAY key, and the result passes the system checks and pre-signs against that sandbox."""

from __future__ import annotations

from django_papay import checks
from django_papay.models import Contract
from django_papay.sandbox import ensure_demo_keys
from django_papay.services import presign


def test_each_file_of_the_keys_dir_goes_into_its_papay_key(tmp_path):
    keys = ensure_demo_keys(tmp_path)
    papay = keys.papay_settings(notify_url="https://shop.example.com/papay/notify/")
    assert papay["MERCHANT_PRIVATE_KEY_PATH"] == str(tmp_path / "merchant_private_key.pem")
    assert papay["WECHATPAY_PUBLIC_KEY_PATH"] == str(tmp_path / "wechatpay_public_key.pem")
    assert (papay["MCHID"], papay["APIV3_KEY"]) == (keys.mchid, keys.apiv3_key)
    assert "wechatpay_private_key" not in str(papay)


def test_a_site_on_papay_settings_passes_the_checks_and_pre_signs(db, settings, tmp_path):
    keys = ensure_demo_keys(tmp_path)
    with keys.sandbox() as sandbox:
        settings.PAPAY = keys.papay_settings(
            base_url=sandbox.url,
            notify_url="https://shop.example.com/papay/notify/",
            appid="wxd678efh567hg6787",
            APP_PLAN_IDS=[1],  # **more: any PAPAY key (tests/urls.py routes the App's endpoints, which need it)
        )
        assert settings.PAPAY["APP_PLAN_IDS"] == [1]
        assert checks.check_settings() == []
        contract = presign(Contract.objects.create(plan_id=1, contract_display_account="a"))
    assert contract.status == Contract.Status.PRESIGNED
