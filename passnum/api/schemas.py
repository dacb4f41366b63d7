"""Request and response bodies of the API. English identifiers, French descriptions (shown in /api/v1/docs).

Unknown members are refused and sizes are bounded here, so that junk is refused (422 `invalid_request`) before any
query; business rules (a count of at least 1, a reason that is not blank…) are left to the services, so that they
answer with their own stable codes."""

import datetime as dt
from typing import Annotated

from ninja import Schema
from pydantic import ConfigDict, Field

from passnum.common.standard import Service

MAX_ID = 2**63 - 1  # a bigger id would overflow the database's integers (500): refused as invalid instead
Id = Annotated[int, Field(ge=1, le=MAX_ID)]
SERVICES = ", ".join(f"`{s}`" for s in Service.values)
RAW_CODE = (
    "Code du chèque tel qu’il est saisi (majuscules ou minuscules, espaces et tirets admis, O/I/L lus 0/1/1) "
    "ou contenu du QR code scanné (`PN1.…`, signature vérifiée)."
)


class Input(Schema):
    """A request body: unknown members are refused (a misspelt `count` must not silently mean 1), and so is
    anything that is not a JSON object where one is expected."""

    model_config = ConfigDict(extra="forbid")


# --- shared ---------------------------------------------------------------------------------------------------


class Problem(Schema):
    """Erreur au format RFC 9457 (`application/problem+json`). Des membres s’ajoutent selon le code : dates
    (`redeemed_at`, `valid_from`, `valid_until`), `left`, `max_vouchers`, `retry_after`, `errors`…"""

    model_config = ConfigDict(extra="allow")

    type: str = Field(..., description="Adresse documentant le code d’erreur.")
    title: str = Field(..., description="Intitulé de l’erreur, en français ; ne dépend que du code.")
    status: int = Field(..., description="Statut HTTP.")
    detail: str = Field(..., description="Ce qui s’est passé cette fois, en français, à montrer à la personne.")
    code: str = Field(..., description="Code stable, à utiliser dans les programmes (voir docs/api.md).")


class SiteRef(Schema):
    id: int = Field(..., description="Numéro du lieu.")
    name: str = Field(..., description="Nom du lieu.")


class ProgramRef(Schema):
    slug: str = Field(..., description="Identifiant du dispositif.")
    name: str = Field(..., description="Nom du dispositif.")


# --- places: check, redeem, undo ----------------------------------------------------------------------------


class CheckIn(Input):
    code: str = Field(..., max_length=256, description=RAW_CODE)
    site: Id | None = Field(
        None, description="Numéro du lieu où a lieu la séance ; facultatif si la structure a un seul lieu qualifié."
    )
    service: str | None = Field(
        None, max_length=40, description=f"Service prévu, pour le vérifier aussi. Un des codes : {SERVICES}."
    )
    count: int | None = Field(None, description="Nombre de chèques prévu pour la séance (avec `service`).")


class EligibleServiceOut(Schema):
    code: str = Field(..., description="Code du service (standard national des lieux de médiation numérique).")
    label: str = Field(..., description="Libellé du service.")
    max_vouchers: int = Field(..., description="Nombre maximal de chèques pour une séance de ce service ici.")


class CheckOut(Schema):
    code: str = Field(..., description="Code du chèque, normalisé (13 caractères).")
    display_code: str = Field(..., description="Code du chèque tel qu’il est imprimé (groupes de 4).")
    value_cents: int = Field(..., description="Valeur faciale du chèque, en centimes d’euro.")
    program: ProgramRef
    valid_from: dt.date = Field(..., description="Premier jour de validité.")
    valid_until: dt.date = Field(..., description="Dernier jour de validité.")
    left: int = Field(..., description="Chèques encore utilisables dans le carnet, celui-ci compris.")
    site: SiteRef
    services: list[EligibleServiceOut] = Field(..., description="Services que ce lieu peut encaisser pour ce chèque.")


class RedeemIn(Input):
    code: str = Field(..., max_length=256, description=RAW_CODE)
    service: str = Field(..., max_length=40, description=f"Service de la séance. Un des codes : {SERVICES}.")
    count: int = Field(
        1,
        description="Nombre de chèques à encaisser pour la séance (au moins 1) : le chèque présenté, puis les "
        "suivants du même carnet, dans l’ordre.",
    )
    site: Id | None = Field(
        None, description="Numéro du lieu où a lieu la séance ; facultatif si la structure a un seul lieu qualifié."
    )


