from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from passnum.settlement.models import LedgerTransaction
from passnum.settlement.verify import ledger_verify


class Command(BaseCommand):
    help = (
        "Grand livre : `ledger verify` contrôle l’équilibre, la chaîne d’empreintes et l’accord avec les données ; "
        "`ledger verify --archive DOSSIER` contrôle une archive d’export à partir de ses seuls fichiers."
    )

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        verify = sub.add_parser("verify", help="Vérifie le grand livre ; code de sortie 1 en cas de désaccord.")
        verify.add_argument(
            "--archive",
            metavar="DOSSIER",
            help="Vérifie une archive de `passnum export` (empreintes, chaîne, soldes) au lieu de la base.",
        )

    def handle(self, *args, action, archive=None, **options):
        if action == "verify" and archive:
            self._verify_archive(Path(archive))
        elif action == "verify":
            problems = ledger_verify()
            count = LedgerTransaction.objects.count()
            if problems:
                for p in problems:
                    self.stderr.write(f"✗ {p}")
                raise CommandError(f"Grand livre : {len(problems)} désaccord(s) sur {count} écriture(s).", returncode=1)
            self.stdout.write(
                f"✓ Grand livre vérifié : {count} écriture(s) équilibrée(s), chaîne intacte, "
                "soldes en accord avec les données."
            )

    def _verify_archive(self, directory: Path) -> None:
        import json

        from passnum.settlement.export import verify_archive

        if not directory.is_dir():
            raise CommandError(f"Archive introuvable : {directory} n’est pas un dossier.", returncode=1)
        problems = verify_archive(directory)
        if problems:
            for p in problems:
                self.stderr.write(f"✗ {p}")
            raise CommandError(f"Archive {directory} : {len(problems)} problème(s).", returncode=1)
        head = json.loads((directory / "manifest.json").read_text(encoding="utf-8"))["ledger"]
        self.stdout.write(
            f"✓ Archive vérifiée : fichiers intacts, {head['head_seq']} écriture(s) équilibrée(s), chaîne intacte "
            f"jusqu’à {head['head_hash'][:16]}…, soldes recalculés en accord avec les demandes."
        )
