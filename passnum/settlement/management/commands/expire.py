"""`passnum expire [--today AAAA-MM-JJ] [--dry-run]`: the daily expiry job (see docs/expiry.md).

Meant for a daily scheduled run, for example at 02:30 Paris time:

    cron:    30 2 * * *  passnum  /srv/passnum/.venv/bin/passnum expire
    systemd: OnCalendar=*-*-* 02:30:00 Europe/Paris   (passnum-expire.timer → passnum-expire.service)

Both steps are idempotent: running it twice the same day changes nothing more and sends nothing twice."""

import datetime as dt

from django.core.management.base import BaseCommand, CommandError

from passnum.settlement.expiry import expire_due, expiry_alerts
from passnum.settlement.services import local_today


class Command(BaseCommand):
    help = (
        "Tâche quotidienne d’expiration : expire les chèques non utilisés des dispositifs dont le délai de grâce "
        "est passé (leur valeur revient au budget de chaque financeur), puis envoie les rappels 30 et 15 jours "
        "avant la fin de validité (prescripteurs ayant du stock, personnes ayant accepté les rappels). "
        "Relançable sans effet supplémentaire."
    )

    def add_arguments(self, parser):
        parser.add_argument("--today", help="Date du jour AAAA-MM-JJ (par défaut : aujourd’hui, heure de Paris).")
        parser.add_argument(
            "--dry-run", action="store_true", help="Affiche ce qui serait fait, sans rien modifier ni envoyer."
        )
        parser.add_argument("--no-alerts", action="store_true", help="N’envoie pas les rappels (expiration seule).")

    def handle(self, *args, today=None, dry_run=False, no_alerts=False, **options):
        if today:
            try:
                day = dt.date.fromisoformat(today)
            except ValueError as exc:
                raise CommandError(f"Date invalide « {today} » : attendu AAAA-MM-JJ.") from exc
        else:
            day = local_today()
        prefix = "[simulation] " if dry_run else ""
        reports = expire_due(today=day, dry_run=dry_run)
        if not reports:
            self.stdout.write(f"{prefix}Expiration du {day:%d/%m/%Y} : aucun chèque à expirer.")
        for report in reports:
            for line in report.lines():
                self.stdout.write(line)
        if no_alerts:
            return
        alerts = expiry_alerts(today=day, dry_run=dry_run)
        for line in alerts.lines():
            self.stdout.write(line)
