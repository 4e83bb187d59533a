from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

urlpatterns = [
    path("admin/", admin.site.urls),
    # WeChat Pay's notifications; PAPAY["NOTIFY_URL"] is this URL as the internet reaches it.
    path("papay/", include("django_papay.urls")),
    path("", RedirectView.as_view(url="/admin/django_papay/contract/")),
]
