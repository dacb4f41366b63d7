"""Open data on activity: what the vouchers did, by program × département (or commune) × month, for anyone.

No personal data leaves here: only counts and sums over groups, with statistical secrecy applied (see `SECRECY_MAX`
and docs/opendata.md). Hand-outs are placed at the distributor's commune (`Organisation.insee_code`), uses at the
redeeming site's commune (`Receipt.site.commune`, else the place organisation's `insee_code`). A commune déléguée,
associée or an arrondissement counts in its parent commune. Months are calendar months in Europe/Paris time.

The figures come from grouped SQL statements over the whole tables (hand-outs, redemptions, sessions by program ×
commune × month, then the people reached for each coarser grouping, a distinct count that does not add up), with
hash joins to the geography: a national year (millions of vouchers) is one pass over each table, never a query per
row; départements and the whole period are summed from the communes' figures in Python (`Activity`). Raw SQL
because the join from `insee_code` to `geo.Commune` has no foreign key for the ORM to follow; the month expression
comes from the database backend (`datetime_trunc_sql`), so it is the same on PostgreSQL and SQLite.

The package (`build_package`) holds two CSV files, their Table Schemas (shipped in `steering/schemas/`), a
`datapackage.json` (Frictionless Data Package) and a French `LISEZMOI.md` rendered from `opendata_readme.md`, whose
text is also docs/opendata.md."""

import csv
import datetime as dt
import errno
import hashlib
import io
import json
import os
import tempfile
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo

from django.db import connection
from django.utils import timezone

from passnum.accounts.models import Organisation
from passnum.common.errors import DomainError
from passnum.geo.models import VINTAGE, Commune, Departement
from passnum.places.models import Site
from passnum.programs.models import Program
from passnum.vouchers.models import Booklet, Receipt, Redemption, Voucher

PARIS = ZoneInfo("Europe/Paris")
SECRECY_MAX = 10  # a count from 1 to SECRECY_MAX is suppressed (issue 8: "counts under 11 suppressed")
LICENCE = {
    "name": "etalab-2.0",
    "title": "Licence Ouverte / Open Licence 2.0",
    "path": "https://www.etalab.gouv.fr/licence-ouverte-open-licence/",
}
SOURCE = "Plateforme Pass numérique (encaissements et remises enregistrés)"
SCHEMA_DIR = Path(__file__).parent / "schemas"
README_TEMPLATE = Path(__file__).with_name("opendata_readme.md")

DEPARTEMENTS, COMMUNES = "departements", "communes"
LEVELS = (DEPARTEMENTS, COMMUNES)
CSV_FILES = {level: f"activite-{level}.csv" for level in LEVELS}
SCHEMA_FILES = {level: f"activite-{level}.schema.json" for level in LEVELS}
DATAPACKAGE, README = "datapackage.json", "LISEZMOI.md"
FILES = (*CSV_FILES.values(), *SCHEMA_FILES.values(), DATAPACKAGE, README)

# The published figures, in column order; the counts are subject to the secret on their own.
COUNTS = ("carnets_remis", "cheques_remis", "cheques_utilises", "seances", "personnes_touchees")
FIGURES = (
    "carnets_remis",
    "cheques_remis",
    "cheques_utilises",
    "valeur_utilisee_centimes",
    "seances",
    "personnes_touchees",
)
# A figure that reveals another is suppressed with it: the value is vouchers × face value; the vouchers handed out
# are booklets × vouchers per booklet, and a booklet is one person.
DERIVED = {"valeur_utilisee_centimes": "cheques_utilises", "cheques_remis": "carnets_remis"}
SECRET_COLUMN = "secret_statistique"
SECRET_SEPARATOR = "|"
HEAD = ("mois", "dispositif", "nom_dispositif")
GEO_COLUMNS = {
    DEPARTEMENTS: ("code_departement", "nom_departement"),
    COMMUNES: ("code_departement", "nom_departement", "code_commune", "nom_commune"),
}


def columns(level: str) -> list[str]:
    return [*HEAD, *GEO_COLUMNS[level], *FIGURES, SECRET_COLUMN]


class OpenDataRefused(DomainError):
    code = "opendata_refused"


# --- Aggregates (set-based SQL) ---------------------------------------------------------------------------------


@dataclass
class Figures:
    # Named as the published columns (the schema is the contract), so rows and files need no mapping.
    carnets_remis: int = 0
    cheques_remis: int = 0
    cheques_utilises: int = 0
    valeur_utilisee_centimes: int = 0
    seances: int = 0
    personnes_touchees: int = 0

    def is_zero(self) -> bool:
        return not any(getattr(self, name) for name in FIGURES)


