"""The steering funnel: from budget to paid, with who reached whom, where and how fast.

Every figure is computed live from the vouchers, booklets and redemptions, in a handful of set-based queries
whatever the volume (each groups by program first, so values are exact per program: a funder sees its own share
of each voucher, split as the ledger splits it). Nothing is cached or pre-aggregated, so there is nothing to drift.

Who sees what (`Viewer`): a funder its programs (lead or co-funder), a distributor the booklets it received, a
place the vouchers redeemed at it, the operator everything. Filters narrow a viewer's scope, never widen it.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections import defaultdict
from dataclasses import dataclass, field

from django.conf import settings
from django.db import connection
from django.db.models import Count, Q, Sum
from django.db.models.functions import TruncWeek

from passnum.accounts.enums import OrganisationKind
from passnum.accounts.models import Organisation
from passnum.common.standard import Service
from passnum.geo.models import Commune, Departement
from passnum.programs.models import Program, ProgramFunder
from passnum.settlement.ledger import split_by_shares
from passnum.vouchers.enums import BeneficiaryPublic, VoucherStatus
from passnum.vouchers.models import Redemption, Voucher

S = VoucherStatus
K = OrganisationKind

# Days from hand-out to first use: the buckets shown, as (label, first day, last day or None).
DELAY_BUCKETS = (
    ("Le jour même", 0, 0),
    ("1 à 7 jours", 1, 7),
    ("8 à 30 jours", 8, 30),
    ("31 à 90 jours", 31, 90),
    ("Plus de 90 jours", 91, None),
)
AGE_BRACKETS = (
    ("Moins de 25 ans", 0, 24),
    ("25 à 44 ans", 25, 44),
    ("45 à 59 ans", 45, 59),
    ("60 à 74 ans", 60, 74),
    ("75 ans et plus", 75, None),
)
UNKNOWN = "Non renseigné"


# --- who looks, and at what ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Viewer:
    kind: str
    organisation_id: int | None

    @classmethod
    def of(cls, organisation: Organisation) -> Viewer:
        return cls(kind=organisation.kind, organisation_id=organisation.pk)

    @property
    def sees_upstream(self) -> bool:
        """Budget, issuance and allocation are funders' and the operator's business."""
        return self.kind in (K.FUNDER, K.OPERATOR)


@dataclass(frozen=True)
class Filters:
    program_ids: tuple[int, ...] = ()
    distributor_id: int | None = None
    departement: str = ""
    place_id: int | None = None


def visible_programs(viewer: Viewer):
    """Programs a viewer may see figures of."""
    programs = Program.objects.all()
    if viewer.kind == K.FUNDER:
        return programs.filter(funders__funder_id=viewer.organisation_id).distinct()
    if viewer.kind == K.DISTRIBUTOR:
        return programs.filter(booklets__distributor_id=viewer.organisation_id).distinct()
    if viewer.kind == K.PLACE:
        return programs.filter(
            vouchers__redemptions__place_id=viewer.organisation_id, vouchers__redemptions__undone_at__isnull=True
        ).distinct()
    if viewer.kind == K.OPERATOR:
        return programs
    return programs.none()


@dataclass
class Scope:
    """The vouchers a viewer sees once filtered, as ORM filters and as an SQL condition on `v` (voucher) and `b`
    (its booklet) for the booklet-level statement."""

    viewer: Viewer
    program_ids: list[int]
    filters: Filters
    voucher_q: Q = field(init=False)
    sql: str = field(init=False)
    params: list = field(init=False)
    distributor_ids: list[int] = field(init=False)
    place_ids: list[int] = field(init=False)

    def __post_init__(self):
        f, v = self.filters, self.viewer
        self.distributor_ids = [v.organisation_id] if v.kind == K.DISTRIBUTOR else []
        self.distributor_ids += [f.distributor_id] if f.distributor_id is not None else []
        self.place_ids = [v.organisation_id] if v.kind == K.PLACE else []
        self.place_ids += [f.place_id] if f.place_id is not None else []
        sql, params = [_in("v.program_id", self.program_ids)], list(self.program_ids)
        for d in self.distributor_ids:
            sql.append("b.distributor_id = %s")
            params.append(d)
        if f.departement:
            sql.append(
                "b.distributor_id IN (SELECT o.id FROM accounts_organisation o JOIN geo_commune c "
                "ON c.code = o.insee_code WHERE c.departement_id = %s)"
            )
            params.append(f.departement)
        for p in self.place_ids:
            sql.append(
                "EXISTS (SELECT 1 FROM vouchers_redemption r WHERE r.voucher_id = v.id "
                "AND r.undone_at IS NULL AND r.place_id = %s)"
            )
            params.append(p)
        self.sql, self.params = " AND ".join(sql), params
        self.voucher_q = self._q(
            program="program_id",
            booklet="booklet",
            place=lambda p: Q(redemptions__place_id=p, redemptions__undone_at__isnull=True),
        )

    def _q(self, *, program: str, booklet: str, place) -> Q:
        """The scope as ORM filters on a model that reaches the voucher's program and booklet by these paths, and
        the redeeming place through `place(id)`."""
        q = Q(**{f"{program}__in": self.program_ids})
        for d in self.distributor_ids:
            q &= Q(**{f"{booklet}__distributor_id": d})
        if self.filters.departement:
            codes = Commune.objects.filter(departement_id=self.filters.departement).values("code")
            q &= Q(**{f"{booklet}__distributor__insee_code__in": codes})
        for p in self.place_ids:
            q &= place(p)
        return q

    def vouchers(self):
        return Voucher.objects.filter(self.voucher_q)

    def redemptions(self):
        """Active redemptions of the scope's vouchers (at most one per voucher)."""
        q = self._q(program="voucher__program_id", booklet="voucher__booklet", place=lambda p: Q(place_id=p))
        return Redemption.objects.filter(q, undone_at__isnull=True)

    def paid_lines(self, funder_id: int):
        """A funder's paid claim lines for the scope's vouchers: what it has paid, voucher by voucher."""
        from passnum.settlement.enums import LineStatus
        from passnum.settlement.models import ClaimLine

        q = self._q(program="voucher__program_id", booklet="voucher__booklet", place=lambda p: Q(claim__place_id=p))
        return ClaimLine.objects.filter(q, funder_id=funder_id, status=LineStatus.PAID)


