"""Double-entry ledger. Amounts are signed integer cents.

A LedgerTransaction groups entries that sum to zero. Rows are append-only (the model refuses updates and the
database has triggers refusing UPDATE/DELETE). Transactions are hash-chained in `seq` order: each hash covers
the transaction, its entries and the previous hash, so any later edit is detectable by `passnum ledger verify`.
The chain head row is locked for the short end of every posting transaction, which serialises postings."""

from django.db import models
from django.db.models import F, Q
from django.utils import timezone

from passnum.common.constraints import CompositeForeignKey
from passnum.common.models import AppendOnlyModel
from passnum.settlement.enums import (
    AccountKind,
    ClaimStatus,
    IncidentStatus,
    LineStatus,
    PaymentFileStatus,
    TransactionKind,
)

GENESIS_HASH = "0" * 64


class LedgerAccount(models.Model):
    kind = models.CharField(max_length=20, choices=AccountKind.choices)
    program = models.ForeignKey("programs.Program", null=True, blank=True, on_delete=models.PROTECT)
    funder = models.ForeignKey(
        "accounts.Organisation", on_delete=models.PROTECT, related_name="ledger_accounts_as_funder"
    )
    place = models.ForeignKey(
        "accounts.Organisation",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="ledger_accounts_as_place",
    )
    # Canonical identity, e.g. "budget:p12:f3" — unique even where nullable columns would not be.
    key = models.CharField(max_length=80, unique=True)

    class Meta:
        verbose_name = "compte du grand livre"
        constraints = [
            models.CheckConstraint(condition=Q(kind__in=AccountKind.values), name="ledger_account_kind"),
            models.CheckConstraint(
                condition=(
                    Q(kind__in=["commitment", "budget", "outstanding", "handed_out", "released"], program__isnull=False)
                    & Q(place__isnull=True)
                )
                | Q(kind__in=["payable", "contested"], program__isnull=True, place__isnull=False)
                | Q(kind="paid", program__isnull=True, place__isnull=True),
                name="ledger_account_shape",
            ),
        ]

    def __str__(self):
        return self.key


class LedgerChainHead(models.Model):
    """Single row (id=1): the last sealed transaction. Locked while a transaction is posted."""

    last_seq = models.BigIntegerField(default=0)
    last_hash = models.CharField(max_length=64, default=GENESIS_HASH)

    def __str__(self):
        return f"#{self.last_seq} {self.last_hash[:12]}"


class LedgerTransaction(AppendOnlyModel):
    seq = models.BigIntegerField(unique=True)
    kind = models.CharField(max_length=20, choices=TransactionKind.choices)
    created_at = models.DateTimeField(default=timezone.now)
    memo = models.CharField(max_length=200, blank=True)
    object_type = models.CharField(max_length=60, blank=True)
    object_id = models.CharField(max_length=64, blank=True)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)

    class Meta:
        verbose_name = "écriture du grand livre"
        ordering = ["seq"]
        constraints = [
            models.CheckConstraint(condition=Q(kind__in=TransactionKind.values), name="ledger_tx_kind"),
            models.CheckConstraint(condition=Q(seq__gte=1), name="ledger_tx_seq_positive"),
        ]

    def __str__(self):
        return f"#{self.seq} {self.kind}"


class LedgerEntry(AppendOnlyModel):
    transaction = models.ForeignKey(LedgerTransaction, on_delete=models.PROTECT, related_name="entries")
    account = models.ForeignKey(LedgerAccount, on_delete=models.PROTECT, related_name="entries")
    amount_cents = models.BigIntegerField()

    class Meta:
        verbose_name = "ligne d’écriture"
        constraints = [
            models.CheckConstraint(condition=~Q(amount_cents=0), name="ledger_entry_nonzero"),
        ]

    def __str__(self):
        return f"{self.account_id}: {self.amount_cents}"


# --- settlement -----------------------------------------------------------------------------------------


