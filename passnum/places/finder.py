"""Selectors for the public finder of places accepting the pass. Reads only.

"Places accepting the pass" are the qualified sites. The INSEE geography has no coordinates, so places are ranked
by administrative proximity to the commune asked for:

    0 same commune (its arrondissements, communes déléguées and parent commune included)
    1 same EPCI
    2 same département
    3 elsewhere, but within NEARBY_RADIUS_KM of the reference point (only when there is one)

and, inside each rank, by distance to the *reference point* when there is one: the mean position of the sites of
the commune that have coordinates (sites of any status: positions imported from open data count too). Without a
reference point the order inside a rank is by name.

Distances run on SQLite and PostgreSQL alike, without extensions: a bounding box on latitude/longitude (indexed),
and an equirectangular approximation (cos(lat0) computed here in Python), within 1 % at these ranges. The square
root is taken in Python on the rows returned.

Filters: a site matches the services if its catalogue offers at least one of them; the publics if it lists at least
one of them, or is open to all (lists "tous_publics" or no public); the supports if it offers every one of them
(accessibility needs add up). JSON lists are matched with jsonb containment on PostgreSQL, with a LIKE on their
text elsewhere (`_holds`).

Queries: resolving the commune or postcode 1, the reference point 1, the search 1: 3 at most.

Speed. The SQL takes a millisecond or two on 20 000 sites; building the same query with the ORM took three times as
long. So each query is built with the ORM once per *shape* (the number of communes, the filters chosen…), with
marker values in place of the variable parameters, and its SQL kept (`_execute`); later calls only bind the
parameters. The SQL is the ORM's own, vendor specifics included. Rows become light `FoundSite` objects, not model
instances (the list needs a dozen columns, and `site_public_get` gives the full site). Every condition on the
geography is a subquery on the communes, never a join, so that both planners can use the sites' indexes.
`benchmarks/finder.py` measures what this module costs over the bare SQL.
"""

import itertools
import json
import math
import re
import threading
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import IntEnum

from django.core.exceptions import EmptyResultSet
from django.db import connections, router
from django.db.models import (
    Case,
    Exists,
    ExpressionWrapper,
    F,
    FloatField,
    IntegerField,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    TextField,
    Value,
    When,
)
from django.db.models.aggregates import Avg, Count
from django.db.models.functions import Cast, Length

from passnum.common.standard import Public, Service, SpecificSupport
from passnum.geo.models import Commune
from passnum.geo.selectors import territory_filter
from passnum.places.enums import QualificationStatus
from passnum.places.models import Site, SiteService

KM_PER_DEGREE = 6371.0088 * math.pi / 180  # one degree of latitude on the mean Earth radius (IUGG), in km
NEARBY_RADIUS_KM = 25.0  # beyond the département: places this close to the reference point are shown too
MAX_LIMIT = 200
POSTAL_CODE_RE = re.compile(r"^[0-9]{5}$")
COMMUNE_CODE_RE = re.compile(r"^(?:[0-9]{2}|2[AB])[0-9]{3}$")

# Columns of a site the finder's list and map show (the description and the imported row stay in the database).
LIST_COLUMNS = (
    "id",
    "name",
    "address",
    "address_complement",
    "postal_code",
    "commune_id",
    "commune_name",
    "latitude",
    "longitude",
    "services",
    "supports",
)
COMMUNE_COLUMNS = ("code", "name", "kind", "departement_id", "epci_id", "parent_id")


class Proximity(IntEnum):
    COMMUNE = 0
    EPCI = 1
    DEPARTEMENT = 2
    NEARBY = 3
    UNRANKED = 4  # no place was asked for

    @property
    def label(self) -> str:
        return _PROXIMITY_LABELS[self]


_PROXIMITY_LABELS = {
    Proximity.COMMUNE: "dans la commune",
    Proximity.EPCI: "dans l’intercommunalité",
    Proximity.DEPARTEMENT: "dans le département",
    Proximity.NEARBY: "à proximité, hors du département",
    Proximity.UNRANKED: "",
}


@dataclass(slots=True)
class CommuneRef:
    """A commune as the finder resolved it."""

    code: str
    name: str
    kind: str
    departement_id: str
    epci_id: str | None
    parent_id: str | None

    @property
    def label(self) -> str:
        """'Saint-Martin (65)': the département tells homonyms apart."""
        return f"{self.name} ({self.departement_id})"


