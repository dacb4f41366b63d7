"""The voucher lifecycle (DESIGN.md §3). Each transition: lock → re-read → re-check → write the status, its
log, the ledger and the journal in one database transaction."""

from collections import Counter, defaultdict

from django.db import transaction
from django.db.models import F, QuerySet
from django.utils import timezone

from passnum.accounts.enums import OrganisationKind
from passnum.common.errors import DomainError, InvalidTransition
from passnum.common.money import format_euros
from passnum.journal.services import journal_record
from passnum.programs.models import Program, ProgramFunder
from passnum.programs.selectors import program_shares
from passnum.settlement.enums import AccountKind, TransactionKind
from passnum.settlement.ledger import (
    ledger_post,
    program_account,
    split_by_shares,
)
from passnum.vouchers import codes
from passnum.vouchers.bulk import insert_booklets, insert_vouchers
from passnum.vouchers.enums import TRANSITIONS, VoucherStatus
from passnum.vouchers.models import Booklet, Redemption, Voucher, VoucherStatusLog

S = VoucherStatus
MAX_BOOKLETS_PER_CALL = 100_000


def _check_transition(voucher: Voucher, to_status: str) -> None:
    if to_status not in TRANSITIONS[voucher.status]:
        raise InvalidTransition(
            f"Le chèque {codes.display(voucher.code)} est « {voucher.get_status_display()} » : "
            f"il ne peut pas passer à « {S(to_status).label} ».",
            code=f"voucher_{voucher.status}",
        )


def _log(vouchers, to_status, *, actor, organisation, reason="", from_status=None):
    now = timezone.now()
    VoucherStatusLog.objects.bulk_create(
        [
            VoucherStatusLog(
                voucher=v,
                from_status=from_status or v.status,
                to_status=to_status,
                reason=reason,
                actor=actor if getattr(actor, "is_authenticated", False) else None,
                organisation=organisation,
                at=now,
            )
            for v in vouchers
        ]
    )


def _per_funder(program_id: int, amount_cents: int, count: int = 1) -> list[tuple[int, int]]:
    """Each funder's part of `count` vouchers worth `amount_cents` each (split per voucher, then summed)."""
    return [(fid, part * count) for fid, part in split_by_shares(amount_cents, program_shares(program_id=program_id))]


# --- issuance -------------------------------------------------------------------------------------------


def booklets_issue(
    *, program: Program, count: int, actor=None, organisation=None, on_progress=None
) -> QuerySet[Booklet]:
    """Issue `count` booklets, returned lazily by number. Each co-funder's budget is consumed by its share;
    refused if any would go over. The ProgramFunder rows are locked, and their CHECK (committed ≤ budget) is the
    database's last barrier. Up to a million vouchers in one transaction (COPY on PostgreSQL)."""
    if not 1 <= count <= MAX_BOOKLETS_PER_CALL:
        raise DomainError(
            f"Le nombre de carnets est compris entre 1 et {MAX_BOOKLETS_PER_CALL}.",
            code="invalid_booklet_count",
        )
    with transaction.atomic():
        program = Program.objects.select_for_update(of=("self",)).get(pk=program.pk)
        funders = list(ProgramFunder.objects.select_for_update(of=("self",)).filter(program=program).order_by("id"))
        per_voucher = dict(split_by_shares(program.face_value_cents, [(f.funder_id, f.share_bps) for f in funders]))
        n_vouchers = count * program.vouchers_per_booklet
        for f in funders:
            needed = per_voucher[f.funder_id] * n_vouchers
            if needed > f.available_cents:
                raise DomainError(
                    f"Budget insuffisant pour {f.funder} : {format_euros(needed)} demandés, "
                    f"{format_euros(f.available_cents)} disponibles.",
                    code="budget_exceeded",
                )
        for f in funders:
            ProgramFunder.objects.filter(pk=f.pk).update(
                committed_cents=F("committed_cents") + per_voucher[f.funder_id] * n_vouchers
            )
        first = program.next_booklet_number
        Program.objects.filter(pk=program.pk).update(next_booklet_number=first + count)
        now = timezone.now()
        booklet_ids = insert_booklets(program_id=program.pk, first=first, count=count, issued_at=now)
        insert_vouchers(
            (
                (booklet_id, program.pk, pos, program.face_value_cents)
                for booklet_id in booklet_ids
                for pos in range(1, program.vouchers_per_booklet + 1)
            ),
            total=n_vouchers,
            on_progress=on_progress,
        )
        lines = []
        for fid, part in per_voucher.items():
            amount = part * n_vouchers
            lines.append((program_account(AccountKind.BUDGET, program_id=program.id, funder_id=fid), -amount))
            lines.append((program_account(AccountKind.OUTSTANDING, program_id=program.id, funder_id=fid), amount))
        ledger_post(kind=TransactionKind.ISSUE, lines=lines, memo=f"{count} carnet(s) n° {first}+", obj=program)
        journal_record(
            action="booklets.issue",
            actor=actor,
            organisation=organisation,
            obj=program,
            data={"count": count, "first": first, "vouchers": n_vouchers},
        )
    return Booklet.objects.filter(program=program, number__gte=first, number__lt=first + count).order_by("number")