class BankAccount(models.Model):
    """Where a place is paid, or which account a funder pays from (SEPA debtor). One per organisation."""

    organisation = models.OneToOneField("accounts.Organisation", on_delete=models.PROTECT, related_name="bank_account")
    holder_name = models.CharField("titulaire du compte", max_length=70)
    iban = models.CharField("IBAN", max_length=34)
    bic = models.CharField("BIC", max_length=11)
    updated_at = models.DateTimeField(default=timezone.now)
    updated_by = models.ForeignKey("accounts.User", null=True, blank=True, on_delete=models.PROTECT, related_name="+")

    class Meta:
        verbose_name = "compte bancaire"

    def __str__(self):
        return f"{self.holder_name} {self.iban[:4]}…{self.iban[-4:]}"


class SettlementRun(models.Model):
    """A settlement batch: every redemption before `cutoff` (00:00, Europe/Paris) not yet claimed."""

    cutoff = models.DateField("date d’arrêté", unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = "arrêté de règlement"
        ordering = ["-cutoff"]

    def __str__(self):
        return f"Arrêté du {self.cutoff:%d/%m/%Y}"


class ClaimSequence(models.Model):
    """Gapless numbering: one row per (series, year), locked while a number is taken."""

    series = models.CharField(max_length=20)
    year = models.PositiveSmallIntegerField()
    last_number = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["series", "year"], name="claim_sequence_unique")]

    def __str__(self):
        return f"{self.series}-{self.year}: {self.last_number}"


class PaymentFile(models.Model):
    """A SEPA credit-transfer message for one funder and one settlement run, kept byte for byte."""

    run = models.ForeignKey(SettlementRun, on_delete=models.PROTECT, related_name="payment_files")
    funder = models.ForeignKey("accounts.Organisation", on_delete=models.PROTECT, related_name="payment_files")
    message_id = models.CharField(max_length=35, unique=True)
    version = models.CharField(max_length=20, default="pain.001.001.03")
    status = models.CharField(max_length=12, choices=PaymentFileStatus.choices, default=PaymentFileStatus.READY)
    transfers = models.PositiveIntegerField()
    total_cents = models.BigIntegerField()
    sha256 = models.CharField(max_length=64)
    content = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey("accounts.User", null=True, blank=True, on_delete=models.PROTECT, related_name="+")

    class Meta:
        verbose_name = "fichier de virements"
        ordering = ["-created_at"]

    def __str__(self):
        return self.message_id