Key = tuple[int, str | None, str]  # (program id, commune or département code or None when unknown, "YYYY-MM" or "")


def _month_sql(column: str) -> tuple[str, tuple]:
    return connection.ops.datetime_trunc_sql("month", column, (), "Europe/Paris")


def _month_label(value) -> str:
    # PostgreSQL returns a naive datetime, SQLite a "YYYY-MM-DD HH:MM:SS" string: both start with YYYY-MM.
    return str(value)[:7] if value is not None else ""


def _tables() -> dict[str, str]:
    models = {
        "booklet": Booklet,
        "voucher": Voucher,
        "redemption": Redemption,
        "receipt": Receipt,
        "organisation": Organisation,
        "site": Site,
        "commune": Commune,
    }
    return {name: connection.ops.quote_name(m._meta.db_table) for name, m in models.items()}


# `c` is the commune joined on the location's INSEE code; a sub-commune counts in its parent.
COMMUNE_SQL = "COALESCE(c.parent_id, c.code)"
DEPARTEMENT_SQL = "c.departement_id"


def _run(sql: str, params: tuple) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _handouts_sql(geo: str, month: str) -> str:
    # Vouchers are counted per booklet first (a hash aggregate), so the outer grouping counts booklets without a
    # DISTINCT over every voucher.
    t = _tables()
    return f"""
        SELECT t.program_id, t.geo, t.month, COUNT(*), SUM(t.n) FROM (
            SELECT b.program_id AS program_id, {geo} AS geo, {month} AS month, v.n AS n
            FROM {t["booklet"]} b
            JOIN (SELECT booklet_id, COUNT(*) AS n FROM {t["voucher"]} WHERE distributed_at IS NOT NULL
                  GROUP BY booklet_id) v ON v.booklet_id = b.id
            JOIN {t["organisation"]} o ON o.id = b.distributor_id
            LEFT JOIN {t["commune"]} c ON c.code = o.insee_code
            WHERE b.handed_out_at IS NOT NULL
        ) t GROUP BY t.program_id, t.geo, t.month"""  # noqa: S608 (table names, constant SQL)


def _redemptions_sql(geo: str, month: str, *, people_only: bool = False) -> str:
    # Active redemptions at the site's commune, else the place organisation's. A booklet handed out without a
    # person's record still went to one person: it counts as one (negative ids never meet a beneficiary's).
    t = _tables()
    figures = "COUNT(DISTINCT t.person)" if people_only else "COUNT(*), SUM(t.amount_cents), COUNT(DISTINCT t.person)"
    return f"""
        SELECT t.program_id, t.geo, t.month, {figures} FROM (
            SELECT v.program_id AS program_id, {geo} AS geo, {month} AS month, r.amount_cents AS amount_cents,
                   COALESCE(b.beneficiary_id, -b.id) AS person
            FROM {t["redemption"]} r
            JOIN {t["voucher"]} v ON v.id = r.voucher_id
            JOIN {t["booklet"]} b ON b.id = v.booklet_id
            JOIN {t["organisation"]} p ON p.id = r.place_id
            LEFT JOIN {t["receipt"]} rc ON rc.id = r.receipt_id
            LEFT JOIN {t["site"]} s ON s.id = rc.site_id
            LEFT JOIN {t["commune"]} c ON c.code = COALESCE(s.commune_id, NULLIF(p.insee_code, ''))
            WHERE r.undone_at IS NULL
        ) t GROUP BY t.program_id, t.geo, t.month"""  # noqa: S608 (table names, constant SQL)


def _sessions_sql(geo: str, month: str) -> str:
    # Receipts not undone, located like the redemptions they hold.
    t = _tables()
    return f"""
        SELECT t.program_id, t.geo, t.month, COUNT(*) FROM (
            SELECT b.program_id AS program_id, {geo} AS geo, {month} AS month
            FROM {t["receipt"]} rc
            JOIN {t["booklet"]} b ON b.id = rc.booklet_id
            JOIN {t["organisation"]} p ON p.id = rc.place_id
            LEFT JOIN {t["site"]} s ON s.id = rc.site_id
            LEFT JOIN {t["commune"]} c ON c.code = COALESCE(s.commune_id, NULLIF(p.insee_code, ''))
            WHERE rc.undone_at IS NULL
        ) t GROUP BY t.program_id, t.geo, t.month"""  # noqa: S608 (table names, constant SQL)