def _in(column: str, ids: list) -> str:
    if not ids:
        return "1 = 0"
    return f"{column} IN ({', '.join(['%s'] * len(ids))})"


def scope_for(viewer: Viewer, filters: Filters) -> Scope:
    ids = list(visible_programs(viewer).values_list("pk", flat=True))
    if filters.program_ids:
        ids = [pk for pk in ids if pk in set(filters.program_ids)]
    return Scope(viewer=viewer, program_ids=sorted(ids), filters=filters)


# --- the figures ------------------------------------------------------------------------------------------------


@dataclass
class Step:
    key: str
    label: str
    vouchers: int | None
    value_cents: int | None
    booklets: int | None = None
    rate: float | None = None  # from the step it is compared to
    rate_of: str = ""


@dataclass
class Row:
    """One line of a breakdown table."""

    key: str
    label: str
    values: dict = field(default_factory=dict)


@dataclass
class Dashboard:
    scope: Scope
    steps: list[Step]
    people_handed: int
    people_reached: int
    median_days: float | None
    delays: list[Row]
    by_program: list[Row]
    by_distributor: list[Row]
    by_departement: list[Row]
    by_place: list[Row]
    services: list[Row]
    publics: list[Row]
    ages: list[Row]
    weekly: list[Row]
    sleeping_vouchers: int
    unused_booklets: int
    value_label: str

    def step(self, key: str) -> Step | None:
        return next((s for s in self.steps if s.key == key), None)


