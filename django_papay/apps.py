from django.apps import AppConfig
from django.core import checks
from django.utils.translation import gettext_lazy as _


class PapayConfig(AppConfig):
    name = "django_papay"
    verbose_name = _("WeChat Pay contract signing")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import checks as papay_checks

        checks.register(papay_checks.check_settings, "django_papay")
