"""One way of showing a time, in the site's time zone, in every message, note, column and command line."""

from __future__ import annotations

from datetime import datetime, timedelta
from datetime import timezone as dt_timezone

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import translation

from django_papay import display
from django_papay.exceptions import ContractStateError
from django_papay.models import Contract, Notification, PlatformCertificate
from django_papay.services import presign, state
from django_papay.services.certificates import refresh_certificates

from .helpers import PLAN_ID, deliver

pytestmark = pytest.mark.django_db
MOMENT = datetime(2026, 11, 27, 6, 24, 58, 946533, tzinfo=dt_timezone.utc)  # 14:24:58.946533 in Shanghai


def test_a_time_reads_to_the_minute_in_the_sites_time_zone():
    assert display.local_time(MOMENT) == "2026-11-27 14:24"


def test_within_the_first_minute_it_is_just_now():
    assert display.ago(MOMENT, now=MOMENT + timedelta(seconds=59)) == "just now"
    assert display.ago(MOMENT, now=MOMENT + timedelta(minutes=5)) == "5\xa0minutes ago"


def test_a_note_written_by_the_app_shows_local_time(contract):
    contract.status, contract.terminated_at = Contract.Status.TERMINATED, MOMENT
    note = state.mark_signed(contract, at=MOMENT, openid="o").note
    assert note == "The contract was terminated at 2026-11-27 14:24; a signing report never revives it."


def test_a_note_is_written_in_the_active_language(contract):
    contract.status, contract.terminated_at = Contract.Status.TERMINATED, MOMENT
    with translation.override("zh-hans"):
        note = state.mark_signed(contract, at=MOMENT, openid="o").note
    assert "2026-11-27 14:24" in note and "解约" in note


def test_the_termination_mode_shows_a_label_beside_wechat_pays_code(admin_client, contract):
    Contract.objects.filter(pk=contract.pk).update(
        status=Contract.Status.TERMINATED, termination_mode="USER_TERMINATE", terminated_at=MOMENT
    )
    page = admin_client.get(reverse("admin:django_papay_contract_change", args=[contract.pk])).content.decode()
    assert "USER_TERMINATE (ended by the user in WeChat)" in page


def test_the_pre_sign_notice_has_one_time_format_and_no_double_period(admin_client, presigned_contract):
    page = admin_client.get(reverse("admin:django_papay_contract_change", args=[presigned_contract.pk]))
    expected = display.local_time(presigned_contract.presign_expires_at)
    assert f"the user can sign in WeChat until {expected}." in page.content.decode()


def test_a_pre_sign_message_carries_no_raw_timestamp(papay, sandbox, presigned_contract):
    with pytest.raises(ContractStateError) as refused:
        presign(presigned_contract)
    assert str(refused.value).endswith(f"valid until {display.local_time(presigned_contract.presign_expires_at)}.")


def test_the_presign_command_prints_the_one_format(papay, sandbox, contract, capsys):
    call_command("papay_presign", contract.out_contract_code)
    contract.refresh_from_db()
    assert f"valid until {display.local_time(contract.presign_expires_at)}" in capsys.readouterr().out


def test_the_decrypted_resource_is_pretty_printed(admin_client, presigned_contract, sandbox):
    deliver(sandbox.sign_notification(presigned_contract.out_contract_code))
    delivery = Notification.objects.get()
    page = admin_client.get(reverse("admin:django_papay_notification_change", args=[delivery.pk])).content.decode()
    assert '<pre class="papay-pre">{\n  &quot;' in page and f"&quot;plan_id&quot;: {PLAN_ID}" in page


def test_a_contract_page_shows_its_times_in_the_one_format(admin_client, signed_contract):
    page = admin_client.get(reverse("admin:django_papay_contract_change", args=[signed_contract.pk])).content.decode()
    assert display.local_time(signed_contract.signed_at) in page
    assert "a.m." not in page and "p.m." not in page


def test_the_certificates_list_shows_times_in_the_one_format(admin_client, certified):
    refresh_certificates()
    page = admin_client.get(reverse("admin:django_papay_platformcertificate_changelist")).content.decode()
    assert display.local_time(PlatformCertificate.objects.get().fetched_at) in page
    assert "a.m." not in page and "p.m." not in page
