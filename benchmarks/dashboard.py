"""Dashboard benchmark: the funnel page of a program with 1 000 000 vouchers, against the raw SQL of its figures.

    python benchmarks/dashboard.py                         # 1 000 000 vouchers (100 000 booklets of 10)
    python benchmarks/dashboard.py --vouchers 100000       # a quick run
    python benchmarks/dashboard.py --admin-url postgres://postgres@127.0.0.1:5432/postgres

PostgreSQL only. The script drops and recreates its own database (passnum_bench_dashboard), migrates it (the INSEE
geography included), then sets up the data without timing it, by INSERT … SELECT on the server: one program
co-funded 60/40 by two funders, `--distributors` distributors in communes drawn from the geography,
`--places` places, and the program's booklets: 95 % allocated, 85 % of those handed out to a person (public and
birth year drawn at random, one person per booklet), 60 % of the handed-out booklets used, each voucher of a used
booklet redeemed with probability 0.7 (the first always) over the 120 days after the hand-out at one of the
places, in one of three services; 0.5 % of the vouchers cancelled. The redemptions before 1 July 2026 are then
settled by `settle` itself (claims and claim lines for both funders), and half of the lead funder's claims are
marked paid.

Timed, in the same run, alternating (so drift affects both alike), after one warm-up of each:

- service: GET /pilotage/?dispositif=<slug> through Django's test client, logged in as a member of the lead
  funder: middleware, permissions, the funnel's queries (passnum.steering.funnel), its tables and the template;
- raw: the same figures (funnel per distributor, booklets and people per distributor, the distinct people, the
  delay to first use, public and age, weekly, per place, per service, what the funder has paid) by hand-written SQL
  on the same connection, fetched, nothing rendered.

Last line: ratio=<raw median / service median> goal=0.7 (1.00 would mean the page costs nothing on top of its
SQL; higher is better)."""

import argparse
import datetime as dt
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
DB_NAME = "passnum_bench_dashboard"
START = dt.datetime(2026, 1, 5, 9, tzinfo=dt.UTC)
CUTOFF = dt.date(2026, 7, 1)
CUTOFF_AT = dt.datetime(2026, 7, 2, 9, tzinfo=dt.UTC)

