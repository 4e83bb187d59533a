"""Include in your site: ``path("papay/", include("django_papay.urls"))``; NOTIFY_URL points at ``notify``."""

from django.urls import path

from . import views

app_name = "django_papay"

urlpatterns = [path("notify/", views.notify, name="notify")]
