from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from passnum.settlement.export import (
    PAYMENT_FILES_DIR,
    TABLES,
    archive_files_listed,
    export_archive,
    render_readme,
)


class Command(BaseCommand):
    help = (
        "Archive de continuité : exporte toutes les données nécessaires pour finir de payer chaque lieu sans la "
        "plateforme (CSV + JSON Lines par table, fichiers SEPA, grand livre chaîné, README et manifeste)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--out", help="Dossier de l’archive (créé s’il n’existe pas ; doit être vide).")
        parser.add_argument(
            "--force",
            action="store_true",
            help="Accepte un dossier non vide : remplace l’archive qui s’y trouve (les fichiers de son manifeste).",
        )
        parser.add_argument(
            "--print-readme", action="store_true", help="Affiche le README de l’archive (docs/export-format.md)."
        )

    def handle(self, *args, out=None, force=False, print_readme=False, **options):
        if print_readme:
            self.stdout.write(render_readme(), ending="")
            return
        if not out:
            raise CommandError("Indiquez le dossier de l’archive : --out DOSSIER.")
        out_dir = Path(out)
        if out_dir.exists() and not out_dir.is_dir():
            raise CommandError(f"{out_dir} existe et n’est pas un dossier.")
        if out_dir.is_dir() and any(out_dir.iterdir()):
            if not force:
                raise CommandError(f"Le dossier {out_dir} n’est pas vide : choisissez-en un autre ou ajoutez --force.")
            for rel in archive_files_listed(out_dir):
                path = (out_dir / rel).resolve()
                if out_dir.resolve() in path.parents:
                    path.unlink(missing_ok=True)

        def progress(table, rows):
            if options.get("verbosity", 1) > 1:
                self.stdout.write(f"  {table} : {rows} ligne(s)…")

        manifest = export_archive(out_dir, progress=progress)
        width = max(len(t.name) for t in TABLES)
        for table in TABLES:
            self.stdout.write(f"  {table.name:<{width}}  {manifest.counts[table.name]:>10} ligne(s)")
        self.stdout.write(f"  {PAYMENT_FILES_DIR:<{width}}  {manifest.counts[PAYMENT_FILES_DIR]:>10} fichier(s)")
        self.stdout.write(
            f"✓ Archive écrite dans {out_dir.resolve()} : {len(manifest.files) + 1} fichier(s), grand livre jusqu’à "
            f"l’écriture n° {manifest.chain_head_seq} ({manifest.chain_head_hash[:16]}…)."
        )
