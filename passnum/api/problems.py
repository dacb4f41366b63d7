"""Errors of the API as RFC 9457 problem documents (`application/problem+json`).

    {"type": "<PASSNUM_PUBLIC_URL>/api/v1/problemes/already_redeemed", "title": "Chèque déjà encaissé",
     "status": 409, "detail": "Ce chèque a déjà été encaissé le 3 mars 2026 à 14:05 par « … ».",
     "code": "already_redeemed", "redeemed_at": "2026-03-03T13:05:12+00:00", "place": "…"}

`code` is stable (a contract with API clients: never rename one); `title` depends on the code only; `detail` says
what happened this time, in French; a refusal's context (dates, `left`, `retry_after`…) comes as extra members.
PROBLEMS lists every code with its HTTP status: the refusals of the desk (vouchers.redemption.REFUSALS), those of the
hand-out (vouchers.handout) and the API's own. docs/api.md shows the same table (a test keeps them in step)."""

import json
from dataclasses import dataclass

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.http import HttpResponse

from passnum.common.errors import DomainError
from passnum.vouchers.redemption import REFUSALS, Refusal

CONTENT_TYPE = "application/problem+json"
RESERVED = frozenset({"type", "title", "status", "detail", "code"})


@dataclass(frozen=True)
class ProblemType:
    status: int
    title: str
    description: str


_DESK = {
    "code_malformed": (
        "Code mal formé",
        "Le texte reçu n’a pas la forme d’un code de chèque (12 caractères et une clé).",
    ),
    "code_typo": ("Code mal recopié", "La clé de contrôle du code ne correspond pas : un caractère est faux."),
    "qr_malformed": ("QR code illisible", "Le contenu du QR code n’a pas la forme attendue (PN1.…)."),
    "qr_unknown_key": ("QR code signé par une clé inconnue", "La clé qui a signé ce QR code n’est pas publiée."),
    "qr_bad_signature": ("Signature du QR code invalide", "Le QR code a été modifié ou contrefait."),
    "unknown_code": ("Code inconnu", "Aucun chèque ne porte ce code."),
    "not_handed_out": ("Chèque pas encore remis", "Le carnet n’a pas encore été remis à un bénéficiaire."),
    "not_yet_valid": ("Chèque pas encore valable", "Le dispositif n’a pas commencé (membre `valid_from`)."),
    "expired": ("Chèque expiré", "Le dispositif est terminé (membre `valid_until`)."),
    "cancelled": ("Chèque annulé", "Le chèque a été annulé (perdu, volé ou retiré)."),
    "already_redeemed": ("Chèque déjà encaissé", "Le chèque a déjà été encaissé (membres `redeemed_at`, `place`)."),
    "place_not_qualified": ("Lieu non qualifié", "Le lieu n’est pas qualifié : il ne peut pas encaisser."),
    "place_suspended": ("Lieu suspendu", "Le lieu est suspendu : il ne peut pas encaisser."),
    "site_required": ("Lieu à préciser", "La structure a plusieurs lieux qualifiés : précisez `site`."),
    "unknown_site": ("Lieu inconnu", "Ce lieu n’existe pas ou n’appartient pas à la structure."),
    "outside_territory": ("Lieu hors territoire", "Le lieu est hors du territoire du dispositif du chèque."),
    "service_not_eligible": ("Service non éligible", "Le service n’est pas au catalogue du lieu ou du dispositif."),
    "invalid_count": ("Nombre de chèques invalide", "Le nombre de chèques est au moins 1."),
    "too_many_vouchers": ("Trop de chèques pour une séance", "La séance prend moins de chèques (`max_vouchers`)."),
    "not_enough_vouchers": ("Pas assez de chèques", "Il reste moins de chèques utilisables dans le carnet (`left`)."),
    "rate_limited": (
        "Trop de codes erronés",
        "Trop de codes erronés : les vérifications sont bloquées pendant `retry_after` secondes (en-tête Retry-After).",
    ),
    "idempotency_key_reused": (
        "Clé d’idempotence déjà utilisée",
        "Cette clé d’idempotence a servi pour une autre demande : prenez-en une nouvelle.",
    ),
    "reason_required": ("Motif obligatoire", "Indiquez le motif de l’annulation."),
    "redemption_already_undone": ("Encaissement déjà annulé", "Cet encaissement a déjà été annulé."),
    "undo_window_closed": ("Délai d’annulation dépassé", "L’encaissement ne peut plus être annulé par le lieu."),
    "redemption_claimed": (
        "Chèques en cours de remboursement",
        "Les chèques sont déjà dans une demande de remboursement.",
    ),
    "not_a_place": ("Réservé aux lieux de médiation", "Seul un lieu de médiation numérique peut encaisser."),
}