class _Prices:
    """A voucher's value for the viewer, per program: the face value, or a funder's own share of it."""

    def __init__(self, viewer: Viewer, program_ids: list[int]):
        self.unit: dict[int, int] = {}
        self.budget: dict[int, int] = {}
        programs = {p.pk: p for p in Program.objects.filter(pk__in=program_ids).only("pk", "face_value_cents")}
        shares = defaultdict(list)
        for pf in ProgramFunder.objects.filter(program_id__in=program_ids).order_by("id"):
            shares[pf.program_id].append(pf)
        for pk, program in programs.items():
            face = program.face_value_cents
            if viewer.kind == K.FUNDER:
                parts = split_by_shares(face, [(pf.funder_id, pf.share_bps) for pf in shares[pk]])
                self.unit[pk] = dict(parts).get(viewer.organisation_id, 0)
                self.budget[pk] = sum(pf.budget_cents for pf in shares[pk] if pf.funder_id == viewer.organisation_id)
            else:
                self.unit[pk] = face
                self.budget[pk] = sum(pf.budget_cents for pf in shares[pk])

    def value(self, program_id: int, vouchers: int) -> int:
        return self.unit.get(program_id, 0) * vouchers


FUNNEL_FIELDS = ("issued", "allocated", "handed_out", "redeemed", "claimed", "paid", "expired")


def _funnel_rows(scope: Scope) -> list[dict]:
    """One scan of the scope's vouchers, grouped by program and distributor."""
    not_cancelled = ~Q(status=S.CANCELLED)
    return list(
        scope.vouchers()
        .values("program_id", "booklet__distributor_id")
        .annotate(
            issued=Count("id", filter=not_cancelled),
            allocated=Count("id", filter=not_cancelled & Q(booklet__distributor_id__isnull=False)),
            handed_out=Count("id", filter=not_cancelled & Q(distributed_at__isnull=False)),
            redeemed=Count("id", filter=Q(redeemed_at__isnull=False)),
            claimed=Count("id", filter=Q(claimed_at__isnull=False)),
            paid=Count("id", filter=Q(paid_at__isnull=False)),
            expired=Count("id", filter=Q(status=S.EXPIRED)),
            sleeping=Count("id", filter=Q(status=S.ISSUED, booklet__distributor_id__isnull=False)),
        )
        .order_by()
    )


def _days_sql() -> str:
    if connection.vendor == "postgresql":
        return "FLOOR(EXTRACT(EPOCH FROM (first_use - handed_out_at)) / 86400)"
    return "CAST(julianday(first_use) - julianday(handed_out_at) AS INTEGER)"


