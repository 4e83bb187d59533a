"""The stored WeChat Pay platform certificates in the admin: read-only, as downloaded (``papay_certificates``)."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from ..models import PlatformCertificate
from .columns import local_times


@local_times(PlatformCertificate, "effective_time", "expire_time", "fetched_at")
class PlatformCertificateAdmin(admin.ModelAdmin):
    list_display = ("serial_no", "effective_time_local", "expire_time_local", "fetched_at_local", "source")
    fields = ("serial_no", "effective_time_local", "expire_time_local", "fetched_at_local", "source", "pem")
    readonly_fields = fields
    search_fields = ("serial_no",)
    ordering = ("-effective_time", "-pk")

    # Certificates come from WeChat Pay only; deleting one is allowed (the next download restores it if
    # WeChat Pay still lists it).
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False
