import datetime as dt

from django.core.management.base import BaseCommand, CommandError

from passnum.common.errors import DomainError
from passnum.settlement.services import local_today, settle, settlement_calendar


class Command(BaseCommand):
    help = (
        "Arrêté de règlement : regroupe les encaissements antérieurs à la date d’arrêté en demandes de "
        "remboursement (une par lieu et par financeur). Sans --cutoff, prend le dernier arrêté du calendrier. "
        "Relançable sans doublon ni trou de numérotation."
    )

    def add_arguments(self, parser):
        parser.add_argument("--cutoff", help="Date d’arrêté AAAA-MM-JJ (les encaissements avant 00:00 ce jour-là).")

    def handle(self, *args, cutoff=None, **options):
        today = local_today()
        if cutoff:
            try:
                day = dt.date.fromisoformat(cutoff)
            except ValueError as exc:
                raise CommandError(f"Date d’arrêté invalide « {cutoff} » : attendu AAAA-MM-JJ.") from exc
        else:
            calendar = settlement_calendar()
            day = calendar.latest(today)
            self.stdout.write(f"Calendrier : arrêté {calendar.describe()} ; dernier arrêté le {day:%d/%m/%Y}.")
        try:
            result = settle(cutoff=day, today=today)
        except DomainError as exc:
            raise CommandError(f"{exc.message} [{exc.code}]") from exc
        self.stdout.write(result.summary())
        for claim in result.claims[:20]:
            self.stdout.write(f"  {claim.reference}  {claim.lines_count:>6} ligne(s)  {claim.claimed_cents:>12} c")
        if len(result.claims) > 20:
            self.stdout.write(f"  … et {len(result.claims) - 20} autre(s).")
