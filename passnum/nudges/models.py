"""Nudges: the one reminder sent to a person whose digital pass has not been used some days after the hand-out.

No personal data here: the pass, its booklet, the channel and counts. The unique constraint on the pass makes the
reminder go at most once, even if two daily runs overlap (the second insert waits for the first, then fails)."""

from django.db import models
from django.db.models import Q
from django.utils import timezone


class Nudge(models.Model):
    class Channel(models.TextChoices):
        SMS = "sms", "SMS"
        EMAIL = "email", "courriel"
        BOTH = "both", "SMS et courriel"

    digital_pass = models.ForeignKey(
        "vouchers.DigitalPass", on_delete=models.PROTECT, related_name="nudges", verbose_name="pass numérique"
    )
    # Denormalised from the pass: the distributor's page finds a booklet's reminder without going through passes.
    booklet = models.ForeignKey(
        "vouchers.Booklet", on_delete=models.PROTECT, related_name="nudges", verbose_name="carnet"
    )
    channel = models.CharField("envoyé par", max_length=5, choices=Channel.choices)
    messages = models.PositiveSmallIntegerField("messages envoyés", default=0)
    vouchers = models.PositiveSmallIntegerField("chèques non utilisés", default=0)
    oriented_site = models.ForeignKey(
        "places.Site", null=True, blank=True, on_delete=models.PROTECT, related_name="+", verbose_name="lieu nommé"
    )
    sent_at = models.DateTimeField("envoyé le", default=timezone.now)

    class Meta:
        verbose_name = "relance"
        verbose_name_plural = "relances"
        ordering = ["-sent_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["digital_pass"], name="nudge_once_per_pass"),
            # A pass revoked and sent again (lost phone) reaches the same person: still one reminder per booklet.
            models.UniqueConstraint(fields=["booklet"], name="nudge_once_per_booklet"),
            models.CheckConstraint(condition=Q(channel__in=["sms", "email", "both"]), name="nudge_channel_valid"),
            models.CheckConstraint(condition=Q(messages__gte=1), name="nudge_messages_positive"),
        ]

    def __str__(self):
        return f"relance du pass {self.digital_pass_id} (carnet {self.booklet_id})"