class Claim(models.Model):
    """What one funder owes one place for one settlement run: one line per voucher (the funder's share)."""

    run = models.ForeignKey(SettlementRun, on_delete=models.PROTECT, related_name="claims")
    place = models.ForeignKey("accounts.Organisation", on_delete=models.PROTECT, related_name="claims_as_place")
    funder = models.ForeignKey("accounts.Organisation", on_delete=models.PROTECT, related_name="claims_as_funder")
    series = models.CharField(max_length=20)
    year = models.PositiveSmallIntegerField()
    number = models.PositiveIntegerField()
    reference = models.CharField("numéro", max_length=40, unique=True)
    status = models.CharField("statut", max_length=12, choices=ClaimStatus.choices, default=ClaimStatus.SUBMITTED)
    lines_count = models.PositiveIntegerField(default=0)
    claimed_cents = models.BigIntegerField("montant demandé (centimes)", default=0)
    rejected_cents = models.BigIntegerField("montant rejeté (centimes)", default=0)
    period_start = models.DateTimeField(null=True, blank=True)
    period_end = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    approved_at = models.DateTimeField(null=True, blank=True)
    approved_by = models.ForeignKey("accounts.User", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    payment_file = models.ForeignKey(
        PaymentFile, null=True, blank=True, on_delete=models.PROTECT, related_name="claims"
    )
    paid_at = models.DateTimeField(null=True, blank=True)
    paid_by = models.ForeignKey("accounts.User", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    paid_reference = models.CharField("référence bancaire", max_length=70, blank=True)

    class Meta:
        verbose_name = "demande de remboursement"
        verbose_name_plural = "demandes de remboursement"
        ordering = ["-year", "series", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["series", "year", "number"], name="claim_number_unique"),
            models.UniqueConstraint(fields=["run", "place", "funder"], name="claim_one_per_run_place_funder"),
            # Target of the claim lines' (claim, funder) key: a line's funder is its claim's.
            models.UniqueConstraint(fields=["id", "funder"], name="claim_id_funder_unique"),
            models.CheckConstraint(condition=Q(status__in=ClaimStatus.values), name="claim_status_valid"),
            models.CheckConstraint(
                condition=Q(rejected_cents__gte=0, claimed_cents__gte=F("rejected_cents")), name="claim_amounts"
            ),
            models.CheckConstraint(
                condition=Q(status="paid", paid_at__isnull=False) | (~Q(status="paid") & Q(paid_at__isnull=True)),
                name="claim_paid_iff_date",
            ),
        ]
        indexes = [
            models.Index(fields=["funder", "status"], name="claim_funder_status_idx"),
            models.Index(fields=["place", "-created_at"], name="claim_place_recent_idx"),
        ]

    def __str__(self):
        return self.reference

    @property
    def payable_cents(self) -> int:
        return self.claimed_cents - self.rejected_cents


class ClaimLine(models.Model):
    """One voucher in one funder's claim: that funder's share of its value. A voucher is claimed at most once
    per funder, which the database enforces."""

    # A settlement date writes a million lines, and the database checks every foreign key of every line at commit
    # (about 3 µs each). So two composite keys (Meta) check what five single ones did, and more: (claim, funder) is a
    # claim of that funder, (redemption, voucher) a redemption of that voucher, which makes the funder and the
    # voucher exist. The line's program is its voucher's (no copy to disagree). Indexes: the lines are read by
    # claim, and by voucher through the unique (voucher, funder); nothing looks them up by funder or redemption.
    claim = models.ForeignKey(Claim, on_delete=models.PROTECT, related_name="lines", db_constraint=False)
    funder = models.ForeignKey(
        "accounts.Organisation", on_delete=models.PROTECT, related_name="+", db_index=False, db_constraint=False
    )
    voucher = models.ForeignKey(
        "vouchers.Voucher", on_delete=models.PROTECT, related_name="claim_lines", db_index=False, db_constraint=False
    )
    redemption = models.ForeignKey(
        "vouchers.Redemption",
        on_delete=models.PROTECT,
        related_name="claim_lines",
        db_index=False,
        db_constraint=False,
    )
    service = models.CharField(max_length=40)
    redeemed_at = models.DateTimeField()
    amount_cents = models.PositiveIntegerField()
    status = models.CharField(max_length=10, choices=LineStatus.choices, default=LineStatus.CLAIMED)

    class Meta:
        verbose_name = "ligne de demande"
        constraints = [
            models.UniqueConstraint(fields=["voucher", "funder"], name="claim_line_once_per_funder"),
            CompositeForeignKey(
                fields=["claim", "funder"],
                to="settlement.Claim",
                to_fields=["id", "funder"],
                name="claim_line_claim_fk",
            ),
            CompositeForeignKey(
                fields=["redemption", "voucher"],
                to="vouchers.Redemption",
                to_fields=["id", "voucher"],
                name="claim_line_redemption_fk",
            ),
            models.CheckConstraint(condition=Q(status__in=LineStatus.values), name="claim_line_status_valid"),
        ]

    def __str__(self):
        return f"{self.claim_id}/{self.voucher_id}"


class FinanceIncident(models.Model):
    """A funder rejected a claim line. Its value left the place's payable account for `contested` until an
    operator or the funder closes the incident: reinstated (payable again, paid in a later claim) or written
    off (value back to the funder's budget)."""

    line = models.OneToOneField(ClaimLine, on_delete=models.PROTECT, related_name="incident")
    claim = models.ForeignKey(Claim, on_delete=models.PROTECT, related_name="incidents")
    reason = models.CharField("motif", max_length=500)
    status = models.CharField(max_length=12, choices=IncidentStatus.choices, default=IncidentStatus.OPEN)
    opened_at = models.DateTimeField(default=timezone.now)
    opened_by = models.ForeignKey("accounts.User", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    closed_at = models.DateTimeField(null=True, blank=True)
    closed_by = models.ForeignKey("accounts.User", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    resolution = models.CharField("conclusion", max_length=500, blank=True)

    class Meta:
        verbose_name = "incident financier"
        ordering = ["-opened_at"]

    def __str__(self):
        return f"Incident {self.pk}"
