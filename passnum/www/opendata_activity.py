"""Open data on activity, no login: a page that explains the figures and shows them by program and département,
and the files of the package (passnum/steering/opendata.py) to download.

Only aggregates with the statistical secret applied, never a person: nothing here needs a login or gives an
organisation's own data. The package is computed at most once per `MAX_AGE` (cached), so a crawler cannot make the
server recount a national year on every request; the files carry an ETag of their content (unchanged data, same
ETag, whatever the extraction) and open CORS."""

import datetime as dt
from dataclasses import dataclass

from django.core.cache import cache
from django.http import Http404
from django.shortcuts import render
from django.urls import path
from django.utils import timezone
from django.views.decorators.http import require_safe

from passnum.common.money import format_euros
from passnum.steering import opendata as od
from passnum.www.opendata import MAX_AGE, _open_data

CACHE_KEY = "opendata_activity:v1"
LOCK_KEY = "opendata_activity:v1:refresh"
LOCK_SECONDS = 10 * 60  # longer than an extraction takes; released as soon as it is done
KEEP_SECONDS = 7 * 24 * 3600  # a stale extraction stays available while a fresh one is computed
CONTENT_TYPES = {
    ".csv": ("text/csv; charset=utf-8", "attachment"),
    ".json": ("application/json; charset=utf-8", "inline"),
    ".md": ("text/markdown; charset=utf-8", "inline"),
}
FILE_LABELS = {
    od.CSV_FILES[od.DEPARTEMENTS]: ("Activité par dispositif, département et mois", "CSV"),
    od.CSV_FILES[od.COMMUNES]: ("Activité par dispositif, commune et mois", "CSV"),
    od.SCHEMA_FILES[od.DEPARTEMENTS]: ("Schéma du fichier par département (Table Schema)", "JSON"),
    od.SCHEMA_FILES[od.COMMUNES]: ("Schéma du fichier par commune (Table Schema)", "JSON"),
    od.DATAPACKAGE: ("Description du jeu de données (Data Package)", "JSON"),
    od.README: ("Documentation : champs, méthode, secret statistique, licence", "Markdown"),
}


def _extract() -> dict:
    extracted_at = timezone.now()
    source = od.Activity()  # one read of the figures for the files and the table
    return {
        "extracted_at": extracted_at,
        "files": od.build_package(extracted_at, source=source),
        "totals": od.published_rows(od.DEPARTEMENTS, by_month=False, source=source),
    }


def _published() -> dict:
    """The package's files and the page's table, extracted at most once per MAX_AGE seconds. Once that age is
    past, one request recomputes (it holds a lock in the cache) while the others keep serving the previous
    extraction: a national year takes seconds to count, and visitors must not all pay for it at once."""
    data = cache.get(CACHE_KEY)
    if data is not None and timezone.now() - data["extracted_at"] < dt.timedelta(seconds=MAX_AGE):
        return data
    if data is not None and not cache.add(LOCK_KEY, True, LOCK_SECONDS):
        return data
    try:
        data = _extract()
        cache.set(CACHE_KEY, data, KEEP_SECONDS)
    finally:
        cache.delete(LOCK_KEY)
    return data


@dataclass
class Cell:
    text: str
    suppressed: bool = False


def _cell(value, *, money=False) -> Cell:
    if value is None:
        return Cell("secret", suppressed=True)
    return Cell(format_euros(value) if money else f"{value:,}".replace(",", "\u202f"))


def _tables(rows: list[dict]) -> list[dict]:
    """One table per program: its départements (the unlocated line last), figures over the whole period."""
    tables: dict[str, dict] = {}
    for row in rows:
        table = tables.setdefault(
            row["dispositif"], {"slug": row["dispositif"], "name": row["nom_dispositif"], "rows": []}
        )
        table["rows"].append(
            {
                "code": row["code_departement"],
                "name": row["nom_departement"] or "Non localisé",
                "cells": [
                    _cell(row["carnets_remis"]),
                    _cell(row["cheques_remis"]),
                    _cell(row["cheques_utilises"]),
                    _cell(row["valeur_utilisee_centimes"], money=True),
                    _cell(row["seances"]),
                    _cell(row["personnes_touchees"]),
                ],
            }
        )
    ordered = sorted(tables.values(), key=lambda t: t["name"].lower())
    for n, table in enumerate(ordered, start=1):
        table["id"] = f"tableau-dispositif-{n}"
    return ordered


@require_safe
def activity_page(request):
    """Anyone, no login. What the open data on activity holds, the figures by program and département with the
    statistical secret applied, and the links to the files."""
    data = _published()
    files = [
        {"name": name, "label": FILE_LABELS[name][0], "format": FILE_LABELS[name][1], "size": len(data["files"][name])}
        for name in od.FILES
    ]
    return render(
        request,
        "www/opendata/activity.html",
        {
            "extracted_at": data["extracted_at"],
            "tables": _tables(data["totals"]),
            "files": files,
            "secrecy_max": od.SECRECY_MAX,
            "licence": od.LICENCE,
        },
    )


@require_safe
def activity_file(request, filename: str):
    """Anyone, no login. One file of the package, with an ETag of its content (304 when unchanged), public caching
    and open CORS. Any other name is a 404."""
    if filename not in od.FILES:
        raise Http404("Fichier inconnu.")
    body = _published()["files"][filename]
    suffix = filename[filename.rindex(".") :]
    content_type, disposition = CONTENT_TYPES[suffix]
    return _open_data(request, body, content_type, filename, disposition)


urlpatterns: list = [
    path("donnees-ouvertes/", activity_page, name="opendata_activity"),
    path("donnees-ouvertes/<str:filename>", activity_file, name="opendata_activity_file"),
]
