from django.contrib import admin
from django.urls import include, path

from passnum.api.main import api
from passnum.www.views import healthz, signing_keys

admin.site.site_header = "Pass numérique — back-office de l’opérateur"
admin.site.site_title = "Back-office Pass numérique"

urlpatterns = [
    path("api/v1/", api.urls),  # first: the hottest path resolves at once
    path("healthz", healthz, name="healthz"),
    path(".well-known/passnum-keys.json", signing_keys, name="signing_keys"),
    path("admin/", admin.site.urls),
    path("", include("passnum.www.urls")),
]
