from django.urls import path

from . import live_views, views

app_name = "doppelganger"
urlpatterns = [
    path("", views.page, name="page"),
    path("frame/", live_views.frame, name="frame"),
    path("kiosk/", live_views.kiosk, name="kiosk"),
    path("qr/<int:pk>.svg", live_views.qr, name="qr"),
    path("faces/<int:pk>/not-a-face/", views.not_a_face, name="not_a_face"),
]
