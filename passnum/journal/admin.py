from django.contrib import admin

from passnum.journal.models import JournalEntry


@admin.register(JournalEntry)
class JournalEntryAdmin(admin.ModelAdmin):
    list_display = ["at", "action", "organisation", "actor", "object_type", "object_id"]
    list_filter = ["action"]
    search_fields = ["action", "object_id"]
    date_hierarchy = "at"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
