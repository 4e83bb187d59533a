import re
from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent
VERSION = re.search(r'__version__ = "([^"]+)"', (HERE / "django_papay" / "__init__.py").read_text()).group(1)

setup(
    name="django-papay",
    version=VERSION,
    description="WeChat Pay 合单代扣 (combine-papay) APP pre-sign and contract notifications for Django",
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="MIT",
    packages=find_packages(include=["django_papay", "django_papay.*"]),
    include_package_data=True,
    package_data={
        "django_papay": ["py.typed", "templates/**/*", "static/**/*", "locale/**/*"],
    },
    zip_safe=False,
    python_requires=">=3.10",
    install_requires=["django>=4.2", "requests>=2.28", "cryptography>=41"],
    extras_require={
        "test": [
            "pytest>=8",
            "pytest-django>=4.8",
            "psycopg[binary]>=3.1",
            "ruff>=0.6",
            "build>=1",
            "hypothesis>=6.100",
            "selenium>=4.20",
            "django-tasks>=0.12",
            "django-tasks-db>=0.13",
        ],
        # Django Tasks before Django 6 (which has django.tasks built in): django_papay.tasks
        "tasks": ["django-tasks>=0.12"],
        "bench": ["gunicorn>=22", "psycopg[binary]>=3.1", "django-tasks>=0.12", "django-tasks-db>=0.13"],
    },
    classifiers=[
        "Framework :: Django",
        "Framework :: Django :: 4.2",
        "Framework :: Django :: 5.2",
        "Programming Language :: Python :: 3",
        "Programming Language :: Python :: 3 :: Only",
        "Typing :: Typed",
        "Intended Audience :: Developers",
        "Topic :: Office/Business :: Financial",
    ],
)