@dataclass(slots=True)  # not frozen: a frozen dataclass is ten times slower to build
class FoundSite:
    """A qualified site as the finder lists it: what the list and the map show, its rank and distance."""

    id: int
    name: str
    address: str
    address_complement: str
    postal_code: str
    commune_id: str | None
    commune_name: str
    latitude: float | None
    longitude: float | None
    services: tuple[str, ...]
    supports: tuple[str, ...]
    proximity: "Proximity"
    distance_km: float | None

    @property
    def pk(self) -> int:
        return self.id

    @property
    def located(self) -> bool:
        return self.latitude is not None and self.longitude is not None

    @property
    def distance_text(self) -> str:
        """'à 2,3 km', 'à moins d’un kilomètre', or '' when unknown."""
        if self.distance_km is None:
            return ""
        if self.distance_km < 1:
            return "à moins d’un kilomètre"
        return f"à {self.distance_km:.1f} km".replace(".", ",")

    @property
    def service_labels(self) -> list[str]:
        return [Service(code).label for code in self.services if code in Service.values]

    @property
    def support_labels(self) -> list[str]:
        return [SpecificSupport(code).label for code in self.supports if code in SpecificSupport.values]


@dataclass(frozen=True)
class FinderResult:
    """`communes`: what the commune code or postcode resolved to (several for a postcode shared by several
    communes: the page asks which one). `sites`: qualified sites, nearest first, each with `proximity`
    (Proximity) and `distance_km` (float or None) set. `reference`: the (lat, lon) distances are measured from."""

    communes: list[CommuneRef] = field(default_factory=list)
    sites: list[FoundSite] = field(default_factory=list)
    has_more: bool = False
    reference: tuple[float, float] | None = None
    location_asked: bool = False

    @property
    def commune(self) -> CommuneRef | None:
        return self.communes[0] if len(self.communes) == 1 else None

    @property
    def ambiguous(self) -> bool:
        return len(self.communes) > 1

    @property
    def location_unknown(self) -> bool:
        return self.location_asked and not self.communes


# --- compiled queries ----------------------------------------------------------------------------------------

_STR_MARK = "\x1eslot{}\x1f"
_FLOAT_MARK = -7.0e15  # minus the slot number; no coordinate or code looks like this
_compiled: dict[tuple, tuple[str, tuple[tuple[int, object], ...]] | None] = {}
_compiled_lock = threading.Lock()
_MAX_COMPILED = 1024


def _flatten(params) -> list:
    out = []
    for p in params:
        if isinstance(p, list | tuple):
            out.extend(_flatten(p))
        else:
            out.append(p)
    return out


def _shape(params) -> tuple:
    return tuple(("l", _shape(p)) if isinstance(p, list | tuple) else type(p).__name__ for p in params)


def _mark(params, counter) -> tuple:
    marked = []
    for p in params:
        if isinstance(p, list | tuple):
            marked.append(type(p)(_mark(p, counter)))
        elif isinstance(p, str):
            marked.append(_STR_MARK.format(next(counter)))
        elif isinstance(p, float):
            marked.append(_FLOAT_MARK - next(counter))
        else:
            raise TypeError(f"query parameters are str or float, not {type(p).__name__}")
    return tuple(marked)


def _compile(alias: str, build: Callable[..., QuerySet], consts: tuple, params: tuple):
    marked = _mark(params, itertools.count())
    try:
        sql, sql_params = build(*consts, *marked).query.get_compiler(using=alias).as_sql()
    except EmptyResultSet:
        return None
    if "\x1eslot" in sql or str(int(-_FLOAT_MARK))[:10] in sql:
        raise RuntimeError(f"{build.__name__}: a parameter was written into the SQL instead of being bound")
    slots = {marker: i for i, marker in enumerate(_flatten(marked))}
    recipe = []
    for p in sql_params:
        index = slots.get(p, -1) if isinstance(p, str | float) else -1
        if index < 0 and isinstance(p, str) and "\x1eslot" in p:
            raise RuntimeError(f"{build.__name__}: a parameter is transformed by the query ({p!r})")
        recipe.append((index, p))
    missing = set(slots.values()) - {i for i, _ in recipe}
    if missing:
        raise RuntimeError(f"{build.__name__}: parameters {sorted(missing)} did not reach the SQL")
    return sql, tuple(recipe)