def _booklet_rows(scope: Scope, year: int) -> list[tuple]:
    """One statement over the handed-out booklets of the scope: per (program, distributor) booklets and people,
    per distributor the distinct people (a person belongs to one distributor, so these add up across
    distributors), the distinct people overall, the delay to first use in days, and people by public and age."""
    days = _days_sql()
    age = "(%s - be.birth_year)"
    # Only fixed fragments are interpolated (the scope's SQL is built from constants; values go as parameters).
    sql = f"""
        WITH pb AS (
            SELECT b.program_id, b.distributor_id, b.beneficiary_id, b.handed_out_at,
                   MIN(v.redeemed_at) AS first_use, COUNT(v.id) AS n
            FROM vouchers_booklet b JOIN vouchers_voucher v ON v.booklet_id = b.id
            WHERE b.handed_out_at IS NOT NULL AND v.status <> 'cancelled' AND {scope.sql}
            GROUP BY b.id, b.program_id, b.distributor_id, b.beneficiary_id, b.handed_out_at
        ), pp AS (
            SELECT pb.*, be.public,
                   CASE WHEN be.birth_year IS NULL THEN NULL
                        WHEN {age} < 25 THEN 0 WHEN {age} < 45 THEN 1 WHEN {age} < 60 THEN 2
                        WHEN {age} < 75 THEN 3 ELSE 4 END AS bracket
            FROM pb LEFT JOIN vouchers_beneficiary be ON be.id = pb.beneficiary_id
        )
        SELECT 'pd', program_id, distributor_id, '', COUNT(*), COUNT(first_use),
               SUM(CASE WHEN first_use IS NOT NULL THEN n ELSE 0 END),
               COUNT(DISTINCT beneficiary_id),
               COUNT(DISTINCT CASE WHEN first_use IS NOT NULL THEN beneficiary_id END)
        FROM pb GROUP BY program_id, distributor_id
        UNION ALL
        SELECT 'd', NULL, distributor_id, '', 0, 0, 0, COUNT(DISTINCT beneficiary_id),
               COUNT(DISTINCT CASE WHEN first_use IS NOT NULL THEN beneficiary_id END)
        FROM pb GROUP BY distributor_id
        UNION ALL
        SELECT 't', NULL, NULL, '', 0, 0, 0, COUNT(DISTINCT beneficiary_id),
               COUNT(DISTINCT CASE WHEN first_use IS NOT NULL THEN beneficiary_id END)
        FROM pb
        UNION ALL
        SELECT 'h', NULL, NULL, '', {days}, COUNT(*), 0, 0, 0
        FROM pb WHERE first_use IS NOT NULL GROUP BY {days}
        UNION ALL
        SELECT 'a', NULL, bracket, COALESCE(public, ''), 0, 0, 0, COUNT(DISTINCT beneficiary_id),
               COUNT(DISTINCT CASE WHEN first_use IS NOT NULL THEN beneficiary_id END)
        FROM pp GROUP BY public, bracket
    """  # noqa: S608
    params = list(scope.params) + [year] * 4
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _weekly_rows(scope: Scope) -> dict[dt.date, list[int]]:
    """Vouchers handed out and redeemed per week (Monday, Paris time), from one scan."""
    tz = zoneinfo.ZoneInfo(settings.TIME_ZONE)
    rows = (
        scope.vouchers()
        .exclude(status=S.CANCELLED)
        .filter(distributed_at__isnull=False)
        .values(wh=TruncWeek("distributed_at", tzinfo=tz), wr=TruncWeek("redeemed_at", tzinfo=tz))
        .annotate(n=Count("id"))
        .order_by()
    )
    weeks: dict[dt.date, list[int]] = defaultdict(lambda: [0, 0])
    for r in rows:
        weeks[_as_date(r["wh"])][0] += r["n"]
        if r["wr"] is not None:
            weeks[_as_date(r["wr"])][1] += r["n"]
    return weeks


def _as_date(value) -> dt.date:
    return value.date() if isinstance(value, dt.datetime) else value


