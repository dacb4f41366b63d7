"""Checks on what a place declares. Each raises DomainError with a French message and a stable code."""

import opening_hours
from schwifty import BIC, IBAN
from schwifty.exceptions import SchwiftyException

from passnum.common.errors import DomainError

MAX_DOCUMENT_BYTES = 5 * 1024 * 1024
# Accepted supporting documents, recognised by their first bytes (the declared type and name are not trusted).
DOCUMENT_SIGNATURES = {
    b"%PDF-": "application/pdf",
    b"\x89PNG\r\n\x1a\n": "image/png",
    b"\xff\xd8\xff": "image/jpeg",
}


def clean_opening_hours(value: str) -> str:
    value = " ".join(value.split())
    if not value:
        return ""
    try:
        opening_hours.OpeningHours(value)
    except Exception as exc:  # noqa: BLE001 — the parser raises its own error types
        raise DomainError(
            "Horaires illisibles : utilisez la syntaxe OpenStreetMap, par exemple « Mo-Fr 09:00-12:00,14:00-18:00; "
            "Sa 09:00-12:00 ».",
            code="invalid_opening_hours",
            field="opening_hours",
        ) from exc
    return value


def clean_iban(value: str) -> str:
    try:
        iban = IBAN(value)
    except SchwiftyException as exc:
        raise DomainError(
            "IBAN invalide : vérifiez chaque caractère (la clé de contrôle ne correspond pas ou le format est faux).",
            code="invalid_iban",
            field="iban",
        ) from exc
    if iban.country_code not in SEPA_COUNTRIES:
        raise DomainError("Ce compte n’est pas dans la zone SEPA.", code="iban_not_sepa", field="iban")
    return iban.compact


def clean_bic(value: str, *, iban: str | None = None) -> str:
    try:
        bic = BIC(value)
    except SchwiftyException as exc:
        raise DomainError("BIC invalide (8 ou 11 caractères).", code="invalid_bic", field="bic") from exc
    if iban and bic.country_code != iban[:2] and not (iban[:2] in FRENCH_TERRITORIES and bic.country_code == "FR"):
        raise DomainError("Le BIC ne correspond pas au pays de l’IBAN.", code="bic_iban_mismatch", field="bic")
    return bic.compact


def sniff_document(head: bytes) -> str | None:
    for signature, content_type in DOCUMENT_SIGNATURES.items():
        if head.startswith(signature):
            return content_type
    return None


def clean_document(uploaded) -> str:
    """Returns the detected content type, or refuses the file."""
    if uploaded.size == 0:
        raise DomainError("Le fichier est vide.", code="document_empty", field="documents")
    if uploaded.size > MAX_DOCUMENT_BYTES:
        raise DomainError("Fichier trop lourd : 5 Mo au plus.", code="document_too_large", field="documents")
    head = uploaded.read(16)
    uploaded.seek(0)
    content_type = sniff_document(head)
    if content_type is None:
        raise DomainError(
            "Format non accepté : envoyez un PDF, un PNG ou un JPEG.", code="document_bad_type", field="documents"
        )
    return content_type


FRENCH_TERRITORIES = {"FR", "GP", "MQ", "GF", "RE", "YT", "PM", "BL", "MF", "NC", "PF", "WF"}
SEPA_COUNTRIES = FRENCH_TERRITORIES | {
    "AD", "AT", "BE", "BG", "CH", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "GB", "GI", "GR", "HR", "HU", "IE",
    "IS", "IT", "LI", "LT", "LU", "LV", "MC", "MT", "NL", "NO", "PL", "PT", "RO", "SE", "SI", "SK", "SM", "VA",
}  # fmt: skip
