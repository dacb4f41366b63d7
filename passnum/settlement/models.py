"""Double-entry ledger. Amounts are signed integer cents.

A LedgerTransaction groups entries that sum to zero. Rows are append-only (the model refuses updates and the
database has triggers refusing UPDATE/DELETE). Transactions are hash-chained in `seq` order: each hash covers
the transaction, its entries and the previous hash, so any later edit is detectable by `passnum ledger verify`.
The chain head row is locked for the short end of every posting transaction, which serialises postings."""

from django.db import models
from django.db.models import Q
from django.utils import timezone

from passnum.common.models import AppendOnlyModel
from passnum.settlement.enums import AccountKind, TransactionKind

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
                    Q(kind__in=["commitment", "budget", "outstanding", "released"], program__isnull=False)
                    & Q(place__isnull=True)
                )
                | Q(kind="payable", program__isnull=True, place__isnull=False)
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
