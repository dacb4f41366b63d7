"""The national standard of *lieux de médiation numérique*: import and export. See docs/standard.md.

Import (`import_file`) reads the standard's CSV (v1.0.x or the legacy v0.1.1) and the JSON published by the
national map (cartographie nationale des lieux d'inclusion numérique) and by regional hubs. Every row is validated
with frictionless against the schemas shipped in `places/schemas/` (see SOURCE.md there), then upserted as a *listed*
Site keyed by (source, id). Rejected rows never block valid ones; a file that cannot be read is refused whole; the
whole file is written in one transaction, so a crash leaves nothing of it.

Export (`export_rows`, `export_csv`, `export_json`) writes the qualified sites in v1.0.1, for the national map."""

import codecs
import copy
import csv
import json
import logging
import math
import re
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import IO, Any

import frictionless
import opening_hours
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.text import slugify

from passnum.common.errors import DomainError
from passnum.common.standard import STANDARD_PUBLICS, AccessMode, Service, SpecificSupport
from passnum.geo.models import VINTAGE, Commune
from passnum.geo.selectors import communes_for_postal_code
from passnum.journal.services import journal_record
from passnum.places.enums import QualificationStatus
from passnum.places.models import OWN_SOURCE, Site

logger = logging.getLogger(__name__)

SCHEMA_DIR = Path(__file__).parent / "schemas"
SCHEMA_FILES = {
    "1.0.1": "schema-lieux-mediation-numerique-v1.0.1.json",
    "1.0.2": "schema-lieux-mediation-numerique-v1.0.2-main.json",
    "0.1.1": "schema-lieux-mediation-numerique-v0.1.1.json",
}
V1, V0 = "v1", "v0"
VERSION_LABELS = {V1: "v1.0.x", V0: "v0.1.1 (ancien format)"}
MULTI_SEPARATORS = {V1: "|", V0: ";"}  # between the values of a multi-valued field

EXPORT_SOURCE = "Pass numérique"  # the `source` column of our export
EXPORT_ID_PREFIX = "pass-numerique-"  # `id` of an exported site: EXPORT_ID_PREFIX + Site.pk
RESERVED_SOURCES = {OWN_SOURCE, EXPORT_SOURCE}

BATCH_SIZE = 500  # valid rows written per bulk statement (all in one transaction)
READ_CHUNK = 1 << 20
QUOTE_MAX = 60

# v1.0.2 (main, untagged) adds this label to `formations_labels` but its regex lacks the space.
ETAPES_ANCHOR = r"Collectif ressources et acteurs réemploi \(Normandie\)|"
ETAPES_ALTERNATIVE = r"Étapes numériques ?\(La Poste\)"

SHAPE_FLAT = "tableau plat aux noms de champs du standard"
SHAPE_DATASPACE = "API des lieux d’inclusion numérique (adresse imbriquée : numero_voie, nom_voie…)"
SHAPE_MODEL = "modèle LieuMediationNumerique (adresse, localisation, contact, presentation imbriqués)"
DROPPED_JSON_KEYS = {"mediateurs"}  # people's names and contacts: never stored


class ImportRefused(DomainError):
    """The file itself cannot be imported: nothing of it is saved."""

    code = "import_refused"


# --- Schemas and row validation (frictionless) ------------------------------------------------------------------


@lru_cache
def schema_descriptor(version: str) -> dict:
    """The shipped Table Schema, unchanged ("1.0.1", "1.0.2" or "0.1.1")."""
    with (SCHEMA_DIR / SCHEMA_FILES[version]).open(encoding="utf-8") as f:
        return json.load(f)


def import_descriptor(version: str) -> dict:
    """What rows are validated against: v1.0.1 for v1 rows, plus v1.0.2's "Étapes numériques (La Poste)" in both
    spellings (with and without the space v1.0.2's regex forgets); v0.1.1 for legacy rows."""
    descriptor = copy.deepcopy(schema_descriptor("1.0.1" if version == V1 else "0.1.1"))
    if version == V1:
        constraints = next(f for f in descriptor["fields"] if f["name"] == "formations_labels")["constraints"]
        if ETAPES_ANCHOR not in constraints["pattern"]:
            raise RuntimeError("formations_labels: the shipped v1.0.1 pattern changed, review ETAPES_ANCHOR")
        constraints["pattern"] = constraints["pattern"].replace(ETAPES_ANCHOR, ETAPES_ANCHOR + ETAPES_ALTERNATIVE + "|")
    return descriptor


_VOCABULARY = re.compile(r"^\(\?:\(\?:\^\|(\\\||;)\)\((.*)\)\)\+\$$", re.S)
PATTERN_HINTS = {
    "code_postal": "n’est pas un code postal (5 chiffres)",
    "code_insee": "n’est pas un code INSEE (5 caractères, par exemple 51454 ou 2A004)",
    "pivot": "n’est pas un SIRET, SIREN, RNA ou RIDET (9 à 14 lettres ou chiffres, sans espace)",
    "telephone": "n’est pas au format international sans espace (par exemple +33326353000)",
}


def _quote(value: Any) -> str:
    text = str(value)
    return f"« {text if len(text) <= QUOTE_MAX else text[: QUOTE_MAX - 1] + '…'} »"


@dataclass(frozen=True)
class _Field:
    name: str
    type: str
    constraints: dict
    read: Any  # frictionless cell reader: cell -> (value, notes)
    vocabulary: tuple[str, re.Pattern] | None  # (separator, one value) for the multi-valued fields