# Hand-out (vouchers.handout, vouchers.services.booklet_hand_out) and the API's own problems: code → (status, …).
_OTHERS = {
    "booklet_required": (422, "Carnet à préciser", "Indiquez le numéro du carnet ou le code d’un de ses chèques."),
    "booklet_ambiguous": (422, "Carnet ambigu", "Plusieurs dispositifs ont ce numéro de carnet : précisez `program`."),
    "booklet_code_invalid": (
        422,
        "Code de carnet invalide",
        "Le code ou le QR code d’un chèque du carnet est invalide.",
    ),
    "booklet_not_in_stock": (404, "Carnet absent du stock", "Ce carnet n’est pas dans le stock du prescripteur."),
    "booklet_not_allocated": (409, "Carnet non attribué", "Ce carnet n’est attribué à aucun prescripteur."),
    "booklet_handed_out": (409, "Carnet déjà remis", "Ce carnet a déjà été remis à une personne."),
    "booklet_empty": (409, "Carnet vide", "Ce carnet n’a plus de chèque utilisable."),
    "consent_required": (422, "Accord de la personne requis", "Le prénom n’est noté qu’avec l’accord de la personne."),
    "birth_year_invalid": (422, "Année de naissance invalide", "L’année de naissance est hors des limites admises."),
    "commune_unknown": (422, "Commune inconnue", "Aucune commune n’a ce code Insee."),
    "public_invalid": (422, "Situation inconnue", "La situation (`public`) n’est pas dans la liste admise."),
    "need_invalid": (422, "Besoin inconnu", "Un besoin n’est pas un des 9 services du standard national."),
    "site_not_eligible": (
        422,
        "Lieu conseillé non éligible",
        "Le lieu conseillé n’est pas un lieu qualifié du territoire.",
    ),
    "unknown_program": (422, "Dispositif inconnu", "Aucun dispositif de votre stock n’a cet identifiant."),
    "program_required": (
        422,
        "Dispositif à préciser",
        "Votre stock compte plusieurs dispositifs : précisez `program`.",
    ),
    "invalid_json": (400, "Corps de requête illisible", "Le corps de la requête n’est pas du JSON valide (UTF-8)."),
    "unauthorized": (401, "Authentification requise", "Clé d’API absente, inconnue ou révoquée."),
    "forbidden_kind": (
        403,
        "Réservé à un autre type d’organisation",
        "Cette opération est réservée aux lieux ou aux prescripteurs.",
    ),
    "not_found": (404, "Ressource introuvable", "Cette ressource n’existe pas ou n’est pas la vôtre."),
    "method_not_allowed": (405, "Méthode non autorisée", "Cette adresse n’accepte pas cette méthode HTTP."),
    "conflict": (409, "Conflit", "Une autre requête a modifié les mêmes données au même moment : réessayez."),
    "payload_too_large": (413, "Requête trop volumineuse", "Le corps de la requête est trop gros."),
    "invalid_request": (
        422,
        "Requête invalide",
        "Des champs manquent ou ont un type ou une taille invalide (`errors`).",
    ),
    "domain_error": (422, "Demande refusée", "La demande est refusée par une règle du service."),
    "internal_error": (500, "Erreur interne", "Une erreur imprévue s’est produite ; elle est enregistrée."),
    "unavailable": (
        503,
        "Service momentanément indisponible",
        "La base de données est occupée : réessayez (Retry-After).",
    ),
}

PROBLEMS: dict[str, ProblemType] = {
    **{code: ProblemType(REFUSALS[code], title, desc) for code, (title, desc) in _DESK.items()},
    **{code: ProblemType(status, title, desc) for code, (status, title, desc) in _OTHERS.items()},
}


def type_uri(code: str) -> str:
    """The problem's `type`: a URL documenting the code (GET it for its title, status and description)."""
    return f"{settings.PASSNUM_PUBLIC_URL}/api/v1/problemes/{code}"


def status_of(exc: DomainError) -> int:
    """A refusal's own status; a DomainError subclass's (403, 404, 409); otherwise the code's, else 422."""
    if isinstance(exc, Refusal) or exc.status != DomainError.status:
        return exc.status
    known = PROBLEMS.get(exc.code)
    return known.status if known else 422


def problem(
    code: str,
    detail: str,
    *,
    status: int | None = None,
    headers: dict[str, str] | None = None,
    **extra,
) -> HttpResponse:
    known = PROBLEMS.get(code)
    status = status or (known.status if known else 422)
    body = {
        "type": type_uri(code),
        "title": known.title if known else "Demande refusée",
        "status": status,
        "detail": detail,
        "code": code,
    }
    body.update({k: v for k, v in extra.items() if k not in RESERVED})
    response = HttpResponse(
        json.dumps(body, cls=DjangoJSONEncoder, ensure_ascii=False), status=status, content_type=CONTENT_TYPE
    )
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def domain_problem(exc: DomainError) -> HttpResponse:
    status = status_of(exc)
    extra = dict(exc.context)
    if exc.field:
        extra.setdefault("field", exc.field)
    headers = {}
    if status == 429 and extra.get("retry_after"):
        headers["Retry-After"] = str(int(extra["retry_after"]))
    return problem(exc.code, exc.message, status=status, headers=headers, **extra)
