"""The site's URLs plus one view that fails, for the friendly-500 test."""
from django.urls import path

from museum.urls import urlpatterns as site


def fails(request):
    raise ZeroDivisionError("fails on purpose")


urlpatterns = [path("fails/", fails), *site]