class RowValidator:
    """Validates one row (a dict of strings) with frictionless's own cell readers for each field of a shipped Table
    Schema: type casting, `required`, `pattern`, `maxLength`. Uniqueness of `id` is checked by the importer."""

    def __init__(self, descriptor: dict):
        schema = frictionless.Schema.from_descriptor(descriptor)
        self.fields: list[_Field] = []
        for f in schema.fields:
            vocabulary = None
            match = _VOCABULARY.match(f.constraints.get("pattern", ""))
            if match:
                vocabulary = ("|" if match[1] == "\\|" else ";", re.compile(f"(?:{match[2]})"))
            self.fields.append(_Field(f.name, f.type, dict(f.constraints), f.create_cell_reader(), vocabulary))
        self.names = [f.name for f in self.fields]
        self.required = [f.name for f in self.fields if f.constraints.get("required")]
        self.by_name = {f.name: f for f in self.fields}

    def validate(self, row: dict[str, str]) -> tuple[dict[str, Any], list[str]]:
        """Typed values of the valid cells, and one French message per invalid cell."""
        values, invalid = self.check(row)
        return values, [message for _f, message in invalid]

    def check(self, row: dict[str, str]) -> tuple[dict[str, Any], list[tuple[_Field, str]]]:
        values: dict[str, Any] = {}
        invalid: list[tuple[_Field, str]] = []
        for f in self.fields:
            cell = unicodedata.normalize("NFC", row.get(f.name) or "").strip()
            value, notes = f.read(cell)
            if notes:
                invalid.append((f, self._explain(f, cell, notes)))
            else:
                values[f.name] = value
        return values, invalid

    def valid_items(self, name: str, value: str) -> list[str]:
        """The values of a multi-valued cell that belong to the field's vocabulary."""
        separator, one = self.by_name[name].vocabulary
        return [item for item in value.split(separator) if one.fullmatch(item)]

    @staticmethod
    def _explain(f: _Field, cell: str, notes: dict) -> str:
        if "required" in notes:
            return f"{f.name} : champ obligatoire vide"
        if "type" in notes:
            if f.type == "number":
                return f"{f.name} : {_quote(cell)} n’est pas un nombre (point décimal, par exemple 49.2583)"
            if f.type == "date":
                return f"{f.name} : {_quote(cell)} n’est pas une date AAAA-MM-JJ"
            return f"{f.name} : {_quote(cell)} n’est pas du type attendu ({f.type})"
        if "pattern" in notes:
            if f.vocabulary:
                separator, one = f.vocabulary
                wrong = [item for item in cell.split(separator) if not one.fullmatch(item)]
                listed = ", ".join(_quote(item) for item in wrong[:5]) + (" …" if len(wrong) > 5 else "")
                return f"{f.name} : hors du vocabulaire du standard : {listed} (séparateur « {separator} »)"
            return f"{f.name} : {_quote(cell)} {PATTERN_HINTS.get(f.name, 'ne respecte pas le format du standard')}"
        if "maxLength" in notes:
            return f"{f.name} : {len(cell)} caractères, {f.constraints['maxLength']} au plus"
        return f"{f.name} : {_quote(cell)} refusé ({', '.join(notes)})"


@lru_cache
def row_validator(version: str) -> RowValidator:
    return RowValidator(import_descriptor(version))


@lru_cache
def export_validator() -> RowValidator:
    """v1.0.1 exactly, as shipped: what the export must satisfy."""
    return RowValidator(copy.deepcopy(schema_descriptor("1.0.1")))


def _distinctive_fields() -> tuple[set[str], set[str], set[str]]:
    v1, v0 = set(row_validator(V1).names), set(row_validator(V0).names)
    return v1 - v0, v0 - v1, v1 | v0


def _guess_version(names: Iterable[str], services: str = "") -> str | None:
    """v1 or v0 from the field names (and, when they say nothing, from the services' vocabulary)."""
    only_v1, only_v0, known = _distinctive_fields()
    names = set(names)
    if not names & known:
        return None
    v1_score, v0_score = len(names & only_v1), len(names & only_v0)
    if v1_score != v0_score:
        return V1 if v1_score > v0_score else V0
    if (
        services
        and row_validator(V0).valid_items("services", services)
        and not row_validator(V1).valid_items("services", services.replace(";", "|"))
    ):
        return V0
    return V1


# --- Reading files ----------------------------------------------------------------------------------------------


@dataclass
class Record:
    """One row of the file: `line` is the CSV line where it starts, or the position of a JSON record (1, 2, …)."""

    line: int
    row: dict[str, str] | None  # standard field → raw text, only the fields present in the file
    id: str = ""
    error: str = ""


def check_encoding(path: Path) -> None:
    """UTF-8, with or without BOM. Anything else is refused whole (see docs/standard.md)."""
    with path.open("rb") as f:
        head = f.read(READ_CHUNK)
        if len(head) < READ_CHUNK and not head.removeprefix(codecs.BOM_UTF8).strip():
            raise ImportRefused("Le fichier est vide : rien à importer.")
        if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            raise ImportRefused(
                "Le fichier est encodé en UTF-16 : réenregistrez-le en UTF-8 (dans un tableur : « CSV UTF-8 ») puis "
                "relancez l’import."
            )
        f.seek(0)
        decoder = codecs.getincrementaldecoder("utf-8")()
        line = 1
        while chunk := f.read(READ_CHUNK):
            pending = len(decoder.getstate()[0])
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                at = max(exc.start - pending, 0)
                line += chunk.count(b"\n", 0, at)
                byte = chunk[at : at + 1]
                guess = byte.decode("cp1252", errors="replace")
                hint = (
                    f" (sans doute « {guess} » en Windows-1252 / Latin-1)"
                    if guess.isprintable() and guess != "\ufffd"
                    else ""
                )
                raise ImportRefused(
                    f"Le fichier n’est pas encodé en UTF-8 : octet 0x{byte.hex().upper()} ligne {line}{hint}. "
                    "Le standard impose l’UTF-8 : réenregistrez le fichier en UTF-8 (dans un tableur : « CSV UTF-8 ») "
                    "puis relancez l’import."
                ) from exc
            line += chunk.count(b"\n")
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError as exc:
            raise ImportRefused("Le fichier se termine au milieu d’un caractère UTF-8 : est-il tronqué ?") from exc


