from django.contrib import admin

from passnum.settlement.models import LedgerAccount, LedgerEntry, LedgerTransaction


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class LedgerEntryInline(admin.TabularInline):
    model = LedgerEntry
    fields = ["account", "amount_cents"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(LedgerTransaction)
class LedgerTransactionAdmin(ReadOnlyAdmin):
    list_display = ["seq", "kind", "created_at", "memo", "hash"]
    list_filter = ["kind"]
    inlines = [LedgerEntryInline]


@admin.register(LedgerAccount)
class LedgerAccountAdmin(ReadOnlyAdmin):
    list_display = ["key", "kind", "program", "funder", "place"]
    list_filter = ["kind"]
    search_fields = ["key"]
