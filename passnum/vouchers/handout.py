"""Handing a booklet to a person (distributor's desk): find it in stock, record the person with the least data
that serves, suggest the nearest qualified places offering what they need, orient them to one, and only then make
the booklet's vouchers usable (`distributed`). Delivery on paper (desk PDF) or as a digital pass follows."""

import secrets
from dataclasses import dataclass, field

from django.db import IntegrityError, transaction
from django.utils import timezone

from passnum.common.errors import DomainError
from passnum.common.standard import Service
from passnum.geo.selectors import commune_get
from passnum.places.enums import QualificationStatus
from passnum.places.finder import FoundSite, finder_search
from passnum.places.models import Site
from passnum.programs.selectors import program_covers_commune
from passnum.vouchers import codes
from passnum.vouchers.enums import BeneficiaryPublic
from passnum.vouchers.models import Beneficiary, Booklet, Voucher
from passnum.vouchers.redemption import Refusal, parse_code
from passnum.vouchers.services import booklet_hand_out

REFERENCE_PREFIX = "B"


@dataclass
class Person:
    """What the distributor may record. Everything is optional; the first name needs the person's consent."""

    first_name: str = ""
    birth_year: int | None = None
    commune_code: str = ""
    public: str = ""
    needs: list[str] = field(default_factory=list)
    consent_first_name: bool = False
    consent_reminders: bool = False


def new_reference() -> str:
    """A pseudonymous reference (B + 10 Crockford symbols, 50 random bits), unrelated to the person."""
    body = "".join(secrets.choice(codes.ALPHABET) for _ in range(10))
    return f"{REFERENCE_PREFIX}{body[:5]}-{body[5:]}"


def booklet_find_in_stock(*, distributor, raw: str, program_id=None) -> Booklet:
    """A booklet of the distributor's stock from what was typed or scanned: its number, or the QR or code of
    any of its vouchers."""
    raw = (raw or "").strip()
    if not raw:
        raise DomainError(
            "Scannez un chèque du carnet ou saisissez son numéro.", code="booklet_required", field="booklet"
        )
    mine = Booklet.objects.filter(distributor=distributor).select_related("program")
    if raw.isdigit():
        found = list(
            mine.filter(number=int(raw))
            if program_id in (None, "")
            else mine.filter(number=int(raw), program_id=program_id)
        )
        if len(found) > 1:
            raise DomainError(
                f"Plusieurs dispositifs ont un carnet n° {raw} dans votre stock : choisissez le dispositif.",
                code="booklet_ambiguous",
                field="program",
            )
        booklet = found[0] if found else None
    else:
        try:
            code = parse_code(raw)
        except Refusal as exc:
            raise DomainError(exc.message, code="booklet_code_invalid", field="booklet") from None
        voucher = Voucher.objects.filter(code=code).only("booklet_id").first()
        booklet = mine.filter(pk=voucher.booklet_id).first() if voucher else None
    if booklet is None:
        raise DomainError("Ce carnet n’est pas dans votre stock.", code="booklet_not_in_stock", field="booklet")
    return booklet


def suggest_places(*, program, commune_code: str = "", needs=(), limit: int = 5) -> list[FoundSite]:
    """The nearest qualified places of the program's territory offering at least one of the needs (any place if
    none does)."""
    territory = list(program.territory.values_list("level", "code"))
    services = [n for n in needs if n in program.eligible_services]
    result = finder_search(commune_code=commune_code or None, services=services, territory=territory, limit=limit)
    if not result.sites and services:
        result = finder_search(commune_code=commune_code or None, territory=territory, limit=limit)
    return result.sites


def person_clean(person: Person) -> Person:
    """Validated and tidied, or DomainError with the field at fault (used by the forms too)."""
    first_name = " ".join((person.first_name or "").split())[:60]
    if first_name and not person.consent_first_name:
        raise DomainError(
            "Le prénom n’est noté qu’avec l’accord de la personne : cochez son accord ou laissez le prénom vide.",
            code="consent_required",
            field="first_name",
        )
    year = person.birth_year
    this_year = timezone.localdate().year
    if year is not None and not (this_year - 120 <= int(year) <= this_year - 10):
        raise DomainError(
            f"L’année de naissance est comprise entre {this_year - 120} et {this_year - 10}.",
            code="birth_year_invalid",
            field="birth_year",
        )
    commune_code = (person.commune_code or "").strip().upper()
    if commune_code and commune_get(code=commune_code) is None:
        raise DomainError(f"Commune inconnue (code Insee « {commune_code} »).", code="commune_unknown", field="commune")
    if person.public and person.public not in BeneficiaryPublic.values:
        raise DomainError("Situation inconnue.", code="public_invalid", field="public")
    needs = list(dict.fromkeys(person.needs or []))
    unknown = [n for n in needs if n not in Service.values]
    if unknown:
        raise DomainError(f"Besoin inconnu : {', '.join(unknown)}.", code="need_invalid", field="needs")
    return Person(
        first_name=first_name,
        birth_year=int(year) if year is not None else None,
        commune_code=commune_code,
        public=person.public or "",
        needs=needs,
        consent_first_name=bool(person.consent_first_name and first_name),
        consent_reminders=bool(person.consent_reminders),
    )


