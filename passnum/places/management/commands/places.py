import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError

from passnum.places.standard import export_csv, export_records, import_file, open_data_sites


class Command(BaseCommand):
    help = (
        "Lieux et standard national des lieux de médiation numérique : `places import FICHIER` (CSV v1.0.x ou "
        "v0.1.1, JSON de la cartographie nationale ou d’un hub), `places export FICHIER` (CSV v1.0.1, ou JSON si "
        "le nom finit par .json)."
    )

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True, metavar="{import,export}")
        load = actions.add_parser(
            "import", help="Importe les lieux d’un fichier du standard comme lieux référencés (non qualifiés)."
        )
        load.add_argument("file", metavar="FICHIER", help="Fichier CSV ou JSON (UTF-8).")
        load.add_argument(
            "--source",
            default="",
            help="Source des lignes dont la colonne `source` est vide (par défaut : le nom du fichier). "
            "Gardez la même d’un import à l’autre : (source, id) identifie un lieu.",
        )
        load.add_argument("--dry-run", action="store_true", help="Tout vérifier sans rien enregistrer.")
        dump = actions.add_parser("export", help="Écrit les lieux qualifiés au standard v1.0.1.")
        dump.add_argument("file", metavar="FICHIER", help="Chemin du fichier à écrire (.csv ou .json).")

    def handle(self, *args, action, **options):
        if action == "import":
            self.do_import(Path(options["file"]), source=options["source"], dry_run=options["dry_run"])
        else:
            self.do_export(Path(options["file"]))

    def do_import(self, path: Path, *, source: str, dry_run: bool) -> None:
        try:
            report = import_file(path, source=source, dry_run=dry_run)
        except DatabaseError as exc:
            raise CommandError(f"Erreur de la base de données, rien n’a été importé : {exc}", returncode=1) from exc
        if not report.readable:
            self.stderr.write(report.as_text())
            raise CommandError("Fichier refusé : rien n’a été importé.", returncode=1)
        self.stdout.write(report.as_text())

    def do_export(self, path: Path) -> None:
        try:
            with path.open("w", encoding="utf-8", newline="") as f:
                if path.suffix.lower() == ".json":
                    records = list(export_records(open_data_sites()))
                    json.dump(records, f, ensure_ascii=False)
                    count = len(records)
                else:
                    count = export_csv(open_data_sites(), f)
        except OSError as exc:
            raise CommandError(f"Impossible d’écrire {path} : {exc.strerror}.", returncode=1) from exc
        self.stdout.write(f"{count} lieu(x) qualifié(s) écrit(s) dans {path} (standard v1.0.1).")
