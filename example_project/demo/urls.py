from django.contrib.auth.views import LoginView
from django.urls import path

from . import views

urlpatterns = [
    path("", views.app_page, name="demo-app"),
    path("login/", LoginView.as_view(template_name="demo/login.html"), name="demo-login"),
    path("sandbox/<str:out_contract_code>/sign/", views.sandbox_sign, name="demo-sandbox-sign"),
]
