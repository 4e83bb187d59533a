"""Each PAPAY setting is declared once, as a row of conf.py's table; the docs and the code are held to it."""

from __future__ import annotations

import inspect
import re
from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured

from django_papay import conf

from .helpers import papay_settings

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / conf.DOCS
ROW = re.compile(r"^\| `([A-Z][A-Z0-9_]*)` \| ([^|]+) \| ([^|]+) \|")


def documented_default(row: conf.Setting[Any]) -> str:
    """How docs/settings.md writes a row's default."""
    if row.default is conf.NO_DEFAULT:
        return "required" if row.required else "—"
    if isinstance(row.default, str):
        return f'`"{row.default}"`'
    return f"`{row.default!r}`"


def docs_section(title: str) -> str:
    text = DOCS.read_text(encoding="utf-8")
    match = re.search(rf"^#+ {re.escape(title)}\n(.*?)(?=^#+ |\Z)", text, re.M | re.S)
    assert match, f"{conf.DOCS} has no section {title!r}"
    return match.group(1)


def test_docs_table_has_each_setting_once_with_its_default_and_check():
    documented: dict[str, tuple[str, str]] = {}
    for line in docs_section("Settings").splitlines():
        match = ROW.match(line)
        if match:
            key, default, check = (part.strip() for part in match.groups())
            assert key not in documented, f"{key} is documented twice"
            documented[key] = (default, check)
    expected = {row.key: (documented_default(row), row.check) for row in conf.SETTINGS.values()}
    wrong = {key: cells for key, cells in expected.items() if documented.get(key) != cells}
    assert not wrong, "docs/settings.md's table should read:\n" + "\n".join(
        f"| `{key}` | {default} | {check} | … |" for key, (default, check) in wrong.items()
    )
    assert set(documented) <= set(expected), f"documented but not in conf.py's table: {set(documented) - set(expected)}"


def test_every_check_a_row_fires_is_in_the_docs_checks_table():
    documented = set(re.findall(r"E0\d\d|W0\d\d", docs_section("System checks")))
    assert {row.check for row in conf.SETTINGS.values()} <= documented


def test_each_row_is_an_accessor_of_conf_and_each_accessor_a_row():
    accessors = [value for value in vars(conf).values() if isinstance(value, conf.Setting)]
    assert sorted(row.key for row in accessors) == sorted(conf.SETTINGS)


@pytest.mark.parametrize("row", conf.SETTINGS.values(), ids=lambda row: row.key)
def test_each_row_is_whole(row):
    assert re.fullmatch(r"E0\d\d", row.check)
    assert row.doc.endswith(".") and "\n" not in row.doc  # one line: it is also the system check's hint
    assert not row.required or row.default is conf.NO_DEFAULT  # a setting with a default is never missing


class RecordingDict(dict):
    """A PAPAY dict that remembers every key read from it."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.read: set[str] = set()

    def get(self, key: str, default: Any = None) -> Any:
        self.read.add(key)
        return super().get(key, default)

    def __getitem__(self, key: str) -> Any:
        self.read.add(key)
        return super().__getitem__(key)

    def __contains__(self, key: object) -> bool:
        self.read.add(str(key))
        return super().__contains__(key)


def test_every_accessor_reads_only_settings_in_the_table(settings, keys):
    settings.PAPAY = RecordingDict(papay_settings(keys, "https://api.mch.weixin.qq.com", PLATFORM_CERTIFICATES=True))
    accessors = [
        value
        for name, value in vars(conf).items()
        if not name.startswith("_")
        and (isinstance(value, conf.Setting) or (inspect.isfunction(value) and value.__module__ == conf.__name__))
        and name != "setting"  # the table's own constructor
    ]
    for accessor in accessors:
        try:
            accessor()
        except ImproperlyConfigured:
            pass  # a row without a default that these settings leave out (APP_PLAN_IDS)
    assert "client_settings" in {getattr(accessor, "__name__", "") for accessor in accessors}
    read = settings.PAPAY.read
    assert read, "nothing was read"
    assert read <= set(conf.SETTINGS), f"read but not in the table: {read - set(conf.SETTINGS)}"


def test_the_package_and_its_docs_name_only_settings_in_the_table():
    named: dict[str, set[str]] = {}
    files = [*(ROOT / "django_papay").rglob("*.py"), *ROOT.glob("*.md"), *(ROOT / "docs").glob("*.md")]
    for path in files:
        for key in re.findall(r"PAPAY\[\\?[\"']([A-Z][A-Z0-9_]*)", path.read_text(encoding="utf-8")):
            named.setdefault(key, set()).add(str(path.relative_to(ROOT)))
    assert "TASKS" in named  # the pattern finds them
    unknown = {key: places for key, places in named.items() if key not in conf.SETTINGS}
    assert not unknown, f"PAPAY keys named but not in conf.py's table: {unknown}"