def booklet_allocate(*, booklet: Booklet, distributor, actor=None, organisation=None) -> Booklet:
    if distributor.kind != OrganisationKind.DISTRIBUTOR:
        raise DomainError(f"« {distributor} » n’est pas un prescripteur.", code="not_a_distributor")
    with transaction.atomic():
        booklet = Booklet.objects.select_for_update(of=("self",)).get(pk=booklet.pk)
        if booklet.handed_out_at is not None:
            raise DomainError("Ce carnet a déjà été remis à une personne.", code="booklet_handed_out")
        booklet.distributor = distributor
        booklet.allocated_at = timezone.now()
        booklet.save(update_fields=["distributor", "allocated_at"])
        journal_record(
            action="booklet.allocate",
            actor=actor,
            organisation=organisation,
            obj=booklet,
            data={"distributor": distributor.id},
        )
    return booklet


def booklet_hand_out(
    *,
    booklet: Booklet,
    actor=None,
    organisation=None,
    beneficiary=None,
    oriented_site=None,
    hand_out_key: str = "",
) -> Booklet:
    """Give a booklet to a person: its issued vouchers become usable (`distributed`). The person's record and
    orientation come from vouchers.handout.booklet_give."""
    with transaction.atomic():
        booklet = Booklet.objects.select_for_update(of=("self",)).select_related("program").get(pk=booklet.pk)
        if booklet.distributor_id is None:
            raise DomainError("Ce carnet n’est attribué à aucun prescripteur.", code="booklet_not_allocated")
        if organisation is not None and booklet.distributor_id != organisation.id:
            raise DomainError("Ce carnet n’est pas dans votre stock.", code="booklet_not_in_stock")
        if booklet.handed_out_at is not None:
            raise DomainError("Ce carnet a déjà été remis.", code="booklet_handed_out")
        now = timezone.now()
        vouchers = list(Voucher.objects.select_for_update(of=("self",)).filter(booklet=booklet, status=S.ISSUED))
        if not vouchers:
            raise DomainError("Ce carnet n’a plus de chèque utilisable.", code="booklet_empty")
        _log(vouchers, S.DISTRIBUTED, actor=actor, organisation=organisation)
        Voucher.objects.filter(pk__in=[v.pk for v in vouchers]).update(status=S.DISTRIBUTED, distributed_at=now)
        booklet.handed_out_at = now
        booklet.beneficiary = beneficiary
        booklet.oriented_site = oriented_site
        booklet.hand_out_key = hand_out_key
        booklet.save(update_fields=["handed_out_at", "beneficiary", "oriented_site", "hand_out_key"])
        lines = []
        totals: dict[int, int] = defaultdict(int)
        for (program_id, face), n in Counter((v.program_id, v.face_value_cents) for v in vouchers).items():
            for fid, amount in _per_funder(program_id, face, n):
                totals[fid] += amount
        for fid, amount in totals.items():
            lines.append(
                (program_account(AccountKind.OUTSTANDING, program_id=booklet.program_id, funder_id=fid), -amount)
            )
            lines.append(
                (program_account(AccountKind.HANDED_OUT, program_id=booklet.program_id, funder_id=fid), amount)
            )
        ledger_post(kind=TransactionKind.HAND_OUT, lines=lines, memo=f"Carnet n° {booklet.number}", obj=booklet)
        journal_record(
            action="booklet.hand_out",
            actor=actor,
            organisation=organisation,
            obj=booklet,
            data={"vouchers": len(vouchers), "oriented_site": getattr(oriented_site, "pk", None)},
        )
    return booklet


# --- single-voucher transitions --------------------------------------------------------------------------


def _lock_voucher(voucher: Voucher) -> Voucher:
    return Voucher.objects.select_for_update(of=("self",)).get(pk=voucher.pk)


