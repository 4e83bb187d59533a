from django.urls import include, path

from . import views

urlpatterns = [
    path("papay/", include("django_papay.urls")),  # /papay/notify/
    path("bare/", views.bare),
]
