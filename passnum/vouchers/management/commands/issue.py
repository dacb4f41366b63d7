import sys
import time

from django.core.management.base import BaseCommand, CommandError

from passnum.accounts.models import Organisation
from passnum.common.errors import DomainError
from passnum.common.money import format_euros
from passnum.programs.models import Program
from passnum.vouchers.services import booklets_issue


class Command(BaseCommand):
    help = "Émet des carnets d’un dispositif, dans la limite du budget de chaque financeur."

    def add_arguments(self, parser):
        parser.add_argument("--program", required=True, help="identifiant (slug) du dispositif")
        parser.add_argument("--booklets", required=True, type=int, help="nombre de carnets")
        parser.add_argument("--funder", help="identifiant (slug) du financeur qui émet (par défaut : le pilote)")

    def handle(self, *args, program, booklets, funder=None, **options):
        prog = Program.objects.filter(slug=program).first()
        if prog is None:
            raise CommandError(f"Dispositif inconnu : {program}.")
        org = prog.owner
        if funder:
            org = Organisation.objects.filter(slug=funder, program_shares__program=prog).first()
            if org is None:
                raise CommandError(f"« {funder} » ne finance pas le dispositif {program}.")
        total = booklets * prog.vouchers_per_booklet
        tty = sys.stderr.isatty()
        started = time.monotonic()

        def progress(done, total):
            if tty:
                width = 40
                filled = int(width * done / total)
                rate = done / max(time.monotonic() - started, 1e-6)
                sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} chèques ({rate:,.0f}/s)")
                sys.stderr.flush()

        try:
            issued = booklets_issue(program=prog, count=booklets, organisation=org, on_progress=progress)
        except DomainError as exc:
            raise CommandError(exc.message) from exc
        finally:
            if tty:
                sys.stderr.write("\n")
        elapsed = time.monotonic() - started
        self.stdout.write(
            f"{booklets} carnet(s) émis (n° {issued.first().number} à {issued.last().number}), {total} chèques, "
            f"{format_euros(total * prog.face_value_cents)}, en {elapsed:.1f} s."
        )
