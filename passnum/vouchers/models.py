"""Booklets and vouchers. A voucher's status is tied to its timestamps by CHECK constraints, and a voucher has
at most one active redemption (partial unique index): the database, not only the code, keeps the rules."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from passnum.common.models import AppendOnlyModel
from passnum.vouchers.enums import VoucherStatus

S = VoucherStatus


class Booklet(models.Model):
    program = models.ForeignKey("programs.Program", on_delete=models.PROTECT, related_name="booklets")
    number = models.PositiveIntegerField("numéro")
    distributor = models.ForeignKey(
        "accounts.Organisation",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="booklets",
        verbose_name="prescripteur",
    )
    allocated_at = models.DateTimeField(null=True, blank=True)
    handed_out_at = models.DateTimeField(null=True, blank=True)
    issued_at = models.DateTimeField(default=timezone.now)
    beneficiary = models.ForeignKey(
        "vouchers.Beneficiary",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="booklets",
        verbose_name="bénéficiaire",
    )
    oriented_site = models.ForeignKey(
        "places.Site",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name="lieu conseillé",
    )
    # The Idempotency-Key (or the form's hidden token) of the hand-out: a retry returns the first result.
    hand_out_key = models.CharField(max_length=64, blank=True)

    class Meta:
        verbose_name = "carnet"
        ordering = ["program_id", "number"]
        constraints = [
            models.UniqueConstraint(fields=["program", "number"], name="booklet_number_unique"),
            models.CheckConstraint(
                condition=Q(handed_out_at__isnull=True) | Q(distributor__isnull=False),
                name="booklet_handed_out_has_distributor",
            ),
            models.CheckConstraint(
                condition=Q(distributor__isnull=True) | Q(allocated_at__isnull=False),
                name="booklet_allocated_has_date",
            ),
            # One hand-out per key and distributor, even for two concurrent requests on two booklets.
            models.UniqueConstraint(
                fields=["distributor", "hand_out_key"],
                condition=~Q(hand_out_key=""),
                name="booklet_hand_out_key_unique",
            ),
        ]

    def __str__(self):
        return f"{self.program.slug} n° {self.number}"


class Voucher(models.Model):
    """Every lifecycle move rewrites vouchers' status and a timestamp (settlement: a million in one UPDATE). On
    PostgreSQL that stays a HOT update (no index entry written, 9× faster) only while no index of this table uses
    those columns, not even in a condition, and pages have room (fillfactor 50, migration 0007). Hence few
    indexes, none on status; tests/vouchers/test_hot_updates.py fails if one comes back."""

    # No index of its own: the unique (booklet, position) serves every lookup by booklet.
    booklet = models.ForeignKey(Booklet, on_delete=models.PROTECT, related_name="vouchers", db_index=False)
    program = models.ForeignKey("programs.Program", on_delete=models.PROTECT, related_name="vouchers")
    position = models.PositiveSmallIntegerField("rang dans le carnet")
    # Unique through Meta's constraint, not `unique=True`, which adds a second (LIKE) index nothing uses.
    code = models.CharField("code", max_length=13)
    face_value_cents = models.PositiveIntegerField("valeur faciale (centimes)")
    status = models.CharField("statut", max_length=12, choices=VoucherStatus.choices, default=S.ISSUED)
    distributed_at = models.DateTimeField(null=True, blank=True)
    redeemed_at = models.DateTimeField(null=True, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    expired_at = models.DateTimeField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    cancel_reason = models.CharField("motif d’annulation", max_length=200, blank=True)

    class Meta:
        verbose_name = "chèque"
        constraints = [
            models.UniqueConstraint(fields=["booklet", "position"], name="voucher_position_unique"),
            models.UniqueConstraint(fields=["code"], name="voucher_code_unique"),
            models.CheckConstraint(condition=Q(status__in=VoucherStatus.values), name="voucher_status_valid"),
            models.CheckConstraint(condition=Q(face_value_cents__gt=0), name="voucher_face_value_positive"),
            models.CheckConstraint(
                condition=~Q(status__in=[S.DISTRIBUTED, S.REDEEMED, S.CLAIMED, S.PAID])
                | Q(distributed_at__isnull=False),
                name="voucher_distributed_has_date",
            ),
            models.CheckConstraint(
                condition=Q(status__in=[S.REDEEMED, S.CLAIMED, S.PAID], redeemed_at__isnull=False)
                | (~Q(status__in=[S.REDEEMED, S.CLAIMED, S.PAID]) & Q(redeemed_at__isnull=True)),
                name="voucher_redeemed_iff_date",
            ),
            models.CheckConstraint(
                condition=~Q(status__in=[S.CLAIMED, S.PAID]) | Q(claimed_at__isnull=False),
                name="voucher_claimed_has_date",
            ),
            models.CheckConstraint(
                condition=Q(status=S.PAID, paid_at__isnull=False) | (~Q(status=S.PAID) & Q(paid_at__isnull=True)),
                name="voucher_paid_iff_date",
            ),
            models.CheckConstraint(
                condition=Q(status=S.EXPIRED, expired_at__isnull=False)
                | (~Q(status=S.EXPIRED) & Q(expired_at__isnull=True)),
                name="voucher_expired_iff_date",
            ),
            models.CheckConstraint(
                condition=Q(status=S.CANCELLED, cancelled_at__isnull=False) & ~Q(cancel_reason="")
                | (~Q(status=S.CANCELLED) & Q(cancelled_at__isnull=True)),
                name="voucher_cancelled_iff_date_and_reason",
            ),
        ]
        # No index on status, alone, with other columns or as a condition: see the docstring.

    def __str__(self):
        return self.code


class Beneficiary(models.Model):
    """The person a booklet is handed to, with the least data that serves (DESIGN.md: people's data). The
    reference is pseudonymous and random; the first name is kept only with the person's consent; no name, no
    address, no phone. Used for orientation and for counting people reached, never shown outside the distributor."""

    reference = models.CharField("référence", max_length=16, unique=True)
    distributor = models.ForeignKey(
        "accounts.Organisation", on_delete=models.PROTECT, related_name="beneficiaries", verbose_name="prescripteur"
    )
    first_name = models.CharField("prénom", max_length=60, blank=True)
    birth_year = models.PositiveSmallIntegerField("année de naissance", null=True, blank=True)
    commune = models.ForeignKey(
        "geo.Commune", null=True, blank=True, on_delete=models.PROTECT, related_name="+", verbose_name="commune"
    )
    public = models.CharField("public", max_length=40, blank=True)
    needs = models.JSONField("besoins", default=list, blank=True)
    consent_first_name = models.BooleanField("accepte que son prénom soit noté", default=False)
    consent_reminders = models.BooleanField("accepte les rappels", default=False)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = "bénéficiaire"
        constraints = [
            models.CheckConstraint(
                condition=Q(first_name="") | Q(consent_first_name=True), name="beneficiary_first_name_needs_consent"
            ),
            models.CheckConstraint(
                condition=Q(birth_year__isnull=True) | (Q(birth_year__gte=1900) & Q(birth_year__lte=2100)),
                name="beneficiary_birth_year_range",
            ),
        ]

    def __str__(self):
        return self.reference


class VoucherStatusLog(AppendOnlyModel):
    """Every transition made voucher by voucher after issuance: from, to, reason, who, when. The settlement's
    (claimed, paid) are its claim lines: see passnum.settlement.history."""

    voucher = models.ForeignKey(Voucher, on_delete=models.PROTECT, related_name="status_log")
    from_status = models.CharField(max_length=12, choices=VoucherStatus.choices)
    to_status = models.CharField(max_length=12, choices=VoucherStatus.choices)
    reason = models.CharField(max_length=200, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    organisation = models.ForeignKey(
        "accounts.Organisation", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = "changement de statut"
        ordering = ["at", "id"]

    def __str__(self):
        return f"{self.voucher_id}: {self.from_status} → {self.to_status}"


class Receipt(models.Model):
    """One act of redemption at a place: k vouchers of one booklet for one session of one service. Its number is
    the receipt's; undoing it undoes every voucher it took. The idempotency key (API header or the form's hidden
    token) is unique per place, so a retried request finds the first receipt instead of redeeming again."""

    place = models.ForeignKey("accounts.Organisation", on_delete=models.PROTECT, related_name="receipts")
    site = models.ForeignKey("places.Site", null=True, blank=True, on_delete=models.PROTECT, related_name="receipts")
    booklet = models.ForeignKey(Booklet, on_delete=models.PROTECT, related_name="receipts")
    service = models.CharField("service", max_length=40)
    count = models.PositiveSmallIntegerField("chèques")
    amount_cents = models.PositiveIntegerField("montant (centimes)")
    redeemed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    api_key = models.ForeignKey(
        "accounts.ApiKey", null=True, blank=True, on_delete=models.PROTECT, related_name="receipts"
    )
    redeemed_at = models.DateTimeField(default=timezone.now)
    idempotency_key = models.CharField(max_length=64, blank=True)
    undone_at = models.DateTimeField(null=True, blank=True)
    undo_reason = models.CharField("motif d’annulation", max_length=200, blank=True)
    undone_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        verbose_name = "reçu d’encaissement"
        ordering = ["-redeemed_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["place", "idempotency_key"],
                condition=~Q(idempotency_key=""),
                name="receipt_idempotency_key_unique",
            ),
            models.CheckConstraint(condition=Q(count__gte=1), name="receipt_count_positive"),
            models.CheckConstraint(condition=Q(amount_cents__gt=0), name="receipt_amount_positive"),
            models.CheckConstraint(
                condition=Q(undone_at__isnull=True, undo_reason="") | (Q(undone_at__isnull=False) & ~Q(undo_reason="")),
                name="receipt_undone_iff_reason",
            ),
        ]
        indexes = [models.Index(fields=["place", "-redeemed_at"], name="receipt_place_recent_idx")]

    def __str__(self):
        return f"reçu n° {self.pk}"

    @property
    def is_undone(self) -> bool:
        return self.undone_at is not None


class Redemption(models.Model):
    """A voucher used at a place for a service. Undone within a short window by setting `undone_at`; the
    partial unique index lets a voucher have at most one redemption that is not undone."""

    voucher = models.ForeignKey(Voucher, on_delete=models.PROTECT, related_name="redemptions")
    receipt = models.ForeignKey(Receipt, null=True, blank=True, on_delete=models.PROTECT, related_name="redemptions")
    place = models.ForeignKey("accounts.Organisation", on_delete=models.PROTECT, related_name="redemptions")
    service = models.CharField("service", max_length=40)
    amount_cents = models.PositiveIntegerField()
    redeemed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    redeemed_at = models.DateTimeField(default=timezone.now)
    undone_at = models.DateTimeField(null=True, blank=True)
    undo_reason = models.CharField(max_length=200, blank=True)

    class Meta:
        verbose_name = "encaissement"
        constraints = [
            models.UniqueConstraint(
                fields=["voucher"],
                condition=Q(undone_at__isnull=True),
                name="redemption_one_active_per_voucher",
            ),
            # Target of the claim lines' composite foreign key (redemption, voucher): a line's redemption is one
            # of its voucher's.
            models.UniqueConstraint(fields=["id", "voucher"], name="redemption_id_voucher_unique"),
            models.CheckConstraint(condition=Q(amount_cents__gt=0), name="redemption_amount_positive"),
            models.CheckConstraint(
                condition=Q(undone_at__isnull=True) | ~Q(undo_reason=""), name="redemption_undo_has_reason"
            ),
        ]

    def __str__(self):
        return f"{self.voucher_id} @ {self.place_id}"


class DigitalPass(models.Model):
    """A booklet delivered as a link (SMS and/or e-mail): the wallet page at /pass/<token>/. Only the token's
    SHA-256 is stored, and only a masked hint of where it was sent (never the phone number or the address). At
    most one pass per booklet is not revoked (partial unique index); a lost phone means revoke, then send anew."""

    class Channel(models.TextChoices):
        SMS = "sms", "SMS"
        EMAIL = "email", "courriel"
        BOTH = "both", "SMS et courriel"

    booklet = models.ForeignKey(Booklet, on_delete=models.PROTECT, related_name="digital_passes")
    token_hash = models.CharField("empreinte du jeton (SHA-256)", max_length=64, unique=True)
    channel = models.CharField("envoyé par", max_length=5, choices=Channel.choices)
    recipient_hint = models.CharField("destinataire (masqué)", max_length=120)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    organisation = models.ForeignKey(
        "accounts.Organisation", on_delete=models.PROTECT, related_name="+", verbose_name="prescripteur"
    )
    created_at = models.DateTimeField(default=timezone.now)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_reason = models.CharField("motif de révocation", max_length=200, blank=True)
    # Only when the person agreed to reminders: where to reach them (phone and/or address), encrypted with
    # PASSNUM_CONTACT_KEY (vouchers.digital.contact_seal). Erased at revocation, after the last reminder and at
    # the program's expiry. Empty means no reminder.
    reminder_contact = models.TextField("contact pour les rappels (chiffré)", blank=True, default="")

    class Meta:
        verbose_name = "pass numérique"
        verbose_name_plural = "pass numériques"
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["booklet"],
                condition=Q(revoked_at__isnull=True),
                name="digital_pass_one_active_per_booklet",
            ),
            models.CheckConstraint(
                condition=Q(channel__in=["sms", "email", "both"]), name="digital_pass_channel_valid"
            ),
            models.CheckConstraint(
                condition=Q(revoked_at__isnull=True, revoked_reason="")
                | (Q(revoked_at__isnull=False) & ~Q(revoked_reason="")),
                name="digital_pass_revoked_iff_reason",
            ),
        ]

    def __str__(self):
        return f"pass numérique {self.pk} (carnet {self.booklet_id})"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class ExpiryAlert(models.Model):
    """An expiry reminder sent, 30 or 15 days before a program's last day of use (`valid_until`): to a distributor
    still holding booklets of the program, or to the person holding a digital pass. The unique constraints make
    each reminder go at most once per (distributor or pass, program, 30|15), even if two daily runs overlap. No
    personal data here: counts and the channel only."""

    DAYS_BEFORE = (30, 15)

    program = models.ForeignKey("programs.Program", on_delete=models.PROTECT, related_name="expiry_alerts")
    days_before = models.PositiveSmallIntegerField("jours avant la fin de validité")
    distributor = models.ForeignKey(
        "accounts.Organisation", null=True, blank=True, on_delete=models.PROTECT, related_name="expiry_alerts"
    )
    digital_pass = models.ForeignKey(
        DigitalPass, null=True, blank=True, on_delete=models.PROTECT, related_name="expiry_alerts"
    )
    channel = models.CharField("envoyé par", max_length=5, blank=True)
    messages = models.PositiveIntegerField("messages envoyés", default=0)
    booklets = models.PositiveIntegerField("carnets concernés", default=0)
    vouchers = models.PositiveIntegerField("chèques concernés", default=0)
    sent_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = "rappel d’expiration"
        verbose_name_plural = "rappels d’expiration"
        constraints = [
            models.UniqueConstraint(
                fields=["program", "distributor", "days_before"],
                condition=Q(distributor__isnull=False),
                name="expiry_alert_once_per_distributor",
            ),
            models.UniqueConstraint(
                fields=["program", "digital_pass", "days_before"],
                condition=Q(digital_pass__isnull=False),
                name="expiry_alert_once_per_pass",
            ),
            models.CheckConstraint(
                condition=Q(distributor__isnull=False, digital_pass__isnull=True)
                | Q(distributor__isnull=True, digital_pass__isnull=False),
                name="expiry_alert_one_target",
            ),
            models.CheckConstraint(condition=Q(days_before__in=[30, 15]), name="expiry_alert_days_valid"),
        ]

    def __str__(self):
        target = f"prescripteur {self.distributor_id}" if self.distributor_id else f"pass {self.digital_pass_id}"
        return f"J-{self.days_before} {target} (dispositif {self.program_id})"