class CsvSource:
    """A CSV file of the standard: delimiter sniffed on the header (`,` as in the official examples, or `;`, or
    tab), version from the header's field names."""

    kind = "csv"
    unit = "ligne"

    def __init__(self, path: Path):
        self.path = path
        with path.open(encoding="utf-8-sig", newline="") as f:
            first = f.readline()
        self.delimiter = self._sniff(first)
        with path.open(encoding="utf-8-sig", newline="") as f:
            try:
                header = next(csv.reader(f, delimiter=self.delimiter))
            except csv.Error as exc:
                raise ImportRefused(f"En-tête CSV illisible : {exc}.") from exc
        self.header = [h.strip().lower() for h in header]
        version = _guess_version(self.header)
        if version is None:
            raise ImportRefused(
                "En-tête non reconnu : ce fichier ne suit pas le standard des lieux de médiation numérique "
                f"(colonnes lues : {', '.join(self.header[:8]) or 'aucune'}{' …' if len(self.header) > 8 else ''})."
            )
        self.version = version
        doubled = sorted(name for name, n in Counter(h for h in self.header if h).items() if n > 1)
        if doubled:
            raise ImportRefused(f"Colonne en double dans l’en-tête : {', '.join(doubled)}.")
        validator = row_validator(version)
        missing = [name for name in validator.required if name not in self.header]
        if missing:
            raise ImportRefused(
                f"Colonnes obligatoires absentes (standard {VERSION_LABELS[version]}) : {', '.join(missing)}. "
                "Ajoutez-les (elles peuvent être vides pour les champs facultatifs, pas pour celles-ci)."
            )
        self.positions = [(name, i) for i, name in enumerate(self.header) if name in validator.by_name]
        self.ignored = [h for h in self.header if h and h not in validator.by_name]
        delimiter = "tabulation" if self.delimiter == "\t" else f"« {self.delimiter} »"
        self.label = f"CSV, standard {VERSION_LABELS[version]}, séparateur {delimiter}"

    @staticmethod
    def _sniff(first_line: str) -> str:
        known = _distinctive_fields()[2]

        def score(delimiter: str) -> int:
            try:
                cells = next(csv.reader([first_line], delimiter=delimiter), [])
            except csv.Error:
                return -1
            return sum(cell.strip().lower() in known for cell in cells)

        return max([",", ";", "\t"], key=score)

    def notes(self) -> list[str]:
        if self.ignored:
            return [f"Colonnes hors du standard, ignorées : {', '.join(self.ignored)}."]
        return []

    def __iter__(self) -> Iterator[Record]:
        width = len(self.header)
        id_at = self.header.index("id")
        with self.path.open(encoding="utf-8-sig", newline="") as f:
            reader = csv.reader(f, delimiter=self.delimiter)
            try:
                next(reader)
                previous = reader.line_num
                for cells in reader:
                    line, previous = previous + 1, reader.line_num
                    if not any(cell.strip() for cell in cells):
                        continue
                    if len(cells) > width and not any(cell.strip() for cell in cells[width:]):
                        cells = cells[:width]
                    if len(cells) != width:
                        yield Record(
                            line,
                            None,
                            cells[id_at].strip() if len(cells) > id_at else "",
                            f"{len(cells)} valeurs au lieu de {width} (séparateur ou guillemets mal placés ?)",
                        )
                        continue
                    yield Record(line, {name: cells[i] for name, i in self.positions}, cells[id_at].strip())
            except csv.Error as exc:
                raise ImportRefused(
                    f"CSV illisible ligne {reader.line_num} ({exc}) : un guillemet n’est-il pas fermé ?"
                ) from exc


class _JsonArrayReader:
    """Streams the items of a top-level JSON array without loading the whole file: at most one chunk plus the item
    being read are held in memory."""

    def __init__(self, f: IO[str]):
        self.f = f
        self.buf, self.pos, self.eof, self.base_line = "", 0, False, 1
        self.decoder = json.JSONDecoder()

    def _fill(self) -> bool:
        chunk = self.f.read(READ_CHUNK)
        if not chunk:
            self.eof = True
            return False
        self.base_line += self.buf.count("\n", 0, self.pos)
        self.buf, self.pos = self.buf[self.pos :] + chunk, 0
        return True

    def _skip_ws(self) -> str:
        """The next significant character ("" at the end of the file)."""
        while True:
            while self.pos < len(self.buf) and self.buf[self.pos] in " \t\r\n":
                self.pos += 1
            if self.pos < len(self.buf):
                return self.buf[self.pos]
            if not self._fill():
                return ""

    def _line(self, at: int) -> int:
        return self.base_line + self.buf.count("\n", 0, at)

    def _refused(self, at: int, what: str) -> ImportRefused:
        return ImportRefused(f"JSON invalide ligne {self._line(at)} : {what}.")

    def _value(self) -> Any:
        self._skip_ws()  # raw_decode does not skip leading whitespace
        while True:
            try:
                value, end = self.decoder.raw_decode(self.buf, self.pos)
            except json.JSONDecodeError as exc:
                truncated = exc.pos >= len(self.buf) - 6 or exc.msg.startswith("Unterminated string")
                if truncated and not self.eof and self._fill():
                    continue
                raise self._refused(exc.pos, exc.msg) from exc
            if end == len(self.buf) and not self.eof and self._fill():
                continue  # a number cut by the chunk boundary: read on
            self.pos = end
            return value

    def __iter__(self) -> Iterator[Any]:
        if self._skip_ws() != "[":
            raise ImportRefused(
                "JSON : un tableau d’objets [ {…}, {…} ] est attendu, comme ceux que publient la cartographie "
                "nationale et les hubs."
            )
        self.pos += 1
        if self._skip_ws() == "]":
            self.pos += 1
        else:
            while True:
                yield self._value()
                c = self._skip_ws()
                self.pos += 1
                if c == "]":
                    break
                if c != ",":
                    raise self._refused(self.pos - 1, "« , » ou « ] » attendu après un enregistrement")
        if self._skip_ws():
            raise self._refused(self.pos, "contenu après la fin du tableau")


