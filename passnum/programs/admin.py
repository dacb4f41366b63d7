from django.contrib import admin

from passnum.programs.models import Program, ProgramFunder, ProgramTerritory


class ProgramFunderInline(admin.TabularInline):
    model = ProgramFunder
    extra = 0
    readonly_fields = ["funder", "share_bps", "budget_cents", "committed_cents"]
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False  # budgets move the ledger: only through the services (web UI)


class ProgramTerritoryInline(admin.TabularInline):
    model = ProgramTerritory
    extra = 0


@admin.register(Program)
class ProgramAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "owner", "valid_from", "valid_until", "face_value_cents"]
    search_fields = ["name", "slug"]
    readonly_fields = ["face_value_cents", "vouchers_per_booklet", "next_booklet_number", "owner"]
    inlines = [ProgramFunderInline, ProgramTerritoryInline]

    def has_add_permission(self, request):
        return False