RAW = [
    # the funnel, per distributor
    """SELECT v.program_id, b.distributor_id,
       COUNT(*) FILTER (WHERE v.status <> 'cancelled'),
       COUNT(*) FILTER (WHERE v.status <> 'cancelled' AND b.distributor_id IS NOT NULL),
       COUNT(*) FILTER (WHERE v.status <> 'cancelled' AND v.distributed_at IS NOT NULL),
       COUNT(*) FILTER (WHERE v.redeemed_at IS NOT NULL), COUNT(*) FILTER (WHERE v.claimed_at IS NOT NULL),
       COUNT(*) FILTER (WHERE v.paid_at IS NOT NULL), COUNT(*) FILTER (WHERE v.status = 'expired'),
       COUNT(*) FILTER (WHERE v.status = 'issued' AND b.distributor_id IS NOT NULL)
    FROM vouchers_voucher v JOIN vouchers_booklet b ON b.id = v.booklet_id
    WHERE v.program_id = %(program)s GROUP BY v.program_id, b.distributor_id""",
    # booklets handed out: per distributor, people, delay to first use, public and age
    """WITH pb AS (
        SELECT b.program_id, b.distributor_id, b.beneficiary_id, b.handed_out_at,
               MIN(v.redeemed_at) AS first_use, COUNT(v.id) AS n
        FROM vouchers_booklet b JOIN vouchers_voucher v ON v.booklet_id = b.id
        WHERE b.handed_out_at IS NOT NULL AND v.status <> 'cancelled' AND v.program_id = %(program)s
        GROUP BY b.id
    ), pp AS (
        SELECT pb.*, be.public, CASE WHEN be.birth_year IS NULL THEN NULL
            WHEN %(year)s - be.birth_year < 25 THEN 0 WHEN %(year)s - be.birth_year < 45 THEN 1
            WHEN %(year)s - be.birth_year < 60 THEN 2 WHEN %(year)s - be.birth_year < 75 THEN 3 ELSE 4 END AS bracket
        FROM pb LEFT JOIN vouchers_beneficiary be ON be.id = pb.beneficiary_id
    )
    SELECT 'pd', program_id, distributor_id, '', COUNT(*), COUNT(first_use),
           SUM(CASE WHEN first_use IS NOT NULL THEN n ELSE 0 END), COUNT(DISTINCT beneficiary_id),
           COUNT(DISTINCT CASE WHEN first_use IS NOT NULL THEN beneficiary_id END)
    FROM pb GROUP BY program_id, distributor_id
    UNION ALL SELECT 'd', NULL, distributor_id, '', 0, 0, 0, COUNT(DISTINCT beneficiary_id),
           COUNT(DISTINCT CASE WHEN first_use IS NOT NULL THEN beneficiary_id END) FROM pb GROUP BY distributor_id
    UNION ALL SELECT 't', NULL, NULL, '', 0, 0, 0, COUNT(DISTINCT beneficiary_id),
           COUNT(DISTINCT CASE WHEN first_use IS NOT NULL THEN beneficiary_id END) FROM pb
    UNION ALL SELECT 'h', NULL, NULL, '', FLOOR(EXTRACT(EPOCH FROM (first_use - handed_out_at)) / 86400), COUNT(*),
           0, 0, 0 FROM pb WHERE first_use IS NOT NULL GROUP BY 5
    UNION ALL SELECT 'a', NULL, bracket, COALESCE(public, ''), 0, 0, 0, COUNT(DISTINCT beneficiary_id),
           COUNT(DISTINCT CASE WHEN first_use IS NOT NULL THEN beneficiary_id END) FROM pp GROUP BY public, bracket""",
    # weekly hand-outs and redemptions
    """SELECT date_trunc('week', v.distributed_at AT TIME ZONE 'Europe/Paris'),
              date_trunc('week', v.redeemed_at AT TIME ZONE 'Europe/Paris'), COUNT(*)
    FROM vouchers_voucher v
    WHERE v.program_id = %(program)s AND v.status <> 'cancelled' AND v.distributed_at IS NOT NULL
    GROUP BY 1, 2""",
    # per place
    """SELECT v.program_id, r.place_id, COUNT(*), COUNT(*) FILTER (WHERE v.claimed_at IS NOT NULL),
              COUNT(*) FILTER (WHERE v.paid_at IS NOT NULL), COUNT(DISTINCT b.beneficiary_id)
    FROM vouchers_redemption r JOIN vouchers_voucher v ON v.id = r.voucher_id
    JOIN vouchers_booklet b ON b.id = v.booklet_id
    WHERE r.undone_at IS NULL AND v.program_id = %(program)s GROUP BY v.program_id, r.place_id""",
    # per service
    """SELECT v.program_id, r.service, COUNT(*)
    FROM vouchers_redemption r JOIN vouchers_voucher v ON v.id = r.voucher_id
    WHERE r.undone_at IS NULL AND v.program_id = %(program)s GROUP BY v.program_id, r.service""",
    # what the funder has paid itself, line by line
    """SELECT v.program_id, b.distributor_id, c.place_id, COUNT(*), SUM(l.amount_cents)
    FROM settlement_claimline l JOIN settlement_claim c ON c.id = l.claim_id
    JOIN vouchers_voucher v ON v.id = l.voucher_id JOIN vouchers_booklet b ON b.id = v.booklet_id
    WHERE l.funder_id = %(funder)s AND l.status = 'paid' AND v.program_id = %(program)s
    GROUP BY v.program_id, b.distributor_id, c.place_id""",
]


