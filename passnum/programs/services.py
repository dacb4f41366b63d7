"""Writes on programs. Every rule lives here so it holds from the web, the admin, a command or the API."""

import datetime as dt
from dataclasses import dataclass, field

from django.db import transaction
from django.utils.text import slugify

from passnum.accounts.enums import OrganisationKind
from passnum.accounts.models import Organisation
from passnum.common.errors import DomainError
from passnum.common.money import BPS_TOTAL, format_euros
from passnum.common.standard import Public, Service
from passnum.geo.enums import TerritoryLevel
from passnum.geo.selectors import unknown_codes
from passnum.journal.services import journal_record
from passnum.programs.models import (
    MAX_BUDGET_CENTS,
    MAX_FACE_VALUE_CENTS,
    MAX_GRACE_DAYS,
    MAX_VOUCHERS_PER_BOOKLET,
    Program,
    ProgramFunder,
    ProgramTerritory,
)
from passnum.settlement.enums import AccountKind, TransactionKind
from passnum.settlement.ledger import ledger_post, program_account


@dataclass(frozen=True)
class FunderShare:
    funder: Organisation
    share_bps: int
    budget_cents: int


@dataclass
class ProgramData:
    name: str
    valid_from: dt.date
    valid_until: dt.date
    funders: list[FunderShare]
    territory: list[tuple[str, str]]
    eligible_services: list[str]
    target_publics: list[str] = field(default_factory=list)
    face_value_cents: int = 1000
    vouchers_per_booklet: int = 10
    grace_days: int = 30
    description: str = ""
    slug: str = ""


def _validate(data: ProgramData, *, owner: Organisation) -> None:
    if not data.name.strip():
        raise DomainError("Le nom du dispositif est obligatoire.", code="name_required", field="name")
    if not 0 < data.face_value_cents <= MAX_FACE_VALUE_CENTS:
        raise DomainError(
            f"La valeur d’un chèque doit être comprise entre 0,01 € et {format_euros(MAX_FACE_VALUE_CENTS)}.",
            code="invalid_face_value",
            field="face_value",
        )
    if not 1 <= data.vouchers_per_booklet <= MAX_VOUCHERS_PER_BOOKLET:
        raise DomainError(
            f"Un carnet contient entre 1 et {MAX_VOUCHERS_PER_BOOKLET} chèques.",
            code="invalid_vouchers_per_booklet",
            field="vouchers_per_booklet",
        )
    if data.valid_until < data.valid_from:
        raise DomainError(
            "La fin de validité doit être postérieure au début.",
            code="dates_out_of_order",
            field="valid_until",
        )
    if not 0 <= data.grace_days <= MAX_GRACE_DAYS:
        raise DomainError(
            f"Le délai de grâce est compris entre 0 et {MAX_GRACE_DAYS} jours.",
            code="invalid_grace_days",
            field="grace_days",
        )
    if not data.eligible_services:
        raise DomainError(
            "Choisissez au moins un service éligible.", code="services_required", field="eligible_services"
        )
    if set(data.eligible_services) - set(Service.values):
        raise DomainError("Service inconnu.", code="unknown_service", field="eligible_services")
    if set(data.target_publics) - set(Public.values):
        raise DomainError("Public inconnu.", code="unknown_public", field="target_publics")
    _validate_funders(data.funders, owner=owner)
    _validate_territory(data.territory)


def _validate_funders(funders: list[FunderShare], *, owner: Organisation) -> None:
    if not funders:
        raise DomainError("Un dispositif a au moins un financeur.", code="funders_required", field="funders")
    ids = [f.funder.id for f in funders]
    if len(set(ids)) != len(ids):
        raise DomainError("Un financeur apparaît deux fois.", code="duplicate_funder", field="funders")
    if owner.id not in ids:
        raise DomainError(
            "Le financeur pilote doit faire partie des financeurs.", code="owner_not_funder", field="funders"
        )
    for f in funders:
        if f.funder.kind != OrganisationKind.FUNDER:
            raise DomainError(f"« {f.funder} » n’est pas un financeur.", code="not_a_funder", field="funders")
        if not 1 <= f.share_bps <= BPS_TOTAL:
            raise DomainError("Chaque part est comprise entre 0,01 % et 100 %.", code="invalid_share", field="funders")
        if not 0 <= f.budget_cents <= MAX_BUDGET_CENTS:
            raise DomainError(
                f"Le budget de chaque financeur est compris entre 0 € et {format_euros(MAX_BUDGET_CENTS)}.",
                code="invalid_budget",
                field="funders",
            )
    total = sum(f.share_bps for f in funders)
    if total != BPS_TOTAL:
        percent = f"{total / 100:.2f}".replace(".", ",")
        raise DomainError(
            f"Les parts des financeurs doivent faire exactement 100 % (actuellement {percent} %).",
            code="shares_not_100",
            field="funders",
        )


def _validate_territory(territory: list[tuple[str, str]]) -> None:
    if not territory:
        raise DomainError("Le territoire est obligatoire.", code="territory_required", field="territory")
    by_level: dict[str, list[str]] = {}
    for level, code in territory:
        if level not in TerritoryLevel.values:
            raise DomainError("Niveau de territoire inconnu.", code="unknown_territory_level", field="territory")
        by_level.setdefault(level, []).append(code)
    for level, codes in by_level.items():
        bad = unknown_codes(level=level, codes=codes)
        if bad:
            label = TerritoryLevel(level).label
            raise DomainError(
                f"Code {label.lower()} inconnu : {', '.join(bad)}.",
                code="unknown_insee_code",
                field="territory",
            )


