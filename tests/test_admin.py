"""The presign admin action, through the Django test client, as staff would use it."""

import pytest
from django.urls import reverse

from django_papay import wechatpay
from django_papay.models import Contract, Notification

from .helpers import CONTRACT_EDITOR, messages, run_action

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:django_papay_contract_changelist")


@pytest.fixture
def presigner(staff_client):
    return staff_client(*CONTRACT_EDITOR, "presign_contract")


@pytest.fixture
def viewer(staff_client):
    return staff_client(*CONTRACT_EDITOR)


def test_presign_action_is_offered_to_staff_with_the_permission(papay, presigner, contract):
    response = presigner.get(CHANGELIST)
    assert 'value="presign"' in response.content.decode()


def test_presign_action_is_hidden_from_staff_without_the_permission(papay, viewer, contract):
    response = viewer.get(CHANGELIST)
    assert response.status_code == 200
    assert 'value="presign"' not in response.content.decode()


def test_presign_action_cannot_be_forced_without_the_permission(papay, sandbox, viewer, contract):
    run_action(viewer, Contract, "presign", [contract])
    assert sandbox.requests == []
    assert Contract.objects.get(pk=contract.pk).status == Contract.Status.CREATED


def test_presign_action_shows_the_pre_entrustweb_id_for_each_contract(papay, sandbox, presigner):
    first = Contract.objects.create(plan_id=1, contract_display_account="a")
    second = Contract.objects.create(plan_id=1, contract_display_account="b")
    response = run_action(presigner, Contract, "presign", [first, second])
    texts = messages(response)
    assert len(texts) == 2
    for contract in (first, second):
        contract.refresh_from_db()
        assert contract.status == Contract.Status.PRESIGNED
        assert any(contract.out_contract_code in t and contract.pre_entrustweb_id in t for t in texts)


def test_presign_action_shows_wechatpay_code_and_message_on_failure(papay, sandbox, presigner, contract):
    sandbox.answer_next(400, "PARAM_ERROR", "协议模板不存在")
    response = run_action(presigner, Contract, "presign", [contract])
    (text,) = messages(response)
    assert contract.out_contract_code in text and "PARAM_ERROR" in text and "协议模板不存在" in text
    assert Contract.objects.get(pk=contract.pk).status == Contract.Status.FAILED


def test_presign_action_reports_invalid_contract_without_sending(papay, sandbox, presigner, contract):
    Contract.objects.filter(pk=contract.pk).update(out_contract_code="bad-code")
    (text,) = messages(run_action(presigner, Contract, "presign", [contract]))
    assert "bad-code" in text
    assert sandbox.requests == []


def test_change_page_shows_last_error_and_wechatpay_fields_read_only(papay, sandbox, presigner, contract):
    sandbox.answer_next(500, "SYSTEM_ERROR", "系统繁忙")
    run_action(presigner, Contract, "presign", [contract])
    page = presigner.get(reverse("admin:django_papay_contract_change", args=[contract.pk])).content.decode()
    assert "系统繁忙" in page
    assert 'name="pre_entrustweb_id"' not in page
    assert 'name="status"' not in page
    assert 'name="plan_id"' in page  # still editable: WeChat Pay has not accepted it yet


def test_presigned_contract_request_fields_are_frozen(papay, sandbox, presigner, contract):
    run_action(presigner, Contract, "presign", [contract])
    page = presigner.get(reverse("admin:django_papay_contract_change", args=[contract.pk])).content.decode()
    assert 'name="plan_id"' not in page
    assert Contract.objects.get(pk=contract.pk).pre_entrustweb_id in page


def test_changelist_filters_and_search_work(papay, presigner):
    Contract.objects.create(plan_id=1, contract_display_account="findme")
    Contract.objects.create(plan_id=2, contract_display_account="other")
    page = presigner.get(CHANGELIST, {"q": "findme", "status__exact": "created"}).content.decode()
    assert "findme" in page and "other" not in page


def _notification(contract=None, **fields) -> "Notification":
    defaults = {
        "notification_id": "EV-1",
        "event_type": "ECOMMERCE_ENTRUST.SIGN",
        "result": "applied",
        "verified": True,
        "processed": True,
        "body": "{}",
        "headers": {wechatpay.SERIAL_HEADER: "PUB_KEY_ID_1"},
    }
    return Notification.objects.create(contract=contract, **{**defaults, **fields})


def test_notification_admin_is_view_only(papay, admin_client):
    delivery = _notification()
    changelist = admin_client.get(reverse("admin:django_papay_notification_changelist")).content.decode()
    assert "EV-1" in changelist
    assert reverse("admin:django_papay_notification_add") not in changelist
    page = admin_client.get(reverse("admin:django_papay_notification_change", args=[delivery.pk]))
    assert page.status_code == 200
    assert 'name="result"' not in page.content.decode()
    assert (
        admin_client.post(
            reverse("admin:django_papay_notification_change", args=[delivery.pk]), {"result": "failed"}
        ).status_code
        == 403
    )
    assert admin_client.get(reverse("admin:django_papay_notification_delete", args=[delivery.pk])).status_code == 403
    assert Notification.objects.get(pk=delivery.pk).result == "applied"


def test_notification_admin_filters_and_links_to_its_contract(papay, admin_client, contract):
    _notification(contract)
    _notification(notification_id="EV-2", verified=False, processed=False, result="rejected")
    url = reverse("admin:django_papay_notification_changelist")
    page = admin_client.get(url, {"verified__exact": "1"}).content.decode()
    assert "EV-1" in page and "EV-2" not in page
    assert reverse("admin:django_papay_contract_change", args=[contract.pk]) in page
    page = admin_client.get(url, {"processed__exact": "0", "event_type": "ECOMMERCE_ENTRUST.SIGN"}).content.decode()
    assert "EV-2" in page and "EV-1" not in page


def test_contract_page_shows_its_notifications_read_only(papay, admin_client, contract):
    _notification(contract, note="the contract is already signed")
    page = admin_client.get(reverse("admin:django_papay_contract_change", args=[contract.pk])).content.decode()
    assert "the contract is already signed" in page
    assert "notifications-TOTAL_FORMS" in page
    assert 'name="notifications-0-result"' not in page


def test_admin_reads_in_chinese(papay, admin_client, settings, contract):
    settings.LANGUAGE_CODE = "zh-hans"
    page = admin_client.get(CHANGELIST).content.decode()
    for label in (
        "签约协议",  # the model
        "商户签约协议号",
        "用户账户展示名称",
        "委托代扣协议模板ID",
        "状态",
        "预签约有效期",
        "最近错误",  # columns
        "已创建",
        "已预签约",
        "已签约",
        "已解约",
        "预签约已过期",  # statuses, in the filter
        "发起微信支付预签约（APP）",
        "发起微信支付预签约（小程序）",
        "向微信支付查询签约状态",
        "向微信支付申请解约",
    ):
        assert label in page, label
