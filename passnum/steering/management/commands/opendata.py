from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError

from passnum.steering.opendata import FILES, OpenDataRefused, export_to


class Command(BaseCommand):
    help = (
        "Données ouvertes sur l’activité : `opendata export --out DOSSIER` écrit les agrégats par dispositif, "
        "département ou commune et mois (CSV), leurs schémas, datapackage.json et LISEZMOI.md. Aucune donnée "
        "personnelle ; secret statistique appliqué."
    )

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True, metavar="{export}")
        export = actions.add_parser(
            "export", help="Écrit les fichiers de données ouvertes sur l’activité dans un dossier."
        )
        # Not required=True: argparse would refuse in English; the check below says it in French with a code.
        export.add_argument(
            "--out",
            metavar="DOSSIER",
            help="Dossier où écrire (créé s’il n’existe pas ; les fichiers du jeu de données qui s’y trouvent déjà "
            "sont remplacés, les autres ne sont pas touchés).",
        )

    def handle(self, *args, action, out=None, **options):
        try:
            report = export_to(out)
        except OpenDataRefused as exc:
            raise CommandError(f"{exc.message} [{exc.code}]", returncode=1) from exc
        except DatabaseError as exc:
            raise CommandError(f"Erreur de la base de données, rien n’a été écrit : {exc}", returncode=1) from exc
        width = max(len(name) for name in FILES)
        for name in FILES:
            rows = report.rows.get(name)
            detail = f"{rows:>8} ligne(s)" if rows is not None else ""
            self.stdout.write(f"  {name:<{width}}  {report.sizes[name]:>10} octets  {detail}".rstrip())
        self.stdout.write(f"✓ Données ouvertes sur l’activité écrites dans {report.out_dir.resolve()}.")
