import datetime as dt
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from passnum.accounts.models import Organisation
from passnum.common.errors import DomainError
from passnum.common.money import format_euros
from passnum.settlement.enums import ClaimStatus
from passnum.settlement.models import Claim, PaymentFile, SettlementRun
from passnum.settlement.payments import (
    OUTCOME_LABELS,
    bank_account_set,
    bank_statement_import,
    claims_missing_bank_details,
    mask_iban,
    payment_file_create,
)
from passnum.settlement.services import claim_mark_paid


def _refusal(exc: DomainError) -> CommandError:
    return CommandError(f"{exc.message} [{exc.code}]")


class Command(BaseCommand):
    help = (
        "Paiements : `payments file` écrit le fichier de virements SEPA d’un financeur pour un arrêté, "
        "`payments import` lit un relevé bancaire (camt.054 ou CSV) et marque les demandes payées, "
        "`payments mark-paid` marque une demande payée, `payments bank-account` enregistre un IBAN."
    )

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        file = sub.add_parser("file", help="Fichier de virements SEPA (pain.001) d’un financeur pour un arrêté.")
        file.add_argument("--funder", required=True, help="identifiant (slug) du financeur")
        file.add_argument("--batch", required=True, type=int, help="numéro de l’arrêté (SettlementRun)")
        file.add_argument("--out", required=True, help="fichier XML à écrire")
        file.add_argument("--version", dest="sepa_version", default="03", help="03 (pain.001.001.03) ou 09")
        file.add_argument("--execution-date", help="date d’exécution AAAA-MM-JJ (par défaut : prochain jour ouvré)")

        imp = sub.add_parser("import", help="Relevé bancaire camt.054 ou CSV reference;montant;date.")
        imp.add_argument("--funder", required=True, help="identifiant (slug) du financeur")
        imp.add_argument("file", help="fichier du relevé")

        paid = sub.add_parser("mark-paid", help="Marque une demande payée (sans relevé).")
        paid.add_argument("--claim", required=True, help="numéro de la demande, ex. DR-2026-F3-000001")
        paid.add_argument("--reference", default="", help="référence bancaire du virement")

        bank = sub.add_parser("bank-account", help="Coordonnées bancaires d’un lieu ou d’un financeur.")
        bank.add_argument("--organisation", required=True, help="identifiant (slug) de l’organisation")
        bank.add_argument("--iban", required=True)
        bank.add_argument("--bic", default="", help="BIC (déduit de l’IBAN si la banque est connue)")
        bank.add_argument("--holder", required=True, help="titulaire du compte")

    def handle(self, *args, action, **options):
        try:
            {
                "file": self.file,
                "import": self.import_statement,
                "mark-paid": self.mark_paid,
                "bank-account": self.bank_account,
            }[action](**options)
        except DomainError as exc:
            raise _refusal(exc) from exc

    def _organisation(self, slug: str, label: str) -> Organisation:
        organisation = Organisation.objects.filter(slug=slug).first()
        if organisation is None:
            raise CommandError(f"{label} inconnu(e) : {slug}.")
        return organisation

    def file(self, *, funder, batch, out, sepa_version, execution_date=None, **options):
        funder_org = self._organisation(funder, "Financeur")
        run = SettlementRun.objects.filter(pk=batch).first()
        if run is None:
            raise CommandError(f"Arrêté inconnu : {batch}.")
        day = None
        if execution_date:
            try:
                day = dt.date.fromisoformat(execution_date)
            except ValueError as exc:
                raise CommandError(f"Date d’exécution invalide « {execution_date} » : attendu AAAA-MM-JJ.") from exc
        try:
            payment_file = payment_file_create(run=run, funder=funder_org, version=sepa_version, execution_date=day)
            self.stdout.write(f"Fichier {payment_file.message_id} ({payment_file.version}) créé.")
        except DomainError as exc:
            existing = PaymentFile.objects.filter(run=run, funder=funder_org).order_by("-created_at", "-pk").first()
            if exc.code != "nothing_to_pay" or existing is None:
                raise _refusal(exc) from exc
            payment_file = existing
            self.stdout.write(f"Rien de nouveau à payer : fichier existant {existing.message_id} réécrit.")
        Path(out).write_text(payment_file.content, encoding="utf-8")
        self.stdout.write(
            f"{payment_file.transfers} virement(s), total {format_euros(payment_file.total_cents)}, "
            f"empreinte SHA-256 {payment_file.sha256}."
        )
        for claim in claims_missing_bank_details(run, funder_org):
            self.stdout.write(f"  ⚠ {claim.reference} : {claim.place.name} n’a pas de coordonnées bancaires, non payé.")
        self.stdout.write(str(Path(out)))

    def import_statement(self, *, funder, file, **options):
        funder_org = self._organisation(funder, "Financeur")
        path = Path(file)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise CommandError(f"Fichier illisible : {file} ({exc.strerror}).") from exc
        report = bank_statement_import(funder=funder_org, data=data, filename=path.name)
        self.stdout.write(report.summary())
        for line in report.lines:
            detail = f" — {line.message}" if line.message else ""
            self.stdout.write(
                f"  {line.where} : {line.reference or '(sans référence)'} {format_euros(line.amount_cents)} "
                f"→ {OUTCOME_LABELS[line.outcome]}{detail}"
            )

    def mark_paid(self, *, claim, reference="", **options):
        found = Claim.objects.filter(reference=claim.strip().upper()).first()
        if found is None:
            raise CommandError(f"Demande inconnue : {claim}. [claim_not_found]")
        was_paid = found.status == ClaimStatus.PAID
        paid = claim_mark_paid(claim=found, reference=reference)
        if was_paid:
            self.stdout.write(f"{paid.reference} était déjà payée ({format_euros(paid.payable_cents)}).")
        else:
            self.stdout.write(f"{paid.reference} payée : {format_euros(paid.payable_cents)}.")

    def bank_account(self, *, organisation, iban, bic="", holder, **options):
        org = self._organisation(organisation, "Organisation")
        account = bank_account_set(organisation=org, holder_name=holder, iban=iban, bic=bic)
        self.stdout.write(
            f"Compte de {org.name} enregistré : {account.holder_name}, IBAN {mask_iban(account.iban)}, "
            f"BIC {account.bic}."
        )