class Activity:
    """The figures of one extraction. Everything additive is read once, per (program, commune, month), and summed
    up to départements and to the whole period here; only the people reached, a distinct count that does not add
    up, take one more grouped query per grouping asked for. Five statements for the files and the page's table,
    each one pass over its tables."""

    def __init__(self):
        self._base: dict[Key, Figures] | None = None
        self._grouped: dict[tuple[str, bool], dict[Key, Figures]] = {}
        self._communes: dict[str, tuple[str, str]] | None = None
        self._departements: dict[str, str] | None = None
        self._programs: dict[int, tuple[str, str]] | None = None

    def communes(self) -> dict[str, tuple[str, str]]:
        """code → (name, département) of every commune: about 37 000 short rows, read once, rather than a
        `code IN (…)` of thousands of parameters, which SQLite limits."""
        if self._communes is None:
            rows = Commune.objects.values_list("code", "name", "departement_id").iterator(chunk_size=5000)
            self._communes = {code: (name, dep) for code, name, dep in rows}
        return self._communes

    def departements(self) -> dict[str, str]:
        if self._departements is None:
            self._departements = dict(Departement.objects.values_list("code", "name"))
        return self._departements

    def programs(self) -> dict[int, tuple[str, str]]:
        if self._programs is None:
            self._programs = {pk: (slug, name) for pk, slug, name in Program.objects.values_list("pk", "slug", "name")}
        return self._programs

    def departement_of(self, commune: str | None) -> str | None:
        return self.communes().get(commune, ("", None))[1] if commune else None

    def _collect(self, sql: str, params: tuple, into: dict[Key, Figures], *names: str) -> None:
        for program_id, code, month_value, *values in _run(sql, params):
            figures = into.setdefault((program_id, code, _month_label(month_value)), Figures())
            for name, value in zip(names, values, strict=True):
                setattr(figures, name, int(value or 0))

    def base(self) -> dict[Key, Figures]:
        """Every figure by (program, commune, month), zeros included."""
        if self._base is None:
            base: dict[Key, Figures] = {}
            month, params = _month_sql("b.handed_out_at")
            self._collect(_handouts_sql(COMMUNE_SQL, month), params, base, "carnets_remis", "cheques_remis")
            month, params = _month_sql("r.redeemed_at")
            self._collect(
                _redemptions_sql(COMMUNE_SQL, month),
                params,
                base,
                "cheques_utilises",
                "valeur_utilisee_centimes",
                "personnes_touchees",
            )
            month, params = _month_sql("rc.redeemed_at")
            self._collect(_sessions_sql(COMMUNE_SQL, month), params, base, "seances")
            self._base = base
        return self._base

    def figures(self, level: str, *, by_month: bool = True) -> dict[Key, Figures]:
        """Every non-zero group of (program, territory of `level`, month), before the secret. With by_month=False,
        one group per (program, territory) over the whole period (month ""), people counted once in it."""
        if level not in LEVELS:
            raise ValueError(level)
        if (level, by_month) in self._grouped:
            return self._grouped[level, by_month]
        if level == COMMUNES and by_month:
            result = self.base()
        else:
            result = {}
            for (program_id, code, month), f in self.base().items():
                key = (
                    program_id,
                    code if level == COMMUNES else self.departement_of(code),
                    month if by_month else "",
                )
                total = result.setdefault(key, Figures())
                for name in FIGURES:
                    if name != "personnes_touchees":
                        setattr(total, name, getattr(total, name) + getattr(f, name))
            geo = COMMUNE_SQL if level == COMMUNES else DEPARTEMENT_SQL
            month, params = _month_sql("r.redeemed_at") if by_month else ("NULL", ())
            self._collect(_redemptions_sql(geo, month, people_only=True), params, result, "personnes_touchees")
        result = {key: f for key, f in result.items() if not f.is_zero()}
        self._grouped[level, by_month] = result
        return result


def activity(level: str, *, by_month: bool = True) -> dict[Key, Figures]:
    """Every non-zero group of (program, territory of `level`, month), before the secret (one extraction)."""
    return Activity().figures(level, by_month=by_month)


# --- Statistical secrecy ----------------------------------------------------------------------------------------


def secret_applied(figures: Figures) -> tuple[dict[str, int | None], list[str]]:
    """The published figures (None where suppressed) and the names of the suppressed ones, in column order."""
    suppressed = {name for name in COUNTS if 1 <= getattr(figures, name) <= SECRECY_MAX}
    suppressed |= {name for name, source in DERIVED.items() if source in suppressed}
    names = [name for name in FIGURES if name in suppressed]
    return {name: None if name in suppressed else getattr(figures, name) for name in FIGURES}, names


# --- Published rows ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Place:
    code_departement: str = ""
    nom_departement: str = ""
    code_commune: str = ""
    nom_commune: str = ""


