from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class PapayConfig(AppConfig):
    name = "django_papay"
    verbose_name = _("WeChat Pay contract signing")
    default_auto_field = "django.db.models.BigAutoField"
