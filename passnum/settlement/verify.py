"""`passnum ledger verify`: the ledger balances, its hash chain is intact, and it agrees with the domain.

Returns readable problems; an empty list means everything holds."""

from collections import defaultdict

from django.db.models import Count, Sum

from passnum.common.money import format_euros
from passnum.programs.models import ProgramFunder
from passnum.programs.selectors import program_shares
from passnum.settlement.enums import AccountKind
from passnum.settlement.ledger import (
    AccountRef,
    account_balances,
    paid_account,
    payable_account,
    program_account,
    split_by_shares,
    transaction_hash,
)
from passnum.settlement.models import GENESIS_HASH, LedgerChainHead, LedgerEntry, LedgerTransaction
from passnum.vouchers.enums import OUTSTANDING_STATUSES, PAYABLE_STATUSES, VoucherStatus
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

    shares_cache: dict[int, list[tuple[int, int]]] = {}

    def shares(program_id: int) -> list[tuple[int, int]]:
        if program_id not in shares_cache:
            shares_cache[program_id] = program_shares(program_id=program_id)
        return shares_cache[program_id]

    for pf in ProgramFunder.objects.all():
        add(
            program_account(AccountKind.COMMITMENT, program_id=pf.program_id, funder_id=pf.funder_id),
            -pf.budget_cents,
        )
        add(
            program_account(AccountKind.BUDGET, program_id=pf.program_id, funder_id=pf.funder_id),
            pf.budget_cents - pf.committed_cents,
        )
    groups = Voucher.objects.values("program_id", "face_value_cents", "status").annotate(n=Count("id"))
    for g in groups:
        program_id, value, status, n = g["program_id"], g["face_value_cents"], g["status"], g["n"]
        for fid, part in split_by_shares(value, shares(program_id)):
            if status in OUTSTANDING_STATUSES:
                add(program_account(AccountKind.OUTSTANDING, program_id=program_id, funder_id=fid), part * n)
            elif status == S.EXPIRED:
                add(program_account(AccountKind.RELEASED, program_id=program_id, funder_id=fid), part * n)
            elif status == S.PAID:
                add(paid_account(funder_id=fid), part * n)
    payable = (
        Redemption.objects.filter(undone_at__isnull=True, voucher__status__in=PAYABLE_STATUSES)
        .values("place_id", "voucher__program_id", "voucher__face_value_cents")
        .annotate(n=Count("id"))
    )
    for g in payable:
        for fid, part in split_by_shares(g["voucher__face_value_cents"], shares(g["voucher__program_id"])):
            add(payable_account(place_id=g["place_id"], funder_id=fid), part * g["n"])
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
    committed = ProgramFunder.objects.aggregate(total=Sum("committed_cents"))["total"] or 0
    if committed < 0:
        problems.append("Montant engagé négatif.")
    for pf in ProgramFunder.objects.all():
        expected_committed = 0
        for g in (
            Voucher.objects.filter(program_id=pf.program_id)
            .exclude(status=S.CANCELLED)
            .values("face_value_cents")
            .annotate(n=Count("id"))
        ):
            part = dict(split_by_shares(g["face_value_cents"], shares_of(pf.program_id)))[pf.funder_id]
            expected_committed += part * g["n"]
        if expected_committed != pf.committed_cents:
            problems.append(
                f"Dispositif {pf.program_id}, financeur {pf.funder_id} : engagé {format_euros(pf.committed_cents)}, "
                f"chèques non annulés {format_euros(expected_committed)}."
            )
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
