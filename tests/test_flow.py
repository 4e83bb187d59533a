"""The whole flow over real HTTP in both directions: pre-sign to the sandbox, notifications back to the site."""

import pytest
from django.urls import reverse

from django_papay.models import Contract, Notification
from django_papay.services import presign

from .helpers import NOTIFY_URL


@pytest.fixture
def site(live_server, sandbox):
    """The sandbox delivers to this test's live server, as a TLS-terminating proxy would."""
    sandbox.notify_rewrite = {NOTIFY_URL.rsplit("/papay/", 1)[0]: live_server.url}
    yield live_server
    sandbox.notify_rewrite = {}


@pytest.mark.django_db(transaction=True)
def test_presign_then_user_signs_then_terminates(papay, sandbox, site):
    contract = presign(Contract.objects.create(plan_id=12535, contract_display_account="138****8888"))

    deliveries = sandbox.sign_contract(contract.out_contract_code, repeat=3)
    assert [d.status for d in deliveries] == [204, 204, 204]
    assert deliveries[0].url == f"{site.url}/papay/notify/"
    contract.refresh_from_db()
    assert contract.status == Contract.Status.SIGNED

    assert [d.status for d in sandbox.terminate_contract(contract.out_contract_code)] == [204]
    contract.refresh_from_db()
    assert contract.status == Contract.Status.TERMINATED
    assert list(Notification.objects.order_by("pk").values_list("result", flat=True)) == [
        "applied",
        "duplicate",
        "duplicate",
        "applied",
    ]
    assert all(n.remote_addr == "127.0.0.1" for n in Notification.objects.all())


@pytest.mark.django_db(transaction=True)
def test_out_of_order_delivery_ends_in_the_newest_state(papay, sandbox, site):
    contract = presign(Contract.objects.create(plan_id=12535, contract_display_account="a"))
    sign = sandbox.sign_notification(contract.out_contract_code)
    terminate = sandbox.terminate_notification(contract.out_contract_code)
    deliveries = sandbox.deliver_out_of_order(sign, terminate)
    assert [(d.event_type, d.status) for d in deliveries] == [
        ("ECOMMERCE_ENTRUST.TERMINATE", 204),
        ("ECOMMERCE_ENTRUST.SIGN", 204),
    ]
    contract.refresh_from_db()
    assert contract.status == Contract.Status.TERMINATED


@pytest.mark.django_db(transaction=True)
def test_the_attach_of_sign_and_terminate_is_stored_and_shown_in_the_admin(papay, sandbox, site, staff_client):
    contract = presign(Contract.objects.create(plan_id=12535, contract_display_account="a", attach="订单 42"))

    assert [d.status for d in sandbox.sign_contract(contract.out_contract_code)] == [204]
    contract.refresh_from_db()
    assert (contract.status, contract.sign_attach, contract.terminate_attach) == (Contract.Status.SIGNED, "订单 42", "")
    assert [d.status for d in sandbox.terminate_contract(contract.out_contract_code, attach="退订 42")] == [204]
    contract.refresh_from_db()
    assert (contract.sign_attach, contract.terminate_attach) == ("订单 42", "退订 42")

    page = staff_client("view_contract").get(reverse("admin:django_papay_contract_change", args=[contract.pk]))
    html = page.content.decode()
    assert "Attach of the SIGN notification" in html and "Attach of the TERMINATE notification" in html
    assert "订单 42" in html and "退订 42" in html
    assert 'name="sign_attach"' not in html and 'name="terminate_attach"' not in html  # read-only
