#!/usr/bin/env python
"""Booklet PDF benchmark: pages/s and peak memory of `passnum.vouchers.pdf.render_booklets` against a bare
reportlab baseline drawing the same pages in the same run.

    python benchmarks/booklet_pdf.py [--booklets 10000] [--layout desk|print] [--per-booklet 10]

Creates a throwaway SQLite database in a temporary directory (own signing keys too), migrates it, creates a
co-funded program and issues N booklets through `booklets_issue`. Then each measure runs in a forked child
process, so that each starts from the same state and its peak resident memory (VmHWM, reset at the start of the
child) is its own:

- service N/10 and service N: `render_booklets` over booklets 1…N/10, then 1…N, into a byte-counting sink
  (like /dev/null): database reads, Ed25519 signatures, QR encoding, drawing, streaming PDF writer.
- raw: a plain reportlab `Canvas` (pages kept in memory, written by `save()`), no database and no signature,
  drawing the same pages as "service N" with the same drawing functions, each coupon's QR encoded by the same
  segno call from a payload of the same length (a random signature in place of a real one).
- raw, QR pre-encoded (for information): the same, with ten QR symbols encoded once and reused, i.e. the
  drawing alone.

Memory must not grow with the number of booklets: the service's peak for N is compared with its peak for N/10.
Last line: ratio=<service N / raw pages per second> goal=0.5."""

import argparse
import contextlib
import datetime as dt
import json
import os
import secrets
import shutil
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--booklets", type=int, default=10_000, help="booklets to render (10 000)")
    parser.add_argument("--layout", choices=["desk", "print"], default="desk", help="page layout (desk)")
    parser.add_argument("--per-booklet", type=int, default=10, help="vouchers per booklet (10)")
    return parser.parse_args()


def setup_django(tmpdir: str) -> None:
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings.test"
    os.environ["DATABASE_URL"] = f"sqlite:///{tmpdir}/bench.sqlite3"
    import django

    django.setup()
    from django.conf import settings

    settings.PASSNUM_SIGNING_KEYS_DIR = Path(tmpdir) / "keys"
    from passnum.vouchers import signing

    signing.load_keys.cache_clear()
    signing.create_key()


class Sink:
    """A write-only file that keeps nothing: counts bytes."""

    def __init__(self):
        self.size = 0

    def write(self, data) -> int:
        self.size += len(data)
        return len(data)

    def flush(self) -> None:
        pass


# --- memory ---------------------------------------------------------------------------------------------------


