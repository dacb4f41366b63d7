"""Settlement benchmark: redemptions → claims → approval → statements → payment files, against a raw baseline.

    python benchmarks/settlement.py                                   # 1 000 000 redemptions, 2 000 places, 20 funders
    python benchmarks/settlement.py --redemptions 20000               # a quick run
    python benchmarks/settlement.py --admin-url postgres://postgres@127.0.0.1:5432/postgres

PostgreSQL only. The script drops and recreates its own database (passnum_bench_settlement), migrates it, then
sets up the data without timing it: `--funders` funders with a bank account, one program per funder (every other
one co-funded 66.67 % / 33.33 % with the next funder, so the largest-remainder split leaves a cent to place),
`--places` places with a bank account, and the vouchers, already in state `redeemed`, with their active
redemptions, written by INSERT … SELECT on the server (not through the desk). Each place belongs to one region
(one program); 80 % of a program's vouchers are redeemed in its region, 20 % in the next one, over the 15 days
before the cut-off. Noise that settlement must leave alone: 1 % of the redemptions were undone (the voucher is
back to `distributed`) and 2 % are after the cut-off. The ledger is not posted (settlement does not read it).

Timed, in the same run, after VACUUM ANALYZE:

- raw: what settlement computes, without the framework, on a plain psycopg connection: the aggregation of the
  redemptions per (place, funder) with each program's split joined as VALUES; the lines of every (place, funder)
  group, one query each, as a statement reads them; and one pain.001.001.03 message per funder built with
  xml.etree (no validation) from the groups and the bank accounts, and hashed. It reads the data before the
  service changes it.
- service: `settle(cutoff=…, today=…)`; `claims_approve` once per funder with all its claims; the statement
  rows of every claim (`passnum.settlement.statements`, else the equivalent ORM query of the claim's lines);
  `payment_file_create(run=…, funder=…)` once per funder (skipped, and said so, if `passnum.settlement.payments`
  does not exist yet).

Then it checks that the service's claims are the raw groups (count and cents per place and funder).

Memory: a thread samples this process's resident set every 5 ms; each phase prints its peak above the RSS it
started from. `--tracemalloc` adds Python's traced peak per phase (slower: use it for memory, not time).

Last line: ratio=<service seconds / raw seconds> goal=3 (lower is better)."""

import argparse
import cProfile
import datetime as dt
import hashlib
import importlib
import inspect
import os
import pstats
import resource
import sys
import threading
import time
import tracemalloc
import xml.etree.ElementTree as ET
from collections import defaultdict
from contextlib import contextmanager, nullcontext
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
DB_NAME = "passnum_bench_settlement"
CUTOFF = dt.date(2026, 3, 16)
PARIS = ZoneInfo("Europe/Paris")
PAIN = "urn:iso:std:iso:20022:tech:xsd:pain.001.001.03"
FACES = (1000, 1500, 2000, 2500)  # a program's face value, by program index
PAGE = os.sysconf("SC_PAGE_SIZE")


# --- memory -----------------------------------------------------------------------------------------------------


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


class RssSampler(threading.Thread):
    """Peak resident set since the last reset, sampled every 5 ms."""

    def __init__(self):
        super().__init__(daemon=True)
        self.peak = rss_bytes()
        self.stop = threading.Event()

    def reset(self) -> int:
        self.peak = rss_bytes()
        return self.peak

    def run(self):
        while not self.stop.wait(0.005):
            value = rss_bytes()
            if value > self.peak:
                self.peak = value


class Phases:
    def __init__(self, *, trace: bool, profile: bool = False):
        self.trace = trace
        self.profile = profile
        self.sampler = RssSampler()
        self.sampler.start()
        self.rows: list[tuple[str, str, float, int, int | None]] = []

    @contextmanager
    def phase(self, side: str, name: str):
        start_rss = self.sampler.reset()
        if self.trace:
            tracemalloc.start()
        profiler = cProfile.Profile() if self.profile and side == "service" else None
        t0 = time.perf_counter()
        if profiler:
            profiler.enable()
        yield
        if profiler:
            profiler.disable()
        seconds = time.perf_counter() - t0
        if profiler:
            print(f"--- cProfile {side} {name} ({seconds:.2f} s), top 15 by cumulative time")
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(15)
        traced = None
        if self.trace:
            traced = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
        self.rows.append((side, name, seconds, max(0, self.sampler.peak - start_rss), traced))

    def seconds(self, side: str) -> float:
        return sum(row[2] for row in self.rows if row[0] == side)


