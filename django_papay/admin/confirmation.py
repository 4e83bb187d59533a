"""The page staff confirm a WeChat Pay call on: what will happen, to which rows, with a form for what it needs.

One template (``admin/django_papay/confirm_action.html``) for terminate, deduct and reverse: an ``intro``, the
``items`` (``object``, ``label``, and ``skipped`` saying why one will be left out), the ``action`` to post
back, a ``form`` and its ``submit_label``; ``ready`` False leaves out the form and the button (nothing to do).
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.admin import helpers
from django.http import HttpRequest
from django.template.response import TemplateResponse

TEMPLATE = "admin/django_papay/confirm_action.html"


def confirmation_page(model_admin: admin.ModelAdmin, request: HttpRequest, **context: Any) -> TemplateResponse:
    """The confirmation page of one of ``model_admin``'s actions (see the module docstring for ``context``)."""
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.model._meta,
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        **context,
    }
    return TemplateResponse(request, TEMPLATE, context)