def _place(level: str, code: str | None, source: Activity) -> Place:
    if not code:
        return Place()
    departements = source.departements()
    if level == DEPARTEMENTS:
        return Place(code, departements.get(code, ""))
    name, dep = source.communes().get(code, ("", ""))
    return Place(dep, departements.get(dep, ""), code, name)


def published_rows(level: str, *, by_month: bool = True, source: Activity | None = None) -> list[dict]:
    """The rows as published: names attached, secret applied, sorted by month, program, territory. A territory
    that is not known (no commune on the organisation) has empty codes and names and comes last. Pass the same
    `source` for several tables of one extraction: the figures are then read once."""
    source = source or Activity()
    data = source.figures(level, by_month=by_month)
    rows = []
    for (program_id, code, month), figures in data.items():
        slug, name = source.programs()[program_id]
        place = _place(level, code, source)
        values, suppressed = secret_applied(figures)
        row = {"mois": month, "dispositif": slug, "nom_dispositif": name}
        row.update({column: getattr(place, column) for column in GEO_COLUMNS[level]})
        row.update(values)
        row[SECRET_COLUMN] = SECRET_SEPARATOR.join(suppressed)
        rows.append(row)
    geo_code = "code_departement" if level == DEPARTEMENTS else "code_commune"
    rows.sort(key=lambda r: (r["mois"], r["dispositif"], r[geo_code] == "", r[geo_code]))
    return rows


def write_csv(rows: list[dict], level: str, out) -> int:
    """UTF-8 CSV, comma, header of the schema's field names; a suppressed figure is an empty cell."""
    writer = csv.DictWriter(out, fieldnames=columns(level), lineterminator="\r\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if v is None else v for k, v in row.items()})
    return len(rows)


# --- The package ------------------------------------------------------------------------------------------------


@lru_cache
def schema_text(level: str) -> str:
    return (SCHEMA_DIR / SCHEMA_FILES[level]).read_text(encoding="utf-8")


def schema_descriptor(level: str) -> dict:
    return json.loads(schema_text(level))


def _fields_table(level: str) -> str:
    lines = ["| champ | type | description |", "|---|---|---|"]
    for f in schema_descriptor(level)["fields"]:
        kind = {"integer": "entier", "string": "texte"}.get(f["type"], f["type"])
        lines.append(f"| `{f['name']}` | {kind} | {f['description']} |")
    return "\n".join(lines)


def render_readme(extracted_at: dt.datetime | None = None) -> str:
    """The French README: the shipped template, the fields documented from the schemas, the extraction date
    (without one, a placeholder: that text is docs/opendata.md)."""
    when = (
        timezone.localtime(extracted_at, PARIS).strftime("%Y-%m-%d %H:%M (heure de Paris)")
        if extracted_at
        else "indiquée dans le fichier LISEZMOI.md de chaque extraction et dans `datapackage.json` (`created`)"
    )
    return (
        README_TEMPLATE.read_text(encoding="utf-8")
        .replace("<!-- DATE -->", when)
        .replace("<!-- SEUIL -->", str(SECRECY_MAX))
        .replace("<!-- SEUIL_PUBLIE -->", str(SECRECY_MAX + 1))
        .replace("<!-- GEOGRAPHIE -->", VINTAGE)
        .replace("<!-- CHAMPS_DEPARTEMENTS -->", _fields_table(DEPARTEMENTS))
        .replace("<!-- CHAMPS_COMMUNES -->", _fields_table(COMMUNES))
    )


def _datapackage(files: dict[str, bytes], extracted_at: dt.datetime) -> dict:
    titles = {
        DEPARTEMENTS: "Activité par dispositif, département et mois",
        COMMUNES: "Activité par dispositif, commune et mois",
    }
    return {
        "$schema": "https://datapackage.org/profiles/2.0/datapackage.json",
        "name": "pass-numerique-activite",
        "title": "Pass numérique : activité par dispositif, territoire et mois",
        "description": (
            "Carnets et chèques remis, chèques utilisés, valeur utilisée, séances et personnes touchées, par "
            f"dispositif, département ou commune et mois. Secret statistique : les nombres de 1 à {SECRECY_MAX} "
            "sont masqués, ainsi que les valeurs qui s’en déduisent. Aucune donnée personnelle. Voir LISEZMOI.md."
        ),
        "version": "1.0.0",
        "created": timezone.localtime(extracted_at, PARIS).isoformat(timespec="seconds"),
        "licenses": [LICENCE],
        "sources": [{"title": SOURCE}],
        "resources": [
            {
                "name": f"activite-{level}",
                "title": titles[level],
                "path": CSV_FILES[level],
                "type": "table",
                "scheme": "file",
                "format": "csv",
                "mediatype": "text/csv",
                "encoding": "utf-8",
                "bytes": len(files[CSV_FILES[level]]),
                "hash": "sha256:" + hashlib.sha256(files[CSV_FILES[level]]).hexdigest(),
                "dialect": {"delimiter": ",", "header": True},
                "schema": SCHEMA_FILES[level],
            }
            for level in LEVELS
        ],
    }


def build_package(extracted_at: dt.datetime | None = None, *, source: Activity | None = None) -> dict[str, bytes]:
    """Every file of the package, by name, in memory (a few MB at national scale: one row per non-empty group)."""
    return _build(extracted_at, source or Activity())[0]


def _build(extracted_at: dt.datetime | None, source: Activity) -> tuple[dict[str, bytes], dict[str, int]]:
    extracted_at = extracted_at or timezone.now()
    files: dict[str, bytes] = {}
    rows: dict[str, int] = {}
    for level in LEVELS:
        out = io.StringIO()
        rows[CSV_FILES[level]] = write_csv(published_rows(level, source=source), level, out)
        files[CSV_FILES[level]] = out.getvalue().encode("utf-8")
        files[SCHEMA_FILES[level]] = schema_text(level).encode("utf-8")
    files[DATAPACKAGE] = (json.dumps(_datapackage(files, extracted_at), ensure_ascii=False, indent=2) + "\n").encode(
        "utf-8"
    )
    files[README] = render_readme(extracted_at).encode("utf-8")
    return files, rows


@dataclass
class ExportReport:
    out_dir: Path
    sizes: dict[str, int] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)


