"""The app's configuration: its name and label, and the system checks and signal receivers it registers."""

from django.apps import AppConfig
from django.core import checks
from django.utils.translation import gettext_lazy as _


class PapayConfig(AppConfig):
    name = "django_papay"
    verbose_name = _("WeChat Pay contract signing")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import checks as papay_checks
        from . import dispatch, signals
        from .services.sharing_due import check_frozen_near_limit

        checks.register(papay_checks.check_settings, "django_papay")
        checks.register(check_frozen_near_limit, "django_papay", checks.Tags.database)
        signals.deduction_succeeded.connect(dispatch.schedule_sharing, dispatch_uid="django_papay.schedule_sharing")
