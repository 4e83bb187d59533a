"""The admin in a real browser: headless Chromium logs in, ticks a contract and runs the pre-sign action.

Uses Debian's ``chromium`` and ``chromium-driver`` (``.ci/run`` installs them). Without them the test is
skipped, visibly, on a developer's machine, and fails under CI=true. On failure a screenshot and the page
source are saved under the test's tmp_path, and the failure report names them.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from django.contrib.auth.models import User
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import Select, WebDriverWait

from django_papay.models import Contract

from .helpers import WAIT_SECONDS, evidence_on_failure


@pytest.mark.django_db(transaction=True)
def test_staff_presigns_a_contract_in_the_admin_and_sees_its_pre_entrustweb_id(
    papay, sandbox, live_server, browser, tmp_path
):
    User.objects.create_superuser("staff", password="correct horse")
    contract = Contract.objects.create(plan_id=12535, contract_display_account="138****8888")
    other = Contract.objects.create(plan_id=12535, contract_display_account="139****9999")
    wait = WebDriverWait(browser, WAIT_SECONDS)

    with evidence_on_failure(browser, tmp_path):
        browser.get(f"{live_server.url}/admin/login/?next=/admin/django_papay/contract/")
        browser.find_element(By.ID, "id_username").send_keys("staff")
        browser.find_element(By.ID, "id_password").send_keys("correct horse")
        browser.find_element(By.CSS_SELECTOR, "#login-form [type=submit]").click()

        checkbox = wait.until(
            expected_conditions.element_to_be_clickable(
                (By.CSS_SELECTOR, f'input[name="_selected_action"][value="{contract.pk}"]')
            )
        )
        checkbox.click()
        action = Select(browser.find_element(By.NAME, "action"))
        assert "Pre-sign with WeChat Pay (App)" in [option.text for option in action.options]
        action.select_by_value("presign")
        browser.find_element(By.CSS_SELECTOR, '#changelist-form button[name="index"]').click()

        message = wait.until(
            expected_conditions.visibility_of_element_located((By.CSS_SELECTOR, "ul.messagelist li.success"))
        ).text
        contract.refresh_from_db()
        assert contract.status == Contract.Status.PRESIGNED
        assert contract.pre_entrustweb_id
        # The message names the contract first, so the admin's |capfirst never changes the code staff copy.
        assert message.startswith(
            f"Contract {contract.out_contract_code}: pre-signed, pre_entrustweb_id "
            f"{contract.pre_entrustweb_id} (valid until"
        )
        assert contract.pre_entrustweb_id in browser.page_source
        assert len(browser.find_elements(By.CSS_SELECTOR, "ul.messagelist li")) == 1  # only the ticked one

    assert Contract.objects.get(pk=other.pk).status == Contract.Status.CREATED
    assert [r.path for r in sandbox.requests] == ["/v3/ecommerce/combine-papay/contracts/pre-entrust-sign"]


# --- the example project's "App" page ---------------------------------------------------------

EXAMPLE_PROJECT = Path(__file__).resolve().parents[1] / "example_project"


@pytest.mark.django_db(transaction=True)
def test_example_app_page_goes_from_the_button_to_signed(
    app_papay, sandbox, live_server, browser, tmp_path, settings, monkeypatch
):
    monkeypatch.syspath_prepend(str(EXAMPLE_PROJECT))
    settings.INSTALLED_APPS = [*settings.INSTALLED_APPS, "demo"]
    settings.ROOT_URLCONF = "example.urls"
    sandbox.notify_rewrite = {"https://merchant.example": live_server.url}  # WeChat Pay's notification reaches us
    User.objects.create_user("13812348888", password="correct horse")
    wait = WebDriverWait(browser, WAIT_SECONDS)

    with evidence_on_failure(browser, tmp_path):
        browser.get(f"{live_server.url}/app/")  # → the App's login page, then back
        browser.find_element(By.ID, "id_username").send_keys("13812348888")
        browser.find_element(By.ID, "id_password").send_keys("correct horse")
        browser.find_element(By.CSS_SELECTOR, "#login-form [type=submit]").click()

        wait.until(expected_conditions.element_to_be_clickable((By.ID, "presign"))).click()
        wait.until(expected_conditions.text_to_be_present_in_element((By.ID, "status"), "presigned"))
        contract = Contract.objects.get()
        launch = browser.find_element(By.ID, "launch").text
        assert '"businessType": 12' in launch and contract.pre_entrustweb_id in launch

        browser.find_element(By.ID, "sign").click()
        wait.until(lambda driver: driver.find_element(By.ID, "status").text == "signed")  # not "presigned"
        assert browser.find_element(By.ID, "error").text == ""

    contract.refresh_from_db()
    assert contract.status == Contract.Status.SIGNED and contract.user.username == "13812348888"
