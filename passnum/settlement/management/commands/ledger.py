from django.core.management.base import BaseCommand, CommandError

from passnum.settlement.models import LedgerTransaction
from passnum.settlement.verify import ledger_verify


class Command(BaseCommand):
    help = "Grand livre : `ledger verify` contrôle l’équilibre, la chaîne d’empreintes et l’accord avec les données."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        sub.add_parser("verify", help="Vérifie le grand livre ; code de sortie 1 en cas de désaccord.")

    def handle(self, *args, action, **options):
        if action == "verify":
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