def voucher_redeem(*, voucher: Voucher, place, service: str, actor=None) -> Redemption:
    """One voucher used at a place, without the desk's site checks (see vouchers.redemption for the desk)."""
    from passnum.vouchers.redemption import Desk, Refusal, redeem_locked_voucher

    if place.kind != OrganisationKind.PLACE:
        raise Refusal("not_a_place", f"« {place} » n’est pas un lieu de médiation.")
    receipt = redeem_locked_voucher(voucher=voucher, desk=Desk(place=place, user=actor), service=service)
    return receipt.redemptions.get()


def redemption_undo(*, redemption: Redemption, reason: str, actor=None) -> Redemption:
    """The place takes back the redemption (its whole receipt): see vouchers.redemption.receipt_undo."""
    from passnum.vouchers.redemption import Desk, receipt_undo

    receipt_undo(receipt=redemption.receipt, reason=reason, desk=Desk(place=redemption.place, user=actor))
    redemption.refresh_from_db()
    return redemption


# Where an unused voucher's value sits: in a distributor's stock, or in a person's hands.
SOURCE_ACCOUNT = {S.ISSUED: AccountKind.OUTSTANDING, S.DISTRIBUTED: AccountKind.HANDED_OUT}


def release_to_budget(groups: Counter, *, kind: str, memo: str, obj=None) -> dict[tuple[int, int], int]:
    """Unused vouchers, counted per (program id, face value, status issued|distributed), give each funder's share
    back to its program budget: out of the account they sat in, into `budget`, and committed_cents decreases.
    Run inside the caller's transaction, after the vouchers changed status. Returns {(program, funder): cents}."""
    lines = []
    returned: dict[tuple[int, int], int] = defaultdict(int)
    for (program_id, face, status), n in sorted(groups.items()):  # one split per group: per voucher, times n
        for fid, amount in _per_funder(program_id, face, n):
            returned[(program_id, fid)] += amount
            lines.append((program_account(SOURCE_ACCOUNT[status], program_id=program_id, funder_id=fid), -amount))
            lines.append((program_account(AccountKind.BUDGET, program_id=program_id, funder_id=fid), amount))
    for (program_id, fid), amount in sorted(returned.items()):
        ProgramFunder.objects.filter(program_id=program_id, funder_id=fid).update(
            committed_cents=F("committed_cents") - amount
        )
    ledger_post(kind=kind, lines=lines, memo=memo, obj=obj)
    return dict(returned)


def _release(vouchers: list[Voucher], *, to_status: str, reason: str, actor, organisation) -> int:
    """issued|distributed → expired or cancelled. Either way each funder's share of the value returns to its
    program budget (committed decreases), from the account the voucher sat in: in stock or in a person's hands."""
    with transaction.atomic():
        locked = list(
            Voucher.objects.select_for_update(of=("self",)).filter(pk__in=[v.pk for v in vouchers]).order_by("pk")
        )
        for v in locked:
            _check_transition(v, to_status)
        groups = Counter((v.program_id, v.face_value_cents, v.status) for v in locked)
        now = timezone.now()
        _log(locked, to_status, actor=actor, organisation=organisation, reason=reason)
        ids = [v.pk for v in locked]
        if to_status == S.CANCELLED:
            Voucher.objects.filter(pk__in=ids).update(status=S.CANCELLED, cancelled_at=now, cancel_reason=reason)
            kind = TransactionKind.CANCEL
        else:
            Voucher.objects.filter(pk__in=ids).update(status=S.EXPIRED, expired_at=now)
            kind = TransactionKind.EXPIRE
        release_to_budget(groups, kind=kind, memo=reason)
        journal_record(
            action=f"vouchers.{to_status}",
            actor=actor,
            organisation=organisation,
            data={"count": len(locked), "reason": reason},
        )
    return len(locked)


def vouchers_cancel(*, vouchers: list[Voucher], reason: str, actor=None, organisation=None) -> int:
    reason = reason.strip()
    if not reason:
        raise DomainError("Le motif d’annulation est obligatoire.", code="reason_required")
    return _release(vouchers, to_status=S.CANCELLED, reason=reason, actor=actor, organisation=organisation)


def vouchers_expire(*, vouchers: list[Voucher], actor=None, organisation=None) -> int:
    return _release(vouchers, to_status=S.EXPIRED, reason="Fin de validité", actor=actor, organisation=organisation)
