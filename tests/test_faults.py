"""Every way WeChat Pay's answer can go wrong, seen from the admin: a message, never a server error page."""

import pytest
from django.contrib.auth.models import User
from django.contrib.messages import get_messages
from django.urls import reverse

from django_papay.models import Contract

pytestmark = pytest.mark.django_db

# fault switch -> the code staff read in the message and in last_error
FAULTS = {
    "timeout": "TIMEOUT",
    "reset": "NETWORK_ERROR",
    "ratelimit": "RATELIMIT_EXCEEDED",
    "system_error": "SYSTEM_ERROR",
    "unavailable": "SERVICE_UNAVAILABLE",
    "bad_signature": "INVALID_RESPONSE_SIGNATURE",
    "unknown_serial": "INVALID_RESPONSE_SIGNATURE",
    "stale_timestamp": "INVALID_RESPONSE_SIGNATURE",
    "not_json": "INVALID_RESPONSE_BODY",
    "truncated": "NETWORK_ERROR",
    "other_contract": "ANSWER_MISMATCH",
}


@pytest.fixture
def staff(client):
    client.force_login(User.objects.create_superuser("root", password="pw"))
    return client


@pytest.mark.parametrize("fault, code", FAULTS.items())
def test_outbound_fault_gives_a_message_and_leaves_the_contract_retryable(papay, sandbox, settings, staff, fault,
                                                                          code):
    settings.PAPAY = {**settings.PAPAY, "TIMEOUT": (1.0, 0.3)}
    sandbox.fault_delay = 1.0
    contract = Contract.objects.create(plan_id=12535, contract_display_account="a")
    sandbox.fail_next(fault)
    changelist = reverse("admin:django_papay_contract_changelist")
    response = staff.post(changelist, {"action": "presign", "_selected_action": [contract.pk]}, follow=True)
    assert response.status_code == 200
    (message,) = [str(m) for m in get_messages(response.wsgi_request)]
    assert contract.out_contract_code in message and code in message
    contract.refresh_from_db()
    assert contract.status == Contract.Status.CREATED  # retryable: nothing to fix, try again
    assert contract.last_error.startswith(code)
    assert contract.pre_entrustweb_id == ""
    # ... and it is retryable indeed:
    response = staff.post(changelist, {"action": "presign", "_selected_action": [contract.pk]}, follow=True)
    contract.refresh_from_db()
    assert (contract.status, contract.last_error) == (Contract.Status.PRESIGNED, "")
    page = staff.get(reverse("admin:django_papay_contract_change", args=[contract.pk]))
    assert page.status_code == 200
