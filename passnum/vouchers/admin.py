from django.contrib import admin

from passnum.vouchers.models import Booklet, Redemption, Voucher, VoucherStatusLog


class ReadOnlyAdmin(admin.ModelAdmin):
    """Statuses move only through the services, which write the ledger and the journal."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Booklet)
class BookletAdmin(ReadOnlyAdmin):
    list_display = ["program", "number", "distributor", "allocated_at", "handed_out_at"]
    list_filter = ["program"]


@admin.register(Voucher)
class VoucherAdmin(ReadOnlyAdmin):
    list_display = ["code", "program", "status", "face_value_cents"]
    list_filter = ["status", "program"]
    search_fields = ["code"]


@admin.register(VoucherStatusLog)
class VoucherStatusLogAdmin(ReadOnlyAdmin):
    list_display = ["voucher", "from_status", "to_status", "at", "organisation"]


@admin.register(Redemption)
class RedemptionAdmin(ReadOnlyAdmin):
    list_display = ["voucher", "place", "service", "redeemed_at", "undone_at"]
