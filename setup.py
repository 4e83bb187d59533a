"""A shim for tools that still call ``setup.py``; the project's metadata lives in pyproject.toml ([project])."""

from setuptools import setup

setup()
