"""Identifiers of French organisations. SIRET/SIREN are checked with python-stdnum (Luhn and format);
python-stdnum has no RNA module, so the RNA (associations' register) format is checked here: W + 9 digits."""

import re

from stdnum import exceptions as stdnum_exceptions
from stdnum.fr import siren as stdnum_siren
from stdnum.fr import siret as stdnum_siret

from passnum.common.errors import DomainError

RNA_RE = re.compile(r"^W\d{9}$")


def clean_siret(value: str) -> str:
    try:
        return stdnum_siret.validate(value)
    except stdnum_exceptions.ValidationError as exc:
        raise DomainError(
            f"Le SIRET « {value} » n’est pas valide (14 chiffres, clé de contrôle).", code="invalid_siret"
        ) from exc


def clean_siren(value: str) -> str:
    try:
        return stdnum_siren.validate(value)
    except stdnum_exceptions.ValidationError as exc:
        raise DomainError(
            f"Le SIREN « {value} » n’est pas valide (9 chiffres, clé de contrôle).", code="invalid_siren"
        ) from exc


def clean_rna(value: str) -> str:
    compact = value.replace(" ", "").upper()
    if not RNA_RE.match(compact):
        raise DomainError(f"Le numéro RNA « {value} » n’est pas valide (W suivi de 9 chiffres).", code="invalid_rna")
    return compact