def _json_cell(value: Any, name: str, separator: str) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int) and name in ("code_postal", "code_insee") and 1000 <= value <= 9999:
        return f"{value:05d}"  # a numeric export lost the leading zero (01000, 02100…)
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return separator.join(_json_cell(v, name, separator) for v in value if v not in (None, ""))
    if isinstance(value, dict):
        raise ValueError(f"{name} : objet JSON inattendu")
    text = str(value)
    if name == "date_maj" and re.match(r"^\d{4}-\d{2}-\d{2}T", text):
        return text[:10]  # the model's Date, serialised as an ISO datetime
    return text


def _flatten(obj: dict) -> tuple[dict[str, Any], str]:
    """One JSON record as the standard's flat fields, and its shape.

    - flat: the standard's field names at the top level (mednum-cli's JSON output, hubs);
    - dataspace: `adresse` = {numero_voie, repetition, nom_voie, code_postal, code_insee, commune} (the national map's
      API, `api.inclusion-numerique.anct.gouv.fr`), the street rebuilt as the map itself does;
    - model: `adresse` = {voie, code_postal, commune, code_insee, complement_adresse}, `localisation`, `contact`,
      `presentation` (the `LieuMediationNumerique` model of @gouvfr-anct/lieux-de-mediation-numerique)."""
    flat = {k: v for k, v in obj.items() if not isinstance(v, dict) and k not in DROPPED_JSON_KEYS}
    shape = SHAPE_FLAT
    adresse = obj.get("adresse")
    if isinstance(adresse, dict):
        if "voie" in adresse:
            shape, street = SHAPE_MODEL, adresse.get("voie")
        else:
            shape = SHAPE_DATASPACE
            number = "".join(str(adresse[k]) for k in ("numero_voie", "repetition") if adresse.get(k))
            street = " ".join(str(p) for p in (number, adresse.get("nom_voie")) if p)
        flat["adresse"] = street
        for key in ("code_postal", "commune", "code_insee", "complement_adresse"):
            if adresse.get(key) is not None:
                flat.setdefault(key, adresse[key])
    nested = {
        "localisation": {"latitude": "latitude", "longitude": "longitude"},
        "contact": {
            "telephone": "telephone",
            "courriels": "courriels",
            "courriel": "courriels",
            "site_web": "site_web",
        },
        "presentation": {"resume": "presentation_resume", "detail": "presentation_detail"},
    }
    for parent, keys in nested.items():
        if isinstance(obj.get(parent), dict):
            shape = SHAPE_MODEL if shape == SHAPE_FLAT else shape
            for key, target in keys.items():
                if obj[parent].get(key) is not None:
                    flat.setdefault(target, obj[parent][key])
    if "typologies" in flat:
        flat.setdefault("typologie", flat.pop("typologies"))
    return flat, shape


class JsonSource:
    """A JSON array of places. The version (v1 or v0) is decided on the first record; each record's shape is
    recognised on its own (see `_flatten`)."""

    kind = "json"
    unit = "enregistrement"

    def __init__(self, path: Path):
        self.path = path
        self.version: str | None = None
        self.shapes: Counter[str] = Counter()

    @property
    def label(self) -> str:
        shapes = " ; ".join(self.shapes) or SHAPE_FLAT
        version = VERSION_LABELS[self.version] if self.version else "version inconnue"
        return f"JSON ({shapes}), standard {version}"

    def notes(self) -> list[str]:
        return []

    def __iter__(self) -> Iterator[Record]:
        with self.path.open(encoding="utf-8-sig") as f:
            for index, obj in enumerate(_JsonArrayReader(f), start=1):
                if not isinstance(obj, dict):
                    yield Record(index, None, "", "cet enregistrement n’est pas un objet JSON")
                    continue
                flat, shape = _flatten(obj)
                self.shapes[shape] += 1
                raw_id = str(flat.get("id") or "").strip()
                if self.version is None:
                    services = flat.get("services")
                    services = ";".join(services) if isinstance(services, list) else str(services or "")
                    self.version = _guess_version(flat, services) or V1
                wanted, other = ("courriels", "courriel") if self.version == V1 else ("courriel", "courriels")
                if wanted not in flat and other in flat:
                    flat[wanted] = flat.pop(other)
                separator = MULTI_SEPARATORS[self.version]
                try:
                    row = {
                        name: _json_cell(flat[name], name, separator)
                        for name in row_validator(self.version).names
                        if name in flat
                    }
                except ValueError as exc:
                    yield Record(index, None, raw_id, str(exc))
                    continue
                yield Record(index, row, raw_id)


def open_source(path: Path) -> CsvSource | JsonSource:
    """Checks the encoding, then recognises JSON (first character `[` or `{`) or CSV. Raises ImportRefused."""
    if not path.is_file():
        raise ImportRefused(f"Fichier introuvable : {path}.")
    check_encoding(path)
    with path.open(encoding="utf-8-sig") as f:
        start = f.read(4096).lstrip()
    if start[:1] in ("[", "{"):
        return JsonSource(path)
    return CsvSource(path)


# --- Mapping a valid row to a Site --------------------------------------------------------------------------------

SERVICE_BY_LABEL = {label: code for code, label in Service.choices}
PUBLIC_BY_LABEL = {label: code for code, label in STANDARD_PUBLICS.items()}
SUPPORT_BY_LABEL = {label: code for code, label in SpecificSupport.choices}
ACCESS_BY_LABEL = {label: code for code, label in AccessMode.choices}