def recreate_database(admin_url: str) -> str:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {DB_NAME}")
    return admin_url.rsplit("/", 1)[0] + f"/{DB_NAME}"


def drop_database(admin_url: str) -> None:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")


def setup_data(*, vouchers: int, distributors: int, places: int, per_booklet: int) -> dict:
    from django.db import connection, transaction

    from passnum.accounts.enums import OrganisationKind as K
    from passnum.accounts.models import Organisation
    from passnum.geo.enums import TerritoryLevel
    from passnum.programs.services import FunderShare, ProgramData, program_create
    from tests.factories import member_of

    lead = Organisation.objects.create(name="Département de la Marne", slug="marne", kind=K.FUNDER)
    co = Organisation.objects.create(name="CU du Grand Reims", slug="reims", kind=K.FUNDER)
    booklets = -(-vouchers // per_booklet)
    budget = booklets * per_booklet * 1000 + 10_000
    program = program_create(
        owner=lead,
        actor=None,
        data=ProgramData(
            name="Pass numérique de banc d’essai",
            slug="banc-essai",
            valid_from=dt.date(2026, 1, 1),
            valid_until=dt.date(2026, 12, 31),
            funders=[FunderShare(lead, 6000, budget * 6 // 10), FunderShare(co, 4000, budget * 4 // 10)],
            territory=[(TerritoryLevel.DEPARTEMENT, "51")],
            eligible_services=["outils_du_quotidien", "demarches_administratives", "insertion_professionnelle"],
            face_value_cents=1000,
            vouchers_per_booklet=per_booklet,
        ),
    )
    user = member_of(lead, admin=False)
    with transaction.atomic(), connection.cursor() as c:
        c.execute("SELECT setseed(0.42)")
        c.execute(
            "INSERT INTO accounts_organisation (name, slug, kind, siret, siren, rna, insee_code, is_active, "
            "  created_at) "
            "SELECT 'Prescripteur ' || d, 'prescripteur-' || d, 'distributor', '', '', '', "
            "  (SELECT code FROM geo_commune WHERE kind = 'actuelle' ORDER BY md5(code || d) LIMIT 1), true, now() "
            "FROM generate_series(1, %s) d",
            [distributors],
        )
        c.execute(
            "INSERT INTO accounts_organisation (name, slug, kind, siret, siren, rna, insee_code, is_active, "
            "  created_at) "
            "SELECT 'Lieu ' || p, 'lieu-' || p, 'place', '', '', '', '51454', true, now() "
            "FROM generate_series(1, %s) p",
            [places],
        )
        c.execute(
            "CREATE TEMP TABLE bench_d AS SELECT row_number() OVER (ORDER BY id) - 1 AS k, id "
            "FROM accounts_organisation WHERE kind = 'distributor'"
        )
        c.execute(
            "CREATE TEMP TABLE bench_p AS SELECT row_number() OVER (ORDER BY id) - 1 AS k, id "
            "FROM accounts_organisation WHERE kind = 'place'"
        )
        # one row per booklet: allocated (95 %), handed out (85 % of those), used (60 % of those), when
        c.execute(
            "CREATE TEMP TABLE bench_b AS SELECT n, "
            "  random() < 0.95 AS allocated, random() < 0.85 AS handed, random() < 0.6 AS used, "
            "  %s + (random() * 200) * interval '1 day' AS handed_at, floor(random() * %s)::int AS d, "
            "  (ARRAY['demandeur_emploi','minima_sociaux','jeune','senior','famille','autre',''])"
            "    [1 + floor(random() * 7)::int] AS public, "
            "  CASE WHEN random() < 0.1 THEN NULL ELSE 1935 + floor(random() * 72)::int END AS birth_year "
            "FROM generate_series(1, %s) n",
            [START, distributors, booklets],
        )
        c.execute("UPDATE bench_b SET handed = handed AND allocated, used = used AND handed AND allocated")
        c.execute(
            "INSERT INTO vouchers_beneficiary (reference, distributor_id, first_name, public, needs, "
            "  consent_first_name, consent_reminders, created_at, birth_year) "
            "SELECT 'BN' || lpad(b.n::text, 10, '0'), d.id, '', b.public, '[]', false, false, b.handed_at, "
            "  b.birth_year FROM bench_b b JOIN bench_d d ON d.k = b.d WHERE b.handed"
        )
        c.execute(
            "INSERT INTO vouchers_booklet (program_id, number, distributor_id, allocated_at, handed_out_at, "
            "  issued_at, beneficiary_id, hand_out_key) "
            "SELECT %s, b.n, CASE WHEN b.allocated THEN d.id END, "
            "  CASE WHEN b.allocated THEN %s - interval '1 day' END, CASE WHEN b.handed THEN b.handed_at END, "
            "  %s - interval '2 days', be.id, '' "
            "FROM bench_b b JOIN bench_d d ON d.k = b.d "
            "LEFT JOIN vouchers_beneficiary be ON b.handed AND be.reference = 'BN' || lpad(b.n::text, 10, '0')",
            [program.pk, START, START],
        )
        # one row per voucher: redeemed when its booklet is used (the first always, the others 70 %)
        c.execute(
            "CREATE TEMP TABLE bench_v AS SELECT bk.id AS booklet_id, b.n, pos, b.handed, b.handed_at, "
            "  random() < 0.005 AS cancelled, "
            "  b.used AND (pos = 1 OR random() < 0.7) AS redeemed, random() AS r, random() AS r2, random() AS r3 "
            "FROM bench_b b JOIN vouchers_booklet bk ON bk.program_id = %s AND bk.number = b.n "
            "CROSS JOIN generate_series(1, %s) pos",
            [program.pk, per_booklet],
        )
        c.execute("UPDATE bench_v SET cancelled = false WHERE redeemed")
        c.execute(
            "INSERT INTO vouchers_voucher (booklet_id, program_id, position, code, face_value_cents, status, "
            "  distributed_at, redeemed_at, claimed_at, paid_at, cancelled_at, cancel_reason) "
            "SELECT booklet_id, %s, pos, 'V' || lpad((n * 100 + pos)::text, 12, '0'), 1000, "
            "  CASE WHEN cancelled THEN 'cancelled' WHEN NOT handed THEN 'issued' WHEN NOT redeemed THEN 'distributed'"
            "       ELSE 'redeemed' END, "
            "  CASE WHEN handed THEN handed_at END, "
            "  CASE WHEN redeemed THEN handed_at + (r * r * 120 + pos) * interval '1 day' END, "
            "  NULL, NULL, "
            "  CASE WHEN cancelled THEN %s END, CASE WHEN cancelled THEN 'lost' ELSE '' END "
            "FROM bench_v",
            [program.pk, START],
        )
        c.execute(
            "INSERT INTO vouchers_redemption (voucher_id, place_id, service, amount_cents, redeemed_at, undo_reason) "
            "SELECT v.id, p.id, (ARRAY['outils_du_quotidien','demarches_administratives',"
            "  'insertion_professionnelle'])[1 + floor(bv.r3 * 3)::int], 1000, v.redeemed_at, '' "
            "FROM vouchers_voucher v JOIN bench_v bv ON bv.booklet_id = v.booklet_id AND bv.pos = v.position "
            "JOIN bench_p p ON p.k = floor(bv.r3 * %s)::int WHERE v.redeemed_at IS NOT NULL",
            [places],
        )
        c.execute("SELECT count(*), count(redeemed_at), count(DISTINCT booklet_id) FROM vouchers_voucher")
        counts = c.fetchone()
        c.execute("DROP TABLE bench_b, bench_v, bench_d, bench_p")
    # The redemptions before the cut-off are settled by the service itself, then half of the lead funder's claims
    # are marked paid (set-based: the setup is not what is measured).
    from passnum.settlement.services import settle

    settle(cutoff=CUTOFF, today=CUTOFF)
    with connection.cursor() as c:
        c.execute(
            "UPDATE settlement_claim SET status = 'paid', approved_at = %s, paid_at = %s "
            "WHERE funder_id = %s AND id %% 2 = 0",
            [CUTOFF_AT, CUTOFF_AT, lead.pk],
        )
        c.execute(
            "UPDATE settlement_claimline l SET status = 'paid' FROM settlement_claim c "
            "WHERE c.id = l.claim_id AND c.status = 'paid'"
        )
        c.execute("SELECT count(*) FILTER (WHERE status = 'paid'), count(*) FROM settlement_claimline")
        lines = c.fetchone()
        c.execute("VACUUM ANALYZE")
    return {
        "program": program,
        "user": user,
        "lead": lead,
        "vouchers": counts[0],
        "redeemed": counts[1],
        "booklets": counts[2],
        "lines": lines,
    }


def main() -> None:
    global DB_NAME
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--vouchers", type=int, default=1_000_000)
    parser.add_argument("--distributors", type=int, default=500)
    parser.add_argument("--places", type=int, default=2000)
    parser.add_argument("--per-booklet", type=int, default=10)
    parser.add_argument("--runs", type=int, default=7, help="timed runs of each side (7)")
    parser.add_argument("--db-name", default=DB_NAME, help="throwaway database (dropped and recreated)")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument(
        "--admin-url", default=os.environ.get("BENCH_ADMIN_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    )
    args = parser.parse_args()
    DB_NAME = args.db_name

    url = recreate_database(args.admin_url)
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings.test"
    os.environ["DATABASE_URL"] = url
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client

    t0 = time.perf_counter()
    call_command("migrate", verbosity=0)
    data = setup_data(
        vouchers=args.vouchers, distributors=args.distributors, places=args.places, per_booklet=args.per_booklet
    )
    setup_s = time.perf_counter() - t0
    program = data["program"]
    client = Client()
    client.force_login(data["user"])
    url_page = f"/pilotage/?dispositif={program.slug}"
    params = {"program": program.pk, "year": dt.date.today().year, "funder": data["lead"].pk}

    def service() -> float:
        start = time.perf_counter()
        response = client.get(url_page)
        seconds = time.perf_counter() - start
        if response.status_code != 200:
            raise SystemExit(f"GET {url_page}: {response.status_code}")
        return seconds

    def raw() -> float:
        start = time.perf_counter()
        with connection.cursor() as cursor:
            for sql in RAW:
                cursor.execute(sql, params)
                cursor.fetchall()
        return time.perf_counter() - start

    load = os.getloadavg()
    service()  # warm-up: caches, plans, the template
    raw()
    service_s, raw_s = [], []
    for _ in range(args.runs):
        service_s.append(service())
        raw_s.append(raw())
    page = client.get(url_page).content.decode()
    connection.close()
    if not args.keep:
        drop_database(args.admin_url)

    print(
        f"vouchers={data['vouchers']} booklets={data['booklets']} redeemed={data['redeemed']} "
        f"claim_lines={data['lines'][1]} (paid by the lead funder {data['lines'][0]}) "
        f"distributors={args.distributors} places={args.places} setup={setup_s:.1f} s (not timed) "
        f"load={load[0]:.2f},{load[1]:.2f} page={len(page) // 1024} KiB"
    )
    print(f"service  GET /pilotage/?dispositif=…  median {statistics.median(service_s):.3f} s  runs {service_s}")
    print(f"raw      the same figures in SQL       median {statistics.median(raw_s):.3f} s  runs {raw_s}")
    ratio = statistics.median(raw_s) / statistics.median(service_s)
    print(f"ratio={ratio:.2f} goal=0.7")


if __name__ == "__main__":
    main()
