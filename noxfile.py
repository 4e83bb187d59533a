"""The version matrix: the SQLite suite on every Django the package claims, each on the oldest and the newest
installed Python that Django supports. ``.venv/bin/nox`` runs it all; CI runs it through
``PAPAY_MATRIX=1 bash scripts/test.sh`` (see CONTRIBUTING.md). The PostgreSQL run, the linters and the type check
are the main run's, in the project's own virtualenv.
"""

from __future__ import annotations

import glob
import os

import nox

nox.options.default_venv_backend = "uv|virtualenv"  # uv makes the six virtualenvs in seconds
nox.options.error_on_missing_interpreters = True  # a matrix that quietly shrinks proves nothing

# Django release → (its requirement, the oldest and newest Python 3.10–3.13 it supports).
DJANGOS = {
    "4.2": ("django>=4.2,<4.3", ("3.10", "3.12")),
    "5.2": ("django>=5.2,<5.3", ("3.10", "3.13")),
    "6.x": ("django>=6,<7", ("3.12", "3.13")),  # the newest 6.x; Django 6 needs Python 3.12+
}
MATRIX = [(python, django) for django, (_, pythons) in DJANGOS.items() for python in pythons]
# Fewer fuzzing examples than the main run's 2,500: the matrix looks for version differences, not new inputs.
FUZZ_EXAMPLES = "500"


def _find_pyenv_interpreters() -> None:
    """Put pyenv's Pythons 3.10–3.13 first on PATH: its shims answer only for the versions pyenv has selected.
    (Only nox looks them up by name; each session runs its own virtualenv's python.)"""
    folders = [
        found[-1]
        for minor in ("10", "11", "12", "13")
        if (found := sorted(glob.glob(os.path.expanduser(f"~/.pyenv/versions/3.{minor}.*/bin"))))
    ]
    os.environ["PATH"] = os.pathsep.join([*folders, os.environ.get("PATH", "")])


_find_pyenv_interpreters()


@nox.session
@nox.parametrize(("python", "django"), MATRIX)
def tests(session: nox.Session, django: str) -> None:
    """pytest on SQLite with this Django; arguments after ``--`` go to pytest."""
    requirement, _ = DJANGOS[django]
    session.install("-e", ".[test]", requirement)
    session.run("python", "-c", "import django, sys; print('Django', django.get_version(), 'on Python', sys.version)")
    session.run(
        "python",
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        *session.posargs,
        env={"PAPAY_FUZZ_EXAMPLES": FUZZ_EXAMPLES, "PAPAY_TEST_DATABASE": "sqlite"},
    )