# v0.1.1 → our codes. Ours, after the v0 → v1 correspondences used by the national map's import configurations
# (anct-cartographie-nationale/mednum-cli, assets/input/*/*.config.json).
V0_SERVICES = {
    "Devenir autonome dans les démarches administratives": Service.ADMIN_PROCEDURES,
    "Réaliser des démarches administratives avec un accompagnement": Service.ADMIN_PROCEDURES,
    "Accompagner les démarches de santé": Service.ADMIN_PROCEDURES,
    "Prendre en main un smartphone ou une tablette": Service.EVERYDAY_TOOLS,
    "Prendre en main un ordinateur": Service.EVERYDAY_TOOLS,
    "Utiliser le numérique au quotidien": Service.EVERYDAY_TOOLS,
    "Approfondir ma culture numérique": Service.UNDERSTANDING,
    "Promouvoir la citoyenneté numérique": Service.UNDERSTANDING,
    "Favoriser mon insertion professionnelle": Service.EMPLOYMENT,
    "Créer et développer mon entreprise": Service.EMPLOYMENT,
    "Accéder à une connexion internet": Service.ACCESS,
    "Accéder à du matériel": Service.ACCESS,
    "S'équiper en matériel informatique": Service.EQUIPMENT,
    "Créer avec le numérique": Service.LEISURE,
    "Soutenir la parentalité et l'éducation avec le numérique": Service.PARENTING,
}
V0_PUBLICS = {
    "Seniors (+ 65 ans)": "seniors",
    "Familles/enfants": "familles_enfants",
    "Jeunes (16-26 ans)": "jeunes",
    "Uniquement femmes": "femmes",
}  # "Adultes" is everyone; "Handicaps psychiques" has no counterpart in v1
V0_SUPPORTS = {
    "Public langues étrangères": SpecificSupport.OTHER_LANGUAGES,
    "Déficience visuelle": SpecificSupport.VISUAL,
    "Surdité": SpecificSupport.DEAFNESS,
    "Handicaps mentaux : déficiences limitant les activités d'une personne": SpecificSupport.MENTAL,
    "Personnes en situation d'illettrisme": SpecificSupport.ILLITERACY,
}
SITE_FIELDS = [
    "name",
    "pivot",
    "address",
    "address_complement",
    "postal_code",
    "commune_id",
    "commune_name",
    "latitude",
    "longitude",
    "opening_hours",
    "services",
    "publics",
    "supports",
    "access_modes",
    "typologie",
    "phone",
    "email",
    "website",
    "booking_url",
    "summary",
    "description",
    "updated_on",
    "standard_row",
]
PIVOT_RE = re.compile(r"^[a-zA-Z0-9]{9,14}$")


SERVICE_ORDER, SUPPORT_ORDER, ACCESS_ORDER = list(Service.values), list(SpecificSupport.values), list(AccessMode.values)


@lru_cache
def _field_max(name: str) -> int:
    return Site._meta.get_field(name).max_length


def _items(value: str | None, separator: str) -> list[str]:
    return [item.strip() for item in (value or "").split(separator) if item.strip()]


def _codes(items: Iterable[str], mapping: dict[str, str], order: Iterable[str]) -> list[str]:
    found = {mapping[item] for item in items if item in mapping}
    return [code for code in order if code in found]


def _join_within(items: list[str], separator: str, limit: int) -> str:
    """As many whole items as fit in `limit` characters."""
    kept = ""
    for item in items:
        candidate = f"{kept}{separator}{item}" if kept else item
        if len(candidate) > limit:
            break
        kept = candidate
    return kept


@dataclass
class _Mapped:
    fields: dict[str, Any]
    warnings: list[str]


def map_row(values: dict[str, Any], version: str, raw: dict[str, str]) -> _Mapped:
    """The Site fields of a valid row (commune excepted: it needs the geography)."""
    sep = MULTI_SEPARATORS[version]
    warnings: list[str] = []

    def text(name: str) -> str:
        return (values.get(name) or "").strip() if isinstance(values.get(name), str) else ""

    def cut(value: str, site_field: str) -> str:
        return value[: _field_max(site_field)]

    latitude, longitude = values.get("latitude"), values.get("longitude")
    if latitude is not None and longitude is not None:
        latitude, longitude = float(latitude), float(longitude)
        in_range = math.isfinite(latitude) and math.isfinite(longitude)
        if not (in_range and -90 <= latitude <= 90 and -180 <= longitude <= 180):
            warnings.append(f"coordonnées hors limites ({latitude}, {longitude}) : non reprises")
            latitude = longitude = None
    elif latitude is not None or longitude is not None:
        warnings.append("latitude sans longitude (ou l’inverse) : coordonnées non reprises")
        latitude = longitude = None

    hours = text("horaires")
    if len(hours) > _field_max("opening_hours"):
        warnings.append(f"horaires trop longs ({len(hours)} caractères) : non repris")
        hours = ""

    email_field = "courriels" if version == V1 else "courriel"
    emails = _items(text(email_field), "|" if version == V1 else ";")
    email = ""
    for candidate in emails:
        try:
            validate_email(candidate)
        except ValidationError:
            continue
        if len(candidate) <= _field_max("email"):
            email = candidate
            break
    if emails and not email:
        warnings.append(f"{email_field} : aucune adresse valide dans {_quote(text(email_field))}, non reprise")

    def first_url(name: str, separator: str, site_field: str) -> str:
        urls = [u for u in _items(text(name), separator) if len(u) <= _field_max(site_field)]
        return urls[0] if urls else ""

    if version == V1:
        services = _codes(_items(text("services"), sep), SERVICE_BY_LABEL, SERVICE_ORDER)
        publics = _codes(_items(text("publics_specifiquement_adresses"), sep), PUBLIC_BY_LABEL, STANDARD_PUBLICS)
        supports = _codes(_items(text("prise_en_charge_specifique"), sep), SUPPORT_BY_LABEL, SUPPORT_ORDER)
        access_modes = _codes(_items(text("modalites_acces"), sep), ACCESS_BY_LABEL, ACCESS_ORDER)
        booking = first_url("prise_rdv", "|", "booking_url")
    else:
        services = _codes(_items(text("services"), sep), V0_SERVICES, SERVICE_ORDER)
        publics_accueillis = _items(text("publics_accueillis"), sep)
        publics = _codes(publics_accueillis, V0_PUBLICS, STANDARD_PUBLICS)
        supports = _codes(publics_accueillis, V0_SUPPORTS, SUPPORT_ORDER)
        access_modes = []
        booking = first_url("prise_rdv", ";", "booking_url")

    pivot = text("pivot").replace(" ", "")
    if not PIVOT_RE.fullmatch(pivot):
        if pivot:
            warnings.append(f"pivot {_quote(pivot)} : ni SIRET, ni SIREN, ni RNA, non repris")
        pivot = ""

    fields = {
        "name": cut(text("nom"), "name"),
        "pivot": pivot,
        "address": cut(text("adresse"), "address"),
        "address_complement": cut(text("complement_adresse"), "address_complement"),
        "postal_code": text("code_postal"),
        "commune_name": cut(text("commune"), "commune_name"),
        "latitude": latitude,
        "longitude": longitude,
        "opening_hours": hours,
        "services": services,
        "publics": publics,
        "supports": supports,
        "access_modes": access_modes,
        "typologie": _join_within(_items(text("typologie"), sep), "|", _field_max("typologie")),
        "phone": text("telephone")[: _field_max("phone")],
        "email": email,
        "website": first_url("site_web", sep, "website"),
        "booking_url": booking,
        "summary": cut(text("presentation_resume"), "summary"),
        "description": text("presentation_detail"),
        "updated_on": values["date_maj"],
        "standard_row": raw,
    }
    return _Mapped(fields, warnings)


