"""Posting to the double-entry ledger. Every service that moves value calls `ledger_post` inside its own
database transaction, so the ledger and the domain tables commit or roll back together."""

import datetime as dt
import hashlib
from collections import defaultdict
from dataclasses import dataclass

from django.db import IntegrityError, connection, models, transaction
from django.utils import timezone

from passnum.common.money import split_largest_remainder
from passnum.settlement.enums import AccountKind, TransactionKind
from passnum.settlement.models import (
    GENESIS_HASH,
    LedgerAccount,
    LedgerChainHead,
    LedgerEntry,
    LedgerTransaction,
)


class UnbalancedTransaction(ValueError):
    """A programming error: postings must sum to zero. Never shown to a person."""


@dataclass(frozen=True, order=True)
class AccountRef:
    kind: str
    funder_id: int
    program_id: int | None = None
    place_id: int | None = None

    @property
    def key(self) -> str:
        if self.kind in (AccountKind.PAYABLE, AccountKind.CONTESTED):
            return f"{self.kind}:l{self.place_id}:f{self.funder_id}"
        if self.kind == AccountKind.PAID:
            return f"paid:f{self.funder_id}"
        return f"{self.kind}:p{self.program_id}:f{self.funder_id}"


def program_account(kind: str, *, program_id: int, funder_id: int) -> AccountRef:
    return AccountRef(kind=kind, funder_id=funder_id, program_id=program_id)


def payable_account(*, place_id: int, funder_id: int) -> AccountRef:
    return AccountRef(kind=AccountKind.PAYABLE, funder_id=funder_id, place_id=place_id)


def contested_account(*, place_id: int, funder_id: int) -> AccountRef:
    return AccountRef(kind=AccountKind.CONTESTED, funder_id=funder_id, place_id=place_id)


def paid_account(*, funder_id: int) -> AccountRef:
    return AccountRef(kind=AccountKind.PAID, funder_id=funder_id)


def split_by_shares(amount_cents: int, shares: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """[(funder_id, share_bps), …] in a fixed order → [(funder_id, part_cents), …] summing to amount."""
    parts = split_largest_remainder(amount_cents, [bps for _, bps in shares])
    return [(funder_id, part) for (funder_id, _), part in zip(shares, parts, strict=True)]


def _accounts_for(refs: list[AccountRef]) -> dict[str, LedgerAccount]:
    keys = [ref.key for ref in refs]
    found = {a.key: a for a in LedgerAccount.objects.filter(key__in=keys)}
    missing = [ref for ref in refs if ref.key not in found]
    if missing:
        LedgerAccount.objects.bulk_create(
            [
                LedgerAccount(
                    key=ref.key,
                    kind=ref.kind,
                    funder_id=ref.funder_id,
                    program_id=ref.program_id,
                    place_id=ref.place_id,
                )
                for ref in missing
            ],
            ignore_conflicts=True,  # a concurrent poster may have created the same account
        )
        found.update({a.key: a for a in LedgerAccount.objects.filter(key__in=[r.key for r in missing])})
    return found


def _lock_chain_head() -> LedgerChainHead:
    try:
        return LedgerChainHead.objects.select_for_update(of=("self",)).get(pk=1)
    except LedgerChainHead.DoesNotExist:
        try:
            with transaction.atomic():
                LedgerChainHead.objects.create(pk=1, last_seq=0, last_hash=GENESIS_HASH)
        except IntegrityError:
            pass  # created concurrently
        return LedgerChainHead.objects.select_for_update(of=("self",)).get(pk=1)


def transaction_hash(
    *,
    seq: int,
    kind: str,
    created_at,
    object_type: str,
    object_id: str,
    prev_hash: str,
    lines: list[tuple[str, int]],
) -> str:
    """SHA-256 over a canonical text of the transaction. Documented in docs/architecture.md so that anyone
    can recompute it from an export without this code."""
    body = "\n".join(f"{key}={amount}" for key, amount in sorted(lines))
    canonical = "|".join([str(seq), kind, created_at.astimezone(dt.UTC).isoformat(), object_type, object_id, prev_hash])
    return hashlib.sha256(f"{canonical}\n{body}".encode()).hexdigest()


def ledger_post(
    *,
    kind: TransactionKind | str,
    lines: list[tuple[AccountRef, int]],
    memo: str = "",
    obj: models.Model | None = None,
) -> LedgerTransaction | None:
    """Write one balanced transaction. Must run inside the caller's atomic block."""
    if not connection.in_atomic_block:
        raise RuntimeError("ledger_post must run inside transaction.atomic()")
    merged: dict[AccountRef, int] = defaultdict(int)
    for ref, amount in lines:
        merged[ref] += int(amount)
    merged = {ref: amount for ref, amount in merged.items() if amount != 0}
    if sum(merged.values()) != 0:
        raise UnbalancedTransaction(f"transaction {kind} does not balance: {sum(merged.values())}")
    if not merged:
        return None
    # Head first: account creation then happens inside the serialised section, so two posters can never
    # wait on each other's uncommitted account rows while one holds the head.
    head = _lock_chain_head()
    accounts = _accounts_for(sorted(merged))
    seq = head.last_seq + 1
    # Microseconds are kept by both engines; truncate nothing so the hash recomputes exactly.
    created_at = timezone.now()
    object_type = obj._meta.label_lower if obj is not None else ""
    object_id = str(obj.pk) if obj is not None else ""
    digest = transaction_hash(
        seq=seq,
        kind=str(kind),
        created_at=created_at,
        object_type=object_type,
        object_id=object_id,
        prev_hash=head.last_hash,
        lines=[(ref.key, amount) for ref, amount in merged.items()],
    )
    tx = LedgerTransaction.objects.create(
        seq=seq,
        kind=str(kind),
        created_at=created_at,
        memo=memo[:200],
        object_type=object_type,
        object_id=object_id,
        prev_hash=head.last_hash,
        hash=digest,
    )
    LedgerEntry.objects.bulk_create(
        [
            LedgerEntry(transaction=tx, account=accounts[ref.key], amount_cents=amount)
            for ref, amount in sorted(merged.items())
        ]
    )
    LedgerChainHead.objects.filter(pk=1).update(last_seq=seq, last_hash=digest)
    return tx


def account_balances() -> dict[str, int]:
    """{account key: balance} over the whole ledger."""
    rows = LedgerEntry.objects.values("account__key").annotate(total=models.Sum("amount_cents"))
    return {row["account__key"]: row["total"] for row in rows}
