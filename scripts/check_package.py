"""Build the sdist and the wheel (from the sdist) without a warning, check that they ship what a Django app needs
at run time, that the sdist's test suite runs, and that .gitignore lists no tracked file."""

import os
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REQUIRED = [
    "django_papay/py.typed",
    # Every migration: a wheel without one would leave its tables unmade.
    *sorted(str(path.relative_to(ROOT)) for path in (ROOT / "django_papay" / "migrations").glob("0*.py")),
    "django_papay/templates/admin/django_papay/confirm_action.html",
    "django_papay/management/commands/papay_sync.py",
    "django_papay/templates/admin/django_papay/contract/change_form.html",
    "django_papay/templatetags/papay.py",
    "django_papay/static/django_papay/admin.css",
    "django_papay/locale/zh_Hans/LC_MESSAGES/django.po",
    "django_papay/locale/zh_Hans/LC_MESSAGES/django.mo",
    "django_papay/admin/__init__.py",
    "django_papay/sandbox/__init__.py",
]
# The sdist is also the source of truth for packagers, who run its tests and build its docs.
SDIST_ONLY = [
    "pyproject.toml",
    "LICENSE",
    "CHANGELOG.md",
    "README.md",
    "CONTRIBUTING.md",
    "mkdocs.yml",
    # Every page and screenshot of the guide.
    *sorted(path.relative_to(ROOT).as_posix() for path in (ROOT / "docs").rglob("*") if path.is_file()),
    "tests/conftest.py",
    "tests/helpers.py",
    "tests/settings.py",
    "tests/urls.py",
    "tests/vectors/official-doc-test-key.pem",
]
# A quick slice of the suite, run from the unpacked sdist: crypto vectors, the notify view, the admin, the docs.
SDIST_TESTS = ["tests/test_crypto.py", "tests/test_notify.py", "tests/test_admin.py", "tests/test_docs.py"]


def main() -> int:
    problems = []
    with tempfile.TemporaryDirectory() as out:
        # python -m build makes the sdist first and the wheel from it, so MANIFEST.in is checked too.
        # (PYTHONDONTWRITEBYTECODE only makes setuptools say it skips byte-compiling: not a warning about us.)
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        built = subprocess.run(
            [sys.executable, "-m", "build", "--outdir", out, str(ROOT)], capture_output=True, text=True, env=env
        )
        if built.returncode != 0:
            print(built.stdout, built.stderr, file=sys.stderr)
            return 1
        problems += [f"build warning: {line.strip()}" for line in _warnings(built.stdout + built.stderr)]
        (wheel,) = Path(out).glob("*.whl")
        (sdist,) = Path(out).glob("*.tar.gz")
        wheel_names = set(zipfile.ZipFile(wheel).namelist())
        with tarfile.open(sdist) as archive:
            sdist_names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
            archive.extractall(out, filter="data")
        problems += [f"missing from the wheel: {n}" for n in REQUIRED if n not in wheel_names]
        problems += [f"missing from the sdist: {n}" for n in REQUIRED + SDIST_ONLY if n not in sdist_names]
        if not problems:
            problems += _run_sdist_tests(sdist, Path(out))
    problems += [f".gitignore lists the tracked file {name}" for name in _ignored_but_tracked()]
    for problem in problems:
        print(problem, file=sys.stderr)
    if not problems:
        print(
            f"the wheel ships all {len(REQUIRED)} required files and the sdist all {len(REQUIRED) + len(SDIST_ONLY)}"
            "; the sdist's tests run; no build warning"
        )
    return 1 if problems else 0


def _warnings(output: str) -> list[str]:
    return [line for line in output.splitlines() if "warning" in line.lower()]


def _run_sdist_tests(sdist: Path, out: Path) -> list[str]:
    unpacked = out / sdist.name.removesuffix(".tar.gz")
    env = {k: v for k, v in os.environ.items() if k not in ("DJANGO_SETTINGS_MODULE", "PAPAY_TEST_DATABASE")}
    ran = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *SDIST_TESTS],
        cwd=unpacked,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if ran.returncode != 0:
        return [f"the sdist's tests failed:\n{ran.stdout[-3000:]}{ran.stderr[-2000:]}"]
    return []


def _ignored_but_tracked() -> list[str]:
    if not (ROOT / ".git").exists():
        return []
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--ignored", "--exclude-standard"],  # noqa: S607 — git from PATH
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return listed.stdout.split()


if __name__ == "__main__":
    sys.exit(main())
