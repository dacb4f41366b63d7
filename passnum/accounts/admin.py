from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin

from passnum.accounts.models import Invitation, Membership, Organisation, User


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["organisation"]


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    ordering = ["email"]
    list_display = ["email", "first_name", "last_name", "is_staff", "is_active"]
    search_fields = ["email", "first_name", "last_name"]
    fieldsets = [
        (None, {"fields": ["email", "password"]}),
        ("Identité", {"fields": ["first_name", "last_name"]}),
        ("Droits", {"fields": ["is_active", "is_staff", "is_superuser", "groups"]}),
        ("Dates", {"fields": ["last_login", "date_joined"]}),
    ]
    add_fieldsets = [(None, {"classes": ["wide"], "fields": ["email", "password1", "password2"]})]
    filter_horizontal = ["groups"]
    list_filter = ["is_staff", "is_active"]
    inlines = [MembershipInline]


@admin.register(Organisation)
class OrganisationAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "siret", "rna", "is_active"]
    list_filter = ["kind", "is_active"]
    search_fields = ["name", "slug", "siret", "siren", "rna"]
    prepopulated_fields = {"slug": ["name"]}


@admin.register(Invitation)
class InvitationAdmin(admin.ModelAdmin):
    list_display = ["email", "organisation", "role", "created_at", "expires_at", "accepted_at"]
    readonly_fields = ["token_hash"]
