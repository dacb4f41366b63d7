"""Read-side helpers for the geography. A territory is a list of (level, code) items, e.g.
[("departement", "60"), ("epci", "200067999"), ("commune", "13055")]."""

from collections import defaultdict
from collections.abc import Iterable

from django.db.models import Q, QuerySet

from passnum.geo.enums import TerritoryLevel
from passnum.geo.models import Commune, Departement, Epci, Region

_LEVEL_MODELS = {
    TerritoryLevel.COMMUNE: Commune,
    TerritoryLevel.EPCI: Epci,
    TerritoryLevel.DEPARTEMENT: Departement,
    TerritoryLevel.REGION: Region,
}
# Keeps `IN (...)` lists well under SQLite's bound-parameter limit.
_CHUNK = 500


def commune_get(*, code: str) -> Commune | None:
    return Commune.objects.select_related("departement", "region", "epci", "parent").filter(code=code).first()


def communes_for_postal_code(*, code: str) -> QuerySet[Commune]:
    return Commune.objects.filter(postal_codes__code=code).order_by("name", "code")


def unknown_codes(*, level: TerritoryLevel | str, codes: list[str]) -> list[str]:
    """The codes not found at `level`, in input order, each once.

    At the commune level every row counts: actual communes, arrondissements municipaux,
    communes déléguées and associées.
    """
    model = _LEVEL_MODELS[TerritoryLevel(level)]
    wanted = list(dict.fromkeys(codes))
    found: set[str] = set()
    for start in range(0, len(wanted), _CHUNK):
        found.update(model.objects.filter(code__in=wanted[start : start + _CHUNK]).values_list("code", flat=True))
    return [code for code in wanted if code not in found]


def territory_filter(items: Iterable[tuple[str, str]], *, prefix: str = "") -> Q:
    """A Q on Commune (or on a model reaching it through `prefix`, e.g. "commune__") matching any item.

    Communes déléguées, associées and arrondissements carry their parent's département, région
    and EPCI, and a commune item also matches the entries attached to that commune (13055 Marseille
    contains 13201). With no items the Q matches nothing.
    """
    codes: dict[TerritoryLevel, set[str]] = defaultdict(set)
    for level, code in items:
        codes[TerritoryLevel(level)].add(code)

    def lookup(field: str, values: set[str]) -> Q:
        return Q(**{f"{prefix}{field}__in": sorted(values)})

    q = Q(**{f"{prefix}pk__in": []})
    if codes[TerritoryLevel.COMMUNE]:
        q |= lookup("code", codes[TerritoryLevel.COMMUNE]) | lookup("parent_id", codes[TerritoryLevel.COMMUNE])
    if codes[TerritoryLevel.EPCI]:
        q |= lookup("epci_id", codes[TerritoryLevel.EPCI])
    if codes[TerritoryLevel.DEPARTEMENT]:
        q |= lookup("departement_id", codes[TerritoryLevel.DEPARTEMENT])
    if codes[TerritoryLevel.REGION]:
        q |= lookup("region_id", codes[TerritoryLevel.REGION])
    return q


def communes_in_territory(items: Iterable[tuple[str, str]]) -> QuerySet[Commune]:
    """Every commune row inside the territory, whatever its kind (filter on `kind` if needed)."""
    return Commune.objects.filter(territory_filter(items))


def territory_contains(*, items: Iterable[tuple[str, str]], commune_code: str) -> bool:
    """One query. False for an unknown commune code or an empty territory."""
    return Commune.objects.filter(code=commune_code).filter(territory_filter(items)).exists()
