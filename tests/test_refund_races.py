"""Two staff refunding at once, each thread on its own database connection, on SQLite and on PostgreSQL:
never more than a sub-order's amount, and one number refunded once."""

import pytest

from django_papay.models import Deduction, Refund, SubOrder
from django_papay.services import deduct, refund

from .helpers import MEMBERSHIP, in_parallel

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def membership(signed_contract, sandbox):
    deduction = deduct(signed_contract, [MEMBERSHIP])
    assert deduction.status == Deduction.Status.SUCCEEDED
    return deduction.sub_orders.get()


@pytest.mark.parametrize("attempt", range(3))
def test_two_staff_refunding_the_last_fen_at_once_make_one_refund(membership, sandbox, attempt):
    refund(membership, 1499)
    staff = [SubOrder.objects.get(pk=membership.pk) for _ in range(2)]  # each their own instance
    results = in_parallel([lambda sub_order=sub_order: refund(sub_order, 1) for sub_order in staff])
    made = [result for result in results if isinstance(result, Refund)]
    refused = [result for result in results if not isinstance(result, Refund)]
    assert len(made) == 1 and len(refused) == 1, results
    assert "can still be refunded" in str(refused[0])
    assert Refund.objects.count() == 2 and membership.refundable_amount == 0
    assert sum(sandbox.refunds.posts.values()) == 2


@pytest.mark.parametrize("attempt", range(2))
@pytest.mark.parametrize("amount", [700, 1000])  # 1000: twice would be over the amount, once is not
def test_two_callers_racing_on_one_number_send_one_apply(membership, sandbox, attempt, amount):
    staff = [SubOrder.objects.get(pk=membership.pk) for _ in range(2)]
    results = in_parallel(
        [lambda sub_order=sub_order: refund(sub_order, amount, out_refund_no="R-RACE") for sub_order in staff]
    )
    assert all(isinstance(result, Refund) for result in results), results
    assert {result.pk for result in results} == {Refund.objects.get().pk}
    assert sandbox.refunds.posts == {"R-RACE": 1}
