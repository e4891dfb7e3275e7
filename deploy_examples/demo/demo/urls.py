from django.contrib import admin
from django.contrib.staticfiles.urls import staticfiles_urlpatterns
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("", include("pages.urls")),
]
# gunicorn serves no static files; with DEBUG=True this lets the admin keep its CSS.
urlpatterns += staticfiles_urlpatterns()
