"""Load the shipped geography (passnum/geo/data/geo-cog2026.json.gz) into the database.

Used by migration 0002 (historical models) and by `passnum geo load` (real models). The load is a
diff: rows already identical are left alone, so running it again writes nothing.
"""

import gzip
import json
from pathlib import Path

from django.apps import apps as global_apps
from django.db import connections, transaction

from passnum.geo.models import VINTAGE

DATA_FILE = Path(__file__).resolve().parent / "data" / "geo-cog2026.json.gz"
BATCH_SIZE = 2000


def read_dataset() -> dict:
    with gzip.open(DATA_FILE, "rb") as fh:
        data = json.load(fh)
    if data["vintage"] != VINTAGE:
        raise ValueError(f"{DATA_FILE.name} holds {data['vintage']!r}, the models expect {VINTAGE!r}")
    return data


def _insert(model, fields: list[str], rows: list[tuple], using: str) -> None:
    """Raw inserts: bulk_create spends seconds building model instances for the ~74k rows of a first load."""
    if not rows:
        return
    connection = connections[using]
    quote = connection.ops.quote_name
    table = quote(model._meta.db_table)
    columns = ", ".join(quote(model._meta.get_field(name).column) for name in fields)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql" and hasattr(cursor, "copy"):  # psycopg 3
            with cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            return
        per_statement = BATCH_SIZE
        if connection.features.max_query_params:  # SQLite's bound-parameter limit
            per_statement = min(per_statement, connection.features.max_query_params // len(fields))
        row_sql = "(" + ", ".join(["%s"] * len(fields)) + ")"
        for start in range(0, len(rows), per_statement):
            batch = rows[start : start + per_statement]
            # Identifiers come from the model's metadata; values are bound parameters.
            sql = f"INSERT INTO {table} ({columns}) VALUES {', '.join([row_sql] * len(batch))}"  # noqa: S608
            cursor.execute(sql, [value for row in batch for value in row])


def _sync(model, wanted: dict[str, tuple], fields: list[str], using: str) -> int:
    """Insert missing rows of a code-keyed model and update those that differ. Returns rows written.

    Rows absent from the dataset are kept: other apps may point at them.
    """
    opts = model._meta
    attnames = [opts.get_field(name).attname for name in fields]
    manager = model._base_manager.db_manager(using)
    existing = {row[0]: tuple(row[1:]) for row in manager.values_list("pk", *attnames).order_by()}
    new = [(code, *values) for code, values in wanted.items() if code not in existing]
    changed = [
        model(pk=code, **dict(zip(attnames, values, strict=True)))
        for code, values in wanted.items()
        if code in existing and existing[code] != values
    ]
    _insert(model, [opts.pk.name, *fields], new, using)
    if changed:
        manager.bulk_create(
            changed,
            batch_size=BATCH_SIZE,
            update_conflicts=True,
            unique_fields=[opts.pk.name],
            update_fields=fields,
        )
    return len(new) + len(changed)


def _sync_postal_codes(model, wanted: set[tuple[str, str]], using: str) -> int:
    manager = model._base_manager.db_manager(using)
    existing = {(code, commune): pk for pk, code, commune in manager.values_list("pk", "code", "commune_id")}
    stale = [pk for pair, pk in existing.items() if pair not in wanted]
    for start in range(0, len(stale), BATCH_SIZE):
        manager.filter(pk__in=stale[start : start + BATCH_SIZE]).delete()
    new = sorted(wanted - existing.keys())
    _insert(model, ["code", "commune"], new, using)
    return len(stale) + len(new)


def load_geography(*, using: str = "default", apps=None) -> dict[str, int]:
    """Make the database hold the shipped geography. `apps`: a migration's historical app registry.

    Returns the row counts afterwards, plus `written` (rows inserted, updated or deleted by this call).
    """
    registry = apps or global_apps
    region_model = registry.get_model("geo", "Region")
    departement_model = registry.get_model("geo", "Departement")
    epci_model = registry.get_model("geo", "Epci")
    commune_model = registry.get_model("geo", "Commune")
    postal_code_model = registry.get_model("geo", "PostalCode")

    data = read_dataset()
    dep_region = {code: region for code, _name, region in data["departements"]}
    communes = {}
    postal_codes = set()
    for code, name, kind, departement, epci, parent, population, codes in data["communes"]:
        communes[code] = (name, kind, departement, dep_region[departement], epci, parent, population)
        postal_codes.update((postal_code, code) for postal_code in codes)

    written = 0
    with transaction.atomic(using=using):
        written += _sync(region_model, {code: (name,) for code, name in data["regions"]}, ["name"], using)
        written += _sync(
            departement_model,
            {code: (name, region) for code, name, region in data["departements"]},
            ["name", "region"],
            using,
        )
        written += _sync(epci_model, {code: (name, kind) for code, name, kind in data["epci"]}, ["name", "kind"], using)
        written += _sync(
            commune_model,
            communes,
            ["name", "kind", "departement", "region", "epci", "parent", "population"],
            using,
        )
        written += _sync_postal_codes(postal_code_model, postal_codes, using)

    counts = {
        "regions": region_model._base_manager.using(using).count(),
        "departements": departement_model._base_manager.using(using).count(),
        "epci": epci_model._base_manager.using(using).count(),
        "communes": commune_model._base_manager.using(using).count(),
        "postal_codes": postal_code_model._base_manager.using(using).count(),
    }
    return {**counts, "written": written}