def _execute(build: Callable[..., QuerySet], consts: tuple, params: tuple) -> list[tuple]:
    """Rows of the values_list queryset `build(*consts, *params)`. Its SQL is compiled once per (build, consts,
    shape of params): `consts` (hashable) shape the SQL; `params` (str and float, in lists or tuples) are only
    bound. Returns [] when the query can match nothing (e.g. an empty IN list)."""
    alias = router.db_for_read(Site)
    key = (alias, build, consts, _shape(params))
    compiled = _compiled.get(key, False)
    if compiled is False:
        compiled = _compile(alias, build, consts, params)
        with _compiled_lock:
            if len(_compiled) >= _MAX_COMPILED:
                _compiled.clear()
            _compiled[key] = compiled
    if compiled is None:
        return []
    sql, recipe = compiled
    values = _flatten(params)
    with connections[alias].cursor() as cursor:
        cursor.execute(sql, [values[i] if i >= 0 else const for i, const in recipe])
        return cursor.fetchall()


# --- the queries (each a values_list queryset; parameters arrive as markers the first time) ------------------


def _q_commune(code):
    return Commune.objects.filter(code=code).values_list(*COMMUNE_COLUMNS)


def _q_postal_code(code):
    return Commune.objects.filter(postal_codes__code=code).order_by("name", "code").values_list(*COMMUNE_COLUMNS)


def _q_reference(codes, group):
    own = Q(commune_id__in=codes)
    # A subquery on the communes, not a join: the database walks the sites' (commune, status) index.
    members = Commune.objects.filter(Q(code__in=group) | Q(parent_id__in=group)).values("code")
    return (
        Site.objects.filter(latitude__isnull=False, longitude__isnull=False, commune_id__in=members)
        .annotate(_one=Value(1))
        .order_by()
        .values("_one")
        .annotate(
            n=Count("id", filter=own),
            lat=Avg("latitude", filter=own),
            lon=Avg("longitude", filter=own),
            group_n=Count("id"),
            group_lat=Avg("latitude"),
            group_lon=Avg("longitude"),
        )
        .values_list("n", "lat", "lon", "group_n", "group_lat", "group_lon")
    )


def _holds(field: str, code: str, *, json_contains: bool) -> Q:
    """The JSON list in `field` holds `code`. Where the database has JSON containment (PostgreSQL: jsonb @>),
    that; elsewhere a LIKE on '"code"' in the list's text (alias `_<field>_text`): codes are plain ASCII words,
    quoted in the JSON text, so the match is exact."""
    if json_contains:
        return Q(**{f"{field}__contains": [code]})
    return Q(**{f"_{field}_text__contains": f'"{code}"'})


def qualified_sites(*, services: Iterable[str] = (), publics: Iterable[str] = (), supports: Iterable[str] = ()):
    """Qualified sites matching the filters (see the module doc), as a queryset."""
    qs = Site.objects.filter(status=QualificationStatus.QUALIFIED)
    services, publics, supports = list(services), list(publics), list(supports)
    json_contains = connections[router.db_for_read(Site)].features.supports_json_field_contains
    if services:
        qs = qs.filter(Exists(SiteService.objects.filter(site=OuterRef("pk"), service__in=services)))
    if publics:
        if not json_contains:
            qs = qs.alias(_publics_text=Cast("publics", TextField()))
        wanted = Q(publics=[]) | _holds("publics", Public.EVERYONE, json_contains=json_contains)
        for code in publics:
            wanted |= _holds("publics", code, json_contains=json_contains)
        qs = qs.filter(wanted)
    if supports:
        if not json_contains:
            qs = qs.alias(_supports_text=Cast("supports", TextField()))
        for code in supports:
            qs = qs.filter(_holds("supports", code, json_contains=json_contains))
    return qs


def _communes(q: Q):
    return Commune.objects.filter(q).values("code")


