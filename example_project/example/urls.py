from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

urlpatterns = [
    path("admin/", admin.site.urls),
    # WeChat Pay's notifications; PAPAY["NOTIFY_URL"] is this URL as the internet reaches it.
    path("papay/", include("django_papay.urls")),
    # The "App" page: plays the platform's App against django_papay's App endpoints.
    path("app/", include("demo.urls")),
    path("", RedirectView.as_view(url="/admin/django_papay/contract/")),
]