def _check_oriented_site(program, site_id) -> Site | None:
    if site_id in (None, ""):
        return None
    try:
        site = Site.objects.filter(pk=int(site_id), status=QualificationStatus.QUALIFIED).first()
    except (TypeError, ValueError):
        site = None
    if (
        site is None
        or site.commune_id is None
        or not program_covers_commune(program=program, commune_code=site.commune_id)
    ):
        raise DomainError(
            "Ce lieu n’est pas un lieu qualifié du territoire du dispositif.", code="site_not_eligible", field="site"
        )
    return site


def booklet_give(
    *,
    booklet: Booklet,
    distributor,
    person: Person,
    oriented_site_id=None,
    actor=None,
    idempotency_key: str = "",
) -> Booklet:
    """Hand the booklet to the person: record them (pseudonymously), orient them, make the vouchers usable.
    A retry with the same idempotency key returns the booklet as handed out the first time."""
    key = (idempotency_key or "").strip()[:64]
    if (
        key
        and booklet.handed_out_at is not None
        and booklet.hand_out_key == key
        and booklet.distributor_id == distributor.pk
    ):
        return _replay(booklet, person, oriented_site_id)
    person = person_clean(person)
    if key and Booklet.objects.filter(distributor=distributor, hand_out_key=key).exclude(pk=booklet.pk).exists():
        raise _key_reused()
    site = _check_oriented_site(booklet.program, oriented_site_id)
    try:
        return _give(booklet, distributor, person, site, actor, key)
    except IntegrityError as exc:
        # A concurrent hand-out of another booklet took the same key first (the check above could not see it).
        if key and _is_key_conflict(exc):
            raise _key_reused() from None
        raise
    except DomainError as exc:
        if key and exc.code == "booklet_handed_out":  # a concurrent retry of the same hand-out finished first
            booklet.refresh_from_db()
            if booklet.hand_out_key == key and booklet.distributor_id == distributor.pk:
                return _replay(booklet, person, oriented_site_id)
        raise


def _is_key_conflict(exc: IntegrityError) -> bool:
    constraint = getattr(getattr(exc.__cause__, "diag", None), "constraint_name", None)
    if constraint is not None:  # PostgreSQL names the constraint
        return constraint == "booklet_hand_out_key_unique"
    return "hand_out_key" in str(exc)  # SQLite names the columns


def _key_reused() -> Refusal:
    return Refusal("idempotency_key_reused", "Cette clé d’idempotence a déjà servi pour une autre remise de carnet.")


def _replay(booklet: Booklet, person: Person, oriented_site_id) -> Booklet:
    """The booklet as the earlier request with the same key handed it out, if this request asks for the same
    thing (the same booklet, person and orientation); refused otherwise, as the desk does (idempotency_key_reused)."""
    try:
        asked = person_clean(person)
        site_id = int(oriented_site_id) if oriented_site_id not in (None, "") else None
    except (DomainError, TypeError, ValueError):
        raise _key_reused() from None
    b = booklet.beneficiary
    recorded = (
        Person(
            first_name=b.first_name,
            birth_year=b.birth_year,
            commune_code=b.commune_id or "",
            public=b.public,
            needs=list(b.needs or []),
            consent_first_name=b.consent_first_name,
            consent_reminders=b.consent_reminders,
        )
        if b is not None
        else None
    )
    if recorded != asked or booklet.oriented_site_id != site_id:
        raise _key_reused()
    booklet.replayed = True
    return booklet


def _give(booklet, distributor, person, site, actor, key) -> Booklet:
    with transaction.atomic():
        beneficiary = Beneficiary.objects.create(
            reference=new_reference(),
            distributor=distributor,
            first_name=person.first_name,
            birth_year=person.birth_year,
            commune_id=person.commune_code or None,
            public=person.public,
            needs=person.needs,
            consent_first_name=person.consent_first_name,
            consent_reminders=person.consent_reminders,
        )
        booklet = booklet_hand_out(
            booklet=booklet,
            actor=actor,
            organisation=distributor,
            beneficiary=beneficiary,
            oriented_site=site,
            hand_out_key=key,
        )
    booklet.replayed = False
    return booklet
