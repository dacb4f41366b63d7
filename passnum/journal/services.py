from django.db import models

from passnum.journal.models import JournalEntry


def journal_record(
    *,
    action: str,
    actor=None,
    organisation=None,
    obj: models.Model | None = None,
    data: dict | None = None,
) -> JournalEntry:
    """Record one write. Call it inside the same transaction as the write it describes."""
    return JournalEntry.objects.create(
        action=action,
        actor=actor if getattr(actor, "is_authenticated", False) else None,
        organisation=organisation,
        object_type=obj._meta.label_lower if obj is not None else "",
        object_id=str(obj.pk) if obj is not None else "",
        data=data or {},
    )
