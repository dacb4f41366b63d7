"""`passnum nudge [--today AAAA-MM-JJ] [--dry-run]`: the daily reminder job (see docs/nudges.md).

Meant for a daily run at a decent hour (people receive it), for example at 10:00 Paris time:

    cron:    0 10 * * *  passnum  /srv/passnum/.venv/bin/passnum nudge
    systemd: OnCalendar=*-*-* 10:00:00 Europe/Paris   (passnum-nudge.timer → passnum-nudge.service)

Idempotent: each person gets one reminder at most; a send that failed is tried again on the next run."""

import datetime as dt

from django.core.management.base import BaseCommand, CommandError

from passnum.nudges.services import local_today, nudges_send


class Command(BaseCommand):
    help = (
        "Tâche quotidienne de relance : un rappel unique aux personnes qui ont un pass numérique, ont accepté les "
        "rappels et n’ont utilisé aucun chèque quelques jours après la remise (PASSNUM_NUDGE_AFTER_DAYS), avec le "
        "lieu qui leur a été conseillé. Relançable sans effet supplémentaire."
    )

    def add_arguments(self, parser):
        parser.add_argument("--today", help="Date du jour AAAA-MM-JJ (par défaut : aujourd’hui, heure de Paris).")
        parser.add_argument(
            "--dry-run", action="store_true", help="Affiche ce qui serait envoyé, sans rien envoyer ni enregistrer."
        )

    def handle(self, *args, today=None, dry_run=False, **options):
        if today:
            try:
                day = dt.date.fromisoformat(today)
            except ValueError as exc:
                raise CommandError(f"Date invalide « {today} » : attendu AAAA-MM-JJ.") from exc
        else:
            day = local_today()
        report = nudges_send(today=day, dry_run=dry_run)
        for line in report.lines():
            self.stdout.write(line)