def mib(n: int) -> str:
    return f"{n / 2**20:.1f} MiB"


# --- database ---------------------------------------------------------------------------------------------------


def recreate_database(admin_url: str) -> str:
    import psycopg

    if not DB_NAME.replace("_", "").isalnum():
        raise SystemExit(f"--db-name {DB_NAME!r}: letters, digits and _ only")
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {DB_NAME}")
    return admin_url.rsplit("/", 1)[0] + f"/{DB_NAME}"


def drop_database(admin_url: str) -> None:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")


def setup_django(database_url: str) -> None:
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings.test"
    os.environ["DATABASE_URL"] = database_url
    import django

    django.setup()


def iban_for(n: int, bank: str) -> str:
    from schwifty import IBAN

    return IBAN.generate("FR", bank_code=bank, branch_code="00001", account_code=f"{n:011d}").compact


def setup_data(*, redemptions: int, places: int, funders: int, per_booklet: int) -> dict:
    """Organisations, programs and bank accounts through the ORM (a few thousand rows); booklets, vouchers and
    redemptions by INSERT … SELECT on the server."""
    from django.db import connection, transaction

    from passnum.accounts.enums import OrganisationKind
    from passnum.accounts.models import Organisation
    from passnum.geo.enums import TerritoryLevel
    from passnum.places.enums import BankAccountStatus
    from passnum.places.models import BankAccount as PlaceBankAccount
    from passnum.programs.services import FunderShare, ProgramData, program_create
    from passnum.settlement.models import BankAccount

    boundary = dt.datetime.combine(CUTOFF, dt.time(0, 0), tzinfo=PARIS)

    funder_orgs = Organisation.objects.bulk_create(
        [
            Organisation(name=f"Financeur {i + 1:02d}", slug=f"financeur-{i + 1:02d}", kind=OrganisationKind.FUNDER)
            for i in range(funders)
        ]
    )
    place_orgs = Organisation.objects.bulk_create(
        [
            Organisation(name=f"Lieu {i + 1:05d}", slug=f"lieu-{i + 1:05d}", kind=OrganisationKind.PLACE)
            for i in range(places)
        ],
        batch_size=2000,
    )
    BankAccount.objects.bulk_create(
        [
            BankAccount(organisation=org, holder_name=org.name, iban=iban_for(i, "30004"), bic="BNPAFRPPXXX")
            for i, org in enumerate(funder_orgs)
        ]
        + [
            BankAccount(organisation=org, holder_name=org.name, iban=iban_for(i, "20041"), bic="PSSTFRPPXXX")
            for i, org in enumerate(place_orgs)
        ],
        batch_size=2000,
    )
    # A place is paid to its funder-validated details (places.BankAccount); settlement.BankAccount above is the
    # funder's debtor account (and the place's, for older code).
    PlaceBankAccount.objects.bulk_create(
        [
            PlaceBankAccount(
                organisation=org,
                holder_name=org.name,
                iban=iban_for(i, "20041"),
                bic="PSSTFRPPXXX",
                status=BankAccountStatus.VALIDATED,
                reviewed_at=boundary - dt.timedelta(days=30),
            )
            for i, org in enumerate(place_orgs)
        ],
        batch_size=2000,
    )
    programs = []
    budget = redemptions * max(FACES) + 10_000  # far more than used: issuance is not what is measured
    for i, funder in enumerate(funder_orgs):
        co_funded = i % 2 == 0 and funders > 1
        shares = (
            [FunderShare(funder, 6667, budget), FunderShare(funder_orgs[(i + 1) % funders], 3333, budget)]
            if co_funded
            else [FunderShare(funder, 10_000, budget)]
        )
        programs.append(
            program_create(
                owner=funder,
                actor=None,
                data=ProgramData(
                    name=f"Pass numérique {i + 1:02d}",
                    valid_from=dt.date(2026, 1, 1),
                    valid_until=dt.date(2026, 12, 31),
                    funders=shares,
                    territory=[(TerritoryLevel.DEPARTEMENT, "51")],
                    eligible_services=["outils_du_quotidien"],
                    face_value_cents=FACES[i % len(FACES)],
                    vouchers_per_booklet=per_booklet,
                ),
            )
        )
    n_programs = len(programs)
    booklets = -(-redemptions // per_booklet)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT setseed(0.42)")
        cursor.execute("CREATE TEMP TABLE bench_program (k int PRIMARY KEY, id bigint, face int)")
        cursor.executemany(
            "INSERT INTO bench_program VALUES (%s, %s, %s)",
            [(k, p.id, p.face_value_cents) for k, p in enumerate(programs)],
        )
        cursor.execute("CREATE TEMP TABLE bench_place (k int PRIMARY KEY, id bigint)")
        cursor.executemany("INSERT INTO bench_place VALUES (%s, %s)", [(k, o.id) for k, o in enumerate(place_orgs)])
        # Booklet b belongs to program b % P (number b / P + 1); its vouchers are redeemed within 15 days before the
        # cut-off, except the noise: ~1 % undone (back to distributed) and ~2 % after the cut-off.
        cursor.execute(
            "INSERT INTO vouchers_booklet (program_id, number, issued_at, hand_out_key) "
            "SELECT p.id, b / %s + 1, %s, '' FROM generate_series(0, %s - 1) b JOIN bench_program p ON p.k = b %% %s",
            [n_programs, boundary - dt.timedelta(days=60), booklets, n_programs],
        )
        cursor.execute(
            "CREATE TEMP TABLE bench_voucher AS "
            "SELECT bk.id AS booklet_id, bk.program_id, pos, p.face, p.k, "
            "  (bk.id * %s + pos) AS n, CASE WHEN random() < 0.01 THEN 'undone' "
            "  WHEN random() < 0.0202 THEN 'late' ELSE 'settle' END AS kind, random() AS r1, random() AS r2, "
            "  random() AS r3 "
            "FROM vouchers_booklet bk JOIN bench_program p ON p.id = bk.program_id "
            "CROSS JOIN generate_series(1, %s) pos",
            [per_booklet, per_booklet],
        )
        cursor.execute("ALTER TABLE bench_voucher ADD COLUMN at timestamptz, ADD COLUMN place_k int")
        cursor.execute(
            "UPDATE bench_voucher SET "
            "  at = CASE WHEN kind = 'late' THEN %s + r1 * interval '20 hours' "
            "       ELSE %s - interval '1 second' - r1 * interval '15 days' END, "
            "  place_k = (CASE WHEN r2 < 0.8 THEN k ELSE (k + 1) %% %s END "
            "             + %s * floor(r3 * ceil(%s::numeric / %s)))::int %% %s",
            [boundary, boundary, n_programs, n_programs, places, n_programs, places],
        )
        cursor.execute(
            "INSERT INTO vouchers_voucher (booklet_id, program_id, position, code, face_value_cents, status, "
            "  cancel_reason, distributed_at, redeemed_at) "
            "SELECT booklet_id, program_id, pos, 'B' || lpad(n::text, 12, '0'), face, "
            "  CASE WHEN kind = 'undone' THEN 'distributed' ELSE 'redeemed' END, '', at - interval '3 days', "
            "  CASE WHEN kind = 'undone' THEN NULL ELSE at END FROM bench_voucher"
        )
        cursor.execute(
            "INSERT INTO vouchers_redemption (voucher_id, place_id, service, amount_cents, redeemed_at, undone_at, "
            "  undo_reason) "
            "SELECT v.id, pl.id, 'outils_du_quotidien', v.face_value_cents, b.at, "
            "  CASE WHEN b.kind = 'undone' THEN b.at + interval '5 minutes' END, "
            "  CASE WHEN b.kind = 'undone' THEN 'erreur de saisie' ELSE '' END "
            "FROM bench_voucher b JOIN vouchers_voucher v ON v.booklet_id = b.booklet_id AND v.position = b.pos "
            "JOIN bench_place pl ON pl.k = b.place_k"
        )
        cursor.execute("SELECT kind, count(*) FROM bench_voucher GROUP BY kind")
        kinds = dict(cursor.fetchall())
        cursor.execute("DROP TABLE bench_voucher, bench_program, bench_place")
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
        # Warm both sides alike: every table either side reads, in shared buffers / the page cache.
        for table in (
            "vouchers_voucher",
            "vouchers_redemption",
            "accounts_organisation",
            "settlement_bankaccount",
            "places_bankaccount",
        ):
            cursor.execute(f"SELECT count(*) FROM {table}")  # noqa: S608
    co_funded = sum(1 for i in range(n_programs) if i % 2 == 0 and funders > 1)
    return {
        "funders": funder_orgs,
        "places": place_orgs,
        "programs": programs,
        "co_funded": co_funded,
        "kinds": kinds,
        "boundary": boundary,
    }


# --- raw baseline -----------------------------------------------------------------------------------------------


def largest_remainder(total: int, weights: list[int]) -> list[int]:
    weight_sum = sum(weights)
    floors = [total * w // weight_sum for w in weights]
    order = sorted(range(len(weights)), key=lambda i: (-(total * weights[i] % weight_sum), i))
    for i in order[: total - sum(floors)]:
        floors[i] += 1
    return floors


def sub(parent, tag: str, text: str | None = None, **attrs) -> ET.Element:
    element = ET.SubElement(parent, tag, attrs)
    if text is not None:
        element.text = text
    return element


def euros(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


def pain001(*, msg_id: str, created: str, debtor: tuple, transfers: list[tuple], execution: str) -> bytes:
    """Minimal pain.001.001.03: one group header, one payment information block, one transfer per claim.
    debtor = (name, iban, bic); transfers = [(end_to_end_id, cents, name, iban, bic, remittance)]."""
    total = sum(t[1] for t in transfers)
    root = ET.Element("Document", xmlns=PAIN)
    cstmr = sub(root, "CstmrCdtTrfInitn")
    hdr = sub(cstmr, "GrpHdr")
    sub(hdr, "MsgId", msg_id)
    sub(hdr, "CreDtTm", created)
    sub(hdr, "NbOfTxs", str(len(transfers)))
    sub(hdr, "CtrlSum", euros(total))
    sub(sub(hdr, "InitgPty"), "Nm", debtor[0])
    pmt = sub(cstmr, "PmtInf")
    sub(pmt, "PmtInfId", msg_id)
    sub(pmt, "PmtMtd", "TRF")
    sub(pmt, "BtchBookg", "true")
    sub(pmt, "NbOfTxs", str(len(transfers)))
    sub(pmt, "CtrlSum", euros(total))
    sub(sub(sub(pmt, "PmtTpInf"), "SvcLvl"), "Cd", "SEPA")
    sub(pmt, "ReqdExctnDt", execution)
    sub(sub(pmt, "Dbtr"), "Nm", debtor[0])
    sub(sub(sub(pmt, "DbtrAcct"), "Id"), "IBAN", debtor[1])
    sub(sub(sub(pmt, "DbtrAgt"), "FinInstnId"), "BIC", debtor[2])
    sub(pmt, "ChrgBr", "SLEV")
    for end_to_end, cents, name, iban, bic, remittance in transfers:
        tx = sub(pmt, "CdtTrfTxInf")
        sub(sub(tx, "PmtId"), "EndToEndId", end_to_end)
        sub(sub(tx, "Amt"), "InstdAmt", euros(cents), Ccy="EUR")
        sub(sub(sub(tx, "CdtrAgt"), "FinInstnId"), "BIC", bic)
        sub(sub(tx, "Cdtr"), "Nm", name)
        sub(sub(sub(tx, "CdtrAcct"), "Id"), "IBAN", iban)
        sub(sub(tx, "RmtInf"), "Ustrd", remittance)
    return ET.tostring(root, encoding="UTF-8", xml_declaration=True)


def run_raw(url: str, *, boundary: dt.datetime, phases: Phases) -> dict:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        with phases.phase("raw", "aggregate"):
            shares_by_program = defaultdict(list)
            for program_id, funder_id, bps in conn.execute(
                "SELECT program_id, funder_id, share_bps FROM programs_programfunder ORDER BY id"
            ):
                shares_by_program[program_id].append((funder_id, bps))
            shares = []
            for program_id, face in conn.execute(
                "SELECT DISTINCT program_id, face_value_cents FROM vouchers_voucher WHERE status = 'redeemed'"
            ):
                funder_shares = shares_by_program[program_id]
                parts = largest_remainder(face, [bps for _, bps in funder_shares])
                shares += [
                    (program_id, face, f, part) for (f, _), part in zip(funder_shares, parts, strict=True) if part
                ]
            cte = "shares(program_id, face, funder_id, part) AS (VALUES " + ", ".join(
                ["(%s::bigint, %s::int, %s::bigint, %s::int)"] * len(shares)
            )
            cte += ")"
            cte_params = [x for row in shares for x in row]
            base = (
                "FROM vouchers_redemption r JOIN vouchers_voucher v ON v.id = r.voucher_id "
                "JOIN shares s ON s.program_id = v.program_id AND s.face = v.face_value_cents "
                "WHERE v.status = 'redeemed' AND r.undone_at IS NULL AND r.redeemed_at < %s"
            )
            groups = conn.execute(
                f"WITH {cte} SELECT r.place_id, s.funder_id, count(*), sum(s.part), min(r.redeemed_at), "  # noqa: S608
                f"max(r.redeemed_at) {base} GROUP BY r.place_id, s.funder_id ORDER BY s.funder_id, r.place_id",
                [*cte_params, boundary],
            ).fetchall()
        with phases.phase("raw", "statements"):
            # Per (place, funder): the place's redemptions first (MATERIALIZED), then each voucher by primary key
            # (LATERAL … OFFSET 0), the funder's part looked up in Python. Left to itself the planner walks every
            # voucher of the program instead (it sees one share row, not the ~500 redemptions of the place).
            part_of = {(p, face, f): part for p, face, f, part in shares}
            programs_of = defaultdict(list)
            for program_id, _face, funder_id, _part in shares:
                if program_id not in programs_of[funder_id]:
                    programs_of[funder_id].append(program_id)
            names = dict(conn.execute("SELECT id, name FROM programs_program").fetchall())
            sql = (
                "WITH r AS MATERIALIZED (SELECT id, voucher_id, service, redeemed_at FROM vouchers_redemption "
                "WHERE place_id = %s AND undone_at IS NULL AND redeemed_at < %s) "
                "SELECT r.redeemed_at, v.code, r.service, v.program_id, v.face_value_cents FROM r "
                "CROSS JOIN LATERAL (SELECT code, program_id, face_value_cents FROM vouchers_voucher v "
                "WHERE v.id = r.voucher_id AND v.status = 'redeemed' AND v.program_id = ANY(%s) OFFSET 0) v "
                "ORDER BY r.redeemed_at, v.code, r.id"
            )
            lines = 0
            with conn.cursor() as cur:
                for place_id, funder_id, *_ in groups:
                    cur.execute(sql, [place_id, boundary, programs_of[funder_id]])
                    rows = [
                        (at, code, service, names[program_id], part_of[(program_id, face, funder_id)])
                        for at, code, service, program_id, face in cur.fetchall()
                    ]
                    lines += len(rows)
        with phases.phase("raw", "payment_files"):
            accounts = {
                org: (name, iban, bic)
                for org, name, iban, bic in conn.execute(
                    "SELECT organisation_id, holder_name, iban, bic FROM settlement_bankaccount o "
                    "JOIN accounts_organisation a ON a.id = o.organisation_id WHERE a.kind = 'funder' "
                    "UNION ALL SELECT organisation_id, holder_name, iban, bic FROM places_bankaccount "
                    "WHERE status = 'validated'"
                )
            }
            by_funder = defaultdict(list)
            for place_id, funder_id, _count, cents, *_ in groups:
                by_funder[funder_id].append((place_id, cents))
            created = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
            files = {}
            for funder_id, rows in sorted(by_funder.items()):
                msg_id = f"RAW-{CUTOFF:%Y%m%d}-F{funder_id}"
                transfers = [
                    (f"{msg_id}-{i:06d}", cents, *accounts[place_id], f"Pass numerique {msg_id}-{i:06d}")
                    for i, (place_id, cents) in enumerate(rows, 1)
                ]
                content = pain001(
                    msg_id=msg_id,
                    created=created,
                    debtor=accounts[funder_id],
                    transfers=transfers,
                    execution=CUTOFF.isoformat(),
                )
                files[funder_id] = (len(transfers), sum(t[1] for t in transfers), hashlib.sha256(content).hexdigest())
    return {"groups": groups, "lines": lines, "files": files, "cte": cte, "cte_params": cte_params}


def run_raw_writes(url: str, *, boundary: dt.datetime, raw: dict, phases: Phases) -> None:
    """For information (not in the ratio): the rows settle writes, written with plain SQL in one transaction
    (vouchers → claimed, claims by COPY, claim lines by INSERT … SELECT), the deferred foreign keys checked
    (SET CONSTRAINTS ALL IMMEDIATE), then rolled back and vacuumed (not timed)."""
    import psycopg

    cte, cte_params = raw["cte"], raw["cte_params"]
    with psycopg.connect(url) as conn:
        with phases.phase("raw+w", "settle_writes"):
            now = dt.datetime.now(dt.UTC)
            run_id = conn.execute(
                "INSERT INTO settlement_settlementrun (cutoff, created_at, updated_at) VALUES (%s, %s, %s) "
                "RETURNING id",
                [CUTOFF, now, now],
            ).fetchone()[0]
            conn.execute(
                "UPDATE vouchers_voucher SET status = 'claimed', claimed_at = %s WHERE status = 'redeemed' AND id IN "
                "(SELECT voucher_id FROM vouchers_redemption WHERE undone_at IS NULL AND redeemed_at < %s)",
                [now, boundary],
            )
            numbers: dict[int, int] = defaultdict(int)
            columns = (
                "run_id, place_id, funder_id, series, year, number, reference, status, lines_count, claimed_cents, "
                "rejected_cents, period_start, period_end, created_at, paid_reference"
            )
            with conn.cursor().copy(f"COPY settlement_claim ({columns}) FROM STDIN") as copy:  # noqa: S608
                for place_id, funder_id, count, cents, first, last in raw["groups"]:
                    numbers[funder_id] += 1
                    n = numbers[funder_id]
                    series = f"F{funder_id}"
                    reference = f"DR-{CUTOFF.year}-{series}-{n:06d}"
                    copy.write_row(
                        (run_id, place_id, funder_id, series, CUTOFF.year, n, reference, "submitted", count, cents, 0)
                        + (first, last, now, "")
                    )
            # Fresh statistics for the rows just written: without them the planner expects ~1 claimed voucher and
            # an empty claim table and picks a nested loop that is quadratic in the claims (see --analyze-before-lines).
            conn.execute("ANALYZE vouchers_voucher, settlement_claim")
            conn.execute(
                f"WITH {cte} INSERT INTO settlement_claimline (claim_id, funder_id, voucher_id, redemption_id, "  # noqa: S608
                "service, redeemed_at, amount_cents, status) SELECT c.id, s.funder_id, v.id, r.id, "
                "r.service, r.redeemed_at, s.part, 'claimed' FROM vouchers_redemption r "
                "JOIN vouchers_voucher v ON v.id = r.voucher_id "
                "JOIN shares s ON s.program_id = v.program_id AND s.face = v.face_value_cents "
                "JOIN settlement_claim c ON c.run_id = %s AND c.place_id = r.place_id AND c.funder_id = s.funder_id "
                "WHERE v.status = 'claimed' AND v.claimed_at = %s AND r.undone_at IS NULL",
                [*cte_params, run_id, now],
            )
            conn.execute("SET CONSTRAINTS ALL IMMEDIATE")
        conn.rollback()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")


# --- service ----------------------------------------------------------------------------------------------------


def optional_module(name: str):
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def call_with(func, **candidates):
    """Call func with the keyword arguments its signature accepts (the modules are new: tolerate either name)."""
    params = inspect.signature(func).parameters
    return func(**{k: v for k, v in candidates.items() if k in params})


def run_service(*, funders: list, phases: Phases, analyze_before_lines: bool) -> dict:
    from django.db import OperationalError, connection

    from passnum.settlement.models import Claim, ClaimLine
    from passnum.settlement.services import claims_approve, settle

    statements = optional_module("passnum.settlement.statements")
    payments = optional_module("passnum.settlement.payments")
    funder_by_id = {f.pk: f for f in funders}

    def analyze_first(execute, sql, params, many, context):
        if "INSERT INTO settlement_claimline" not in sql:
            return execute(sql, params, many, context)
        context["cursor"].execute("ANALYZE vouchers_voucher, settlement_claim")
        result = execute(sql, params, many, context)
        with context["connection"].cursor() as cursor:  # not settle's cursor: it still holds the rowcount
            cursor.execute("ANALYZE settlement_claimline")  # for the statements read right after
        return result

    wrapper = connection.execute_wrapper(analyze_first) if analyze_before_lines else nullcontext()
    try:
        with phases.phase("service", "settle"), wrapper:
            result = settle(cutoff=CUTOFF, today=CUTOFF)
    except OperationalError as exc:  # statement_timeout (--statement-timeout)
        return {"cancelled": str(exc).splitlines()[0]}
    with phases.phase("service", "approve"):
        by_funder = defaultdict(list)
        for claim in result.claims:
            by_funder[claim.funder_id].append(claim)
        for funder_id, claims in sorted(by_funder.items()):
            claims_approve(claims=claims, funder=funder_by_id[funder_id])
    statement_kind = "ORM query of the claim lines (passnum.settlement.statements not there yet)"
    with phases.phase("service", "statements"):
        lines = 0
        if statements is not None and hasattr(statements, "run_statement_rows"):
            statement_kind = "passnum.settlement.statements.run_statement_rows (the whole run, one streamed query)"
            for _claim, rows in statements.run_statement_rows(result.run):
                lines += len(rows)
        elif statements is not None and hasattr(statements, "statement_rows"):
            statement_kind = "passnum.settlement.statements.statement_rows (claims read with their funder)"
            for claim in Claim.objects.filter(run=result.run).select_related("funder").order_by("pk"):
                lines += sum(1 for _ in call_with(statements.statement_rows, claim=claim))
        elif statements is not None and hasattr(statements, "statement_csv"):
            statement_kind = "passnum.settlement.statements.statement_csv"
            for claim in result.claims:
                out = call_with(statements.statement_csv, claim=claim)
                lines += len(out) if isinstance(out, list | tuple) else 1
        else:
            for claim in result.claims:
                lines += sum(
                    1
                    for _ in ClaimLine.objects.filter(claim=claim)
                    .order_by("redeemed_at", "redemption_id")
                    .values_list("voucher__code", "service", "redeemed_at", "voucher__face_value_cents", "amount_cents")
                    .iterator(chunk_size=2000)
                )
    files = []
    payment_kind = "skipped (passnum.settlement.payments not there yet)"
    if payments is not None and hasattr(payments, "payment_file_create"):
        payment_kind = "passnum.settlement.payments.payment_file_create"
        with phases.phase("service", "payment_files"):
            for funder_id in sorted(by_funder):
                files.append(
                    call_with(payments.payment_file_create, run=result.run, funder=funder_by_id[funder_id], actor=None)
                )
    return {
        "result": result,
        "lines": lines,
        "files": files,
        "statement_kind": statement_kind,
        "payment_kind": payment_kind,
    }


def check(raw: dict, service: dict) -> list[str]:
    problems = []
    raw_groups = {(p, f): (n, c) for p, f, n, c, *_ in raw["groups"]}
    claims = {(c.place_id, c.funder_id): (c.lines_count, c.claimed_cents) for c in service["result"].claims}
    if raw_groups != claims:
        differ = sum(1 for k in raw_groups.keys() | claims.keys() if raw_groups.get(k) != claims.get(k))
        problems.append(f"{differ} (place, funder) groups differ between raw and service")
    if raw["lines"] != service["result"].lines:
        problems.append(f"raw read {raw['lines']} statement lines, settle wrote {service['result'].lines}")
    if service["lines"] != service["result"].lines:
        problems.append(f"statements read {service['lines']} lines, settle wrote {service['result'].lines}")
    for pf in service["files"]:
        expected = raw["files"].get(getattr(pf, "funder_id", None))
        if expected and (getattr(pf, "transfers", None), getattr(pf, "total_cents", None)) != expected[:2]:
            problems.append(f"payment file {pf}: {pf.transfers} transfers / {pf.total_cents} c, raw {expected[:2]}")
    return problems


def main() -> None:
    global DB_NAME
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--redemptions", type=int, default=1_000_000)
    parser.add_argument("--places", type=int, default=2000)
    parser.add_argument("--funders", type=int, default=20)
    parser.add_argument("--per-booklet", type=int, default=10)
    parser.add_argument("--tracemalloc", action="store_true", help="also trace Python allocations (slower)")
    parser.add_argument("--profile", action="store_true", help="cProfile each service phase (slower)")
    parser.add_argument("--no-raw-writes", action="store_true", help="skip the informational raw+writes phase")
    parser.add_argument(
        "--analyze-before-lines",
        action="store_true",
        help="emulate the proposed fix: inside settle, ANALYZE vouchers and claims just before inserting the claim "
        "lines, and the claim lines just after",
    )
    parser.add_argument("--statement-timeout", type=float, default=0, help="seconds; cancels a runaway settle")
    parser.add_argument("--db-name", default=DB_NAME, help="throwaway database (dropped and recreated)")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument(
        "--admin-url", default=os.environ.get("BENCH_ADMIN_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    )
    args = parser.parse_args()
    DB_NAME = args.db_name

    url = recreate_database(args.admin_url)
    setup_django(url)
    from django.core.management import call_command
    from django.db import connection

    t0 = time.perf_counter()
    call_command("migrate", verbosity=0)
    data = setup_data(
        redemptions=args.redemptions, places=args.places, funders=args.funders, per_booklet=args.per_booklet
    )
    setup_s = time.perf_counter() - t0
    phases = Phases(trace=args.tracemalloc, profile=args.profile)
    load = os.getloadavg()

    raw = run_raw(url, boundary=data["boundary"], phases=phases)
    if not args.no_raw_writes:
        run_raw_writes(url, boundary=data["boundary"], raw=raw, phases=phases)
    if args.statement_timeout:
        with connection.cursor() as cursor:
            cursor.execute(f"SET statement_timeout = {int(args.statement_timeout * 1000)}")
    service = run_service(funders=data["funders"], phases=phases, analyze_before_lines=args.analyze_before_lines)
    problems = check(raw, service) if "cancelled" not in service else []
    connection.close()
    if not args.keep:
        drop_database(args.admin_url)

    kinds = data["kinds"]
    if "cancelled" in service:
        settle_s = phases.seconds("service") + args.statement_timeout  # the cancelled phase is not recorded
        raw_s = phases.seconds("raw")
        for side, name, seconds, rss, _ in phases.rows:
            print(f"{side:8s} {name:14s} {seconds:8.2f} s   peak RSS +{mib(rss)}")
        print(
            f"service  settle         cancelled after --statement-timeout {args.statement_timeout:.0f} s: "
            f"{service['cancelled']}"
        )
        print("ratio below is a lower bound (settle alone, cut short)")
        print(f"ratio={settle_s / raw_s:.2f} goal=3")
        return
    result = service["result"]
    print(
        f"redemptions={sum(kinds.values())} (to settle {kinds.get('settle', 0)}, undone {kinds.get('undone', 0)}, "
        f"after cut-off {kinds.get('late', 0)}) places={args.places} funders={args.funders} "
        f"programs={len(data['programs'])} (co-funded {data['co_funded']})"
    )
    print(
        f"claims={len(result.claims)} lines={result.lines} vouchers={result.vouchers} "
        f"total={result.total_cents / 100:,.2f} EUR payment_files={len(service['files'])} "
        f"setup={setup_s:.1f} s (not timed) load={load[0]:.2f},{load[1]:.2f}"
    )
    if args.analyze_before_lines:
        print("settle: with --analyze-before-lines (the proposed fix, emulated)")
    print(f"statements: {service['statement_kind']}")
    print(f"payments:   {service['payment_kind']}")
    for side, name, seconds, rss, traced in phases.rows:
        extra = f", tracemalloc peak {mib(traced)}" if traced is not None else ""
        print(f"{side:8s} {name:14s} {seconds:8.2f} s   peak RSS +{mib(rss)}{extra}")
    service_s, raw_s = phases.seconds("service"), phases.seconds("raw")
    print(f"service  total          {service_s:8.2f} s")
    print(f"raw      total          {raw_s:8.2f} s")
    writes_s = phases.seconds("raw+w")
    if writes_s:
        print(
            f"raw+w    total          {raw_s + writes_s:8.2f} s   (raw + settle's writes in plain SQL; "
            f"service / that = {service_s / (raw_s + writes_s):.2f}, for information)"
        )
    print(f"peak RSS (whole process, setup included) {mib(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)}")
    print(
        "check: "
        + ("ok (claims = raw groups, lines and payment totals agree)" if not problems else "; ".join(problems))
    )
    print(f"ratio={service_s / raw_s:.2f} goal=3")


if __name__ == "__main__":
    main()
