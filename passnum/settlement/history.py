"""A voucher's whole history: its status log, and its settlement read from the claim lines.

Moves made on vouchers one by one (hand-out, redemption, undo, cancellation, expiry) each write a
`VoucherStatusLog` row. The settlement moves do not: `redeemed → claimed` is the voucher's claim lines (one per
funder, written by `settle` in the same transaction), `claimed → paid` is those lines paid, with the claims'
dates and who marked them paid. Here they are read back as history entries, in time order."""

import datetime as dt
from dataclasses import dataclass

from passnum.settlement.enums import LineStatus
from passnum.settlement.models import ClaimLine
from passnum.vouchers.enums import VoucherStatus
from passnum.vouchers.models import Voucher, VoucherStatusLog

S = VoucherStatus


@dataclass(frozen=True)
class HistoryEntry:
    at: dt.datetime
    from_status: str
    to_status: str
    reason: str
    organisation: str  # who acted, or whose claim it is ("" if unknown)


def voucher_history(voucher: Voucher) -> list[HistoryEntry]:
    entries = [
        HistoryEntry(
            at=log.at,
            from_status=log.from_status,
            to_status=log.to_status,
            reason=log.reason,
            organisation=log.organisation.name if log.organisation else "",
        )
        for log in VoucherStatusLog.objects.filter(voucher=voucher).select_related("organisation")
    ]
    lines = list(
        ClaimLine.objects.filter(voucher=voucher)
        .select_related("claim__run", "claim__funder")
        .order_by("claim__created_at", "claim__reference")
    )
    if lines:
        first = lines[0].claim
        entries.append(_settlement_entry(first.created_at, S.REDEEMED, S.CLAIMED, lines, prefix=f"{first.run} : "))
    if paid := [line for line in lines if line.status == LineStatus.PAID]:
        paid_at = Voucher.objects.values_list("paid_at", flat=True).get(pk=voucher.pk)  # not a stale instance's
        if paid_at:  # co-funded: paid once every funder has paid
            entries.append(_settlement_entry(paid_at, S.CLAIMED, S.PAID, paid))
    return sorted(entries, key=lambda e: e.at)


def _settlement_entry(at, from_status, to_status, lines, *, prefix="") -> HistoryEntry:
    """One entry for the voucher's lines: their claims' references and funders."""
    return HistoryEntry(
        at=at,
        from_status=from_status,
        to_status=to_status,
        reason=prefix + ", ".join(line.claim.reference for line in lines),
        organisation=", ".join(line.claim.funder.name for line in lines),
    )