def _median_days(histogram: dict[int, int]) -> float | None:
    """The exact median of whole days, from their counts."""
    total = sum(histogram.values())
    if not total:
        return None
    ordered = sorted(histogram.items())
    targets = ((total - 1) // 2, total // 2)
    found, seen = [], 0
    for day, n in ordered:
        while len(found) < 2 and targets[len(found)] < seen + n:
            found.append(day)
        seen += n
    return (found[0] + found[1]) / 2


def _rate(part: int | None, whole: int | None) -> float | None:
    if part is None or not whole:
        return None
    return part / whole


def dashboard(viewer: Viewer, filters: Filters | None = None, *, today: dt.date | None = None) -> Dashboard:
    scope = scope_for(viewer, filters or Filters())
    today = today or dt.date.today()
    prices = _Prices(viewer, scope.program_ids)
    ids = scope.program_ids

    funnel = _funnel_rows(scope) if ids else []
    booklets = _booklet_rows(scope, today.year) if ids else []
    weekly = _weekly_rows(scope) if ids else {}
    places = (
        list(
            scope.redemptions()
            .values("voucher__program_id", "place_id")
            .annotate(
                n=Count("id"),
                claimed=Count("id", filter=Q(voucher__claimed_at__isnull=False)),
                paid=Count("id", filter=Q(voucher__paid_at__isnull=False)),
                people=Count("voucher__booklet__beneficiary_id", distinct=True),
            )
            .order_by()
        )
        if ids
        else []
    )
    services = (
        list(scope.redemptions().values("voucher__program_id", "service").annotate(n=Count("id")).order_by())
        if ids
        else []
    )
    # A voucher is `paid` once every funder has paid its line; a funder sees what it has paid itself.
    paid_lines = (
        list(
            scope.paid_lines(viewer.organisation_id)
            .values("voucher__program_id", "voucher__booklet__distributor_id", "claim__place_id")
            .annotate(n=Count("id"), cents=Sum("amount_cents"))
            .order_by()
        )
        if ids and viewer.kind == K.FUNDER
        else None
    )

    # totals per program and per distributor
    per_program: dict[int, dict] = defaultdict(lambda: defaultdict(int))
    per_distributor: dict[int | None, dict] = defaultdict(lambda: defaultdict(int))
    sleeping = 0
    for r in funnel:
        pid, did = r["program_id"], r["booklet__distributor_id"]
        sleeping += r["sleeping"]
        for f in FUNNEL_FIELDS:
            per_program[pid][f] += r[f]
            per_program[pid][f + "_value"] += prices.value(pid, r[f])
            if did is not None:
                per_distributor[did][f] += r[f]
                per_distributor[did][f + "_value"] += prices.value(pid, r[f])
    if paid_lines is not None:
        _apply_paid_lines(paid_lines, per_program, per_distributor, places)
    histogram: dict[int, int] = {}
    publics: dict[tuple, list[int]] = {}
    people_handed = people_reached = 0
    for kind, a, b, public, *numbers in booklets:
        c, d, e, ph, pr = (int(n or 0) for n in numbers)  # PostgreSQL types the union's columns as numeric
        if kind == "pd":
            for target in (per_program[a], per_distributor[b]):
                target["booklets_handed"] += c
                target["booklets_used"] += d
                target["used_vouchers"] += e
            per_program[a]["used_value"] += prices.value(a, e)
            per_program[a]["people_handed"] += ph  # distinct within a program (a person has one distributor)
            per_program[a]["people_reached"] += pr
        elif kind == "d":
            per_distributor[b]["people_handed"] = ph
            per_distributor[b]["people_reached"] = pr
        elif kind == "t":
            people_handed, people_reached = ph, pr
        elif kind == "h":
            histogram[max(c, 0)] = histogram.get(max(c, 0), 0) + d
        elif kind == "a":
            publics[(public, b)] = [ph, pr]

    total = defaultdict(int)
    for values in per_program.values():
        for k, n in values.items():
            total[k] += n
    budget_cents = sum(prices.budget.get(pid, 0) for pid in ids)
    steps = _steps(viewer, total, budget_cents, prices, ids)
    names = dict(Program.objects.filter(pk__in=ids).values_list("pk", "name"))
    sleeping_unused = total["booklets_handed"] - total["booklets_used"]

    return Dashboard(
        scope=scope,
        steps=steps,
        people_handed=people_handed,
        people_reached=people_reached,
        median_days=_median_days(histogram),
        delays=_delay_rows(histogram),
        by_program=[
            Row(key=str(pid), label=names.get(pid, str(pid)), values=_row_values(per_program[pid]))
            for pid in sorted(per_program, key=lambda p: names.get(p, ""))
        ],
        by_distributor=_distributor_rows(per_distributor),
        by_departement=_departement_rows(per_distributor),
        by_place=_place_rows(places, prices),
        services=_service_rows(services, prices),
        publics=_public_rows(publics),
        ages=_age_rows(publics),
        weekly=[
            Row(key=w.isoformat(), label=f"{w:%d/%m/%Y}", values={"handed_out": n[0], "redeemed": n[1]})
            for w, n in sorted(weekly.items())
        ],
        sleeping_vouchers=sleeping,
        unused_booklets=sleeping_unused,
        value_label="Votre part" if viewer.kind == K.FUNDER else "Montant",
    )


def _apply_paid_lines(lines: list[dict], per_program: dict, per_distributor: dict, places: list[dict]) -> None:
    """Replace the paid figures by the funder's own paid lines (count and exact cents)."""
    for target in list(per_program.values()) + list(per_distributor.values()):
        target["paid"] = target["paid_value"] = 0
    by_place: dict[tuple, int] = defaultdict(int)
    for line in lines:
        pid, did = line["voucher__program_id"], line["voucher__booklet__distributor_id"]
        for target in (per_program[pid], per_distributor[did] if did is not None else None):
            if target is not None:
                target["paid"] += line["n"]
                target["paid_value"] += line["cents"] or 0
        by_place[(pid, line["claim__place_id"])] += line["n"]
    for row in places:
        row["paid"] = by_place.get((row["voucher__program_id"], row["place_id"]), 0)


STEP_LABELS = {
    "budget": "Budget",
    "issued": "Émis",
    "allocated": "Confiés aux prescripteurs",
    "handed_out": "Remis aux personnes",
    "first_use": "Première utilisation",
    "redeemed": "Chèques encaissés",
    "claimed": "Demandés en remboursement",
    "paid": "Payés aux lieux",
    "expired": "Expirés",
}


def _steps(viewer: Viewer, total: dict, budget_cents: int, prices: _Prices, ids: list[int]) -> list[Step]:
    def step(key, rate_of=""):
        return Step(key=key, label=STEP_LABELS[key], vouchers=total[key], value_cents=total[key + "_value"])

    steps: list[Step] = []
    if viewer.sees_upstream:
        unit = prices.unit.get(ids[0], 0) if len(ids) == 1 else 0
        steps.append(
            Step(
                key="budget",
                label=STEP_LABELS["budget"],
                vouchers=budget_cents // unit if unit else None,
                value_cents=budget_cents,
            )
        )
        steps += [step("issued"), step("allocated")]
    if viewer.kind != K.PLACE:
        handed = step("handed_out")
        handed.booklets = total["booklets_handed"]
        first = Step(
            key="first_use",
            label=STEP_LABELS["first_use"],
            vouchers=total["used_vouchers"],
            value_cents=total["used_value"],
            booklets=total["booklets_used"],
        )
        steps += [handed, first]
    steps += [step("redeemed"), step("claimed"), step("paid"), step("expired")]
    # Each step against the one it follows from; first use counts booklets (people), the rest vouchers.
    compare = {
        "issued": "budget",
        "allocated": "issued",
        "handed_out": "allocated",
        "first_use": "handed_out",
        "redeemed": "handed_out",
        "claimed": "redeemed",
        "paid": "claimed",
        "expired": "issued",
    }
    by_key = {s.key: s for s in steps}
    for s in steps:
        ref = by_key.get(compare.get(s.key, ""))
        if ref is None:
            continue
        s.rate_of = ref.label
        if s.key == "first_use":
            s.rate = _rate(s.booklets, ref.booklets)
        elif s.key == "issued":
            s.rate = _rate(s.value_cents, ref.value_cents)
        else:
            s.rate = _rate(s.vouchers, ref.vouchers)
    return steps


def _row_values(v: dict) -> dict:
    return {
        "issued": v.get("issued", 0),
        "allocated": v.get("allocated", 0),
        "handed_out": v.get("handed_out", 0),
        "booklets_handed": v.get("booklets_handed", 0),
        "booklets_used": v.get("booklets_used", 0),
        "people_reached": v.get("people_reached", 0),
        "redeemed": v.get("redeemed", 0),
        "redeemed_value": v.get("redeemed_value", 0),
        "paid": v.get("paid", 0),
        "expired": v.get("expired", 0),
        "use_rate": _rate(v.get("booklets_used", 0), v.get("booklets_handed", 0)),
        "sleeping": v.get("allocated", 0) - v.get("handed_out", 0),
    }


def _distributor_rows(per_distributor: dict) -> list[Row]:
    orgs = dict(Organisation.objects.filter(pk__in=[d for d in per_distributor if d]).values_list("pk", "name"))
    rows = [Row(key=str(d), label=orgs.get(d, str(d)), values=_row_values(v)) for d, v in per_distributor.items()]
    return sorted(rows, key=lambda r: (-r.values["allocated"], r.label))  # the largest stocks first


def _departement_rows(per_distributor: dict) -> list[Row]:
    dep_of = {
        pk: dep
        for pk, dep in Organisation.objects.filter(pk__in=[d for d in per_distributor if d])
        .values_list("pk", "insee_code")
        .iterator()
    }
    communes = dict(
        Commune.objects.filter(code__in=[c for c in dep_of.values() if c]).values_list("code", "departement_id")
    )
    sums: dict[str, dict] = defaultdict(lambda: defaultdict(int))
    for d, values in per_distributor.items():
        dep = communes.get(dep_of.get(d) or "", "")
        for k, n in values.items():
            sums[dep][k] += n
    names = dict(Departement.objects.filter(code__in=list(sums)).values_list("code", "name"))
    rows = [
        Row(key=dep, label=f"{names[dep]} ({dep})" if dep in names else UNKNOWN, values=_row_values(v))
        for dep, v in sums.items()
    ]
    return sorted(rows, key=lambda r: (r.key == "", r.key))


def _place_rows(places: list[dict], prices: _Prices) -> list[Row]:
    sums: dict[int, dict] = defaultdict(lambda: defaultdict(int))
    for r in places:
        s = sums[r["place_id"]]
        s["redeemed"] += r["n"]
        s["redeemed_value"] += prices.value(r["voucher__program_id"], r["n"])
        s["claimed"] += r["claimed"]
        s["paid"] += r["paid"]
        s["people_reached"] += r["people"]
    names = dict(Organisation.objects.filter(pk__in=list(sums)).values_list("pk", "name"))
    rows = [Row(key=str(p), label=names.get(p, str(p)), values=dict(v)) for p, v in sums.items()]
    return sorted(rows, key=lambda r: (-r.values["redeemed"], r.label))


def _service_rows(services: list[dict], prices: _Prices) -> list[Row]:
    sums: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for r in services:
        sums[r["service"]][0] += r["n"]
        sums[r["service"]][1] += prices.value(r["voucher__program_id"], r["n"])
    total = sum(n for n, _ in sums.values())
    labels = dict(Service.choices)
    rows = [
        Row(key=code, label=labels.get(code, code), values={"n": n, "value": v, "share": _rate(n, total)})
        for code, (n, v) in sums.items()
    ]
    return sorted(rows, key=lambda r: (-r.values["n"], r.label))


def _delay_rows(histogram: dict[int, int]) -> list[Row]:
    total = sum(histogram.values())
    rows = []
    for label, low, high in DELAY_BUCKETS:
        n = sum(c for d, c in histogram.items() if d >= low and (high is None or d <= high))
        rows.append(Row(key=str(low), label=label, values={"n": n, "share": _rate(n, total)}))
    return rows


def _public_rows(publics: dict[tuple, list[int]]) -> list[Row]:
    sums: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for (public, _bracket), (ph, pr) in publics.items():
        sums[public][0] += ph
        sums[public][1] += pr
    labels = dict(BeneficiaryPublic.choices)
    order = list(labels) + [""]
    return [
        Row(key=p, label=labels.get(p, UNKNOWN), values=_people(*sums[p]))
        for p in sorted(sums, key=lambda p: order.index(p) if p in order else len(order))
    ]


def _age_rows(publics: dict[tuple, list[int]]) -> list[Row]:
    sums: dict[int | None, list[int]] = defaultdict(lambda: [0, 0])
    for (_public, bracket), (ph, pr) in publics.items():
        sums[bracket][0] += ph
        sums[bracket][1] += pr
    rows = [Row(key=str(i), label=label, values=_people(*sums[i])) for i, (label, _, _) in enumerate(AGE_BRACKETS)]
    if sums.get(None) and sum(sums[None]):
        rows.append(Row(key="", label=UNKNOWN, values=_people(*sums[None])))
    return [r for r in rows if r.values["handed"]]


def _people(handed: int, reached: int) -> dict:
    return {"handed": handed, "reached": reached, "rate": _rate(reached, handed)}
