"""Include in your site: ``path("papay/", include("django_papay.urls"))``; NOTIFY_URL points at ``notify``.

The App's endpoints (``app-presign``, ``app-contract``) are in ``app_api.py``.
"""

from django.urls import path

from . import app_api, views

app_name = "django_papay"

urlpatterns = [path("notify/", views.notify, name="notify")]
urlpatterns += [
    path("app/presign/", app_api.presign, name="app-presign"),
    path("app/contracts/<str:out_contract_code>/", app_api.contract, name="app-contract"),
]