def _commune_key(name: str) -> str:
    """A commune name for comparisons: no accents, no case, no punctuation, "St" = "Saint", no CEDEX."""
    name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().upper()
    name = re.sub(r"[^A-Z0-9]+", " ", name)
    name = re.sub(r"\bCEDEX\b.*$", "", name)
    name = re.sub(r"\bSTE\b", "SAINTE", re.sub(r"\bST\b", "SAINT", name))
    return " ".join(name.split())


# --- The import -------------------------------------------------------------------------------------------------


@dataclass
class RowIssue:
    line: int
    id: str
    reason: str


@dataclass
class ImportReport:
    file_name: str
    source: str = ""
    format: str = ""
    unit: str = "ligne"
    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: list[RowIssue] = field(default_factory=list)
    rejected: list[RowIssue] = field(default_factory=list)
    warnings: list[RowIssue] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    refused: str = ""
    dry_run: bool = False

    @property
    def readable(self) -> bool:
        return not self.refused

    def _where(self, issue: RowIssue) -> str:
        where = f"{self.unit} {issue.line}"
        return f"{where} (id {_quote(issue.id)})" if issue.id else where

    def as_text(self) -> str:
        def n(value: int) -> str:
            return f"{value:,}".replace(",", "\u202f")

        title = f"Import de « {self.file_name} »"
        if self.refused:
            return f"{title} : fichier refusé.\n{self.refused}\nRien n’a été importé."
        lines = [
            f"{title} — {self.format}, source par défaut « {self.source} »",
            f"  {'lignes lues' if self.unit == 'ligne' else 'enregistrements lus'} : {n(self.rows)}",
            f"  lieux créés : {n(self.created)}",
            f"  lieux mis à jour : {n(self.updated)}",
            f"  lieux inchangés : {n(self.unchanged)}",
            f"  ignorés : {n(len(self.skipped))}",
            f"  rejetés : {n(len(self.rejected))}",
        ]
        lines += self.notes
        for title, issues in (
            ("Rejets (rien d’enregistré pour ces lignes) :", self.rejected),
            ("Ignorés :", self.skipped),
            ("Avertissements (lignes importées) :", self.warnings),
        ):
            if issues:
                lines.append(title)
                lines += [f"  {self._where(i)} : {i.reason}" for i in sorted(issues, key=lambda i: i.line)]
        if self.dry_run:
            lines.append("Simulation (--dry-run) : rien n’a été enregistré.")
        return "\n".join(lines)


@dataclass
class _Pending:
    line: int
    source: str
    source_id: str
    fields: dict[str, Any]
    insee: str
    postal: str
    commune_text: str


