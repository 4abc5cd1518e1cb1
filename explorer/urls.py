"""Explorer routes. Each page family has its own module and URL list."""
from django.urls import include, path

from . import views

app_name = "explorer"
urlpatterns = [
    path("", views.artwork_list, name="home"),
    path("artworks/<int:pk>/", views.artwork_detail, name="artwork"),
]