def _q_search(filters, territory_levels, located, limit, territory_codes, group, epcis, departements, geo):
    """The search. Every condition on the geography is a subquery on the communes (`commune_id IN (SELECT code
    …)`), never a join: both planners then walk the sites' (commune, status) index. Around a reference point, the
    sites of the area and those in the bounding box come from two indexed selects joined by UNION, as an OR of
    the two would make PostgreSQL read the whole table."""
    services, publics, supports = filters
    base = qualified_sites(services=services, publics=publics, supports=supports).order_by()
    if territory_levels is not None:
        items = zip(territory_levels, territory_codes, strict=True)
        base = base.filter(commune_id__in=_communes(territory_filter(items)))
    if not located:
        return base.order_by("name", "id").values_list(*LIST_COLUMNS)[: limit + 1]
    rank = Case(
        When(commune_id__in=_communes(Q(code__in=group) | Q(parent_id__in=group)), then=Value(Proximity.COMMUNE.value)),
        When(commune_id__in=_communes(Q(epci_id__in=epcis)), then=Value(Proximity.EPCI.value)),
        When(commune_id__in=_communes(Q(departement_id__in=departements)), then=Value(Proximity.DEPARTEMENT.value)),
        default=Value(Proximity.NEARBY.value),
        output_field=IntegerField(),
    )
    # The commune group lies in its départements; an EPCI may straddle two.
    area = base.filter(commune_id__in=_communes(Q(departement_id__in=departements) | Q(epci_id__in=epcis)))
    if not geo:
        return (
            area.annotate(_rank=rank).order_by("_rank", "name", "id").values_list(*LIST_COLUMNS, "_rank")[: limit + 1]
        )
    lat0, lon0, cos0, lat_min, lat_max, lon_min, lon_max, r2 = geo
    dlat = F("latitude") - Value(lat0)
    dlon = (F("longitude") - Value(lon0)) * Value(cos0)
    d2 = ExpressionWrapper(dlat * dlat + dlon * dlon, output_field=FloatField())
    area = area.annotate(_d2=d2, _rank=rank).values_list(*LIST_COLUMNS, "_d2", "_rank")
    around = (
        base.filter(latitude__range=(lat_min, lat_max), longitude__range=(lon_min, lon_max))
        .annotate(_d2=d2)
        .filter(_d2__lte=r2)
        .annotate(_rank=rank)
        .values_list(*LIST_COLUMNS, "_d2", "_rank")
    )
    return area.union(around).order_by("_rank", F("_d2").asc(nulls_last=True), "name", "id")[: limit + 1]


_PROXIMITIES = tuple(Proximity)


def _found_sites(rows, *, geo: bool, located: bool) -> list[FoundSite]:
    """FoundSite objects from the search's rows: LIST_COLUMNS, then `_d2` (when `geo`), then `_rank` (when
    `located`). Each distinct JSON text is decoded once (lists of codes repeat a lot)."""
    decoded: dict[str, tuple] = {}

    def codes(raw) -> tuple:
        if raw.__class__ is str:
            value = decoded.get(raw)
            if value is None:
                value = decoded[raw] = tuple(json.loads(raw))
            return value
        return () if raw is None else tuple(raw)

    unranked = Proximity.UNRANKED
    sites = []
    for row in rows:
        d2 = row[11] if geo else None
        sites.append(
            FoundSite(
                *row[:9],
                codes(row[9]),
                codes(row[10]),
                _PROXIMITIES[row[-1]] if located else unranked,
                None if d2 is None else math.sqrt(d2) * KM_PER_DEGREE,
            )
        )
    return sites


# --- selectors -----------------------------------------------------------------------------------------------


def _resolve(*, commune_code: str | None, postal_code: str | None) -> list[CommuneRef]:
    if commune_code:
        if not COMMUNE_CODE_RE.match(commune_code):
            return []
        rows = _execute(_q_commune, (), (commune_code,))
    else:
        if not POSTAL_CODE_RE.match(postal_code):
            return []
        rows = _execute(_q_postal_code, (), (postal_code,))
    communes = [CommuneRef(*row) for row in rows]
    # Paris, Lyon, Marseille: a postcode names the commune and one arrondissement; the arrondissement is more precise.
    parents = {c.parent_id for c in communes if c.parent_id}
    return [c for c in communes if c.code not in parents]


def _reference_point(codes: list[str], group: list[str]) -> tuple[float, float] | None:
    """Mean position of the located sites of the communes themselves, else of their group (parent,
    arrondissements, communes déléguées)."""
    rows = _execute(_q_reference, (), (codes, group))
    if not rows:
        return None
    n, lat, lon, group_n, group_lat, group_lon = rows[0]
    if n:
        return lat, lon
    if group_n:
        return group_lat, group_lon
    return None


