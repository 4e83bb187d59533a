"""conf.py: PAPAY is read when used, validated, and names the key to fix."""

import os
from types import SimpleNamespace

import pytest
from django.core.exceptions import ImproperlyConfigured

from django_papay import conf, crypto

from .helpers import papay_settings


@pytest.fixture
def base(settings, keys):
    settings.PAPAY = papay_settings(keys, "http://127.0.0.1:9")
    return settings


@pytest.mark.parametrize(
    "key, accessor",
    [
        ("MCHID", conf.mchid),
        ("MERCHANT_SERIAL_NO", conf.merchant_serial_no),
        ("APIV3_KEY", conf.apiv3_key),
        ("NOTIFY_URL", conf.notify_url),
        ("WECHATPAY_PUBLIC_KEY_ID", conf.wechatpay_public_key_id),
    ],
)
def test_missing_required_setting_names_the_key(base, key, accessor):
    del base.PAPAY[key]
    with pytest.raises(ImproperlyConfigured, match=f'PAPAY\\["{key}"\\]'):
        accessor()


@pytest.mark.parametrize(
    "key, value",
    [
        ("MCHID", "19000x"),
        ("MERCHANT_SERIAL_NO", "not-hex!"),
        ("APIV3_KEY", "short"),
        ("NOTIFY_URL", "http://merchant.example/notify/"),
        ("NOTIFY_URL", "https://merchant.example/notify/?a=1"),
        ("NOTIFY_URL", "/papay/notify/"),
        ("WECHATPAY_PUBLIC_KEY_ID", "0119000001092026"),
        ("BASE_URL", "api.mch.weixin.qq.com"),
        ("TIMEOUT", 0),
        ("TIMEOUT", ("a", 1)),
        ("TIMEOUT", True),
        ("RETURN_APP", "yes"),
        ("APPID", "x" * 33),
    ],
)
def test_malformed_setting_names_the_key(base, key, value):
    base.PAPAY[key] = value
    accessor = {
        "MCHID": conf.mchid,
        "MERCHANT_SERIAL_NO": conf.merchant_serial_no,
        "APIV3_KEY": conf.apiv3_key,
        "NOTIFY_URL": conf.notify_url,
        "WECHATPAY_PUBLIC_KEY_ID": conf.wechatpay_public_key_id,
        "BASE_URL": conf.base_url,
        "TIMEOUT": conf.timeout,
        "RETURN_APP": conf.return_app,
        "APPID": conf.appid,
    }[key]
    with pytest.raises(ImproperlyConfigured, match=f'PAPAY\\["{key}"\\]'):
        accessor()


def test_no_papay_dict_at_all_is_improperly_configured(settings):
    del settings.PAPAY
    with pytest.raises(ImproperlyConfigured, match="PAPAY"):
        conf.mchid()


def test_defaults(base):
    for key in ("BASE_URL", "TIMEOUT", "RETURN_APP"):
        base.PAPAY.pop(key, None)
    assert conf.base_url() == "https://api.mch.weixin.qq.com"
    assert conf.timeout() == conf.DEFAULT_TIMEOUT
    assert conf.return_app() is None


def test_single_number_timeout_applies_to_connect_and_read(base):
    base.PAPAY["TIMEOUT"] = 3
    assert conf.timeout() == (3.0, 3.0)


def test_override_settings_is_seen_without_restart(base, settings):
    settings.PAPAY = {**settings.PAPAY, "MCHID": "1230000109"}
    assert conf.mchid() == "1230000109"


def test_private_key_is_parsed_once_per_pem(base):
    assert conf.merchant_private_key() is conf.merchant_private_key()


def test_private_key_from_path(base, keys, tmp_path):
    path = tmp_path / "apiclient_key.pem"
    path.write_text(keys.merchant_pem)
    del base.PAPAY["MERCHANT_PRIVATE_KEY"]
    base.PAPAY["MERCHANT_PRIVATE_KEY_PATH"] = str(path)
    assert conf.merchant_private_key().public_key().public_numbers() == keys.merchant.public_key().public_numbers()


def test_a_replaced_key_file_is_used_within_the_check_interval_and_its_time_not_read_on_every_call(
    base, keys, tmp_path, monkeypatch
):
    from django_papay import conf_keys

    clock, stats = [1000.0], []
    # Only conf_keys' own references: time and os themselves stay as every other thread sees them.
    monkeypatch.setattr(conf_keys, "time", SimpleNamespace(monotonic=lambda: clock[0]))
    monkeypatch.setattr(conf_keys, "os", SimpleNamespace(stat=lambda path: stats.append(path) or os.stat(path)))
    path = tmp_path / "apiclient_key.pem"
    path.write_text(keys.merchant_pem)
    del base.PAPAY["MERCHANT_PRIVATE_KEY"]
    base.PAPAY["MERCHANT_PRIVATE_KEY_PATH"] = str(path)
    first = conf.merchant_private_key()
    assert conf.merchant_private_key() is first and len(stats) == 1  # one look at the file for both
    path.write_text(crypto.private_key_pem(keys.stranger))  # a new key, in place
    os.utime(path, ns=(os.stat(path).st_atime_ns, os.stat(path).st_mtime_ns + 10**9))
    assert conf.merchant_private_key() is first  # within the interval: the key in use stays
    clock[0] += conf_keys.FILE_CHECK_SECONDS
    replaced = conf.merchant_private_key()
    assert replaced.private_numbers() == keys.stranger.private_numbers() and len(stats) == 2


def test_missing_key_file_names_the_path_setting(base, tmp_path):
    del base.PAPAY["MERCHANT_PRIVATE_KEY"]
    base.PAPAY["MERCHANT_PRIVATE_KEY_PATH"] = str(tmp_path / "nope.pem")
    with pytest.raises(ImproperlyConfigured, match='PAPAY\\["MERCHANT_PRIVATE_KEY_PATH"\\]'):
        conf.merchant_private_key()


def test_neither_pem_nor_path_names_both(base):
    del base.PAPAY["WECHATPAY_PUBLIC_KEY"]
    with pytest.raises(ImproperlyConfigured, match="WECHATPAY_PUBLIC_KEY_PATH"):
        conf.wechatpay_public_key()


def test_garbage_private_key_is_improperly_configured_without_echoing_it(base):
    base.PAPAY["MERCHANT_PRIVATE_KEY"] = "-----BEGIN PRIVATE KEY-----\nc2VjcmV0\n-----END PRIVATE KEY-----\n"
    with pytest.raises(ImproperlyConfigured, match='PAPAY\\["MERCHANT_PRIVATE_KEY"\\]') as caught:
        conf.merchant_private_key()
    assert "c2VjcmV0" not in str(caught.value)


def test_public_key_given_where_private_key_belongs_is_refused(base, keys):
    base.PAPAY["MERCHANT_PRIVATE_KEY"] = keys.wechatpay_public_pem
    with pytest.raises(ImproperlyConfigured, match="MERCHANT_PRIVATE_KEY"):
        conf.merchant_private_key()
