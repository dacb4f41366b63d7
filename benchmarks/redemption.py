"""Redemption benchmark: redemptions/s through the HTTP API (`POST /api/v1/redemptions`, served by gunicorn) against
a raw SQL baseline doing the same database work, in the same run.

    python benchmarks/redemption.py [--clients 8] [--duration 15] [--workers 2] [--worker-class gthread]
                                    [--threads 4] [--max-rate 2000] [--keep-db] [--show-sql]
                                    [--admin-url postgres://postgres@127.0.0.1:5432/postgres]

PostgreSQL only. It creates `passnum_bench_redemption_<pid>`, migrates it, runs `createcachetable` and drops the
database at the end (`DROP DATABASE … WITH (FORCE)`), also on error, unless `--keep-db`.

Set-up, through the services: two funders 60/40, a program on the Marne (département 51), a place with one
qualified site in Reims and its catalogue, a distributor. Vouchers are issued with `booklets_issue` (COPY), then
allocated and handed out in bulk with two plain SQL UPDATEs (booklets: distributor and dates; vouchers: status
`distributed`), which is set-up only, plus one ledger transaction per batch moving their value from `outstanding`
to `handed_out` as the hand-out does, so that `ledger_verify()` agrees (no status-log rows are written for it).
Every phase gets fresh codes, and every client the codes of its own booklets so that clients never wait on each
other's booklet lock; each phase has its own API key, and its successes are counted as the receipts of that key.

The app runs with production settings (`config.settings.prod`, DEBUG off, persistent database connections with
DB_CONN_MAX_AGE=600) and production's DatabaseCache for the rate limiter, which reads it on every code check (one
SELECT per redemption, on both sides); the cache table is created with `createcachetable`. gunicorn: 2 workers
(2 cores), gthread with 4 threads by default, which keeps wrk's connections alive (sync workers close each one) and
was at least as fast as the alternatives tried (README).

Phases, in this order: raw (N clients), http (N clients), raw (1 client), http (1 client).

- http: wrk, N threads with one connection each (`-t N -c N`), so that each client sends its requests one after
  the other; a Lua script (written to a temporary folder) sends each thread's own codes. A 2 s warm-up with other
  codes and another key precedes each measure. p50 and p99 are wrk's.
- raw: N processes, each with its own psycopg 3 connection and codes, executing the statements the service sends
  for one redemption, in the same order, prepared (`prepare=True`), one transaction for the writes as the service
  does (the checks before it run in autocommit, as in Django): API-key lookup, sites, rate-limit counters
  (database cache), voucher with its program, booklet, territory test and the site's catalogue (one statement),
  then lock of the booklet's usable vouchers, receipt + redemption + status log + voucher update (one WITH
  statement), ledger (handed_out → payable: chain head lock, accounts, transaction hashed with
  `transaction_hash`, entries, head update) and journal. The service answers with the codes it locked, so neither
  side reads them back. Latency is measured around each redemption.

The statements the HTTP path sends are captured in-process (the WSGI application of config/wsgi.py called with one
request, under `connection.execute_wrapper`) and printed next to the baseline's (`--show-sql` lists them). At the
end `ledger_verify()` must be clean: the baseline keeps the hash chain valid.

Output: one line per phase, `single_client_ratio=<http/raw> goal=0.35`, `p99_p50=<http p99/p50 at N clients>
goal=4` and last `ratio=<http/raw redemptions per second at N clients> goal=0.25`."""

import argparse
import contextlib
import datetime as dt
import hashlib
import importlib
import io
import json
import math
import multiprocessing as mp
import os
import re
import secrets
import shutil
import signal
import socket
import string
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SERVICE = "outils_du_quotidien"
PATH = "/api/v1/redemptions"
APP = "config.wsgi:application"
PER_BOOKLET = 10
WARMUP_S = 2

# --- the raw baseline: the service's statements, written by hand (same tables, columns, filters and order) ------

