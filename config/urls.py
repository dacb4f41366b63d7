from django.contrib import admin
from django.urls import include, path

from passnum.www.views import healthz

admin.site.site_header = "Pass numérique — back-office de l’opérateur"
admin.site.site_title = "Back-office Pass numérique"

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("", include("passnum.www.urls")),
]
