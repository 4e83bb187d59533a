"""The admin's lists on a 1366 px laptop, in English and Chinese: headless Chromium opens the contracts,
notifications and deductions lists, full of long codes, ids and errors, and finds no horizontal scroll.

With PAPAY_SCREENSHOTS=DIR set, each page is also saved there (and at 1920×1080) for people to look at.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from selenium.webdriver.common.by import By

from django_papay.models import Contract, Deduction, Notification, Refund, SubOrder
from django_papay.services import presign

from .helpers import APPID, PLAN_ID, deliver, evidence_on_failure

LISTS = ("contract", "notification", "deduction", "refund")
LAPTOP = (1366, 900)
SCREENSHOTS = os.environ.get("PAPAY_SCREENSHOTS")


@pytest.fixture
def full_lists(papay, sandbox) -> None:
    """Each list with rows whose codes, ids and errors are as long as WeChat Pay's get."""
    for n in range(3):
        presign(Contract.objects.create(plan_id=PLAN_ID, contract_display_account=f"138****{n:04d}"))
    signed = Contract.objects.filter(status=Contract.Status.PRESIGNED).first()
    deliver(sandbox.sign_notification(signed.out_contract_code))
    deliver(sandbox.terminate_notification(signed.out_contract_code, mode="USER_TERMINATE"))
    Client().post(reverse("django_papay:notify"), b"{}", content_type="application/json")  # a probe: rejected
    sandbox.answer_next(
        400, "PARAM_ERROR", "委托代扣协议模板ID与商户号不匹配，请检查参数后重试 " * 2, detail={"field": "plan_id"}
    )
    failing = Contract.objects.create(plan_id=99999999999, contract_display_account="wx_user_with_a_long_name")
    with pytest.raises(Exception):  # noqa: B017 — WeChat Pay refused it: the error is the point
        presign(failing)
    statuses = [(Deduction.Status.SUCCEEDED, ""), (Deduction.Status.PROCESSING, ""), (Deduction.Status.FAILED, "")]
    statuses.append((Deduction.Status.SUCCEEDED, Deduction.Status.FAILED))  # a late answer's correction
    for status, corrected_from in statuses:
        deduction = Deduction.objects.create(
            contract=signed,
            combine_appid=APPID,
            status=status,
            corrected_from=corrected_from,
            sent_at=timezone.now(),
            last_error="CONTRACT_NOT_EXIST: 签约协议不存在或已解约 (HTTP 400, Request-ID 08F8A1B7D5061006)",
        )
        sub_order = SubOrder.objects.create(
            deduction=deduction, mchid="1900000109", sub_mchid="1900000201", amount=123456, description="会员月费"
        )
    for status in Refund.Status.values:
        Refund.objects.create(
            sub_order=sub_order,
            amount=12345,
            status=status,
            sent_at=timezone.now(),
            success_time=timezone.now(),
            last_error="NOT_ENOUGH: 基本账户余额不足，请充值后原单号重新发起 (HTTP 403, Request-ID 08F8A1B7D5061006)",
        )


def _open(browser, live_server, path: str) -> None:
    client = Client()
    client.force_login(User.objects.get(username="staff"))
    browser.get(f"{live_server.url}/admin/login/")
    browser.add_cookie({"name": django_settings.SESSION_COOKIE_NAME, "value": client.cookies["sessionid"].value})
    browser.get(f"{live_server.url}{path}")


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("language", ["en", "zh-hans"])
@pytest.mark.parametrize("model", LISTS)
def test_a_list_fits_a_1366_px_laptop_without_horizontal_scroll(
    settings, full_lists, live_server, browser, tmp_path, language, model
):
    settings.LANGUAGE_CODE = language
    User.objects.create_superuser("staff", password="correct horse")
    with evidence_on_failure(browser, tmp_path):
        browser.set_window_size(*LAPTOP)
        _open(browser, live_server, reverse(f"admin:django_papay_{model}_changelist"))
        rows = browser.find_elements(By.CSS_SELECTOR, "#result_list tbody tr")
        assert rows, "the list is empty"
        page = browser.execute_script("return [document.documentElement.scrollWidth, window.innerWidth]")
        results = browser.execute_script(
            "const r = document.querySelector('.results'); return [r.scrollWidth, r.clientWidth]"
        )
        broken = browser.execute_script(BROKEN_WORDS)
        cut = browser.execute_script(CUT_WITHOUT_TITLE)
        _screenshots(browser, f"{model}-list-{language}")
    assert page[0] <= page[1], f"the page scrolls sideways: {page[0]} px wide in a {page[1]} px window"
    assert results[0] <= results[1], f"the table scrolls sideways: {results[0]} px in a {results[1]} px box"
    assert broken == [], f"words broken across lines: {broken}"
    assert cut == [], f"texts cut without their whole in a title: {cut}"


# Every word of the list's cells (Latin words, codes, numbers, dates; a dot ends a word, as in an event type's
# ECOMMERCE_ENTRUST. / SIGN; CJK text may break between any two characters) laid out on more than one line.
BROKEN_WORDS = """
const broken = [];
const walker = document.createTreeWalker(document.querySelector('#result_list tbody'), NodeFilter.SHOW_TEXT);
for (let node = walker.nextNode(); node; node = walker.nextNode()) {
  for (const match of node.textContent.matchAll(/[\\x21-\\x2d\\x2f-\\x7e\\u00a5\\u2011]+/g)) {
    const range = document.createRange();
    range.setStart(node, match.index);
    range.setEnd(node, match.index + match[0].length);
    const tops = new Set([...range.getClientRects()].filter(r => r.width > 0).map(r => Math.round(r.top)));
    if (tops.size > 1) broken.push(match[0]);
  }
}
return broken;
"""
# Each cell text cut with an ellipsis must carry its whole text as the title.
CUT_WITHOUT_TITLE = """
return [...document.querySelectorAll('#result_list .papay-code, #result_list .papay-text')]
  .filter(e => e.scrollWidth > e.clientWidth)
  .filter(e => !e.title.startsWith(e.textContent.replace(/…$/, '').replaceAll('\u2011', '-')))
  .map(e => e.textContent);
"""


def _screenshots(browser, name: str) -> None:
    if not SCREENSHOTS:
        return
    folder = Path(SCREENSHOTS)
    folder.mkdir(parents=True, exist_ok=True)
    for width, height in (LAPTOP, (1920, 1080)):
        browser.set_window_size(width, height)
        browser.save_screenshot(str(folder / f"{name}-{width}.png"))
    browser.set_window_size(*LAPTOP)


@pytest.mark.django_db(transaction=True)
def test_a_notification_page_wraps_long_headers_and_body_at_1366_px(papay, live_server, browser, tmp_path):
    User.objects.create_superuser("staff", password="correct horse")
    Client().post(
        reverse("django_papay:notify"),
        b'{"id": "' + b"x" * 3000 + b'"}',
        content_type="application/json",
        headers={"X-Forwarded-For": ", ".join(["203.0.113.7"] * 200)},
    )
    (delivery,) = Notification.objects.all()
    with evidence_on_failure(browser, tmp_path):
        browser.set_window_size(*LAPTOP)
        _open(browser, live_server, reverse("admin:django_papay_notification_change", args=[delivery.pk]))
        page = browser.execute_script("return [document.documentElement.scrollWidth, window.innerWidth]")
        browser.execute_script("document.querySelector('.field-headers_shown').scrollIntoView()")
        _screenshots(browser, "notification-page-en")
    assert page[0] <= page[1], f"the page scrolls sideways: {page[0]} px wide in a {page[1]} px window"