class ReceiptOut(Schema):
    id: int = Field(..., description="Numéro du reçu d’encaissement.")
    site: SiteRef | None = Field(..., description="Lieu où les chèques ont été encaissés.")
    service: str = Field(..., description="Code du service de la séance.")
    count: int = Field(..., description="Nombre de chèques encaissés.")
    amount_cents: int = Field(..., description="Montant total, en centimes d’euro.")
    redeemed_at: dt.datetime = Field(..., description="Date et heure de l’encaissement (UTC).")
    undo_until: dt.datetime = Field(..., description="Jusqu’à quand le lieu peut annuler l’encaissement.")
    undone_at: dt.datetime | None = Field(..., description="Date et heure de l’annulation, s’il a été annulé.")
    undo_reason: str = Field(..., description="Motif de l’annulation (vide sinon).")
    vouchers: list[str] = Field(..., description="Codes des chèques encaissés, tels qu’imprimés.")


class ReceiptList(Schema):
    count: int = Field(..., description="Nombre total d’encaissements de la structure.")
    items: list[ReceiptOut] = Field(..., description="Encaissements de la page, du plus récent au plus ancien.")


class CancelIn(Input):
    reason: str = Field(
        ...,
        max_length=200,
        description="Motif de l’annulation (200 caractères au plus). N’écrivez ni nom ni information sur la personne.",
    )


# --- distributors: hand-out and orientation -----------------------------------------------------------------


class PersonIn(Input):
    """Ce que le prescripteur peut noter de la personne : tout est facultatif, le prénom demande son accord."""

    first_name: str = Field("", max_length=60, description="Prénom, seulement avec `consent_first_name`.")
    birth_year: int | None = Field(None, description="Année de naissance.")
    commune: str = Field("", max_length=10, description="Code Insee de la commune où vit la personne.")
    public: str = Field("", max_length=40, description="Situation de la personne (voir docs/api.md).")
    needs: list[str] = Field(
        default_factory=list, max_length=20, description=f"Besoins : codes de services parmi {SERVICES}."
    )
    consent_first_name: bool = Field(False, description="La personne accepte que son prénom soit noté.")
    consent_reminders: bool = Field(False, description="La personne accepte de recevoir des rappels.")


class HandOutIn(Input):
    booklet: str = Field(
        ...,
        max_length=256,
        description="Numéro du carnet, ou code (ou QR code) de n’importe lequel de ses chèques.",
    )
    program: str | None = Field(
        None, max_length=80, description="Identifiant du dispositif, si plusieurs ont un carnet de ce numéro."
    )
    person: PersonIn = Field(default_factory=PersonIn, description="La personne, avec le moins de données utile.")
    oriented_site: Id | None = Field(None, description="Numéro du lieu conseillé à la personne (voir les suggestions).")


class BookletRef(Schema):
    id: int = Field(..., description="Numéro interne du carnet.")
    number: int = Field(..., description="Numéro du carnet dans son dispositif (imprimé).")
    program: str = Field(..., description="Identifiant du dispositif.")


class BeneficiaryRef(Schema):
    reference: str = Field(..., description="Référence pseudonyme de la personne (aléatoire, sans lien avec elle).")


class HandOutOut(Schema):
    booklet: BookletRef
    beneficiary: BeneficiaryRef | None = Field(
        ..., description="La personne (absente seulement pour un carnet remis sans elle)."
    )
    vouchers: list[str] = Field(..., description="Codes des chèques du carnet, tels qu’imprimés, dans l’ordre.")
    valid_until: dt.date = Field(..., description="Dernier jour de validité des chèques.")
    oriented_site: SiteRef | None = Field(..., description="Lieu conseillé à la personne, s’il y en a un.")


class CommuneRef(Schema):
    code: str | None = Field(..., description="Code Insee.")
    name: str = Field(..., description="Nom.")


class SuggestedPlace(Schema):
    id: int = Field(..., description="Numéro du lieu, à passer dans `oriented_site`.")
    name: str
    address: str
    postal_code: str
    commune: CommuneRef
    services: list[str] = Field(..., description="Codes des services du lieu.")
    distance_km: float | None = Field(..., description="Distance approximative, en kilomètres, si elle est connue.")


class Suggestions(Schema):
    program: ProgramRef
    items: list[SuggestedPlace] = Field(..., description="Lieux qualifiés du territoire, les plus proches d’abord.")
