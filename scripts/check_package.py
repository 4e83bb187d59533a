"""Build the sdist and the wheel (from the sdist) and check that they ship what a Django app needs at run time."""

import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REQUIRED = [
    "django_papay/py.typed",
    "django_papay/migrations/0001_initial.py",
    "django_papay/migrations/0002_platform_certificates.py",
    "django_papay/templates/admin/django_papay/contract/terminate_confirmation.html",
    "django_papay/management/commands/papay_sync.py",
    "django_papay/templates/admin/django_papay/contract/change_form.html",
    "django_papay/static/django_papay/admin.css",
    "django_papay/locale/zh_Hans/LC_MESSAGES/django.po",
    "django_papay/locale/zh_Hans/LC_MESSAGES/django.mo",
    "django_papay/admin/__init__.py",
    "django_papay/sandbox/__init__.py",
]


def main() -> int:
    with tempfile.TemporaryDirectory() as out:
        # python -m build makes the sdist first and the wheel from it, so MANIFEST.in is checked too.
        subprocess.run(
            [sys.executable, "-m", "build", "--outdir", out, str(ROOT)], check=True, stdout=subprocess.DEVNULL
        )
        (wheel,) = Path(out).glob("*.whl")
        (sdist,) = Path(out).glob("*.tar.gz")
        wheel_names = set(zipfile.ZipFile(wheel).namelist())
        sdist_names = {name.split("/", 1)[1] for name in tarfile.open(sdist).getnames() if "/" in name}
    missing = [f"wheel: {n}" for n in REQUIRED if n not in wheel_names]
    missing += [f"sdist: {n}" for n in REQUIRED if n not in sdist_names]
    for name in missing:
        print(f"missing from the package: {name}", file=sys.stderr)
    if not missing:
        print(f"wheel and sdist ship all {len(REQUIRED)} required files")
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
