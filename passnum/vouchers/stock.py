"""Booklet stock: the lead funder allocates booklets to distributors (by quantity or number range);
distributors transfer unused stock to one another or return it. Every movement is journaled with the booklet
numbers. Cancelling a lost or stolen booklet returns its unused value to the budget (ledger)."""

from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from passnum.accounts.enums import OrganisationKind
from passnum.common.errors import DomainError, PermissionRefused
from passnum.journal.services import journal_record
from passnum.programs.models import Program
from passnum.vouchers.enums import CancelReason, VoucherStatus
from passnum.vouchers.models import Booklet, Voucher
from passnum.vouchers.services import vouchers_cancel

S = VoucherStatus
MAX_MOVE = 100_000


def _numbers_text(numbers: list[int]) -> str:
    """[1, 2, 3, 7] → '1-3, 7' for messages and the journal."""
    parts, start, prev = [], None, None
    for n in sorted(numbers):
        if start is None:
            start = prev = n
        elif n == prev + 1:
            prev = n
        else:
            parts.append(f"{start}-{prev}" if prev != start else str(start))
            start = prev = n
    if start is not None:
        parts.append(f"{start}-{prev}" if prev != start else str(start))
    return ", ".join(parts)


def _usable():
    return Exists(Voucher.objects.filter(booklet=OuterRef("pk"), status=S.ISSUED))


def free_booklets(*, program: Program):
    """Booklets of the funder's pool: not allocated, not handed out, with issued vouchers."""
    return Booklet.objects.filter(program=program, distributor__isnull=True, handed_out_at__isnull=True).filter(
        _usable()
    )


def stock_of(*, distributor):
    """A distributor's stock: allocated to it, not handed out yet, still usable."""
    return (
        Booklet.objects.filter(distributor=distributor, handed_out_at__isnull=True)
        .filter(_usable())
        .select_related("program")
    )


def _check_lead(program: Program, organisation) -> None:
    if organisation is None or program.owner_id != organisation.id:
        raise PermissionRefused("Seul le financeur pilote du dispositif gère ses carnets.")


def booklets_allocate(
    *,
    program: Program,
    distributor,
    quantity: int | None = None,
    first: int | None = None,
    last: int | None = None,
    actor=None,
    organisation=None,
) -> list[Booklet]:
    """Allocate `quantity` free booklets (lowest numbers first), or exactly booklets first…last."""
    _check_lead(program, organisation)
    if distributor.kind != OrganisationKind.DISTRIBUTOR:
        raise DomainError(f"« {distributor} » n’est pas un prescripteur.", code="not_a_distributor")
    by_range = first is not None or last is not None
    if by_range == (quantity is not None):
        raise DomainError("Indiquez soit une quantité, soit une plage de numéros.", code="quantity_or_range")
    if by_range:
        if first is None or last is None or first < 1 or last < first:
            raise DomainError("Plage de numéros invalide.", code="invalid_range")
        if last - first + 1 > MAX_MOVE:
            raise DomainError(f"Au plus {MAX_MOVE} carnets à la fois.", code="too_many_booklets")
    elif not 1 <= quantity <= MAX_MOVE:
        raise DomainError(f"La quantité est comprise entre 1 et {MAX_MOVE}.", code="invalid_quantity")
    with transaction.atomic():
        pool = free_booklets(program=program).order_by("number")
        if by_range:
            wanted = set(range(first, last + 1))
            booklets = list(pool.filter(number__gte=first, number__lte=last).select_for_update(of=("self",)))
            missing = sorted(wanted - {b.number for b in booklets})
            if missing:
                raise DomainError(
                    "Carnets non disponibles (déjà attribués, remis, annulés ou inexistants) : "
                    f"{_numbers_text(missing)}.",
                    code="booklets_not_free",
                )
        else:
            booklets = list(pool.select_for_update(of=("self",))[:quantity])
            if len(booklets) < quantity:
                raise DomainError(
                    f"Stock insuffisant : {len(booklets)} carnet(s) disponible(s), {quantity} demandé(s). "
                    "Émettez d’abord de nouveaux carnets.",
                    code="not_enough_booklets",
                )
        now = timezone.now()
        Booklet.objects.filter(pk__in=[b.pk for b in booklets]).update(distributor=distributor, allocated_at=now)
        numbers = [b.number for b in booklets]
        journal_record(
            action="booklets.allocate",
            actor=actor,
            organisation=organisation,
            obj=program,
            data={"distributor": distributor.id, "numbers": _numbers_text(numbers), "count": len(numbers)},
        )
    return list(Booklet.objects.filter(pk__in=[b.pk for b in booklets]).order_by("number"))


