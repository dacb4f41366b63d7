"""Issuance benchmark: vouchers/s through `booklets_issue` against a raw baseline in the same run.

    python benchmarks/issuance.py --vouchers 1000000      # PostgreSQL on 127.0.0.1 (throwaway database)

The baseline generates the same number of codes with the same function and COPYs the same rows into the same
tables, emptied first, and commits. Last line: ratio=<service/raw throughput> goal=0.5."""

import argparse
import datetime as dt
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
DB_NAME = "passnum_bench_issuance"


def setup_django(database_url: str) -> None:
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings.test"
    os.environ["DATABASE_URL"] = database_url
    import django

    django.setup()


def recreate_database(admin_url: str) -> str:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB_NAME}")
        conn.execute(f"CREATE DATABASE {DB_NAME}")
    return admin_url.rsplit("/", 1)[0] + f"/{DB_NAME}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--vouchers", type=int, default=1_000_000)
    parser.add_argument("--per-booklet", type=int, default=10)
    parser.add_argument(
        "--admin-url", default=os.environ.get("BENCH_ADMIN_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    )
    args = parser.parse_args()
    booklets = args.vouchers // args.per_booklet

    url = recreate_database(args.admin_url)
    setup_django(url)
    from django.core.management import call_command
    from django.db import connection, transaction

    call_command("migrate", verbosity=0)
    from passnum.accounts.enums import OrganisationKind
    from passnum.accounts.services import organisation_create
    from passnum.geo.enums import TerritoryLevel
    from passnum.programs.services import FunderShare, ProgramData, program_create
    from passnum.vouchers import codes
    from passnum.vouchers.bulk import COLUMNS
    from passnum.vouchers.models import Booklet
    from passnum.vouchers.services import booklets_issue

    a = organisation_create(name="Financeur A", kind=OrganisationKind.FUNDER)
    b = organisation_create(name="Financeur B", kind=OrganisationKind.FUNDER)
    budget = args.vouchers * 1000
    program = program_create(
        owner=a,
        actor=None,
        data=ProgramData(
            name="Banc d’essai",
            valid_from=dt.date(2026, 1, 1),
            valid_until=dt.date(2027, 1, 1),
            funders=[FunderShare(a, 6000, budget), FunderShare(b, 4000, budget)],
            territory=[(TerritoryLevel.DEPARTEMENT, "51")],
            eligible_services=["outils_du_quotidien"],
            vouchers_per_booklet=args.per_booklet,
        ),
    )

    # Service: the whole path (locks, budget check, booklets, codes, COPY, ledger, journal, commit).
    t0 = time.perf_counter()
    booklets_issue(program=program, count=booklets)
    service_s = time.perf_counter() - t0
    service_rate = args.vouchers / service_s

    assert Booklet.objects.filter(program=program).count() == booklets
    # Raw: the same booklet rows and as many codes from the same generator, COPYed into the same (emptied) tables
    # and committed, so both sides pay for the unique index and the commit.
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE vouchers_voucher, vouchers_booklet CASCADE")  # nothing else refers to them yet
    t0 = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cursor:
        pg = cursor.cursor
        now = dt.datetime.now(dt.UTC)
        with pg.copy("COPY vouchers_booklet (program_id, number, issued_at, hand_out_key) FROM STDIN") as copy:
            for i in range(booklets):
                copy.write_row((program.id, 10_000_000 + i, now, ""))
        pg.execute("SELECT id FROM vouchers_booklet WHERE program_id = %s ORDER BY number", [program.id])
        ids = [row[0] for row in pg.fetchall()]
        with pg.copy(f"COPY vouchers_voucher ({', '.join(COLUMNS)}) FROM STDIN") as copy:
            for booklet_id in ids:
                for pos in range(1, args.per_booklet + 1):
                    copy.write_row((booklet_id, program.id, pos, codes.generate_code(), 1000, "issued", ""))
    raw_s = time.perf_counter() - t0
    raw_rate = args.vouchers / raw_s

    print(f"vouchers={args.vouchers} booklets={booklets}")
    print(f"service: {service_s:.2f} s, {service_rate:,.0f} vouchers/s")
    print(f"raw:     {raw_s:.2f} s, {raw_rate:,.0f} vouchers/s")
    connection.close()
    print(f"ratio={service_rate / raw_rate:.2f} goal=0.5")


if __name__ == "__main__":
    main()
