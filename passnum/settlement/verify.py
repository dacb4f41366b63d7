"""`passnum ledger verify`: the ledger balances, its hash chain is intact, and it agrees with the domain.

Returns readable problems; an empty list means everything holds."""

from collections import defaultdict

from django.db.models import Count, Q, Sum

from passnum.common.money import format_euros
from passnum.programs.models import ProgramFunder
from passnum.programs.selectors import program_shares
from passnum.settlement.enums import AccountKind, IncidentStatus, LineStatus
from passnum.settlement.ledger import (
    AccountRef,
    account_balances,
    contested_account,
    paid_account,
    payable_account,
    program_account,
    split_by_shares,
    transaction_hash,
)
from passnum.settlement.models import (
    GENESIS_HASH,
    Claim,
    ClaimLine,
    LedgerChainHead,
    LedgerEntry,
    LedgerTransaction,
)
from passnum.vouchers.enums import VoucherStatus
from passnum.vouchers.models import Redemption, Voucher

S = VoucherStatus


def verify_transactions() -> list[str]:
    """Every transaction balances to zero and the hash chain is unbroken."""
    problems: list[str] = []
    prev_hash, expected_seq = GENESIS_HASH, 1
    lines_by_tx: dict[int, list[tuple[str, int]]] = defaultdict(list)
    for tx_id, key, amount in LedgerEntry.objects.values_list("transaction_id", "account__key", "amount_cents"):
        lines_by_tx[tx_id].append((key, amount))
    for tx in LedgerTransaction.objects.order_by("seq").iterator(chunk_size=5000):
        lines = lines_by_tx.get(tx.id, [])
        total = sum(amount for _, amount in lines)
        if total != 0:
            problems.append(f"Écriture n° {tx.seq} ({tx.kind}) déséquilibrée : somme {format_euros(total)}.")
        if not lines:
            problems.append(f"Écriture n° {tx.seq} ({tx.kind}) sans ligne.")
        if tx.seq != expected_seq:
            problems.append(f"Chaîne : écriture n° {expected_seq} manquante (trouvé n° {tx.seq}).")
        if tx.prev_hash != prev_hash:
            problems.append(f"Chaîne rompue à l’écriture n° {tx.seq} : l’empreinte précédente ne correspond pas.")
        recomputed = transaction_hash(
            seq=tx.seq,
            kind=tx.kind,
            created_at=tx.created_at,
            object_type=tx.object_type,
            object_id=tx.object_id,
            prev_hash=tx.prev_hash,
            lines=lines,
        )
        if recomputed != tx.hash:
            problems.append(f"Écriture n° {tx.seq} ({tx.kind}) modifiée : son empreinte ne correspond plus.")
        prev_hash, expected_seq = tx.hash, tx.seq + 1
    head = LedgerChainHead.objects.filter(pk=1).first()
    if head is not None and (head.last_seq != expected_seq - 1 or head.last_hash != prev_hash):
        problems.append("Chaîne : la tête de chaîne ne correspond pas à la dernière écriture.")
    return problems


def expected_balances() -> dict[str, int]:
    """Rebuild every account's balance from the domain tables alone."""
    expected: dict[str, int] = defaultdict(int)

    def add(ref: AccountRef, amount: int) -> None:
        expected[ref.key] += amount

    for pf in ProgramFunder.objects.all():
        add(
            program_account(AccountKind.COMMITMENT, program_id=pf.program_id, funder_id=pf.funder_id),
            -pf.budget_cents,
        )
        add(
            program_account(AccountKind.BUDGET, program_id=pf.program_id, funder_id=pf.funder_id),
            pf.budget_cents - pf.committed_cents,
        )
    in_stock = {S.ISSUED: AccountKind.OUTSTANDING, S.DISTRIBUTED: AccountKind.HANDED_OUT}
    groups = (
        Voucher.objects.filter(status__in=list(in_stock))
        .values("program_id", "face_value_cents", "status")
        .annotate(n=Count("id"))
    )
    for g in groups:
        for fid, part in split_by_shares(g["face_value_cents"], shares_of(g["program_id"])):
            add(program_account(in_stock[g["status"]], program_id=g["program_id"], funder_id=fid), part * g["n"])
    # Redeemed, not yet claimed: owed to the place, each funder its share.
    payable = (
        Redemption.objects.filter(undone_at__isnull=True, voucher__status=S.REDEEMED)
        .values("place_id", "voucher__program_id", "voucher__face_value_cents")
        .annotate(n=Count("id"))
    )
    for g in payable:
        for fid, part in split_by_shares(g["voucher__face_value_cents"], shares_of(g["voucher__program_id"])):
            add(payable_account(place_id=g["place_id"], funder_id=fid), part * g["n"])
    # Claimed: each funder's line says where its share is.
    lines = ClaimLine.objects.values("claim__place_id", "funder_id", "status", "incident__status").annotate(
        total=Sum("amount_cents")
    )
    for g in lines:
        place_id, fid, total = g["claim__place_id"], g["funder_id"], g["total"]
        if g["status"] == LineStatus.CLAIMED:
            add(payable_account(place_id=place_id, funder_id=fid), total)
        elif g["status"] == LineStatus.PAID:
            add(paid_account(funder_id=fid), total)
        elif g["incident__status"] == IncidentStatus.OPEN:
            add(contested_account(place_id=place_id, funder_id=fid), total)
        # written off: back in the budget, counted through committed_cents above
    return {key: amount for key, amount in expected.items() if amount != 0}