class _Importer:
    def __init__(self, report: ImportReport, default_source: str, batch_size: int):
        self.report = report
        self.default_source = default_source
        self.batch_size = batch_size
        self.seen: dict[tuple[str, str], int] = {}
        self.batch: list[_Pending] = []
        self.communes: dict[str, str | None] = {}  # INSEE code → name (None: unknown)
        self.by_postal_code: dict[str, list[tuple[str, str, str]]] = {}  # → [(code, name, kind)]
        self.unreadable_hours = 0

    def reject(self, line: int, source_id: str, reason: str) -> None:
        self.report.rejected.append(RowIssue(line, source_id, reason))

    def add(self, record: Record, version: str) -> None:
        self.report.rows += 1
        if record.error:
            return self.reject(record.line, record.id, record.error)
        row = record.row
        source_id = unicodedata.normalize("NFC", record.id).strip()
        source = unicodedata.normalize("NFC", row.get("source") or "").strip() or self.default_source
        if source_id:
            first = self.seen.setdefault((source, source_id), record.line)
            if first != record.line:
                return self.reject(
                    record.line,
                    source_id,
                    f"identifiant en double pour la source {_quote(source)} : déjà vu "
                    f"{self.report.unit} {first}, seule la première occurrence est retenue",
                )
        values, errors = row_validator(version).validate(row)
        if errors:
            return self.reject(record.line, source_id, " ; ".join(errors))
        source_id = values["id"].strip()
        if len(source_id) > _field_max("source_id"):
            return self.reject(record.line, source_id, f"id : {_field_max('source_id')} caractères au plus")
        if len(source) > _field_max("source"):
            return self.reject(record.line, source_id, f"source : {_field_max('source')} caractères au plus")
        if source == EXPORT_SOURCE:
            self.report.skipped.append(
                RowIssue(record.line, source_id, "lieu publié par le Pass numérique lui-même : déjà connu ici")
            )
            return None
        if source == OWN_SOURCE:
            return self.reject(record.line, source_id, f"source {_quote(OWN_SOURCE)} réservée à la plateforme")
        postal = values["code_postal"]
        if not postal.isascii():
            return self.reject(record.line, source_id, f"code_postal : {_quote(postal)} : chiffres 0 à 9 attendus")
        mapped = map_row(values, version, row)
        self.report.warnings += [RowIssue(record.line, source_id, w) for w in mapped.warnings]
        if mapped.fields["opening_hours"]:
            try:
                opening_hours.OpeningHours(mapped.fields["opening_hours"])
            except Exception:  # noqa: BLE001 — the parser raises its own error types; hours are kept as-is
                self.unreadable_hours += 1
        self.batch.append(
            _Pending(
                record.line,
                source,
                source_id,
                mapped.fields,
                (values.get("code_insee") or "").upper(),
                postal,
                values["commune"],
            )
        )
        if len(self.batch) >= self.batch_size:
            self.flush()
        return None

    def _resolve_communes(self, batch: list[_Pending]) -> list[_Pending]:
        wanted = {p.insee for p in batch if p.insee and p.insee not in self.communes}
        self.communes.update(dict.fromkeys(wanted))
        self.communes.update(Commune.objects.filter(code__in=wanted).values_list("code", "name"))
        kept = []
        for p in batch:
            if p.insee:
                name = self.communes[p.insee]
                if name is None:
                    self.reject(p.line, p.source_id, f"code_insee : commune {p.insee} inconnue du {VINTAGE}")
                    continue
                code = p.insee
            else:
                code, name, problem = self._by_postal_code(p.postal, p.commune_text)
                if problem:
                    self.reject(p.line, p.source_id, problem)
                    continue
            p.fields["commune_id"], p.fields["commune_name"] = code, name
            kept.append(p)
        return kept

    def _by_postal_code(self, postal: str, commune_text: str) -> tuple[str, str, str]:
        if postal not in self.by_postal_code:
            self.by_postal_code[postal] = list(
                communes_for_postal_code(code=postal).values_list("code", "name", "kind")
            )
        candidates = self.by_postal_code[postal]
        if not candidates:
            return "", "", f"code_postal : {postal} ne correspond à aucune commune (indiquez code_insee)"
        key = _commune_key(commune_text)
        matching = [c for c in candidates if _commune_key(c[1]) == key]
        if len(matching) > 1:
            matching = [c for c in matching if c[2] == "actuelle"] or matching
        if len(matching) == 1:
            return matching[0][0], matching[0][1], ""
        if not matching and len({c[0] for c in candidates}) == 1:
            return candidates[0][0], candidates[0][1], ""
        names = ", ".join(sorted({c[1] for c in candidates})[:6])
        return (
            "",
            "",
            (
                f"commune {_quote(commune_text)} introuvable parmi celles du code postal {postal} ({names}) : "
                "indiquez code_insee"
            ),
        )

    def flush(self) -> None:
        batch, self.batch = self._resolve_communes(self.batch), []
        if not batch:
            return
        existing: dict[tuple[str, str], Site] = {}
        by_source: dict[str, list[str]] = defaultdict(list)
        for p in batch:
            by_source[p.source].append(p.source_id)
        for source, ids in by_source.items():
            for site in Site.objects.select_for_update(of=("self",)).filter(source=source, source_id__in=ids):
                existing[(source, site.source_id)] = site
        now = timezone.now()
        to_create, to_update = [], []
        for p in batch:
            site = existing.get((p.source, p.source_id))
            if site is None:
                to_create.append(
                    Site(
                        source=p.source,
                        source_id=p.source_id,
                        status=QualificationStatus.LISTED,
                        organisation=None,
                        created_at=now,
                        **p.fields,
                    )
                )
            elif site.organisation_id is not None or site.status != QualificationStatus.LISTED:
                self.report.skipped.append(
                    RowIssue(
                        p.line, p.source_id, "lieu rattaché à une structure inscrite : jamais écrasé par un import"
                    )
                )
            elif all(getattr(site, name) == value for name, value in p.fields.items()):
                self.report.unchanged += 1
            else:
                for name, value in p.fields.items():
                    setattr(site, name, value)
                site.updated_at = now
                to_update.append(site)
        Site.objects.bulk_create(to_create)
        Site.objects.bulk_update(to_update, [*SITE_FIELDS, "updated_at"])
        self.report.created += len(to_create)
        self.report.updated += len(to_update)


def default_source_for(path: Path) -> str:
    """The source of rows whose `source` column is empty, when no --source is given: the file's name."""
    slug = slugify(path.stem)[:100] or "import"
    return f"fichier-{slug}"[:100] if slug in RESERVED_SOURCES else slug


def import_file(
    path: Path | str, *, source: str = "", dry_run: bool = False, batch_size: int = BATCH_SIZE
) -> ImportReport:
    """Imports a file of the standard as listed sites. A row's `source` column, else `source`, else the file's name
    (see `default_source_for`) namespaces its `id`. Returns the report; never raises for a bad file or row (a refused
    file has `report.refused` set and nothing saved). Database errors propagate, after rolling everything back."""
    path = Path(path)
    source = source.strip() or default_source_for(path)
    report = ImportReport(file_name=path.name, source=source, dry_run=dry_run)
    try:
        if source in RESERVED_SOURCES:
            raise ImportRefused(f"La source {_quote(source)} est réservée aux lieux inscrits sur la plateforme.")
        reader = open_source(path)
        report.unit = reader.unit
        importer = _Importer(report, source, batch_size)
        with transaction.atomic():
            for record in reader:
                importer.add(record, reader.version)
            importer.flush()
            report.format = reader.label
            report.notes += reader.notes()
            if importer.unreadable_hours:
                report.notes.append(
                    f"{importer.unreadable_hours} lieu(x) aux horaires hors syntaxe OpenStreetMap : texte conservé "
                    "tel quel (à corriger lors de l’inscription)."
                )
            journal_record(
                action="places.import",
                data={
                    "file": path.name[:200],
                    "source": source,
                    "format": report.format,
                    "rows": report.rows,
                    "created": report.created,
                    "updated": report.updated,
                    "unchanged": report.unchanged,
                    "skipped": len(report.skipped),
                    "rejected": len(report.rejected),
                },
            )
            if dry_run:
                transaction.set_rollback(True)
    except ImportRefused as exc:
        return ImportReport(file_name=path.name, source=source, refused=exc.message, dry_run=dry_run)
    return report