def _refuse(message: str, code: str):
    raise OpenDataRefused(message, code=code)


OS_REASONS = {
    errno.ENOTDIR: "un élément du chemin n’est pas un dossier",
    errno.EACCES: "droits insuffisants",
    errno.EPERM: "droits insuffisants",
    errno.EROFS: "système de fichiers en lecture seule",
    errno.ENOSPC: "plus de place sur le disque",
    errno.EDQUOT: "quota de disque atteint",
    errno.ENAMETOOLONG: "nom trop long",
}


def _reason(exc: OSError) -> str:
    """The system's reason in French (its own message is in the server's language)."""
    return OS_REASONS.get(exc.errno, exc.strerror or str(exc))


def check_out_dir(out: str | os.PathLike | None) -> Path:
    """The directory to write into, created if missing; refused with a stable code otherwise. Nothing is written
    when it is refused."""
    if out is None or not str(out).strip():
        _refuse("Indiquez le dossier où écrire les fichiers : --out DOSSIER.", "opendata_out_missing")
    path = Path(out)
    if path.exists() and not path.is_dir():
        _refuse(f"{path} existe et n’est pas un dossier : indiquez un dossier.", "opendata_out_not_directory")
    if not path.exists():
        try:
            path.mkdir(parents=True)
        except OSError as exc:
            _refuse(f"Impossible de créer le dossier {path} : {_reason(exc)}.", "opendata_out_not_writable")
    if not os.access(path, os.W_OK | os.X_OK):
        _refuse(f"Le dossier {path} n’est pas accessible en écriture.", "opendata_out_not_writable")
    return path


def export_to(out: str | os.PathLike | None, *, extracted_at: dt.datetime | None = None) -> ExportReport:
    """Write the package into `out`. Every file is first written beside its final name, then all are renamed:
    a reader never sees half a file, and a failure while writing leaves the previous package as it was. Other
    files in the directory are left alone."""
    out_dir = check_out_dir(out)
    for name in FILES:
        target = out_dir / name
        if target.exists() and not target.is_file():
            _refuse(f"{target} existe et n’est pas un fichier : rien n’a été écrit.", "opendata_out_name_taken")
    files, rows = _build(extracted_at, Activity())
    written: dict[str, str] = {}
    try:
        for name, body in files.items():
            fd, tmp = tempfile.mkstemp(prefix=f".{name}.", dir=out_dir)
            written[name] = tmp
            with os.fdopen(fd, "wb") as f:
                f.write(body)
            os.chmod(tmp, 0o644)
    except OSError as exc:
        for tmp in written.values():
            Path(tmp).unlink(missing_ok=True)
        raise OpenDataRefused(
            f"Impossible d’écrire dans {out_dir} : {_reason(exc)}. Rien n’a été remplacé.",
            code="opendata_out_not_writable",
        ) from exc
    for name, tmp in written.items():
        os.replace(tmp, out_dir / name)
    return ExportReport(out_dir, sizes={name: len(body) for name, body in files.items()}, rows=rows)
