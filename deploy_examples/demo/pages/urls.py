from django.urls import path

from . import views

urlpatterns = [
    path("", views.index),
    path("version/", views.version),
    path("models-version/", views.models_version),
    path("hello/", views.hello),
    path("print/", views.print_view),
    path("translate/", views.translate),
    path("lazy/", views.lazy),
    path("slow/", views.slow),
    path("stream/", views.stream),
]