def _budget_lines(program_id: int, funder_id: int, delta_cents: int):
    return [
        (program_account(AccountKind.COMMITMENT, program_id=program_id, funder_id=funder_id), -delta_cents),
        (program_account(AccountKind.BUDGET, program_id=program_id, funder_id=funder_id), delta_cents),
    ]


def _unique_slug(name: str) -> str:
    base = slugify(name)[:70] or "dispositif"
    slug, n = base, 2
    while Program.objects.filter(slug=slug).exists():
        slug, n = f"{base}-{n}", n + 1
    return slug


def program_create(*, owner: Organisation, actor, data: ProgramData) -> Program:
    _validate(data, owner=owner)
    slug = slugify(data.slug) if data.slug else _unique_slug(data.name)
    if Program.objects.filter(slug=slug).exists():
        raise DomainError("Cet identifiant est déjà pris.", code="slug_taken", field="slug")
    with transaction.atomic():
        program = Program.objects.create(
            name=data.name.strip(),
            slug=slug,
            description=data.description,
            owner=owner,
            face_value_cents=data.face_value_cents,
            vouchers_per_booklet=data.vouchers_per_booklet,
            valid_from=data.valid_from,
            valid_until=data.valid_until,
            grace_days=data.grace_days,
            eligible_services=sorted(set(data.eligible_services), key=Service.values.index),
            target_publics=sorted(set(data.target_publics), key=Public.values.index),
        )
        lines = []
        for f in data.funders:
            ProgramFunder.objects.create(
                program=program, funder=f.funder, share_bps=f.share_bps, budget_cents=f.budget_cents
            )
            lines += _budget_lines(program.id, f.funder.id, f.budget_cents)
        ProgramTerritory.objects.bulk_create(
            [ProgramTerritory(program=program, level=level, code=code) for level, code in set(data.territory)]
        )
        ledger_post(kind=TransactionKind.BUDGET_SET, lines=lines, memo=f"Budgets de {program.slug}", obj=program)
        journal_record(
            action="program.create",
            actor=actor,
            organisation=owner,
            obj=program,
            data={
                "funders": [[f.funder.id, f.share_bps, f.budget_cents] for f in data.funders],
                "territory": sorted(data.territory),
            },
        )
    return program


def program_update(*, program: Program, organisation: Organisation, actor, data: ProgramData) -> Program:
    """Edit a program. Once vouchers exist, face value, booklet size and shares are frozen (every voucher of
    a program splits the same way); budgets may change but never below what is already committed."""
    _validate(data, owner=program.owner)
    with transaction.atomic():
        program = Program.objects.select_for_update(of=("self",)).get(pk=program.pk)
        current = {
            pf.funder_id: pf for pf in ProgramFunder.objects.select_for_update(of=("self",)).filter(program=program)
        }
        issued = program.next_booklet_number > 1
        wanted = {f.funder.id: f for f in data.funders}
        if issued:
            if data.face_value_cents != program.face_value_cents or (
                data.vouchers_per_booklet != program.vouchers_per_booklet
            ):
                raise DomainError(
                    "Des chèques ont déjà été émis : la valeur faciale et la taille des carnets ne changent plus.",
                    code="program_frozen",
                )
            if set(wanted) != set(current) or any(wanted[fid].share_bps != current[fid].share_bps for fid in current):
                raise DomainError(
                    "Des chèques ont déjà été émis : les financeurs et leurs parts ne changent plus.",
                    code="program_frozen",
                    field="funders",
                )
        lines = []
        for fid, pf in current.items():
            if fid not in wanted:
                if pf.committed_cents:
                    raise DomainError("Ce financeur a déjà des chèques émis.", code="funder_committed")
                lines += _budget_lines(program.id, fid, -pf.budget_cents)
                pf.delete()
        for fid, f in wanted.items():
            pf = current.get(fid)
            if pf is None:
                ProgramFunder.objects.create(
                    program=program, funder=f.funder, share_bps=f.share_bps, budget_cents=f.budget_cents
                )
                lines += _budget_lines(program.id, fid, f.budget_cents)
                continue
            if f.budget_cents < pf.committed_cents:
                raise DomainError(
                    f"Le budget de {f.funder} ne peut pas descendre sous le montant déjà engagé "
                    f"({format_euros(pf.committed_cents)}).",
                    code="budget_below_committed",
                    field="funders",
                )
            delta = f.budget_cents - pf.budget_cents
            if delta or f.share_bps != pf.share_bps:
                pf.budget_cents, pf.share_bps = f.budget_cents, f.share_bps
                pf.save(update_fields=["budget_cents", "share_bps"])
                lines += _budget_lines(program.id, fid, delta)
        program.name = data.name.strip()
        program.description = data.description
        program.face_value_cents = data.face_value_cents
        program.vouchers_per_booklet = data.vouchers_per_booklet
        program.valid_from, program.valid_until = data.valid_from, data.valid_until
        program.grace_days = data.grace_days
        program.eligible_services = sorted(set(data.eligible_services), key=Service.values.index)
        program.target_publics = sorted(set(data.target_publics), key=Public.values.index)
        program.save()
        ProgramTerritory.objects.filter(program=program).delete()
        ProgramTerritory.objects.bulk_create(
            [ProgramTerritory(program=program, level=level, code=code) for level, code in set(data.territory)]
        )
        ledger_post(kind=TransactionKind.BUDGET_SET, lines=lines, memo=f"Budgets de {program.slug}", obj=program)
        journal_record(
            action="program.update",
            actor=actor,
            organisation=organisation,
            obj=program,
            data={"funders": [[fid, f.share_bps, f.budget_cents] for fid, f in wanted.items()]},
        )
    return program