def finder_search(
    *,
    commune_code: str | None = None,
    postal_code: str | None = None,
    services: Iterable[str] = (),
    publics: Iterable[str] = (),
    supports: Iterable[str] = (),
    territory: Iterable[tuple[str, str]] | None = None,
    limit: int = 50,
) -> FinderResult:
    """Qualified sites near a commune (INSEE code) or a postcode, filtered, nearest first (see the module doc).

    `territory` ((level, code) items, e.g. a program's) restricts the sites to it. With neither a commune nor a
    postcode, the sites are listed by name. An unknown commune or postcode gives no site."""
    limit = max(1, min(int(limit), MAX_LIMIT))
    commune_code = (commune_code or "").strip().upper() or None
    postal_code = (postal_code or "").strip() or None
    location_asked = bool(commune_code or postal_code)
    filters = (tuple(sorted(set(services))), tuple(sorted(set(publics))), tuple(sorted(set(supports))))
    territory_levels, territory_codes = None, ()
    if territory is not None:
        items = sorted({(str(level), str(code)) for level, code in territory})
        territory_levels = tuple(level for level, _ in items)
        territory_codes = tuple(code for _, code in items)

    communes: list[CommuneRef] = []
    reference = None
    group = epcis = departements = geo = ()
    if location_asked:
        communes = _resolve(commune_code=commune_code, postal_code=postal_code)
        if not communes:
            return FinderResult(location_asked=True)
        codes = [c.code for c in communes]
        group = tuple(sorted({*codes, *(c.parent_id for c in communes if c.parent_id)}))
        epcis = tuple(sorted({c.epci_id for c in communes if c.epci_id})) or ("",)
        departements = tuple(sorted({c.departement_id for c in communes}))
        reference = _reference_point(codes, list(group))
        if reference is not None:
            lat0, lon0 = float(reference[0]), float(reference[1])
            cos0 = max(math.cos(math.radians(lat0)), 0.01)
            r = NEARBY_RADIUS_KM / KM_PER_DEGREE
            geo = (lat0, lon0, cos0, lat0 - r, lat0 + r, lon0 - r / cos0, lon0 + r / cos0, r * r)

    consts = (filters, territory_levels, location_asked, limit)
    rows = _execute(_q_search, consts, (territory_codes, group, epcis, departements, geo))
    has_more = len(rows) > limit
    sites = _found_sites(rows[:limit], geo=bool(geo), located=location_asked)
    return FinderResult(
        communes=communes, sites=sites, has_more=has_more, reference=reference, location_asked=location_asked
    )


def site_public_get(*, pk) -> Site | None:
    """A qualified site with its catalogue (services and vouchers per session); None for any other site."""
    try:
        pk = int(pk)
    except (TypeError, ValueError):
        return None
    return (
        Site.objects.filter(pk=pk, status=QualificationStatus.QUALIFIED)
        .defer("standard_row")
        .prefetch_related(Prefetch("catalogue", queryset=SiteService.objects.order_by("id")))
        .first()
    )


# --- communes by name ----------------------------------------------------------------------------------------

_VARIANTS = {
    "a": "aàâäáã",
    "c": "cç",
    "e": "eéèêë",
    "i": "iîïíì",
    "o": "oôöóò",
    "u": "uùûüú",
    "y": "yÿ",
    "n": "nñ",
}
_SEPARATORS = "-' ’"
_ABBREVIATIONS = {"st": "saint", "ste": "sainte"}


def fold(text: str) -> str:
    """'Châlons-en-Champagne' → 'chalons en champagne': no accents, no case, one kind of separator."""
    decomposed = unicodedata.normalize("NFKD", text)
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch)).lower()
    plain = plain.replace("œ", "oe").replace("æ", "ae")
    words = re.split(r"[\s\-'’]+", plain)
    return " ".join(_ABBREVIATIONS.get(w, w) for w in words if w)


def _name_pattern(folded: str) -> str:
    parts = []
    for ch in folded:
        if ch == " ":
            parts.append(f"[{re.escape(_SEPARATORS)}]+")
        elif ch in _VARIANTS:
            parts.append(f"[{_VARIANTS[ch]}]")
        else:
            parts.append(re.escape(ch))
    return "^" + "".join(parts)


def communes_matching(*, text: str, limit: int = 10) -> list[CommuneRef]:
    """Communes named `text`, ignoring case, accents and separators ("chalons en champagne", "St-Dizier"); if
    none, those whose name starts with it. Shortest names first, then the most populated. One query."""
    folded = fold(text)[:100]
    if len(folded) < 2:
        return []
    rows = [
        CommuneRef(*row)
        for row in Commune.objects.filter(name__iregex=_name_pattern(folded))
        .order_by(Length("name"), F("population").desc(nulls_last=True), "code")
        .values_list(*COMMUNE_COLUMNS)[: max(limit, 50)]
    ]
    exact = [c for c in rows if fold(c.name) == folded]
    return exact[:limit] if exact else rows[:limit]


def communes_for_query(*, text: str) -> list[CommuneRef]:
    """What a person typed in "Commune ou code postal": a postcode (its communes), an INSEE code, or a name (see
    `communes_matching`). Paris, Lyon and Marseille: a postcode gives its arrondissement, not the whole city."""
    compact = "".join(text.split())
    if POSTAL_CODE_RE.match(compact):
        communes = _resolve(commune_code=None, postal_code=compact)
        if communes:
            return communes
    if COMMUNE_CODE_RE.match(compact.upper()):
        return _resolve(commune_code=compact.upper(), postal_code=None)
    return communes_matching(text=text)
