"""A site that serves only the notify view (no App): the App's endpoints are not routed."""

from django.urls import path

from django_papay import views

urlpatterns = [path("papay/notify/", views.notify, name="notify")]
