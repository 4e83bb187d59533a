"""The App's settings, read when used: each malformed value names the key to fix."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured

from django_papay import conf
from django_papay.services.app import masked_username


@pytest.mark.parametrize("value", [None, [], ["12535"], [0], [True], 12535])
def test_malformed_app_plan_ids_name_the_key(settings, value):
    settings.PAPAY = {"APP_PLAN_IDS": value}
    with pytest.raises(ImproperlyConfigured, match="APP_PLAN_IDS"):
        conf.app_plan_ids()


@pytest.mark.parametrize("value", [10, (0, 3600), (10, 0), ("10", 3600), (10, 3600, 1), (True, 60)])
def test_malformed_app_presign_limit_names_the_key(settings, value):
    settings.PAPAY = {"APP_PRESIGN_LIMIT": value}
    with pytest.raises(ImproperlyConfigured, match="APP_PRESIGN_LIMIT"):
        conf.app_presign_limit()


def test_app_defaults(settings):
    settings.PAPAY = {"APP_PLAN_IDS": [12535]}
    assert conf.app_plan_ids() == {12535}
    assert conf.app_presign_limit() == (10, 3600.0)
    assert conf.app_refresh_interval() == 5.0
    assert conf.display_account() is masked_username
    assert conf.app_authenticate() is None


def test_display_account_path_that_does_not_import_names_the_key(settings):
    settings.PAPAY = {"DISPLAY_ACCOUNT": "shop.nowhere.display_account"}
    with pytest.raises(ImproperlyConfigured, match="DISPLAY_ACCOUNT"):
        conf.display_account()


@pytest.mark.parametrize(
    ("username", "shown"),
    [
        ("13812348888", "138****8888"),
        ("alice", "a***e"),
        ("al", "a*"),
        ("", "**"),
        ("w" * 150, "w" * 12 + "****" + "w" * 12),
    ],
)
def test_masked_username_hides_the_middle_within_32_characters(username, shown):
    class User:
        def get_username(self) -> str:
            return username

    assert masked_username(User()) == shown
    assert len(shown) <= 32
