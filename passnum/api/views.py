"""The API's operations. Each one parses, calls one service of the desk or the hand-out, and serialises: the rules
(and their refusals, with stable codes) are the services', exactly as for the pages.

request.auth is the ApiKey (auth.ApiKeyAuth) and its organisation the one acting: places redeem, distributors hand
out; any other kind gets 403 `forbidden_kind`. Objects of another organisation are 404 `not_found`."""

from collections import defaultdict
from typing import Annotated

from ninja import Header, Path, Query, Router, Status

from passnum.accounts.enums import OrganisationKind
from passnum.api.auth import ApiKeyAuth
from passnum.api.problems import PROBLEMS, problem
from passnum.api.schemas import (
    MAX_ID,
    CancelIn,
    CheckIn,
    CheckOut,
    HandOutIn,
    HandOutOut,
    Problem,
    ReceiptList,
    ReceiptOut,
    RedeemIn,
    Suggestions,
)
from passnum.common.errors import DomainError, NotFound, PermissionRefused
from passnum.common.ratelimit import client_ip
from passnum.common.standard import Service
from passnum.geo.selectors import commune_get
from passnum.programs.models import Program
from passnum.vouchers import codes
from passnum.vouchers.handout import Person, booklet_find_in_stock, booklet_give, suggest_places
from passnum.vouchers.models import Receipt, Redemption, Voucher
from passnum.vouchers.redemption import Desk, receipt_undo, receipts_of, redeem, undo_window, voucher_check

router = Router(auth=ApiKeyAuth())

IDEMPOTENCY_HELP = (
    "Clé d’idempotence (64 caractères au plus, par exemple un UUID) : une requête rejouée avec la même clé renvoie "
    "le résultat de la première (statut 200) au lieu de recommencer."
)


def _errors(*statuses: int) -> dict:
    return {(401, 403, 413, 422, *statuses): Problem}


def _acting_for(request, kind: str):
    organisation = request.auth.organisation
    if organisation.kind != kind:
        who = "aux lieux de médiation numérique" if kind == OrganisationKind.PLACE else "aux prescripteurs"
        raise PermissionRefused(
            f"Cette opération est réservée {who} ; votre clé est celle de « {organisation.name} ».",
            code="forbidden_kind",
        )
    return organisation


def _desk(request) -> Desk:
    return Desk(place=request.auth.organisation, api_key=request.auth, ip=client_ip(request))


def _site(site) -> dict | None:
    return {"id": site.pk, "name": site.name} if site is not None else None


def _receipt(receipt: Receipt, vouchers: list[str]) -> dict:
    return {
        "id": receipt.pk,
        "site": _site(receipt.site),
        "service": receipt.service,
        "count": receipt.count,
        "amount_cents": receipt.amount_cents,
        "redeemed_at": receipt.redeemed_at,
        "undo_until": receipt.redeemed_at + undo_window(),
        "undone_at": receipt.undone_at,
        "undo_reason": receipt.undo_reason,
        "vouchers": vouchers,
    }


def _voucher_codes(receipt_ids: list[int]) -> dict[int, list[str]]:
    """Display codes of the vouchers of each receipt, in booklet order: one query for any number of receipts."""
    found: dict[int, list[str]] = defaultdict(list)
    rows = (
        Redemption.objects.filter(receipt_id__in=receipt_ids)
        .order_by("receipt_id", "voucher__position")
        .values_list("receipt_id", "voucher__code")
    )
    for receipt_id, code in rows:
        found[receipt_id].append(codes.display(code))
    return found


# --- places ----------------------------------------------------------------------------------------------------


@router.post(
    "/vouchers/check",
    response={200: CheckOut, **_errors(404, 409, 429)},
    operation_id="voucher_check",
    summary="Vérifier un chèque",
    tags=["Encaissement"],
)
def check(request, payload: CheckIn):
    """Tout ce qu’un encaissement refuserait, refusé maintenant, sans rien enregistrer : valeur du chèque,
    dispositif, dates, chèques restants dans le carnet et services que le lieu peut encaisser. Avec `service` (et
    `count`), ce choix est vérifié aussi. Les codes erronés comptent pour la limite anti-devinette (429).
    Réservé aux clés d’un lieu de médiation numérique."""
    _acting_for(request, OrganisationKind.PLACE)
    result = voucher_check(
        raw_code=payload.code, desk=_desk(request), site_id=payload.site, service=payload.service, count=payload.count
    )
    voucher, program = result.voucher, result.program
    return {
        "code": voucher.code,
        "display_code": result.display_code,
        "value_cents": voucher.face_value_cents,
        "program": {"slug": program.slug, "name": program.name},
        "valid_from": program.valid_from,
        "valid_until": program.valid_until,
        "left": result.left,
        "site": _site(result.site),
        "services": [{"code": s.code, "label": s.label, "max_vouchers": s.max_vouchers} for s in result.services],
    }