def verify_domain() -> list[str]:
    problems: list[str] = []
    actual = {k: v for k, v in account_balances().items() if v != 0}
    expected = expected_balances()
    for key in sorted(set(actual) | set(expected)):
        a, e = actual.get(key, 0), expected.get(key, 0)
        if a != e:
            problems.append(
                f"Compte {key} : le grand livre dit {format_euros(a)}, les données disent {format_euros(e)} "
                f"(écart {format_euros(a - e)})."
            )
    written_off = defaultdict(int)
    for g in (
        ClaimLine.objects.filter(incident__status=IncidentStatus.WRITTEN_OFF)
        .values("voucher__program_id", "funder_id")
        .annotate(total=Sum("amount_cents"))
    ):
        written_off[(g["voucher__program_id"], g["funder_id"])] += g["total"]
    for pf in ProgramFunder.objects.all():
        expected_committed = -written_off[(pf.program_id, pf.funder_id)]
        for g in (
            Voucher.objects.filter(program_id=pf.program_id)
            .exclude(status__in=[S.CANCELLED, S.EXPIRED])
            .values("face_value_cents")
            .annotate(n=Count("id"))
        ):
            part = dict(split_by_shares(g["face_value_cents"], shares_of(pf.program_id))).get(pf.funder_id, 0)
            expected_committed += part * g["n"]
        if expected_committed != pf.committed_cents:
            problems.append(
                f"Dispositif {pf.program_id}, financeur {pf.funder_id} : engagé {format_euros(pf.committed_cents)}, "
                f"attendu {format_euros(expected_committed)} (chèques ni annulés ni expirés, moins les rejets "
                f"confirmés)."
            )
    totals = {
        g["claim_id"]: g
        for g in ClaimLine.objects.values("claim_id").annotate(
            n=Count("id"),
            total=Sum("amount_cents"),
            rejected=Sum("amount_cents", filter=Q(status=LineStatus.REJECTED)),
        )
    }
    for claim_id, reference, claimed, rejected, count in Claim.objects.values_list(
        "id", "reference", "claimed_cents", "rejected_cents", "lines_count"
    ).iterator(chunk_size=5000):
        g = totals.get(claim_id, {"n": 0, "total": 0, "rejected": 0})
        if (g["n"], g["total"] or 0, g["rejected"] or 0) != (count, claimed, rejected):
            problems.append(f"Demande {reference} : ses totaux ne correspondent pas à ses lignes.")
    total_bps = defaultdict(int)
    for pf in ProgramFunder.objects.all():
        total_bps[pf.program_id] += pf.share_bps
    for program_id, bps in sorted(total_bps.items()):
        if bps != 10_000:
            problems.append(f"Dispositif {program_id} : les parts font {bps / 100:.2f} % au lieu de 100 %.")
    return problems


def shares_of(program_id: int) -> list[tuple[int, int]]:
    return program_shares(program_id=program_id)


def ledger_verify() -> list[str]:
    """Reads everything from one snapshot, so postings committed meanwhile cannot look like disagreements."""
    from django.db import connection, transaction

    outermost = not connection.in_atomic_block
    with transaction.atomic():
        if outermost and connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        return verify_transactions() + verify_domain()