def _lock_stock(booklet_ids: list[int], distributor) -> list[Booklet]:
    booklets = list(Booklet.objects.select_for_update(of=("self",)).filter(pk__in=booklet_ids).order_by("number"))
    if len(booklets) != len(set(booklet_ids)):
        raise DomainError("Carnet introuvable.", code="booklet_unknown")
    not_mine = [b.number for b in booklets if b.distributor_id != distributor.id or b.handed_out_at is not None]
    if not_mine:
        raise DomainError(
            f"Ces carnets ne sont pas dans votre stock : {_numbers_text(not_mine)}.", code="booklet_not_in_stock"
        )
    return booklets


def booklets_transfer(*, booklet_ids: list[int], from_distributor, to_distributor, actor=None) -> int:
    """A distributor hands unused stock to another distributor."""
    if to_distributor.kind != OrganisationKind.DISTRIBUTOR or to_distributor.pk == from_distributor.pk:
        raise DomainError("Choisissez un autre prescripteur.", code="invalid_transfer_target")
    if not booklet_ids:
        raise DomainError("Choisissez au moins un carnet.", code="booklets_required")
    with transaction.atomic():
        booklets = _lock_stock(booklet_ids, from_distributor)
        Booklet.objects.filter(pk__in=[b.pk for b in booklets]).update(
            distributor=to_distributor, allocated_at=timezone.now()
        )
        for program_id in {b.program_id for b in booklets}:
            numbers = [b.number for b in booklets if b.program_id == program_id]
            journal_record(
                action="booklets.transfer",
                actor=actor,
                organisation=from_distributor,
                obj=Program(pk=program_id),
                data={"to": to_distributor.id, "numbers": _numbers_text(numbers), "count": len(numbers)},
            )
    return len(booklets)


def booklets_return(*, booklet_ids: list[int], distributor, actor=None) -> int:
    """A distributor gives unused booklets back to the funder's pool."""
    if not booklet_ids:
        raise DomainError("Choisissez au moins un carnet.", code="booklets_required")
    with transaction.atomic():
        booklets = _lock_stock(booklet_ids, distributor)
        Booklet.objects.filter(pk__in=[b.pk for b in booklets]).update(distributor=None, allocated_at=None)
        for program_id in {b.program_id for b in booklets}:
            numbers = [b.number for b in booklets if b.program_id == program_id]
            journal_record(
                action="booklets.return",
                actor=actor,
                organisation=distributor,
                obj=Program(pk=program_id),
                data={"numbers": _numbers_text(numbers), "count": len(numbers)},
            )
    return len(booklets)


def booklet_cancel(*, booklet: Booklet, reason: str, detail: str = "", actor=None, organisation=None) -> int:
    """Cancel a lost, stolen or withdrawn booklet: its unused vouchers are cancelled and their value returns to
    the program's budget. The lead funder, or the distributor holding it, may do it."""
    if reason not in CancelReason.values:
        raise DomainError("Choisissez le motif d’annulation.", code="reason_required")
    allowed = organisation is not None and (
        booklet.program.owner_id == organisation.id or booklet.distributor_id == organisation.id
    )
    if not allowed:
        raise PermissionRefused("Vous ne pouvez pas annuler ce carnet.")
    vouchers = list(booklet.vouchers.filter(status__in=[S.ISSUED, S.DISTRIBUTED]))
    if not vouchers:
        raise DomainError("Ce carnet n’a plus de chèque à annuler.", code="booklet_nothing_to_cancel")
    text = CancelReason(reason).label + (f" : {detail.strip()}" if detail.strip() else "")
    with transaction.atomic():
        count = vouchers_cancel(vouchers=vouchers, reason=text[:200], actor=actor, organisation=organisation)
        journal_record(
            action="booklet.cancel", actor=actor, organisation=organisation, obj=booklet, data={"reason": reason}
        )
    return count
