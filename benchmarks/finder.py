#!/usr/bin/env python
"""Benchmark of the public finder (`passnum.places.finder.finder_search`).

    python benchmarks/finder.py [--places 20000] [--runs 50] [--seed 1] [--pg-ssd]

Creates its own database — a temporary SQLite file, or, when DATABASE_URL names a PostgreSQL server, a throwaway
database `passnum_bench_finder_<pid>` on that server (created, then dropped; the database named in the URL is
never touched) —, migrates it (the INSEE geography included), bulk-creates N qualified sites spread over France
with their catalogue, publics and supports, then times a few representative searches:

- service: the selector call as a view makes it (query building, SQL, materialisation, ranking), and
- raw: the very same SQL statements with the same parameters (captured from the selector's own run), executed
  through `connection.cursor()` and fetched.

The runs alternate service/raw so that drift affects both alike. The last line is
`ratio=<raw median / service median> goal=0.7` (sums of the scenarios' medians): 1.00 would mean the selector
costs nothing on top of its SQL; the goal is that it costs at most about 40 %.

Site coordinates are synthetic: the INSEE geography has none. Each metropolitan département gets a cell of a
1°×1° grid over France (overseas départements their real position), each commune a fixed point in its cell, and
each site a point within about 2 km of its commune. Densities, selectivity and distances are realistic enough
for timing; the map would look like a chessboard.
"""

import argparse
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

BENCH_DB_PREFIX = "passnum_bench_finder_"
OVERSEAS = {
    "971": (16.2, -61.5),
    "972": (14.65, -61.0),
    "973": (4.0, -53.0),
    "974": (-21.1, 55.5),
    "976": (-12.8, 45.15),
}

SCENARIOS = [
    ("commune", {"commune_code": "51454", "services": ["demarches_administratives"]}),
    ("postcode", {"postal_code": "51170"}),
    (
        "filters",
        {
            "commune_code": "69123",
            "services": ["outils_du_quotidien", "usage_securise"],
            "publics": ["seniors"],
            "supports": ["handicaps_moteurs"],
        },
    ),
    ("rural", {"commune_code": "23096"}),
]


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--places", type=int, default=20_000, help="qualified sites to create (20 000)")
    parser.add_argument("--runs", type=int, default=50, help="timed runs per scenario (50)")
    parser.add_argument("--seed", type=int, default=1, help="random seed of the generated sites (1)")
    parser.add_argument(
        "--pg-ssd",
        action="store_true",
        help="PostgreSQL: random_page_cost = 1.1 on the throwaway database (the usual setting on SSDs)",
    )
    return parser.parse_args()


# --- database ------------------------------------------------------------------------------------------------


