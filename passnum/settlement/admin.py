from django.contrib import admin

from passnum.settlement.models import (
    Claim,
    FinanceIncident,
    LedgerAccount,
    LedgerEntry,
    LedgerTransaction,
    PaymentFile,
    SettlementRun,
)


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


@admin.register(Claim)
class ClaimAdmin(ReadOnlyAdmin):
    list_display = ["reference", "place", "funder", "status", "lines_count", "claimed_cents", "rejected_cents"]
    list_filter = ["status", "run"]
    search_fields = ["reference"]


@admin.register(FinanceIncident)
class FinanceIncidentAdmin(ReadOnlyAdmin):
    list_display = ["pk", "claim", "status", "opened_at", "closed_at"]
    list_filter = ["status"]


@admin.register(PaymentFile)
class PaymentFileAdmin(ReadOnlyAdmin):
    list_display = ["message_id", "funder", "run", "status", "transfers", "total_cents", "created_at"]
    exclude = ["content"]


@admin.register(SettlementRun)
class SettlementRunAdmin(ReadOnlyAdmin):
    list_display = ["cutoff", "created_at", "updated_at"]
