"""Append-only audit trail: who did what to which object, for which organisation, and when.

Never holds personal data of beneficiaries: objects are referenced by type and id only."""

from django.conf import settings
from django.db import models
from django.utils import timezone

from passnum.common.models import AppendOnlyModel


class JournalEntry(AppendOnlyModel):
    at = models.DateTimeField(default=timezone.now, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    organisation = models.ForeignKey(
        "accounts.Organisation", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    action = models.CharField(max_length=60, db_index=True)
    object_type = models.CharField(max_length=60, blank=True)
    object_id = models.CharField(max_length=64, blank=True)
    data = models.JSONField(default=dict, blank=True)

    class Meta:
        verbose_name = "entrée du journal"
        verbose_name_plural = "journal"
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["object_type", "object_id"], name="journal_object_idx")]

    def __str__(self):
        return f"{self.at:%Y-%m-%d %H:%M} {self.action} {self.object_type}:{self.object_id}"