# --- Export -------------------------------------------------------------------------------------------------------

CARRIED_FIELDS = [  # fields we do not model, carried over from an imported row when they are valid v1.0.1
    "itinerance",
    "structure_parente",
    "dispositif_programmes_nationaux",
    "formations_labels",
    "autres_formations_labels",
    "modalites_accompagnement",
    "fiche_acces_libre",
]
PASS_FEES = "Gratuit sous condition"
FEES_ORDER = ["Gratuit", "Gratuit sous condition", "Payant"]


def open_data_sites() -> QuerySet[Site]:
    """What the open data publishes: qualified sites of active organisations."""
    return (
        Site.objects.filter(
            status=QualificationStatus.QUALIFIED, organisation__isnull=False, organisation__is_active=True
        )
        .select_related("organisation")
        .order_by("id")
    )


def _phone(value: str) -> str:
    number = re.sub(r"[\s.\-()]", "", value)
    return "+33" + number[1:] if re.fullmatch(r"0\d{9}", number) else number


def _number(value: float | None) -> str:
    return "" if value is None else repr(float(value))


def _export_row(site: Site) -> dict[str, str] | None:
    validator = export_validator()
    org = site.organisation
    candidates = [site.pivot] + ([org.siret, org.siren, org.rna] if org else [])
    pivot = next((c for c in candidates if c and PIVOT_RE.fullmatch(c)), "")
    original = site.standard_row if isinstance(site.standard_row, dict) else {}
    carried = {}
    for name in CARRIED_FIELDS:
        value = original.get(name)
        if not isinstance(value, str):
            continue
        if validator.by_name[name].vocabulary:
            value = "|".join(validator.valid_items(name, value.strip()))
        carried[name] = value.strip()
    fees = set(validator.valid_items("frais_a_charge", original.get("frais_a_charge") or "")) | {PASS_FEES}
    updated = max(site.updated_on, timezone.localdate(site.updated_at)) if site.updated_at else site.updated_on
    row = {
        "id": f"{EXPORT_ID_PREFIX}{site.pk}",
        "pivot": pivot,
        "nom": site.name,
        "commune": site.commune_name,
        "code_postal": site.postal_code,
        "code_insee": site.commune_id or "",
        "adresse": site.address,
        "complement_adresse": site.address_complement,
        "latitude": _number(site.latitude),
        "longitude": _number(site.longitude),
        "typologie": site.typologie,
        "telephone": _phone(site.phone),
        "courriels": site.email,
        "site_web": site.website,
        "horaires": site.opening_hours,
        "presentation_resume": site.summary,
        "presentation_detail": site.description,
        "source": EXPORT_SOURCE,
        "date_maj": updated.isoformat(),
        "services": "|".join(Service(code).label for code in Service.values if code in site.services),
        "publics_specifiquement_adresses": "|".join(
            label for code, label in STANDARD_PUBLICS.items() if code in site.publics
        ),
        "prise_en_charge_specifique": "|".join(
            label for code, label in SpecificSupport.choices if code in site.supports
        ),
        "frais_a_charge": "|".join(f for f in FEES_ORDER if f in fees),
        "modalites_acces": "|".join(label for code, label in AccessMode.choices if code in site.access_modes),
        "prise_rdv": site.booking_url,
        **carried,
    }
    row = {name: unicodedata.normalize("NFC", row.get(name) or "").strip() for name in validator.names}
    for f, message in validator.check(row)[1]:
        if f.constraints.get("required"):
            logger.warning("site %s left out of the export: %s", site.pk, message)
            return None
        row[f.name] = ""  # an optional value we cannot publish as valid v1.0.1
    return row


def export_rows(qs: QuerySet[Site]) -> Iterator[dict[str, str]]:
    """v1.0.1 rows (field name → text) of the qualified sites of `qs`, in the schema's column order. A site whose
    required fields cannot be valid (no SIRET, SIREN or RNA) is left out, and logged."""
    for site in qs.filter(status=QualificationStatus.QUALIFIED).select_related("organisation").iterator(chunk_size=500):
        row = _export_row(site)
        if row is not None:
            yield row


def export_csv(qs: QuerySet[Site], stream: IO[str]) -> int:
    """Writes the v1.0.1 CSV (UTF-8, comma, `|` inside multi-valued fields). Returns the number of sites."""
    writer = csv.DictWriter(stream, fieldnames=export_validator().names, lineterminator="\r\n")
    writer.writeheader()
    count = 0
    for row in export_rows(qs):
        writer.writerow(row)
        count += 1
    return count


def export_records(qs: QuerySet[Site]) -> Iterator[dict[str, Any]]:
    """The same rows for JSON, as the national map publishes them: empty fields left out, coordinates as numbers."""
    for row in export_rows(qs):
        record: dict[str, Any] = {name: value for name, value in row.items() if value != ""}
        for name in ("latitude", "longitude"):
            if name in record:
                record[name] = float(record[name])
        yield record


def export_json(qs: QuerySet[Site]) -> str:
    return json.dumps(list(export_records(qs)), ensure_ascii=False)