@router.post(
    "/redemptions",
    response={201: ReceiptOut, 200: ReceiptOut, **_errors(404, 409, 429)},
    operation_id="redemption_create",
    summary="Encaisser des chèques",
    tags=["Encaissement"],
)
def redemption_create(
    request,
    payload: RedeemIn,
    idempotency_key: str = Header("", alias="Idempotency-Key", max_length=64, description=IDEMPOTENCY_HELP),
):
    """Encaisse `count` chèques du carnet pour une séance de `service` : le chèque présenté, puis les suivants du
    même carnet, dans l’ordre. Répond 201 avec le reçu ; 200 avec le même reçu si la requête rejoue une clé
    d’idempotence déjà utilisée pour la même demande. Un chèque n’est jamais encaissé deux fois.
    Réservé aux clés d’un lieu de médiation numérique."""
    _acting_for(request, OrganisationKind.PLACE)
    receipt = redeem(
        raw_code=payload.code,
        desk=_desk(request),
        service=payload.service,
        count=payload.count,
        site_id=payload.site,
        idempotency_key=idempotency_key,
    )
    display = [codes.display(c) for c in receipt.voucher_codes] if hasattr(receipt, "voucher_codes") else None
    body = _receipt(receipt, display if display is not None else _voucher_codes([receipt.pk])[receipt.pk])
    return Status(200 if receipt.replayed else 201, body)


@router.post(
    "/redemptions/{receipt_id}/cancel",
    response={200: ReceiptOut, **_errors(404, 409)},
    operation_id="redemption_cancel",
    summary="Annuler un encaissement",
    tags=["Encaissement"],
)
def redemption_cancel(
    request, payload: CancelIn, receipt_id: int = Path(..., ge=1, le=MAX_ID, description="Numéro du reçu.")
):
    """Annule un encaissement de la structure dans le délai permis (24 h par défaut) : ses chèques redeviennent
    utilisables. Le motif est obligatoire. Refusé si les chèques sont déjà dans une demande de remboursement.
    Réservé aux clés d’un lieu de médiation numérique."""
    place = _acting_for(request, OrganisationKind.PLACE)
    receipt = receipts_of(place=place).filter(pk=receipt_id).first()
    if receipt is None:
        raise NotFound("Aucun encaissement de votre structure ne porte ce numéro.", code="not_found")
    receipt = receipt_undo(receipt=receipt, reason=payload.reason, desk=_desk(request))
    return _receipt(receipt, _voucher_codes([receipt.pk])[receipt.pk])


@router.get(
    "/redemptions",
    response={200: ReceiptList, **_errors()},
    operation_id="redemption_list",
    summary="Lister les encaissements",
    tags=["Encaissement"],
)
def redemption_list(
    request,
    limit: int = Query(50, ge=1, le=200, description="Nombre d’encaissements par page (200 au plus)."),
    offset: int = Query(0, ge=0, le=10**9, description="Nombre d’encaissements à sauter."),
):
    """Les encaissements de la structure (et seulement les siens), du plus récent au plus ancien, annulés compris.
    Réservé aux clés d’un lieu de médiation numérique."""
    place = _acting_for(request, OrganisationKind.PLACE)
    receipts = receipts_of(place=place).select_related(None).select_related("site").order_by("-redeemed_at", "-id")
    page = list(receipts[offset : offset + limit])
    vouchers = _voucher_codes([r.pk for r in page]) if page else {}
    return {
        "count": receipts.count() if page or offset else 0,
        "items": [_receipt(r, vouchers.get(r.pk, [])) for r in page],
    }


# --- distributors ------------------------------------------------------------------------------------------------


def _program_id(slug: str | None) -> int | None:
    if not slug:
        return None
    program_id = Program.objects.filter(slug=slug).values_list("pk", flat=True).first()
    if program_id is None:
        raise DomainError(f"Aucun dispositif n’a l’identifiant « {slug} ».", code="unknown_program", field="program")
    return program_id