SQL_API_KEY = (  # accounts.apikeys.api_key_authenticate
    "SELECT k.*, o.* FROM accounts_apikey k INNER JOIN accounts_organisation o ON k.organisation_id = o.id "
    "WHERE k.key_hash = %s AND k.revoked_at IS NULL AND o.is_active LIMIT 1"
)
SQL_SITES = (  # vouchers.redemption.site_for: the columns the desk uses
    "SELECT s.id, s.organisation_id, s.name, s.commune_id, s.status FROM places_site s "
    "WHERE s.organisation_id = %s ORDER BY s.name ASC"
)
SQL_LIMITS = 'SELECT "cache_key", "value", "expires" FROM "passnum_cache" WHERE "cache_key" IN (%s, %s, %s)'
SQL_FIND = (  # vouchers.redemption._find: the voucher, its program and booklet, territory and catalogue of the site
    "SELECT v.*, p.*, b.*, EXISTS(SELECT 1 FROM geo_commune c WHERE c.code = %s AND EXISTS("
    "SELECT 1 FROM programs_programterritory t WHERE t.program_id = v.program_id AND ("
    "(t.level = 'commune' AND t.code = c.code) OR (t.level = 'commune' AND t.code = c.parent_id) "
    "OR (t.level = 'epci' AND t.code = c.epci_id) OR (t.level = 'departement' AND t.code = c.departement_id) "
    "OR (t.level = 'region' AND t.code = c.region_id)))) AS covers, ss.service, ss.vouchers_per_session "
    "FROM vouchers_voucher v INNER JOIN programs_program p ON p.id = v.program_id "
    "INNER JOIN vouchers_booklet b ON b.id = v.booklet_id "
    "LEFT OUTER JOIN places_siteservice ss ON ss.site_id = %s WHERE v.code = %s ORDER BY ss.service ASC"
)
SQL_LOCK = (
    "SELECT * FROM vouchers_voucher v WHERE v.booklet_id = %s AND v.status = %s ORDER BY v.position ASC FOR UPDATE"
)
SQL_WRITE = (  # vouchers.redemption._WRITE_SQL: receipt, redemptions, status log and vouchers' status, one statement
    "WITH r AS (INSERT INTO vouchers_receipt (place_id, site_id, booklet_id, service, count, amount_cents, "
    "redeemed_by_id, api_key_id, redeemed_at, idempotency_key, undone_at, undo_reason, undone_by_id) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, NULL, '', NULL) RETURNING id), "
    "d AS (INSERT INTO vouchers_redemption (voucher_id, receipt_id, place_id, service, amount_cents, redeemed_by_id, "
    "redeemed_at, undone_at, undo_reason) SELECT x.id, r.id, %s::bigint, %s::varchar, x.amount, %s::bigint, "
    "%s::timestamptz, NULL, '' FROM r, UNNEST(%s::bigint[], %s::integer[]) AS x(id, amount)), "
    "l AS (INSERT INTO vouchers_voucherstatuslog (voucher_id, from_status, to_status, reason, actor_id, "
    "organisation_id, at) SELECT x.id, %s::varchar, %s::varchar, '', %s::bigint, %s::bigint, %s::timestamptz "
    "FROM UNNEST(%s::bigint[]) AS x(id)), "
    "u AS (UPDATE vouchers_voucher SET status = %s, redeemed_at = %s WHERE id = ANY(%s::bigint[])) "
    "SELECT id FROM r"
)
SQL_HEAD = (
    "SELECT id, last_seq, last_hash FROM settlement_ledgerchainhead WHERE id = %s LIMIT 21 "
    "FOR UPDATE OF settlement_ledgerchainhead"
)
SQL_ACCOUNTS = "SELECT * FROM settlement_ledgeraccount WHERE key IN (%s, %s, %s, %s)"
SQL_TRANSACTION = (
    "INSERT INTO settlement_ledgertransaction (seq, kind, created_at, memo, object_type, object_id, prev_hash, hash) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING id"
)
SQL_ENTRIES = (
    "INSERT INTO settlement_ledgerentry (transaction_id, account_id, amount_cents) "
    "SELECT * FROM UNNEST((%s)::bigint[], (%s)::bigint[], (%s)::bigint[]) RETURNING id"
)
SQL_HEAD_UPDATE = "UPDATE settlement_ledgerchainhead SET last_seq = %s, last_hash = %s WHERE id = %s"
SQL_JOURNAL = (
    "INSERT INTO journal_journalentry (at, actor_id, organisation_id, action, object_type, object_id, data) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING id"
)


def _first(cursor) -> dict | None:
    """The row as {column: value}; with joins, a name repeated keeps its first (leftmost) table's value."""
    row = cursor.fetchone()
    if row is None:
        return None
    names = [d.name for d in cursor.description]
    return dict(zip(reversed(names), reversed(row), strict=True))


