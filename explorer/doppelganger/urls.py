from django.urls import path

from . import views

app_name = "doppelganger"
urlpatterns = [
    path("", views.page, name="page"),
    path("faces/<int:pk>/not-a-face/", views.not_a_face, name="not_a_face"),
]
