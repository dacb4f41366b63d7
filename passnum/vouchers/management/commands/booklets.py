"""`passnum booklets pdf`: the PDF of a program's booklets, for a desk printer or a print shop.

    passnum booklets pdf --program pass-marne --booklets 1-50 --layout print --out carnets.pdf
    passnum booklets pdf --program pass-marne --booklets 3,5,7-9 --layout desk --out - > carnets.pdf

The PDF is streamed (memory stays flat whatever the number of booklets) to a temporary file next to --out,
renamed at the end: a failed run leaves no half-written PDF. Vouchers that can no longer be used (cancelled,
expired, used) are printed without QR code and stamped « ANNULÉ », « EXPIRÉ » or « UTILISÉ »."""

import os
import re
import sys
import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.db.models import Q

from passnum.common.errors import DomainError
from passnum.programs.models import Program
from passnum.vouchers.models import Booklet
from passnum.vouchers.pdf import LAYOUTS, render_booklets

_PART = re.compile(r"^(\d+)(?:\s*[-–]\s*(\d+))?$")
MAX_PARTS = 1000


def parse_booklet_range(text: str) -> list[tuple[int, int]]:
    """'3,5,7-9' → [(3, 3), (5, 5), (7, 9)]: sorted, overlapping or adjacent ranges merged. ValueError with a
    French message when the text is not a list of numbers and ranges."""
    example = "Exemples : 1-50 ou 3,5,7-9."
    parts = [part.strip() for part in (text or "").split(",")]
    if not any(parts):
        raise ValueError(f"Indiquez des numéros de carnets. {example}")
    if len(parts) > MAX_PARTS:
        raise ValueError(f"Au plus {MAX_PARTS} numéros ou plages.")
    ranges = []
    for part in parts:
        match = _PART.match(part)
        if not match:
            raise ValueError(f"« {part or '(vide)'} » n’est ni un numéro de carnet ni une plage. {example}")
        first = int(match.group(1))
        last = int(match.group(2)) if match.group(2) else first
        if first < 1:
            raise ValueError("Les numéros de carnets commencent à 1.")
        if last < first:
            raise ValueError(f"La plage « {part} » est à l’envers : écrivez {last}-{first}.")
        ranges.append((first, last))
    ranges.sort()
    merged = [ranges[0]]
    for first, last in ranges[1:]:
        if first <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], last))
        else:
            merged.append((first, last))
    return merged


def _size(size: int) -> str:
    return f"{size / 1_000_000:.1f} Mo" if size >= 1_000_000 else f"{-(-size // 1000)} ko"


def format_ranges(ranges: list[tuple[int, int]]) -> str:
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in ranges)


class Command(BaseCommand):
    help = "Carnets papier : `booklets pdf` écrit le PDF des carnets d’un dispositif (guichet ou imprimeur)."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        pdf = sub.add_parser("pdf", help="PDF des carnets d’un dispositif.")
        pdf.add_argument("--program", help="identifiant (slug) du dispositif")
        pdf.add_argument("--booklets", help="numéros des carnets : 1-50 ou 3,5,7-9 (par défaut : tous)")
        pdf.add_argument(
            "--layout",
            help="desk : un carnet par A4 (guichet) ; print : carnets imposés pour un imprimeur (massicot)",
        )
        pdf.add_argument("--out", help="fichier PDF à écrire, ou - pour la sortie standard")

    def handle(self, *args, action, **options):
        if action == "pdf":
            self.pdf(**options)

    def pdf(self, *, program=None, booklets=None, layout=None, out=None, **options):
        if not program:
            raise CommandError("Indiquez le dispositif : --program IDENTIFIANT.")
        if layout not in LAYOUTS:
            raise CommandError(
                "Indiquez la mise en page : --layout desk (un carnet par A4) ou --layout print (imprimeur)."
                if not layout
                else f"Mise en page inconnue : {layout}. Choisissez desk ou print."
            )
        if not out:
            raise CommandError("Indiquez le fichier à écrire : --out carnets.pdf (ou --out - pour la sortie standard).")
        prog = Program.objects.filter(slug=program).first()
        if prog is None:
            raise CommandError(f"Dispositif inconnu : {program}.")
        last_issued = prog.next_booklet_number - 1
        if last_issued < 1:
            raise CommandError(f"Aucun carnet n’a encore été émis pour le dispositif {program}.")
        qs = Booklet.objects.filter(program=prog)
        if booklets:
            try:
                ranges = parse_booklet_range(booklets)
            except ValueError as exc:
                raise CommandError(f"--booklets : {exc}") from exc
            missing = [(max(a, last_issued + 1), b) for a, b in ranges if b > last_issued]
            if missing:
                raise CommandError(
                    f"Carnets non émis : {format_ranges(missing)} (le dernier carnet émis du dispositif {program} "
                    f"est le n° {last_issued})."
                )
            condition = Q()
            for a, b in ranges:
                condition |= Q(number__range=(a, b))
            qs = qs.filter(condition)

        to_stdout = out == "-"
        report = self.stderr if to_stdout else self.stdout
        tty = sys.stderr.isatty()
        started = time.monotonic()

        def progress(done, total):
            if tty and (done == total or done % 20 == 0):
                width = 40
                filled = int(width * done / total)
                rate = done / max(time.monotonic() - started, 1e-6)
                sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} pages ({rate:,.0f}/s)")
                sys.stderr.flush()

        try:
            if to_stdout:
                result = render_booklets(
                    program=prog, booklets_qs_or_iter=qs, layout=layout, out=sys.stdout.buffer, on_progress=progress
                )
                sys.stdout.buffer.flush()
                size = None
            else:
                result, size = self._to_file(Path(out), prog, qs, layout, progress)
        except DomainError as exc:
            raise CommandError(exc.message) from exc
        finally:
            if tty:
                sys.stderr.write("\n")
        elapsed = time.monotonic() - started
        where = "" if size is None else f" → {out} ({_size(size)})"
        report.write(
            f"{result.booklets} carnet(s), {result.vouchers} chèque(s), {result.pages} page(s) "
            f"({layout}){where}, en {elapsed:.1f} s."
        )
        for stamp, count in sorted(result.stamped.items()):
            report.write(f"{count} chèque(s) inutilisable(s) imprimé(s) sans QR code, marqué(s) « {stamp} ».")

    def _to_file(self, path: Path, prog, qs, layout, progress):
        if not path.parent.is_dir():
            raise CommandError(f"Dossier introuvable : {path.parent}.")
        part = path.with_name(path.name + ".part")
        try:
            with open(part, "wb") as f:
                result = render_booklets(
                    program=prog, booklets_qs_or_iter=qs, layout=layout, out=f, on_progress=progress
                )
            os.replace(part, path)
        except OSError as exc:
            part.unlink(missing_ok=True)
            raise CommandError(f"Impossible d’écrire {path} : {exc.strerror or exc}.") from exc
        except BaseException:
            part.unlink(missing_ok=True)
            raise
        return result, path.stat().st_size
