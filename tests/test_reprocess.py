"""reprocess_notification: only a verified delivery whose processing failed is applied again."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission, User
from django.contrib.messages import get_messages
from django.urls import reverse

from django_papay.exceptions import NotReprocessable, PapayError
from django_papay.models import Notification
from django_papay.services import reprocess_notification

pytestmark = pytest.mark.django_db


def applied_delivery() -> Notification:
    return Notification.objects.create(
        notification_id="EV-APPLIED",
        event_type="ECOMMERCE_ENTRUST.SIGN",
        verified=True,
        processed=True,
        result=Notification.Result.APPLIED,
        resource={"out_contract_code": "X"},
    )


def test_reprocessing_a_delivery_that_did_not_fail_raises_not_reprocessable(papay):
    with pytest.raises(NotReprocessable) as caught:
        reprocess_notification(applied_delivery())
    assert isinstance(caught.value, PapayError)


def test_reprocess_action_warns_about_a_delivery_that_did_not_fail(papay, client):
    delivery = applied_delivery()
    user = User.objects.create_user("ops", password="pw", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=["view_notification", "reprocess_notification"]))
    client.force_login(user)
    changelist = reverse("admin:django_papay_notification_changelist")

    response = client.post(changelist, {"action": "reprocess", "_selected_action": [delivery.pk]}, follow=True)

    (message,) = get_messages(response.wsgi_request)
    assert message.level_tag == "warning" and message.message.startswith("Notification EV-APPLIED: Only a verified")
    assert Notification.objects.get().result == "applied"
