from django.core.management.base import BaseCommand, CommandError
from django.db import DEFAULT_DB_ALIAS

from passnum.geo.loader import load_geography
from passnum.geo.models import VINTAGE
from passnum.geo.selectors import commune_get


def _number(value: int) -> str:
    return f"{value:,}".replace(",", "\u202f")  # French thousands separator (narrow no-break space)


class Command(BaseCommand):
    help = f"Référentiel géographique ({VINTAGE}) : chargement et consultation."

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True, metavar="{load,show}")
        load = actions.add_parser("load", help="Charge ou met à jour le référentiel livré avec l’application.")
        load.add_argument("--database", default=DEFAULT_DB_ALIAS, help="Base de données cible.")
        show = actions.add_parser("show", help="Affiche une commune à partir de son code Insee.")
        show.add_argument("code", help="Code Insee de la commune (5 caractères), par exemple 60057.")

    def handle(self, *args, action, **options):
        if action == "load":
            self.load(options["database"])
        else:
            self.show(options["code"].strip().upper())

    def load(self, database: str) -> None:
        counts = load_geography(using=database)
        lines = [
            f"Référentiel géographique {VINTAGE} :",
            f"  régions : {_number(counts['regions'])}",
            f"  départements : {_number(counts['departements'])}",
            f"  EPCI : {_number(counts['epci'])}",
            f"  communes : {_number(counts['communes'])}",
            f"  codes postaux : {_number(counts['postal_codes'])}",
        ]
        if counts["written"]:
            lines.append(f"{_number(counts['written'])} lignes écrites.")
        else:
            lines.append("Déjà à jour, rien à écrire.")
        self.stdout.write("\n".join(lines))

    def show(self, code: str) -> None:
        commune = commune_get(code=code)
        if commune is None:
            raise CommandError(f"Aucune commune de code {code} dans le référentiel {VINTAGE}.")
        lines = [f"{commune} : {commune.get_kind_display().lower()}"]
        if commune.parent:
            lines.append(f"  commune de rattachement : {commune.parent}")
        lines += [
            f"  département : {commune.departement}",
            f"  région : {commune.region}",
            f"  EPCI : {commune.epci or 'aucun'}",
        ]
        postal_codes = commune.postal_codes.values_list("code", flat=True)
        if postal_codes:
            lines.append(f"  codes postaux : {', '.join(postal_codes)}")
        if commune.population is not None:
            lines.append(f"  population municipale : {_number(commune.population)}")
        self.stdout.write("\n".join(lines))
