"""The charge page in a real browser: staff add sub-orders for several sub-merchants, see the total follow what
they type, and charge one 合单 — headless Chromium against the live site and the sandbox."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import Select, WebDriverWait

from django_papay.models import Deduction

from .helpers import WAIT_SECONDS, evidence_on_failure

SCREENSHOTS_SIZE = (1366, 900)
SCREENSHOTS = os.environ.get("PAPAY_SCREENSHOTS")


def _log_in(browser, live_server) -> None:
    client = Client()
    client.force_login(User.objects.create_superuser("staff", password="correct horse"))
    browser.get(f"{live_server.url}/admin/login/")
    browser.add_cookie({"name": django_settings.SESSION_COOKIE_NAME, "value": client.cookies["sessionid"].value})


def _type(browser, name: str, value: str) -> None:
    browser.find_element(By.NAME, name).send_keys(value)


def _after_click(browser, css: str):
    """The first element of the page a click opens: the click returns before the next page has loaded."""
    return WebDriverWait(browser, WAIT_SECONDS).until(
        expected_conditions.presence_of_element_located((By.CSS_SELECTOR, css))
    )


@pytest.mark.django_db(transaction=True)
def test_staff_charge_two_sub_merchants_with_the_total_shown(signed_contract, sandbox, live_server, browser, tmp_path):
    with evidence_on_failure(browser, tmp_path):
        browser.set_window_size(*SCREENSHOTS_SIZE)
        _log_in(browser, live_server)
        browser.get(live_server.url + reverse("admin:django_papay_contract_changelist"))
        browser.find_element(By.CSS_SELECTOR, f'input[name="_selected_action"][value="{signed_contract.pk}"]').click()
        Select(browser.find_element(By.NAME, "action")).select_by_value("deduct")
        browser.find_element(By.CSS_SELECTOR, 'button[name="index"]').click()

        total = _after_click(browser, "#papay-total")
        assert total.text == "-"
        _type(browser, "sub_orders-0-sub_mchid", "1900000201")
        _type(browser, "sub_orders-0-description", "会员月费")
        _type(browser, "sub_orders-0-amount", "15")
        browser.find_element(By.CSS_SELECTOR, ".papay-add-sub-order").click()
        _type(browser, "sub_orders-1-sub_mchid", "1900000202")
        _type(browser, "sub_orders-1-description", "配送费")
        _type(browser, "sub_orders-1-amount", "3.5")
        assert total.text == "¥18.50"
        shown = browser.find_elements(By.CSS_SELECTOR, ".papay-sub-orders th .papay-label")
        labels = [label.get_attribute("textContent") for label in shown]
        assert labels == ["Sub-merchant id", "Description", "Amount (yuan)"]  # capitalised, as admin labels are
        if SCREENSHOTS:
            browser.save_screenshot(str(Path(SCREENSHOTS) / "charge-page-en-1366.png"))
        browser.find_element(By.CSS_SELECTOR, 'input[type="submit"]').click()
        message = _after_click(browser, "ul.messagelist li").text
    deduction = Deduction.objects.get()
    assert sorted(deduction.sub_orders.values_list("amount", flat=True)) == [350, 1500]
    assert deduction.status == Deduction.Status.SUCCEEDED and "¥18.50" in message


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("language", ["en", "zh-hans"])
def test_a_confirmation_form_has_capitalised_labels_with_inputs_and_help_aligned(
    settings, signed_contract, live_server, browser, tmp_path, language
):
    settings.LANGUAGE_CODE = language
    with evidence_on_failure(browser, tmp_path):
        browser.set_window_size(*SCREENSHOTS_SIZE)
        _log_in(browser, live_server)
        browser.get(live_server.url + reverse("admin:django_papay_contract_changelist"))
        browser.find_element(By.CSS_SELECTOR, f'input[name="_selected_action"][value="{signed_contract.pk}"]').click()
        Select(browser.find_element(By.NAME, "action")).select_by_value("terminate")
        browser.find_element(By.CSS_SELECTOR, 'button[name="index"]').click()
        label = _after_click(browser, "fieldset.aligned .form-row label")
        field = browser.find_element(By.NAME, "contract_termination_remark")
        help_text = browser.find_element(By.CSS_SELECTOR, "fieldset.aligned .form-row .help")
        if SCREENSHOTS:
            browser.save_screenshot(str(Path(SCREENSHOTS) / f"terminate-page-{language}-1366.png"))
        text = label.get_attribute("textContent")
        assert text[0] == text[0].upper() and text.endswith(":")  # "Termination remark:", as admin labels read
        beside = label.rect["x"] + label.rect["width"] <= field.rect["x"]  # Django < 6: the label beside the input
        # Django 6's admin stacks an aligned form's label above its input, at the same left edge.
        above = (
            label.rect["y"] + label.rect["height"] <= field.rect["y"] and abs(label.rect["x"] - field.rect["x"]) <= 2
        )
        assert beside or above
        assert abs(field.rect["x"] - help_text.rect["x"]) <= 12  # the help under the input, not under the label
