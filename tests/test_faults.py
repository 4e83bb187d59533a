"""Every way WeChat Pay's answer can go wrong, seen from the admin: a message, never a server error page."""

import pytest
from django.urls import reverse

from django_papay.models import Contract

from .helpers import messages, run_action

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


@pytest.mark.parametrize("fault, code", FAULTS.items())
def test_outbound_fault_gives_a_message_and_leaves_the_contract_retryable(
    papay, sandbox, settings, admin_client, contract, fault, code
):
    settings.PAPAY = {**settings.PAPAY, "TIMEOUT": (1.0, 0.3)}
    sandbox.fault_delay = 1.0
    sandbox.fail_next(fault)
    response = run_action(admin_client, Contract, "presign", [contract])
    assert response.status_code == 200
    (message,) = messages(response)
    assert contract.out_contract_code in message and code in message
    contract.refresh_from_db()
    assert contract.status == Contract.Status.CREATED  # retryable: nothing to fix, try again
    assert contract.last_error.startswith(code)
    assert contract.pre_entrustweb_id == ""
    # ... and it is retryable indeed:
    run_action(admin_client, Contract, "presign", [contract])
    contract.refresh_from_db()
    assert (contract.status, contract.last_error) == (Contract.Status.PRESIGNED, "")
    page = admin_client.get(reverse("admin:django_papay_contract_change", args=[contract.pk]))
    assert page.status_code == 200