@router.post(
    "/booklets/hand-out",
    response={201: HandOutOut, 200: HandOutOut, **_errors(404, 409)},
    operation_id="booklet_hand_out",
    summary="Remettre un carnet à une personne",
    tags=["Remise de carnets"],
)
def booklet_hand_out(
    request,
    payload: HandOutIn,
    idempotency_key: str = Header("", alias="Idempotency-Key", max_length=64, description=IDEMPOTENCY_HELP),
):
    """Remet un carnet du stock à une personne : la personne est enregistrée sous une référence pseudonyme, avec le
    moins de données utile, éventuellement orientée vers un lieu, et les chèques du carnet deviennent utilisables.
    Répond 201 ; 200 avec le même résultat si la requête rejoue une clé d’idempotence.
    Réservé aux clés d’un prescripteur."""
    distributor = _acting_for(request, OrganisationKind.DISTRIBUTOR)
    booklet = booklet_find_in_stock(
        distributor=distributor, raw=payload.booklet, program_id=_program_id(payload.program)
    )
    p = payload.person
    booklet = booklet_give(
        booklet=booklet,
        distributor=distributor,
        person=Person(
            first_name=p.first_name,
            birth_year=p.birth_year,
            commune_code=p.commune,
            public=p.public,
            needs=list(p.needs),
            consent_first_name=p.consent_first_name,
            consent_reminders=p.consent_reminders,
        ),
        oriented_site_id=payload.oriented_site,
        idempotency_key=idempotency_key,
    )
    program = booklet.program
    vouchers = Voucher.objects.filter(booklet=booklet).order_by("position").values_list("code", flat=True)
    body = {
        "booklet": {"id": booklet.pk, "number": booklet.number, "program": program.slug},
        "beneficiary": {"reference": booklet.beneficiary.reference} if booklet.beneficiary_id else None,
        "vouchers": [codes.display(c) for c in vouchers],
        "valid_until": program.valid_until,
        "oriented_site": _site(booklet.oriented_site),
    }
    return Status(200 if getattr(booklet, "replayed", False) else 201, body)


@router.get(
    "/places/suggestions",
    response={200: Suggestions, **_errors()},
    operation_id="place_suggestions",
    summary="Suggérer des lieux où orienter une personne",
    tags=["Remise de carnets"],
)
def place_suggestions(
    request,
    commune: str = Query("", max_length=10, description="Code Insee de la commune de la personne."),
    needs: Annotated[
        list[str] | None,
        Query(
            max_length=20,
            description="Besoins (codes de services), répétés (`needs=a&needs=b`) ou séparés par virgule.",
        ),
    ] = None,
    program: str = Query("", max_length=80, description="Identifiant du dispositif ; facultatif s’il n’y en a qu’un."),
):
    """Les lieux qualifiés du territoire du dispositif qui offrent les besoins de la personne, les plus proches de
    sa commune d’abord (moins de besoins si aucun lieu ne les offre tous). Pour choisir `oriented_site`.
    Réservé aux clés d’un prescripteur."""
    distributor = _acting_for(request, OrganisationKind.DISTRIBUTOR)
    mine = Program.objects.filter(booklets__distributor=distributor).distinct().order_by("slug")
    if program:
        chosen = mine.filter(slug=program).first()
        if chosen is None:
            raise DomainError(
                f"Aucun dispositif de votre stock n’a l’identifiant « {program} ».", code="unknown_program"
            )
    else:
        found = list(mine[:2])
        if not found:
            raise DomainError("Votre stock ne compte aucun carnet d’un dispositif.", code="unknown_program")
        if len(found) > 1:
            raise DomainError(
                "Votre stock compte des carnets de plusieurs dispositifs : précisez `program`.", code="program_required"
            )
        chosen = found[0]
    wanted = list(dict.fromkeys(n.strip() for item in needs or [] for n in item.split(",") if n.strip()))
    unknown = [n for n in wanted if n not in Service.values]
    if unknown:
        raise DomainError(f"Besoin inconnu : {', '.join(unknown)}.", code="need_invalid", field="needs")
    commune = commune.strip().upper()
    if commune and commune_get(code=commune) is None:
        raise DomainError(f"Commune inconnue (code Insee « {commune} »).", code="commune_unknown", field="commune")
    sites = suggest_places(program=chosen, commune_code=commune, needs=wanted)
    return {
        "program": {"slug": chosen.slug, "name": chosen.name},
        "items": [
            {
                "id": s.id,
                "name": s.name,
                "address": s.address,
                "postal_code": s.postal_code,
                "commune": {"code": s.commune_id, "name": s.commune_name},
                "services": list(s.services),
                "distance_km": round(s.distance_km, 1) if s.distance_km is not None else None,
            }
            for s in sites
        ],
    }


# --- problem types (public) ----------------------------------------------------------------------------------------

public = Router(auth=None)


@public.get("/problemes", operation_id="problem_types", summary="Codes d’erreur", tags=["Erreurs"], response=dict)
def problem_types(request):
    """Chaque code d’erreur stable avec son statut HTTP, son intitulé et sa description. Sans authentification."""
    return {
        code: {"status": p.status, "title": p.title, "description": p.description}
        for code, p in sorted(PROBLEMS.items())
    }


@public.get(
    "/problemes/{code}",
    operation_id="problem_type",
    summary="Un code d’erreur",
    tags=["Erreurs"],
    response={200: dict, 404: Problem},
)
def problem_type(request, code: str = Path(..., max_length=60)):
    """L’adresse `type` des erreurs : le statut HTTP, l’intitulé et la description d’un code. Sans authentification."""
    known = PROBLEMS.get(code)
    if known is None:
        return problem("not_found", "Aucun code d’erreur de l’API ne porte ce nom.")
    return {"code": code, "status": known.status, "title": known.title, "description": known.description}