def reset_peak() -> None:
    """Reset this process's resident high-water mark (Linux ≥ 4.0); harmless elsewhere."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def memory_kib() -> tuple[int, int]:
    """(current RSS, peak RSS) in KiB."""
    fields = {}
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            key, _, value = line.partition(":")
            fields[key] = value
        return int(fields["VmRSS"].split()[0]), int(fields["VmHWM"].split()[0])
    except (OSError, KeyError):
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak, peak


def in_child(work) -> dict:
    """Run `work()` in a forked process; return its result dict plus start/peak memory and seconds."""
    from django.db import connections

    connections.close_all()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        os.close(read)
        status = 0
        try:
            reset_peak()
            start_rss, _ = memory_kib()
            t0 = time.perf_counter()
            result = work()
            result["seconds"] = time.perf_counter() - t0
            result["start_kib"] = start_rss
            result["peak_kib"] = memory_kib()[1]
            payload = json.dumps(result).encode()
        except BaseException as exc:  # report anything to the parent
            payload = json.dumps({"error": repr(exc)}).encode()
            status = 1
        with os.fdopen(write, "wb") as pipe:
            pipe.write(payload)
        os._exit(status)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        data = pipe.read()
    os.waitpid(pid, 0)
    result = json.loads(data)
    if "error" in result:
        sys.exit(f"child failed: {result['error']}")
    return result


# --- the two sides --------------------------------------------------------------------------------------------


def service(program, count: int, layout: str):
    def work():
        from passnum.vouchers.models import Booklet
        from passnum.vouchers.pdf import render_booklets

        sink = Sink()
        qs = Booklet.objects.filter(program=program, number__lte=count)
        result = render_booklets(program=program, booklets_qs_or_iter=qs, layout=layout, out=sink)
        return {"pages": result.pages, "bytes": sink.size, "booklets": result.booklets}

    return work


def fake_payload() -> str:
    from passnum.vouchers import codes, signing

    kid = max(signing.load_keys())
    signature = signing._b64(secrets.token_bytes(64))
    return f"PN1.{codes.generate_code()}.{kid}.{signature}"


def raw(static_program, funders: list[str], count: int, layout: str, *, pre_encoded: bool):
    """Plain reportlab: the same pages, no database, no signature; a Canvas that keeps pages until save()."""

    def work():
        from reportlab.lib.pagesizes import A4
        from reportlab.pdfgen.canvas import Canvas

        from passnum.vouchers import codes
        from passnum.vouchers import pdf as P

        st = P.booklet_static(static_program, funders=funders)
        per = static_program.vouchers_per_booklet
        reused = [P.qr_matrix(fake_payload()) for _ in range(10)]
        sink = Sink()
        c = Canvas(sink, pagesize=A4, pageCompression=1, invariant=1)

        def coupon(position: int):
            code = codes.generate_code()
            qr = reused[position % 10] if pre_encoded else P.qr_matrix(fake_payload())
            return P.Coupon(position, codes.display(code), qr)

        pages = 0
        if layout == "desk":
            for number in range(1, count + 1):
                P.draw_desk_cover_page(c, st, number)
                c.showPage()
                coupons = [coupon(i) for i in range(1, per + 1)]
                for i in range(0, per, P.PER_SHEET):
                    P.draw_desk_coupon_page(c, st, number, coupons[i : i + P.PER_SHEET])
                    c.showPage()
                pages += 1 + -(-per // P.PER_SHEET)
        else:
            cards_per = per + 2
            total = count * cards_per
            sheets = -(-total // P.PER_SHEET)
            for s in range(sheets):
                for p in range(P.PER_SHEET):
                    i = s + p * sheets
                    if i >= total:
                        continue
                    number, k = divmod(i, cards_per)
                    card = ("cover", number + 1) if k == 0 else ("notice", number + 1) if k == 1 else None
                    if card is None:
                        card = ("coupon", number + 1, coupon(k - 1))
                    P._in_cell(c, p, P._draw_card, st, card)
                P.draw_crop_marks(c, f"{st.site_title} — {st.program_slug} — feuille {s + 1}/{sheets}")
                c.showPage()
                pages += 1
        c.save()
        return {"pages": pages, "bytes": sink.size}

    return work


# --- main -----------------------------------------------------------------------------------------------------


def main() -> None:
    args = parse_args()
    n, small = args.booklets, max(args.booklets // 10, 1)
    tmpdir = tempfile.mkdtemp(prefix="passnum-bench-pdf-")
    try:
        setup_django(tmpdir)
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        from passnum.accounts.enums import OrganisationKind
        from passnum.accounts.services import organisation_create
        from passnum.geo.enums import TerritoryLevel
        from passnum.programs.services import FunderShare, ProgramData, program_create
        from passnum.vouchers.services import booklets_issue

        a = organisation_create(name="Département de la Marne", kind=OrganisationKind.FUNDER)
        b = organisation_create(name="Communauté urbaine du Grand Reims", kind=OrganisationKind.FUNDER)
        budget = n * args.per_booklet * 1000
        program = program_create(
            owner=a,
            actor=None,
            data=ProgramData(
                name="Pass numérique Marne 2026",
                valid_from=dt.date(2026, 1, 1),
                valid_until=dt.date(2026, 12, 31),
                funders=[FunderShare(a, 6000, budget), FunderShare(b, 4000, budget)],
                territory=[(TerritoryLevel.DEPARTEMENT, "51")],
                eligible_services=["outils_du_quotidien"],
                vouchers_per_booklet=args.per_booklet,
            ),
        )
        t0 = time.perf_counter()
        booklets_issue(program=program, count=n)
        issue_s = time.perf_counter() - t0
        import passnum.vouchers.pdf  # noqa: F401 — imported before forking, so no child pays for it

        funders = [a.name, b.name]
        static = SimpleNamespace(
            name=program.name,
            slug=program.slug,
            face_value_cents=program.face_value_cents,
            vouchers_per_booklet=program.vouchers_per_booklet,
            valid_from=program.valid_from,
            valid_until=program.valid_until,
        )

        print(f"booklets={n} vouchers/booklet={args.per_booklet} layout={args.layout} (issued in {issue_s:.1f} s)")
        runs = [
            ("service N/10", service(program, small, args.layout)),
            ("service N", service(program, n, args.layout)),
            ("raw", raw(static, funders, n, args.layout, pre_encoded=False)),
            ("raw, QR pre-encoded", raw(static, funders, n, args.layout, pre_encoded=True)),
        ]
        results = {}
        for name, work in runs:
            r = in_child(work)
            r["rate"] = r["pages"] / r["seconds"]
            results[name] = r
            print(
                f"{name:<20} {r['pages']:>7} pages {r['seconds']:8.1f} s {r['rate']:8.1f} pages/s  "
                f"PDF {r['bytes'] / 2**20:8.1f} MiB  peak RSS {r['peak_kib'] / 1024:7.1f} MiB "
                f"(+{(r['peak_kib'] - r['start_kib']) / 1024:.1f} MiB over the child's start)"
            )
        s_small, s_big = results["service N/10"], results["service N"]
        growth = (s_big["peak_kib"] - s_small["peak_kib"]) / 1024
        print(
            f"memory: service peak {s_small['peak_kib'] / 1024:.1f} MiB for {small} booklets, "
            f"{s_big['peak_kib'] / 1024:.1f} MiB for {n} ({growth:+.1f} MiB for ×{n / small:.0f} booklets); "
            f"raw peak {results['raw']['peak_kib'] / 1024:.1f} MiB"
        )
        print(
            f"QR encoding share of the raw drawing: "
            f"{1 - results['raw, QR pre-encoded']['seconds'] / results['raw']['seconds'] * 1:.0%}; "
            f"service / raw with QR pre-encoded: {s_big['rate'] / results['raw, QR pre-encoded']['rate']:.2f}"
        )
        from django.db import connections

        connections.close_all()
        print(f"ratio={s_big['rate'] / results['raw']['rate']:.2f} goal=0.5")
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)


if __name__ == "__main__":
    main()