def _all(cursor) -> list[dict]:
    names = [d.name for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


class RawContext:
    """What every raw client knows before it starts (the service knows as much: the program's shares are cached
    per process, the limits come from the settings)."""

    def __init__(self, *, url, shares, limits):
        self.url = url
        self.shares = shares
        self.limits = limits


def raw_redeem(conn, ctx: RawContext, *, api_key: str, code: str, ip: str = "127.0.0.1") -> int:
    """One redemption of one voucher, as the service does it. Returns the receipt id; raises if refused."""
    from psycopg.types.json import Jsonb

    from passnum.common.ratelimit import _cache_key
    from passnum.settlement.ledger import AccountRef, split_by_shares, transaction_hash

    def x(sql, params):
        return conn.execute(sql, params, prepare=True)

    key = _first(x(SQL_API_KEY, (hashlib.sha256(api_key.encode()).hexdigest(),)))
    if key is None:
        raise RuntimeError("unknown API key")
    key_id, place_id = key["id"], key["organisation_id"]
    sites = _all(x(SQL_SITES, (place_id,)))
    qualified = [s for s in sites if s["status"] == "qualified"]
    if len(qualified) != 1:
        raise RuntimeError("the place needs exactly one qualified site")
    site = qualified[0]
    now_s = time.time()
    cache_keys = []
    for scope, who in (("code_check:who", f"key:{key_id}"), ("code_check:org", str(place_id)), ("code_check:ip", ip)):
        window = ctx.limits[scope.split(":")[1]][1]
        cache_keys.append(":1:" + _cache_key(scope, who, int(now_s // window) * window))
    if x(SQL_LIMITS, cache_keys).fetchall():
        raise RuntimeError("rate limited")
    cursor = x(SQL_FIND, (site["commune_id"], site["id"], code))
    rows = cursor.fetchall()
    if not rows:
        raise RuntimeError(f"unknown code {code}")
    names = [d.name for d in cursor.description]
    voucher = dict(zip(reversed(names), reversed(rows[0]), strict=True))  # a repeated name keeps the leftmost
    today = dt.date.today()
    if voucher["status"] != "distributed" or not voucher["valid_from"] <= today <= voucher["valid_until"]:
        raise RuntimeError(f"voucher {code} is {voucher['status']}")
    if not voucher["covers"]:
        raise RuntimeError("outside territory")
    offered = {r[-2]: r[-1] for r in rows if r[-2] is not None and r[-2] in voucher["eligible_services"]}
    if SERVICE not in offered:
        raise RuntimeError("service not eligible")
    with conn.transaction():
        usable = _all(x(SQL_LOCK, (voucher["booklet_id"], "distributed")))
        taken = [v for v in usable if v["id"] == voucher["id"]]
        if not taken:
            raise RuntimeError(f"voucher {code} taken meanwhile")
        now = dt.datetime.now(dt.UTC)
        amount = taken[0]["face_value_cents"]
        ids = [voucher["id"]]
        receipt_id = x(
            SQL_WRITE,
            (
                *(place_id, site["id"], voucher["booklet_id"], SERVICE, 1, amount, None, key_id, now, ""),
                *(place_id, SERVICE, None, now, ids, [amount]),
                *("distributed", "redeemed", None, place_id, now, ids),
                *("redeemed", now, ids),
            ),
        ).fetchone()[0]
        lines = {}
        for fid, part in split_by_shares(amount, ctx.shares):
            lines[AccountRef(kind="handed_out", funder_id=fid, program_id=voucher["program_id"])] = -part
            lines[AccountRef(kind="payable", funder_id=fid, place_id=place_id)] = part
        head = _first(x(SQL_HEAD, (1,)))
        refs = sorted(lines)
        accounts = {a["key"]: a["id"] for a in _all(x(SQL_ACCOUNTS, [r.key for r in refs]))}
        seq, created_at, object_id = head["last_seq"] + 1, dt.datetime.now(dt.UTC), str(receipt_id)
        digest = transaction_hash(
            seq=seq,
            kind="redeem",
            created_at=created_at,
            object_type="vouchers.receipt",
            object_id=object_id,
            prev_hash=head["last_hash"],
            lines=[(r.key, a) for r, a in lines.items()],
        )
        tx_id = x(
            SQL_TRANSACTION, (seq, "redeem", created_at, "", "vouchers.receipt", object_id, head["last_hash"], digest)
        ).fetchone()[0]
        x(SQL_ENTRIES, ([tx_id] * len(refs), [accounts[r.key] for r in refs], [lines[r] for r in refs])).fetchall()
        x(SQL_HEAD_UPDATE, (seq, digest, 1))
        data = Jsonb({"count": 1, "service": SERVICE, "api_key": key_id})
        x(SQL_JOURNAL, (dt.datetime.now(dt.UTC), None, place_id, "receipt.create", "vouchers.receipt", object_id, data))
    return receipt_id


def raw_client(ctx: RawContext, api_key, codes, warm_key, warm_codes, barrier, duration, out) -> None:
    """One raw client (a forked process): warm up (prepares the statements), wait for the others, then redeem its
    codes one after the other until the time is up."""
    import psycopg

    try:
        with psycopg.connect(ctx.url, autocommit=True) as conn:
            for code in warm_codes:
                raw_redeem(conn, ctx, api_key=warm_key, code=code)
            backend = [conn.info.backend_pid]
            barrier.wait()
            cpu0, db0 = time.process_time(), cpu_seconds(backend)
            latencies, start = [], time.perf_counter()
            deadline, end, exhausted = start + duration, start, False
            for code in codes:
                t0 = time.perf_counter()
                raw_redeem(conn, ctx, api_key=api_key, code=code)
                end = time.perf_counter()
                latencies.append(end - t0)
                if end >= deadline:
                    break
            else:
                exhausted = True
            cpu, db = time.process_time() - cpu0, cpu_delta(db0, cpu_seconds(backend))
            out.put(
                {
                    "count": len(latencies),
                    "start": start,
                    "end": end,
                    "lat": latencies,
                    "exhausted": exhausted,
                    "cpu": cpu,
                    "db_cpu": db,
                }
            )
    except BaseException as exc:
        with contextlib.suppress(Exception):
            barrier.abort()
        out.put({"error": f"{type(exc).__name__}: {exc}"})


def run_raw(ctx, *, api_key, pools, warm_key, warm_pools, duration) -> dict:
    from django.db import connections

    connections.close_all()  # nothing of the parent's connection must cross the fork
    fork = mp.get_context("fork")
    barrier, out = fork.Barrier(len(pools)), fork.Queue()
    procs = [
        fork.Process(target=raw_client, args=(ctx, api_key, codes, warm_key, warm, barrier, duration, out))
        for codes, warm in zip(pools, warm_pools, strict=True)
    ]
    for p in procs:
        p.start()
    results = [out.get() for _ in procs]
    for p in procs:
        p.join()
    errors = [r["error"] for r in results if "error" in r]
    if errors:
        raise SystemExit(f"raw client failed: {errors[0]}")
    if any(r["exhausted"] for r in results):
        raise SystemExit("a raw client ran out of codes before the end: raise --max-rate")
    elapsed = max(r["end"] for r in results) - min(r["start"] for r in results)
    latencies = sorted(x for r in results for x in r["lat"])
    count = sum(r["count"] for r in results)
    return {
        "count": count,
        "rate": count / elapsed,
        "p50": percentile(latencies, 50) * 1000,
        "p99": percentile(latencies, 99) * 1000,
        "client_cpu": sum(r["cpu"] for r in results) / max(1, count) * 1000,
        "db_cpu": sum(r["db_cpu"] for r in results) / max(1, count) * 1000,
    }


def cpu_seconds(pids) -> dict[int, float]:
    """{pid: user + system CPU seconds} from Linux's /proc; processes gone or elsewhere (a remote database) are left
    out. Only for the "where the time goes" lines."""
    found = {}
    for pid in pids:
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            found[pid] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return found


def cpu_delta(before: dict[int, float], after: dict[int, float]) -> float:
    return sum(t - before.get(pid, 0.0) for pid, t in after.items())


def backend_pids() -> list[int]:
    """The server processes of the benchmark's database, but the one of this (the main) process."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return [row[0] for row in cursor.fetchall()]


def percentile(sorted_values: list[float], p: float) -> float:
    if not sorted_values:
        return math.nan
    k = max(0, min(len(sorted_values) - 1, math.ceil(p / 100 * len(sorted_values)) - 1))
    return sorted_values[k]


# --- http: gunicorn + wrk ---------------------------------------------------------------------------------------

LUA = r"""-- written by benchmarks/redemption.py: each thread (one connection) POSTs its own codes, one after the other.
local threads, next_id = {}, 0

function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

local requests, i, n = {}, 0, 0
sample, exhausted = nil, 0

function init(args)
  local dir, key = args[1], args[2]
  wrk.method = "POST"
  wrk.headers["Authorization"] = "Bearer " .. key
  wrk.headers["Content-Type"] = "application/json"
  for code in io.lines(dir .. "/codes_" .. id .. ".txt") do
    n = n + 1
    requests[n] = wrk.format(nil, nil, nil, '{"code":"' .. code .. '","service":"__SERVICE__","count":1}')
  end
end

function request()
  i = i + 1
  if i > n then  -- out of codes: stop this thread (this last request repeats a code and is refused)
    exhausted = 1
    wrk.thread:stop()
    return requests[n]
  end
  return requests[i]
end

function response(status, headers, body)
  if status > 299 and sample == nil then
    sample = status .. " " .. body
  end
end

function done(summary, latency, reqs)
  local e, samples, exhausted_threads = summary.errors, {}, 0
  for _, t in ipairs(threads) do
    local s = t:get("sample")
    if s ~= nil then table.insert(samples, s) end
    exhausted_threads = exhausted_threads + t:get("exhausted")
  end
  io.write(string.format(
    "RESULT requests=%d duration_us=%d non2xx=%d connect=%d read=%d write=%d timeout=%d "
      .. "p50_us=%d p99_us=%d exhausted=%d\n",
    summary.requests, summary.duration, e.status, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50.0), latency:percentile(99.0), exhausted_threads))
  if #samples > 0 then io.write("SAMPLE " .. samples[1]:gsub("\n", " ") .. "\n") end
end
""".replace("__SERVICE__", SERVICE)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(url: str, timeout: float = 2) -> int:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:  # noqa: S310 — our own server
            return r.status
    except urllib.error.HTTPError as exc:
        return exc.code


def http_post(url: str, body: dict, api_key: str) -> tuple[int, str]:
    request = urllib.request.Request(  # noqa: S310
        url,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as r:  # noqa: S310
            return r.status, r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")


class Server:
    """gunicorn serving config.wsgi:application on 127.0.0.1, on a free port."""

    def __init__(self, env, *, workers, worker_class, threads, log_path):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        cmd = [sys.executable, "-m", "gunicorn", APP, "--bind", f"127.0.0.1:{self.port}"]
        cmd += ["--workers", str(workers), "--worker-class", worker_class, "--threads", str(threads)]
        cmd += ["--keep-alive", "30", "--no-control-socket", "--log-level", "warning", "--error-logfile", str(log_path)]
        self.log_path = log_path
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, **env}, start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"gunicorn exited ({self.proc.returncode}):\n{self.log()}")
            with contextlib.suppress(OSError):
                if http_get(self.base + "/healthz") == 200:
                    return
            time.sleep(0.1)
        self.stop()
        raise SystemExit(f"gunicorn did not answer /healthz within 60 s:\n{self.log()}")

    def workers(self) -> list[int]:
        with contextlib.suppress(OSError):
            return [
                int(pid) for pid in Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split()
            ]
        return []

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:] if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def write_pools(folder: Path, pools: list[list[str]]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i, codes in enumerate(pools):
        (folder / f"codes_{i}.txt").write_text("\n".join(codes) + "\n")


def run_wrk(server: Server, lua: Path, folder: Path, *, clients: int, duration: float, api_key: str) -> dict:
    cmd = ["wrk", "-t", str(clients), "-c", str(clients), "-d", f"{duration:g}s", "--timeout", "30s", "--latency"]
    cmd += ["-s", str(lua), server.base + PATH, "--", str(folder), api_key]
    t0 = os.times()
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    t1 = os.times()
    match = re.search(r"^RESULT (.*)$", done.stdout, re.M)
    if done.returncode != 0 or match is None:
        raise SystemExit(f"wrk failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    result = {k: int(v) for k, v in (item.split("=") for item in match.group(1).split())}
    sample = re.search(r"^SAMPLE (.*)$", done.stdout, re.M)
    result["sample"] = sample.group(1) if sample else ""
    result["cpu_s"] = (t1.children_user - t0.children_user) + (t1.children_system - t0.children_system)
    result["output"] = done.stdout
    return result


def run_http(server, lua, tmp, *, phase, api_key, pools, warm_key, warm_pools, duration) -> dict:
    from passnum.vouchers.models import Receipt

    write_pools(tmp / f"{phase}-warm", warm_pools)
    write_pools(tmp / phase, pools)
    run_wrk(server, lua, tmp / f"{phase}-warm", clients=len(pools), duration=WARMUP_S, api_key=warm_key)
    app0, db0 = cpu_seconds(server.workers()), cpu_seconds(backend_pids())
    result = run_wrk(server, lua, tmp / phase, clients=len(pools), duration=duration, api_key=api_key)
    time.sleep(0.5)  # requests still in flight when wrk stopped end on the server
    app, db = cpu_delta(app0, cpu_seconds(server.workers())), cpu_delta(db0, cpu_seconds(backend_pids()))
    receipts = Receipt.objects.filter(api_key__key_hash=hashlib.sha256(api_key.encode()).hexdigest()).count()
    errors = sum(result[k] for k in ("non2xx", "connect", "read", "write", "timeout"))
    requests = max(1, result["requests"])
    if result["exhausted"]:
        raise SystemExit(f"{phase}: {result['exhausted']} wrk thread(s) ran out of codes: raise --max-rate")
    if errors > 0.01 * requests or receipts < 0.99 * requests - errors:
        counts = ", ".join(f"{k} {result[k]}" for k in ("non2xx", "connect", "read", "write", "timeout"))
        raise SystemExit(
            f"{phase}: {errors} errors in {requests} requests ({counts}), {receipts} receipts\n"
            f"sample response: {result['sample'] or '-'}\ngunicorn log:\n{server.log() or '-'}"
        )
    seconds = result["duration_us"] / 1e6
    return {
        "count": receipts,
        "rate": receipts / seconds,
        "p50": result["p50_us"] / 1000,
        "p99": result["p99_us"] / 1000,
        "errors": errors,
        "requests": result["requests"],
        "wrk_cpu": result["cpu_s"] / seconds,
        "client_cpu": app / max(1, receipts) * 1000,
        "db_cpu": db / max(1, receipts) * 1000,
    }


# --- set-up ------------------------------------------------------------------------------------------------------


def server_env(database_url: str, var_dir: Path) -> dict[str, str]:
    """Production settings, as an operator would set them, for this database."""
    alphabet = string.ascii_letters + string.digits
    return {
        "DJANGO_SETTINGS_MODULE": "config.settings.prod",
        "SECRET_KEY": "".join(secrets.choice(alphabet) for _ in range(64)),
        "DATABASE_URL": database_url,
        "DB_CONN_MAX_AGE": "600",
        "EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend",
        "SECURE_SSL_REDIRECT": "0",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "PASSNUM_VAR_DIR": str(var_dir),
        "STATIC_ROOT": str(var_dir / "static"),
        "MEDIA_ROOT": str(var_dir / "media"),
        "LOG_LEVEL": "WARNING",
    }


def create_api_key(place, name: str) -> str:
    try:
        from passnum.accounts.apikeys import api_key_create
    except ImportError:  # before the API's key service exists: the same row, by hand
        from passnum.accounts.models import ApiKey

        key = secrets.token_urlsafe(32)
        ApiKey.objects.create(
            organisation=place, name=name, prefix=key[:10], key_hash=hashlib.sha256(key.encode()).hexdigest()
        )
        return key
    return api_key_create(organisation=place, name=name)[1]


class Seed:
    def __init__(self):
        from django.utils import timezone

        from passnum.accounts.enums import OrganisationKind
        from passnum.accounts.services import organisation_create
        from passnum.geo.enums import TerritoryLevel
        from passnum.places.models import Site, SiteService
        from passnum.programs.services import FunderShare, ProgramData, program_create

        a = organisation_create(name="Département de la Marne", kind=OrganisationKind.FUNDER)
        b = organisation_create(name="CU du Grand Reims", kind=OrganisationKind.FUNDER)
        today = timezone.localdate()
        self.program = program_create(
            owner=a,
            actor=None,
            data=ProgramData(
                name="Pass numérique Marne",
                valid_from=today - dt.timedelta(days=10),
                valid_until=today + dt.timedelta(days=200),
                funders=[FunderShare(a, 6000, 1_200_000_000), FunderShare(b, 4000, 800_000_000)],
                territory=[(TerritoryLevel.DEPARTEMENT, "51")],
                eligible_services=[SERVICE, "demarches_administratives"],
                vouchers_per_booklet=PER_BOOKLET,
            ),
        )
        self.distributor = organisation_create(name="CCAS de Reims", kind=OrganisationKind.DISTRIBUTOR)
        self.place = organisation_create(
            name="Médiathèque Jean Falala", kind=OrganisationKind.PLACE, insee_code="51454"
        )
        self.site = Site.objects.create(
            organisation=self.place,
            name="Médiathèque Jean Falala",
            address="2 rue des Fuseliers",
            postal_code="51100",
            commune_id="51454",
            commune_name="Reims",
            latitude=49.2535,
            longitude=4.0346,
            services=[SERVICE, "demarches_administratives"],
            source_id="bench-redemption-1",
            status="qualified",
        )
        SiteService.objects.create(site=self.site, service=SERVICE, vouchers_per_session=2)
        SiteService.objects.create(site=self.site, service="demarches_administratives", vouchers_per_session=1)

    def pools(self, clients: int, per_client: int) -> list[list[str]]:
        """`clients` lists of at least `per_client` distributed codes, each from booklets of its own."""
        from django.db import connection, transaction

        from passnum.programs.selectors import program_shares
        from passnum.settlement.ledger import ledger_post, program_account, split_by_shares
        from passnum.vouchers.services import MAX_BOOKLETS_PER_CALL, booklets_issue

        per_client_booklets = max(1, -(-per_client // PER_BOOKLET))
        ids: list[int] = []
        left = per_client_booklets * clients
        while left:
            count = min(left, MAX_BOOKLETS_PER_CALL)
            ids += list(booklets_issue(program=self.program, count=count).values_list("id", flat=True))
            left -= count
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                "UPDATE vouchers_booklet SET distributor_id = %s, allocated_at = now(), handed_out_at = now() "
                "WHERE id = ANY(%s)",
                [self.distributor.id, ids],
            )
            cursor.execute(
                "UPDATE vouchers_voucher SET status = 'distributed', distributed_at = now() WHERE booklet_id = ANY(%s)",
                [ids],
            )
            cursor.execute(
                "SELECT booklet_id, code FROM vouchers_voucher WHERE booklet_id = ANY(%s) "
                "ORDER BY booklet_id, position",
                [ids],
            )
            by_booklet: dict[int, list[str]] = {}
            for booklet_id, code in cursor.fetchall():
                by_booklet.setdefault(booklet_id, []).append(code)
            # The hand-out's ledger move (outstanding → handed_out), in one transaction for all these booklets.
            cursor.execute(
                "SELECT face_value_cents, count(*) FROM vouchers_voucher WHERE booklet_id = ANY(%s) GROUP BY 1", [ids]
            )
            totals: dict[int, int] = {}
            for face_value, n in cursor.fetchall():
                for fid, part in split_by_shares(face_value, program_shares(program_id=self.program.pk)):
                    totals[fid] = totals.get(fid, 0) + part * n
            lines = []
            for fid, amount in totals.items():
                lines.append((program_account("outstanding", program_id=self.program.pk, funder_id=fid), -amount))
                lines.append((program_account("handed_out", program_id=self.program.pk, funder_id=fid), amount))
            ledger_post(kind="hand_out", lines=lines, memo="Banc d’essai : remise en bloc")
        pools = []
        for i in range(clients):
            mine = ids[i * per_client_booklets : (i + 1) * per_client_booklets]
            pools.append([code for booklet_id in mine for code in by_booklet[booklet_id]])
        return pools


def statement_signature(sql: str) -> str:
    """'SELECT places_site', 'INSERT vouchers_receipt', 'SELECT … FOR UPDATE settlement_ledgerchainhead'…; a WITH
    statement lists the tables it writes ('WITH INSERT vouchers_receipt, … UPDATE vouchers_voucher')."""
    s = sql.replace('"', "").strip()
    verb = s.split(None, 1)[0].upper()
    if verb == "WITH":
        writes = re.findall(r"\b(INSERT INTO|UPDATE|DELETE FROM)\s+([\w.]+)", s, re.I)
        return "WITH " + ", ".join(f"{w.split()[0].upper()} {t}" for w, t in writes)
    if verb == "SELECT":
        table = re.search(r"\bFROM\s+([\w.]+)", s, re.I)
        name = table.group(1) if table else "?"
        return f"SELECT {name}{' FOR UPDATE' if re.search(r'FOR UPDATE', s, re.I) else ''}"
    table = re.search(r"^(?:INSERT INTO|UPDATE|DELETE FROM)\s+([\w.]+)", s, re.I)
    return f"{verb} {table.group(1) if table else '?'}"


def capture_service(seed, code: str, warm_code: str, api_key: str) -> tuple[list[str], str]:
    """The statements the HTTP path sends for one redemption: the WSGI application (APP) called in-process. Before
    the API answers, `redeem()` alone."""
    from django.db import connection

    statements: list[str] = []

    def wrapper(execute, sql, params, many, context):
        statements.append(sql)
        return execute(sql, params, many, context)

    try:
        module, _, attribute = APP.partition(":")
        application = getattr(importlib.import_module(module), attribute)

        def call(c):
            body = json.dumps({"code": c, "service": SERVICE, "count": 1}).encode()
            environ = {
                "REQUEST_METHOD": "POST",
                "PATH_INFO": PATH,
                "SCRIPT_NAME": "",
                "QUERY_STRING": "",
                "SERVER_NAME": "127.0.0.1",
                "SERVER_PORT": "80",
                "SERVER_PROTOCOL": "HTTP/1.1",
                "HTTP_HOST": "127.0.0.1",
                "REMOTE_ADDR": "127.0.0.1",
                "HTTP_AUTHORIZATION": f"Bearer {api_key}",
                "CONTENT_TYPE": "application/json",
                "CONTENT_LENGTH": str(len(body)),
                "wsgi.input": io.BytesIO(body),
                "wsgi.errors": sys.stderr,
                "wsgi.url_scheme": "http",
                "wsgi.version": (1, 0),
                "wsgi.multithread": False,
                "wsgi.multiprocess": True,
                "wsgi.run_once": False,
            }
            status = []
            chunks = application(environ, lambda s, h, exc_info=None: status.append(s))
            content = b"".join(chunks)
            if hasattr(chunks, "close"):
                chunks.close()
            return status[0], content

        call(warm_code)
        with connection.execute_wrapper(wrapper):
            status, content = call(code)
        if status.startswith("201"):
            return statements, f"HTTP path ({APP} called in-process)"
        where = f"the API answered {status} {content[:300]!r}"
    except ImportError as exc:
        where = f"no API ({exc})"
    from passnum.accounts.models import ApiKey
    from passnum.vouchers.models import Voucher
    from passnum.vouchers.redemption import Desk, redeem

    statements.clear()
    key = ApiKey.objects.get(key_hash=hashlib.sha256(api_key.encode()).hexdigest())
    desk = Desk(place=seed.place, api_key=key, ip="127.0.0.1")
    fresh = list(Voucher.objects.filter(status="distributed", program=seed.program).order_by("-id")[:2])
    redeem(raw_code=fresh[0].code, desk=desk, service=SERVICE)  # warm: the program's shares, the ledger accounts
    with connection.execute_wrapper(wrapper):
        redeem(raw_code=fresh[1].code, desk=desk, service=SERVICE)
    return statements, f"redeem() only, {where}"


def capture_raw(ctx, api_key: str, code: str) -> list[str]:
    import psycopg

    statements = []
    with psycopg.connect(ctx.url, autocommit=True) as conn:
        execute = conn.execute

        def recording(sql, params=None, **kwargs):
            statements.append(sql)
            return execute(sql, params, **kwargs)

        conn.execute = recording
        raw_redeem(conn, ctx, api_key=api_key, code=code)
    return statements


def database(admin_url: str, name: str, *, create: bool) -> str:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        if create:
            conn.execute(f"CREATE DATABASE {name}")
    return admin_url.rsplit("/", 1)[0] + f"/{name}"


def load_average() -> str:
    """Other work on the machine shows here (the ratios compare two timings of the same run, still)."""
    return "load average (1, 5, 15 min): " + ", ".join(f"{x:.2f}" for x in os.getloadavg())


def phase_line(kind: str, clients: int, r: dict) -> str:
    return f"{kind} clients={clients} redemptions/s={r['rate']:.0f} p50={r['p50']:.2f}ms p99={r['p99']:.2f}ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--duration", type=float, default=15, help="seconds per measured phase")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--worker-class", default="gthread", choices=["sync", "gthread"])
    parser.add_argument("--threads", type=int, default=4, help="threads per gunicorn worker (gthread)")
    parser.add_argument(
        "--max-rate", type=float, default=2000, help="redemptions/s no phase reaches (codes issued per phase)"
    )
    parser.add_argument(
        "--admin-url", default=os.environ.get("BENCH_ADMIN_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    )
    parser.add_argument("--keep-db", action="store_true", help="keep the database (and print its URL)")
    parser.add_argument("--show-sql", action="store_true", help="list both sides' statements")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is needed (Debian: apt install wrk)")

    name = f"passnum_bench_redemption_{os.getpid()}"
    url = database(args.admin_url, name, create=True)
    tmp = Path(tempfile.mkdtemp(prefix="passnum-bench-redemption-"))
    server = None
    try:
        env = server_env(url, tmp / "var")
        (tmp / "var" / "static").mkdir(parents=True)
        os.environ.update(env)
        import django

        django.setup()
        from django.conf import settings
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        call_command("createcachetable", verbosity=0)
        seed = Seed()
        from passnum.programs.selectors import program_shares
        from passnum.settlement.verify import ledger_verify
        from passnum.vouchers.models import Receipt

        ctx = RawContext(
            url=url,
            shares=program_shares(program_id=seed.program.pk),
            limits=settings.PASSNUM_CODE_CHECK_LIMITS,
        )
        n, d = args.clients, args.duration
        print(f"database={name} clients={n} duration={d:g}s cache={settings.CACHES['default']['BACKEND']}")
        print(f"gunicorn: {args.workers} {args.worker_class} worker(s) x {args.threads} thread(s); {load_average()}")

        # The statements of one redemption, both sides.
        check_key = create_api_key(seed.place, "Banc d’essai (contrôle)")
        (check,) = seed.pools(1, 4)
        service_sql, how = capture_service(seed, check[1], check[0], check_key)
        raw_sql = capture_raw(ctx, check_key, check[2])
        print(f"statements per redemption: service={len(service_sql)} raw={len(raw_sql)} (+ BEGIN/COMMIT each)")
        print(f"  service statements captured from: {how}")
        service_sig = [statement_signature(s) for s in service_sql]
        raw_sig = [statement_signature(s) for s in raw_sql]
        if service_sig != raw_sig or args.show_sql:
            width = max(map(len, service_sig + raw_sig + ["service"]))
            print(f"  {'service':<{width}}  raw")
            for i in range(max(len(service_sig), len(raw_sig))):
                a = service_sig[i] if i < len(service_sig) else "-"
                b = raw_sig[i] if i < len(raw_sig) else "-"
                print(f"  {a:<{width}}  {b}{'' if a == b else '   <-- differs'}")
            if service_sig != raw_sig:
                print("  WARNING: the raw baseline no longer mirrors the HTTP path: update raw_redeem() and its SQL")
        if args.show_sql:
            for sql in service_sql:
                print(f"    {sql}")

        lua = tmp / "redemption.lua"
        lua.write_text(LUA)
        results = {}

        def raw_phase(clients: int, per_client: int) -> dict:
            key, warm_key = create_api_key(seed.place, f"raw {clients}"), create_api_key(seed.place, "warm-up")
            pools, warm = seed.pools(clients, per_client), seed.pools(clients, 20)
            r = run_raw(ctx, api_key=key, pools=pools, warm_key=warm_key, warm_pools=warm, duration=d)
            receipts = Receipt.objects.filter(api_key__key_hash=hashlib.sha256(key.encode()).hexdigest()).count()
            if receipts != r["count"]:
                raise SystemExit(
                    f"raw {clients}: {r['count']} redemptions counted, {receipts} receipts in the database"
                )
            print(phase_line("raw", clients, r))
            print(f"  CPU per redemption: client {r['client_cpu']:.2f} ms, database {r['db_cpu']:.2f} ms", flush=True)
            return r

        def http_phase(clients: int, per_client: int) -> dict:
            nonlocal server
            if server is None:
                server = Server(
                    env,
                    workers=args.workers,
                    worker_class=args.worker_class,
                    threads=args.threads,
                    log_path=tmp / "gunicorn.log",
                )
                status, body = http_post(
                    server.base + PATH, {"code": check[3], "service": SERVICE, "count": 1}, check_key
                )
                if status != 201:
                    raise SystemExit(f"POST {PATH} answered {status}, not 201:\n{body[:2000]}\n{server.log()}")
            key, warm_key = create_api_key(seed.place, f"http {clients}"), create_api_key(seed.place, "warm-up")
            pools = seed.pools(clients, per_client)
            warm = seed.pools(clients, int(WARMUP_S * per_client / d) + 10)
            r = run_http(
                server,
                lua,
                tmp,
                phase=f"http{clients}",
                api_key=key,
                pools=pools,
                warm_key=warm_key,
                warm_pools=warm,
                duration=d,
            )
            print(phase_line("http", clients, r))
            print(
                f"  CPU per redemption: gunicorn workers {r['client_cpu']:.2f} ms, database {r['db_cpu']:.2f} ms; "
                f"wrk used {r['wrk_cpu']:.0%} of a core",
                flush=True,
            )
            return r

        # Every phase gets codes for --max-rate redemptions/s (a client that runs out stops the run, loudly).
        def per_client(clients: int) -> int:
            return math.ceil(args.max_rate * d * 1.1 / clients) + 50

        results["raw", n] = raw_phase(n, per_client(n))
        results["http", n] = http_phase(n, per_client(n))
        results["raw", 1] = raw_phase(1, per_client(1))
        results["http", 1] = http_phase(1, per_client(1))

        print(load_average())
        problems = ledger_verify()
        print("ledger_verify=clean" if not problems else f"ledger_verify={len(problems)} problem(s): {problems[:5]}")
        http_n, raw_n, http_1, raw_1 = results["http", n], results["raw", n], results["http", 1], results["raw", 1]
        print(phase_line("http", n, http_n))
        print(phase_line("raw", n, raw_n))
        print(phase_line("http", 1, http_1))
        print(phase_line("raw", 1, raw_1))
        print(f"single_client_ratio={http_1['rate'] / raw_1['rate']:.2f} goal=0.35")
        print(f"p99_p50={http_n['p99'] / http_n['p50']:.2f} goal=4")
        from django.db import connections

        connections.close_all()
        if server is not None:
            server.stop()
            server = None
        print(f"ratio={http_n['rate'] / raw_n['rate']:.2f} goal=0.25")
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(tmp, ignore_errors=True)
        with contextlib.suppress(Exception):
            from django.db import connections

            connections.close_all()
        if args.keep_db:
            print(f"kept database: {url}", file=sys.stderr)
        else:
            database(args.admin_url, name, create=False)


if __name__ == "__main__":
    main()
