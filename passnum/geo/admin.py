from django.contrib import admin

from passnum.geo.models import Commune, Departement, Epci, PostalCode, Region


class ReadOnlyMixin:
    """The geography comes from the shipped Insee data (`passnum geo load`), never from the admin."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Region)
class RegionAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ["code", "name"]
    search_fields = ["code", "name"]


@admin.register(Departement)
class DepartementAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ["code", "name", "region"]
    list_filter = ["region"]
    list_select_related = ["region"]
    search_fields = ["code", "name"]


@admin.register(Epci)
class EpciAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ["code", "name", "kind"]
    list_filter = ["kind"]
    search_fields = ["code", "name"]


class PostalCodeInline(ReadOnlyMixin, admin.TabularInline):
    model = PostalCode
    fields = ["code"]
    extra = 0


@admin.register(Commune)
class CommuneAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ["code", "name", "kind", "departement", "epci", "population"]
    list_filter = ["kind", "region"]
    list_select_related = ["departement", "epci"]
    search_fields = ["code", "name", "=postal_codes__code"]
    inlines = [PostalCodeInline]