def prepare_database(*, pg_ssd: bool = False) -> tuple[str, callable]:
    """Point DATABASE_URL at a throwaway database; return a description and the clean-up function."""
    url = os.environ.get("DATABASE_URL", "").strip()
    scheme = urlsplit(url).scheme if url else ""
    if scheme in {"postgres", "postgresql", "pgsql"}:
        import psycopg

        parts = urlsplit(url)
        name = f"{BENCH_DB_PREFIX}{os.getpid()}"
        admin_url = urlunsplit(parts._replace(scheme="postgresql", path="/postgres"))
        bench_url = urlunsplit(parts._replace(path=f"/{name}"))
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            conn.execute(f"CREATE DATABASE \"{name}\" ENCODING 'UTF8' TEMPLATE template0")
            if pg_ssd:
                conn.execute(f'ALTER DATABASE "{name}" SET random_page_cost = 1.1')
        os.environ["DATABASE_URL"] = bench_url

        def drop():
            from django.db import connections

            connections.close_all()
            with psycopg.connect(admin_url, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

        return f"PostgreSQL, throwaway database {name}" + (", random_page_cost = 1.1" if pg_ssd else ""), drop
    if url and scheme != "sqlite":
        sys.exit(f"DATABASE_URL: unsupported scheme {scheme!r} (PostgreSQL or SQLite)")
    tmpdir = tempfile.mkdtemp(prefix="passnum-bench-finder-")
    os.environ["DATABASE_URL"] = f"sqlite:///{tmpdir}/bench.sqlite3"

    def remove():
        from django.db import connections

        connections.close_all()
        shutil.rmtree(tmpdir, ignore_errors=True)

    return f"SQLite, temporary file {tmpdir}/bench.sqlite3", remove


# --- data ----------------------------------------------------------------------------------------------------


def departement_centres(codes: list[str]) -> dict[str, tuple[float, float]]:
    metro = sorted(c for c in codes if len(c) == 2 or c in {"2A", "2B"})
    centres = {}
    for i, code in enumerate(metro):
        row, col = divmod(i, 12)
        centres[code] = (50.5 - row - 0.5, -4.5 + col + 0.5)
    centres.update({code: pos for code, pos in OVERSEAS.items() if code in codes})
    return centres


def seed_sites(count: int, rng: random.Random) -> None:
    from django.db import transaction

    from passnum.accounts.enums import OrganisationKind
    from passnum.accounts.models import Organisation
    from passnum.common.standard import AccessMode, Public, Service, SpecificSupport
    from passnum.geo.models import Commune
    from passnum.places.enums import QualificationStatus
    from passnum.places.models import Site, SiteService

    organisation = Organisation.objects.create(
        name="Réseau de banc d’essai", slug="banc-essai", kind=OrganisationKind.PLACE
    )
    communes = list(Commune.objects.filter(kind="actuelle").values_list("code", "name", "departement_id", "population"))
    centres = departement_centres(sorted({c[2] for c in communes}))
    communes = [c for c in communes if c[2] in centres]
    weights = [max(c[3] or 0, 50) ** 0.8 for c in communes]
    commune_point = {}
    for code, _name, dep, _pop in communes:
        lat, lon = centres[dep]
        commune_point[code] = (lat + rng.uniform(-0.45, 0.45), lon + rng.uniform(-0.45, 0.45))
    services, publics, supports = list(Service.values), list(Public.values), list(SpecificSupport.values)
    chosen = rng.choices(communes, weights=weights, k=count)
    sites, catalogue = [], []
    for i, (code, name, _dep, _pop) in enumerate(chosen):
        lat, lon = commune_point[code]
        located = rng.random() < 0.9
        site_services = rng.sample(services, rng.randint(1, 4))
        site_publics = [Public.EVERYONE] if rng.random() < 0.4 else rng.sample(publics[1:], rng.randint(0, 2))
        sites.append(
            Site(
                organisation=organisation,
                name=f"Lieu {i:05d} — {name}"[:250],
                address=f"{rng.randint(1, 120)} rue de la Médiation",
                postal_code="00000",
                commune_id=code,
                commune_name=name,
                latitude=lat + rng.uniform(-0.02, 0.02) if located else None,
                longitude=lon + rng.uniform(-0.02, 0.02) if located else None,
                opening_hours="Mo-Fr 09:00-12:00,14:00-18:00",
                services=[s for s in services if s in site_services],
                publics=site_publics,
                supports=rng.sample(supports, rng.randint(0, 3)),
                access_modes=[AccessMode.WALK_IN, AccessMode.PHONE],
                source_id=f"bench-{i}",
                status=QualificationStatus.QUALIFIED,
            )
        )
    with transaction.atomic():
        created = Site.objects.bulk_create(sites, batch_size=1000)
        for site in created:
            catalogue.extend(
                SiteService(site_id=site.id, service=s, vouchers_per_session=rng.randint(1, 3)) for s in site.services
            )
        SiteService.objects.bulk_create(catalogue, batch_size=2000)


# --- measure -------------------------------------------------------------------------------------------------


def capture(call):
    """Run `call` once and return its result and every (sql, params) it sent."""
    from django.db import connection

    statements = []

    def wrapper(execute, sql, params, many, context):
        statements.append((sql, params))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(wrapper):
        result = call()
    return result, statements


def run_raw(statements) -> int:
    from django.db import connection

    rows = 0
    with connection.cursor() as cursor:
        for sql, params in statements:
            cursor.execute(sql, params)
            rows = len(cursor.fetchall())
    return rows


def measure(name, kwargs, runs):
    from passnum.places.finder import finder_search

    def call():
        return finder_search(**kwargs)

    result, statements = capture(call)
    raw_rows = run_raw(statements)
    assert raw_rows == len(result.sites) + int(result.has_more), (name, raw_rows, len(result.sites))
    for _ in range(5):  # warm-up: caches, statement plans
        call()
        run_raw(statements)
    service_ns, raw_ns = [], []
    for _ in range(runs):
        t0 = time.perf_counter_ns()
        call()
        t1 = time.perf_counter_ns()
        run_raw(statements)
        t2 = time.perf_counter_ns()
        service_ns.append(t1 - t0)
        raw_ns.append(t2 - t1)
    return {
        "name": name,
        "queries": len(statements),
        "rows": len(result.sites),
        "nearest": result.sites[0].distance_km if result.sites else None,
        "service": statistics.median(service_ns) / 1e6,
        "raw": statistics.median(raw_ns) / 1e6,
    }


def main():
    args = parse_args()
    where, cleanup = prepare_database(pg_ssd=args.pg_ssd)
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings.test"
    try:
        import django

        django.setup()
        from django.core.management import call_command
        from django.db import connection

        print(f"finder benchmark — {where}", flush=True)
        t0 = time.perf_counter()
        call_command("migrate", verbosity=0, interactive=False)
        t1 = time.perf_counter()
        seed_sites(args.places, random.Random(args.seed))
        t2 = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")  # fresh statistics, as autovacuum would eventually give
        print(
            f"{connection.vendor} {connection.Database.sqlite_version if connection.vendor == 'sqlite' else ''}"
            f"{connection.pg_version if connection.vendor == 'postgresql' else ''} · migrate {t1 - t0:.1f} s · "
            f"{args.places} qualified sites created in {t2 - t1:.1f} s · {args.runs} runs per scenario",
            flush=True,
        )
        results = [measure(name, kwargs, args.runs) for name, kwargs in SCENARIOS]
        print(f"{'scenario':<10} {'queries':>7} {'rows':>5} {'service ms':>11} {'raw ms':>8} {'raw/service':>12}")
        for r in results:
            print(
                f"{r['name']:<10} {r['queries']:>7} {r['rows']:>5} {r['service']:>11.2f} {r['raw']:>8.2f} "
                f"{r['raw'] / r['service']:>12.2f}"
            )
        service = sum(r["service"] for r in results)
        raw = sum(r["raw"] for r in results)
        print(f"total (medians) service {service:.2f} ms, raw {raw:.2f} ms")
        print(f"ratio={raw / service:.2f} goal=0.7")
    finally:
        cleanup()


if __name__ == "__main__":
    main()
