import json

from django.core.management.base import BaseCommand

from passnum.vouchers.signing import create_key, load_keys, published_keys


class Command(BaseCommand):
    help = (
        "Clés de signature des QR codes : `keys rotate` crée une nouvelle clé ; `keys list` affiche les clés publiques."
    )

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        sub.add_parser("rotate", help="Crée une nouvelle clé de signature ; les anciennes restent valides.")
        sub.add_parser("list", help="Affiche les clés publiques publiées.")

    def handle(self, *args, action, **options):
        if action == "rotate":
            key = create_key()
            self.stdout.write(f"Nouvelle clé de signature : {key.kid} ({len(load_keys())} clé(s) publiée(s)).")
        else:
            self.stdout.write(json.dumps(published_keys(), indent=2, ensure_ascii=False))
