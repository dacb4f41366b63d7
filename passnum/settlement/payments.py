"""Paying claims: bank details, SEPA payment files, bank statement import.

The platform never moves money (DESIGN §4.3). It writes the SEPA credit-transfer file a funder hands to its bank
(`payment_file_create`), then reads the funder's bank statement back (`bank_statement_import`, camt.054 or a
simple CSV) to mark claims paid through `claim_mark_paid`, which posts the ledger and is idempotent.

IBANs are personal-ish financial data: they are never written whole to the journal or to logs (`mask_iban`)."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from passnum.accounts.enums import OrganisationKind
from passnum.accounts.models import Organisation
from passnum.common.errors import DomainError
from passnum.common.money import format_euros
from passnum.journal.services import journal_record
from passnum.settlement import sepa
from passnum.settlement.enums import ClaimStatus
from passnum.settlement.models import BankAccount, Claim, PaymentFile, SettlementRun
from passnum.settlement.services import claim_mark_paid, local_today

PARIS = ZoneInfo("Europe/Paris")
STATEMENT_MAX_BYTES = 20_000_000
mask_iban = sepa.mask_iban


def _user(actor):
    return actor if getattr(actor, "is_authenticated", False) else None


# --- bank details ---------------------------------------------------------------------------------------


def bank_account_set(*, organisation: Organisation, holder_name: str, iban: str, bic: str, actor=None):
    """Record the account a funder pays from (`settlement.BankAccount`, used at once), or new bank details for a
    place (`places.BankAccount`, pending: payments use a place's details only once a funder has validated them,
    since changing where money goes is a classic fraud path). The IBAN is checked (checksum, national format,
    SEPA zone) and stored compact; an empty BIC is taken from the IBAN's bank when it is known; a BIC that
    belongs to another bank than the IBAN's is refused. The holder name must fit the 70 SEPA characters."""
    from schwifty import BIC, IBAN

    if organisation.kind not in (OrganisationKind.PLACE, OrganisationKind.FUNDER):
        raise DomainError(
            "Seuls les lieux (payés) et les financeurs (qui paient) ont des coordonnées bancaires.",
            code="bank_account_not_applicable",
        )
    holder = re.sub(r"\s+", " ", holder_name or "").strip()
    if not sepa.sepa_text(holder):
        raise DomainError("Indiquez le titulaire du compte.", code="holder_required", field="holder_name")
    if len(holder) > sepa.NAME_MAX or len(sepa.sepa_text(holder)) > sepa.NAME_MAX:
        raise DomainError(
            f"Le nom du titulaire tient en {sepa.NAME_MAX} caractères au plus (limite des virements SEPA, une fois "
            f"les accents retirés).",
            code="holder_too_long",
            field="holder_name",
        )
    raw_iban = re.sub(r"\s+", "", iban or "").upper()
    if not raw_iban:
        raise DomainError("Indiquez l’IBAN.", code="iban_required", field="iban")
    try:
        parsed = IBAN(raw_iban)
    except ValueError:
        raise DomainError(
            "Cet IBAN n’est pas valide : vérifiez-le sur le RIB (27 caractères pour un compte français, commençant "
            "par FR76).",
            code="iban_invalid",
            field="iban",
        ) from None
    if not parsed.in_sepa_zone:
        raise DomainError(
            "Cet IBAN est hors de la zone SEPA : il ne peut pas recevoir de virement SEPA.",
            code="iban_not_sepa",
            field="iban",
        )
    known = _bics_of_bank(parsed)
    raw_bic = re.sub(r"\s+", "", bic or "").upper()
    if not raw_bic:
        if parsed.bic is None:
            raise DomainError(
                "Indiquez le BIC de la banque (8 ou 11 caractères, sur le RIB).", code="bic_required", field="bic"
            )
        raw_bic = str(parsed.bic.compact)
    try:
        parsed_bic = BIC(raw_bic)
    except ValueError:
        raise DomainError(
            "Ce BIC n’est pas valide : 8 ou 11 caractères, comme BNPAFRPP ou BNPAFRPPXXX.",
            code="bic_invalid",
            field="bic",
        ) from None
    if known and parsed_bic.compact[:6] not in {b[:6] for b in known}:
        raise DomainError(
            f"Ce BIC ({parsed_bic.compact}) n’est pas celui de la banque de l’IBAN (attendu : {known[0]}).",
            code="bic_mismatch",
            field="bic",
        )
    if organisation.kind == OrganisationKind.PLACE:
        return _place_bank_details_submit(
            organisation=organisation, holder=holder, iban=parsed.compact, bic=parsed_bic.compact, actor=actor
        )
    with transaction.atomic():
        account = BankAccount.objects.select_for_update().filter(organisation=organisation).first()
        values = {"holder_name": holder, "iban": parsed.compact, "bic": parsed_bic.compact}
        created = account is None
        if account is not None and all(getattr(account, k) == v for k, v in values.items()):
            return account
        previous = mask_iban(account.iban) if account is not None else ""
        if account is None:
            account = BankAccount(organisation=organisation)
        for key, value in values.items():
            setattr(account, key, value)
        account.updated_at = timezone.now()
        account.updated_by = _user(actor)
        account.save()
        journal_record(
            action="bank_account.set",
            actor=actor,
            organisation=organisation,
            obj=account,
            data={
                "created": created,
                "holder_name": holder,
                "iban": mask_iban(parsed.compact),
                "previous_iban": previous,
                "bic": parsed_bic.compact,
            },
        )
    return account


def _place_bank_details_submit(*, organisation: Organisation, holder: str, iban: str, bic: str, actor):
    """A place's new details wait for a funder's validation (the same rows as the place's own page)."""
    from passnum.places.enums import BankAccountStatus
    from passnum.places.models import BankAccount as PlaceBankAccount

    with transaction.atomic():
        current = PlaceBankAccount.objects.filter(
            organisation=organisation, status__in=[BankAccountStatus.PENDING, BankAccountStatus.VALIDATED]
        ).order_by("-created_at")
        for account in current:
            if (account.holder_name, account.iban, account.bic) == (holder, iban, bic):
                return account
        PlaceBankAccount.objects.select_for_update(of=("self",)).filter(
            organisation=organisation, status=BankAccountStatus.PENDING
        ).update(status=BankAccountStatus.REPLACED)
        account = PlaceBankAccount.objects.create(
            organisation=organisation, holder_name=holder, iban=iban, bic=bic, created_by=_user(actor)
        )
        journal_record(
            action="bank.change", actor=actor, organisation=organisation, obj=account, data={"iban_end": iban[-4:]}
        )
    return account


def place_payee_accounts(place_ids) -> dict:
    """{place id: its funder-validated bank details}: the only details a payment file ever pays to."""
    from passnum.places.enums import BankAccountStatus
    from passnum.places.models import BankAccount as PlaceBankAccount

    return {
        a.organisation_id: a
        for a in PlaceBankAccount.objects.filter(
            organisation_id__in=list(place_ids), status=BankAccountStatus.VALIDATED
        )
    }


def _bics_of_bank(iban) -> list[str]:
    """The BICs schwifty's registry knows for the IBAN's bank code ([] when it cannot tell)."""
    from schwifty import BIC

    try:
        candidates = BIC.candidates_from_bank_code(iban.country_code, iban.bank_code)
    except (ValueError, KeyError):
        candidates = []
    codes = [str(c.compact) for c in candidates]
    if not codes and iban.bic is not None:
        codes = [str(iban.bic.compact)]
    return codes


# --- payment files --------------------------------------------------------------------------------------


def _payable_claims(run: SettlementRun, funder: Organisation):
    return Claim.objects.filter(
        run=run,
        funder=funder,
        status=ClaimStatus.APPROVED,
        payment_file__isnull=True,
        claimed_cents__gt=F("rejected_cents"),
    )


def claims_missing_bank_details(run: SettlementRun, funder: Organisation) -> list[Claim]:
    """Approved claims of the run, not yet in a payment file, whose place has no funder-validated bank details:
    left out of the payment file until a funder validates the place's IBAN."""
    return list(
        _payable_claims(run, funder)
        .exclude(place__bank_accounts__status="validated")
        .select_related("place")
        .order_by("reference")
    )


def default_execution_date(today: dt.date | None = None) -> dt.date:
    """The next working day (Monday to Friday) after today."""
    day = (today or local_today()) + dt.timedelta(days=1)
    while day.weekday() >= 5:
        day += dt.timedelta(days=1)
    return day


def remittance_text(claim: Claim, run: SettlementRun) -> str:
    return f"{claim.reference} Pass numerique arrete du {run.cutoff:%d/%m/%Y}"


def payment_file_create(
    *,
    run: SettlementRun,
    funder: Organisation,
    actor=None,
    version: str = sepa.DEFAULT_VERSION,
    execution_date: dt.date | None = None,
) -> PaymentFile:
    """The SEPA credit-transfer file paying the funder's approved claims of a settlement run: one transfer per
    claim (one claim per place), from the funder's account to each place's. Claims whose place has no bank
    details are left out: they are listed on the result as `missing_bank_details`. The claims written move to
    `in_payment`; calling again only picks claims approved since, so nothing is ever paid twice."""
    try:
        version = sepa.normalise_version(version)
    except ValueError as exc:
        raise DomainError(str(exc), code="sepa_version_unknown", field="version") from None
    today = local_today()
    execution_date = execution_date or default_execution_date(today)
    if execution_date < today:
        raise DomainError(
            f"La date d’exécution ({execution_date:%d/%m/%Y}) est passée : choisissez aujourd’hui ou plus tard.",
            code="execution_date_past",
            field="execution_date",
        )
    with transaction.atomic():
        # One payment file at a time per funder: numbering and claim selection stay consistent.
        Organisation.objects.select_for_update().filter(pk=funder.pk).first()
        debtor = BankAccount.objects.filter(organisation=funder).first()
        if debtor is None:
            raise DomainError(
                f"{funder.name} n’a pas de compte bancaire enregistré : renseignez l’IBAN d’où partent les "
                f"virements avant de préparer le fichier.",
                code="no_debtor_account",
            )
        claims = list(
            _payable_claims(run, funder).select_for_update(of=("self",)).select_related("place").order_by("reference")
        )
        accounts = place_payee_accounts(c.place_id for c in claims)
        ready = [c for c in claims if c.place_id in accounts]
        missing = [c for c in claims if c.place_id not in accounts]
        if not claims:
            raise DomainError(
                f"Rien à payer pour {funder.name} sur l’{run} : aucune demande validée qui ne soit déjà dans un "
                f"fichier de virements.",
                code="nothing_to_pay",
            )
        if not ready:
            raise DomainError(
                f"Rien à payer pour {funder.name} sur l’{run} : les lieux restant à payer n’ont pas communiqué "
                f"de coordonnées bancaires validées par un financeur ({_places(missing)}).",
                code="nothing_to_pay",
                missing_bank_details=[c.reference for c in missing],
            )
        number = PaymentFile.objects.filter(run=run, funder=funder).count() + 1
        message_id = f"PASSNUM-{run.cutoff:%Y%m%d}-F{funder.pk}-{number:02d}"
        transfers = [
            sepa.Transfer(
                name=accounts[c.place_id].holder_name,
                iban=accounts[c.place_id].iban,
                bic=accounts[c.place_id].bic,
                amount_cents=c.payable_cents,
                end_to_end_id=c.reference,
                remittance=remittance_text(c, run),
            )
            for c in ready
        ]
        xml = sepa.build_credit_transfer(
            debtor=sepa.Account(name=debtor.holder_name, iban=debtor.iban, bic=debtor.bic),
            transfers=transfers,
            message_id=message_id,
            execution_date=execution_date,
            version=version,
        )
        problems = sepa.validate(xml, version)
        if problems:
            raise DomainError(
                "Le fichier de virements produit n’est pas conforme : " + " ; ".join(problems),
                code="sepa_invalid",
                problems=problems,
            )
        total = sum(t.amount_cents for t in transfers)
        payment_file = PaymentFile.objects.create(
            run=run,
            funder=funder,
            message_id=message_id,
            version=version,
            transfers=len(transfers),
            total_cents=total,
            sha256=hashlib.sha256(xml).hexdigest(),
            content=xml.decode("utf-8"),
            created_by=_user(actor),
        )
        Claim.objects.filter(pk__in=[c.pk for c in ready]).update(
            payment_file=payment_file, status=ClaimStatus.IN_PAYMENT
        )
        journal_record(
            action="payment_file.create",
            actor=actor,
            organisation=funder,
            obj=payment_file,
            data={
                "message_id": message_id,
                "version": version,
                "execution_date": execution_date.isoformat(),
                "transfers": len(transfers),
                "total_cents": total,
                "sha256": payment_file.sha256,
                "claims": [c.reference for c in ready],
                "missing_bank_details": [c.reference for c in missing],
            },
        )
    payment_file.missing_bank_details = missing
    payment_file.execution_date = execution_date
    return payment_file


def _places(claims: list[Claim]) -> str:
    names = [c.place.name for c in claims[:10]]
    more = f" et {len(claims) - 10} autre(s)" if len(claims) > 10 else ""
    return ", ".join(names) + more


# --- bank statements ------------------------------------------------------------------------------------


class Outcome:
    PAID = "paid"
    ALREADY_PAID = "already_paid"
    UNKNOWN = "unknown_reference"
    MISMATCH = "amount_mismatch"
    REFUSED = "refused"


OUTCOME_LABELS = {
    Outcome.PAID: "payée",
    Outcome.ALREADY_PAID: "déjà payée",
    Outcome.UNKNOWN: "référence inconnue",
    Outcome.MISMATCH: "montant différent",
    Outcome.REFUSED: "refusée",
}


@dataclass
class StatementLine:
    """One debit read from a statement: what the bank says it paid."""

    references: list[str]  # candidate claim references (end-to-end id first, then remittance tokens)
    amount_cents: int
    paid_on: dt.date | None
    bank_reference: str = ""
    currency: str = "EUR"
    label: str = ""  # where it is in the file: "ligne 3", "écriture 2"


@dataclass
class ImportLine:
    where: str
    reference: str
    amount_cents: int
    outcome: str
    message: str = ""


@dataclass
class ImportReport:
    format: str
    filename: str
    lines: list[ImportLine] = field(default_factory=list)
    ignored: int = 0  # credits, pending entries: not payments of claims

    def count(self, outcome: str) -> int:
        return sum(1 for line in self.lines if line.outcome == outcome)

    @property
    def paid(self) -> list[ImportLine]:
        return [line for line in self.lines if line.outcome == Outcome.PAID]

    @property
    def problems(self) -> list[ImportLine]:
        return [line for line in self.lines if line.outcome not in (Outcome.PAID, Outcome.ALREADY_PAID)]

    def summary(self) -> str:
        paid_total = sum(line.amount_cents for line in self.paid)
        parts = [
            f"{self.count(Outcome.PAID)} demande(s) payée(s) ({format_euros(paid_total)})",
            f"{self.count(Outcome.ALREADY_PAID)} déjà payée(s)",
            f"{self.count(Outcome.UNKNOWN)} référence(s) inconnue(s)",
            f"{self.count(Outcome.MISMATCH)} montant(s) différent(s)",
        ]
        if self.count(Outcome.REFUSED):
            parts.append(f"{self.count(Outcome.REFUSED)} refusée(s)")
        text = f"Relevé {self.filename} ({self.format}) : " + ", ".join(parts) + "."
        if self.ignored:
            text += f" {self.ignored} écriture(s) ignorée(s) (crédits ou écritures non comptabilisées)."
        return text


def bank_statement_import(*, funder: Organisation, data: bytes, filename: str, actor=None) -> ImportReport:
    """Read the funder's bank statement (camt.054 debit notification, or CSV `reference;montant;date`) and mark
    paid each claim it shows paid, at the amount the claim asks. Lines with an unknown reference (or another
    funder's claim), a different amount, or a claim that cannot be paid yet are reported and change nothing.
    Importing the same statement again changes nothing. A file that cannot be read is refused whole."""
    if not data or not data.strip():
        raise DomainError("Le fichier est vide.", code="statement_empty")
    if len(data) > STATEMENT_MAX_BYTES:
        raise DomainError(
            f"Le relevé dépasse {STATEMENT_MAX_BYTES // 1_000_000} Mo : découpez-le par période.",
            code="statement_too_large",
        )
    if data.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"<"):
        fmt, lines, ignored = parse_camt054(data)
    else:
        fmt, lines, ignored = "CSV", parse_statement_csv(data), 0
    report = ImportReport(format=fmt, filename=filename, ignored=ignored)
    with transaction.atomic():
        for line in lines:
            report.lines.append(_apply_line(line, funder=funder, actor=actor))
        journal_record(
            action="payments.statement_import",
            actor=actor,
            organisation=funder,
            data={
                "filename": filename[:200],
                "format": fmt,
                "sha256": hashlib.sha256(data).hexdigest(),
                **{outcome: report.count(outcome) for outcome in OUTCOME_LABELS},
            },
        )
    return report


def _apply_line(line: StatementLine, *, funder: Organisation, actor) -> ImportLine:
    candidates = [r for r in line.references if r]
    claims = {c.reference: c for c in Claim.objects.filter(reference__in=candidates, funder=funder)}
    claim = next((claims[r] for r in candidates if r in claims), None)
    shown = claim.reference if claim else (candidates[0] if candidates else "")
    if claim is None:
        return ImportLine(
            line.label, shown, line.amount_cents, Outcome.UNKNOWN, "aucune demande de ce financeur à ce numéro"
        )
    if line.currency != "EUR":
        return ImportLine(line.label, shown, line.amount_cents, Outcome.MISMATCH, f"devise {line.currency}")
    if line.amount_cents != claim.payable_cents:
        return ImportLine(
            line.label,
            shown,
            line.amount_cents,
            Outcome.MISMATCH,
            f"relevé {format_euros(line.amount_cents)}, demande {format_euros(claim.payable_cents)}",
        )
    if claim.status == ClaimStatus.PAID:
        return ImportLine(line.label, shown, line.amount_cents, Outcome.ALREADY_PAID)
    paid_on = None
    if line.paid_on is not None:
        paid_on = dt.datetime.combine(line.paid_on, dt.time(12), tzinfo=PARIS)
    try:
        with transaction.atomic():
            claim_mark_paid(claim=claim, funder=funder, actor=actor, reference=line.bank_reference, paid_on=paid_on)
    except DomainError as exc:
        return ImportLine(line.label, shown, line.amount_cents, Outcome.REFUSED, exc.message)
    return ImportLine(line.label, shown, line.amount_cents, Outcome.PAID)


# camt.054 ------------------------------------------------------------------------------------------------

_TOKEN = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*[A-Za-z0-9]")


def _tokens(*texts: str) -> list[str]:
    out: list[str] = []
    for text in texts:
        for token in _TOKEN.findall(text or ""):
            token = token.upper()
            if token not in out:
                out.append(token)
    return out


def _malformed(message: str) -> DomainError:
    return DomainError(f"Relevé illisible : {message}", code="statement_malformed")


def _date_of(node) -> dt.date | None:
    for name in ("Dt", "DtTm"):
        value = sepa.text_of(node, name)
        if value:
            try:
                return dt.date.fromisoformat(value[:10])
            except ValueError:
                raise _malformed(f"date « {value} » illisible.") from None
    return None


def _amount(node, where: str) -> tuple[int, str] | None:
    if node is None:
        return None
    cents = sepa.parse_amount_cents(node.text or "")
    if cents is None:
        raise _malformed(f"{where} : montant « {node.text} » illisible.")
    return cents, node.get("Ccy", "EUR")


def parse_camt054(data: bytes) -> tuple[str, list[StatementLine], int]:
    """Debits booked on the funder's account, from a camt.054 (BkToCstmrDbtCdtNtfctn), any version
    (.001.02 to .001.13 read the same way: only element names are used, not namespaces)."""
    try:
        root = sepa.parse_xml_safely(data)
    except sepa.UnsafeXML:
        raise DomainError(
            "Le fichier XML contient une déclaration DTD ou d’entité : refusé par sécurité.", code="statement_unsafe"
        ) from None
    except ET.ParseError as exc:
        raise _malformed(f"XML mal formé ({exc}).") from None
    notification = sepa.child(root, "BkToCstmrDbtCdtNtfctn")
    if sepa.local_name(root.tag) != "Document" or notification is None:
        raise _malformed("ce fichier XML n’est pas un avis camt.054 (BkToCstmrDbtCdtNtfctn).")
    namespace = sepa.namespace_of(root)
    fmt = namespace.rsplit(":", 1)[-1] if namespace else "camt.054"
    lines: list[StatementLine] = []
    ignored = 0
    for n_index, ntfctn in enumerate(sepa.children(notification, "Ntfctn"), start=1):
        for e_index, entry in enumerate(sepa.children(ntfctn, "Ntry"), start=1):
            where = f"avis {n_index}, écriture {e_index}"
            status = sepa.text_of(entry, "Sts", "Cd") or sepa.text_of(entry, "Sts")
            if sepa.text_of(entry, "CdtDbtInd") != "DBIT" or status != "BOOK":
                ignored += 1
                continue
            entry_amount = _amount(sepa.child(entry, "Amt"), where)
            if entry_amount is None:
                raise _malformed(f"{where} : montant absent.")
            booked = _date_of(sepa.child(entry, "BookgDt")) or _date_of(sepa.child(entry, "ValDt"))
            entry_ref = sepa.text_of(entry, "AcctSvcrRef")
            details = [tx for d in sepa.children(entry, "NtryDtls") for tx in sepa.children(d, "TxDtls")]
            if not details:
                lines.append(
                    StatementLine(
                        references=_tokens(sepa.text_of(entry, "AddtlNtryInf")),
                        amount_cents=entry_amount[0],
                        currency=entry_amount[1],
                        paid_on=booked,
                        bank_reference=entry_ref,
                        label=where,
                    )
                )
                continue
            for t_index, tx in enumerate(details, start=1):
                tx_where = f"{where}, opération {t_index}" if len(details) > 1 else where
                amount = (
                    _amount(sepa.child(tx, "Amt"), tx_where)
                    or _amount(sepa.child(tx, "AmtDtls", "TxAmt", "Amt"), tx_where)
                    or _amount(sepa.child(tx, "AmtDtls", "InstdAmt", "Amt"), tx_where)
                )
                if amount is None:
                    if len(details) > 1:
                        raise _malformed(f"{tx_where} : montant de l’opération absent.")
                    amount = entry_amount
                remittance = [sepa.text_of(u) for u in sepa.descendants(tx, "Ustrd")]
                remittance += [sepa.text_of(r) for r in sepa.descendants(tx, "Ref") if sepa.local_name(r.tag) == "Ref"]
                end_to_end = sepa.text_of(tx, "Refs", "EndToEndId")
                references = _tokens(end_to_end, *remittance)
                lines.append(
                    StatementLine(
                        references=references,
                        amount_cents=amount[0],
                        currency=amount[1],
                        paid_on=booked,
                        bank_reference=sepa.text_of(tx, "Refs", "AcctSvcrRef") or entry_ref,
                        label=tx_where,
                    )
                )
    if not lines and not ignored:
        raise _malformed("aucune écriture (Ntry) dans l’avis.")
    return fmt, lines, ignored


# CSV -----------------------------------------------------------------------------------------------------

_HEADER_WORDS = {"reference", "référence", "ref", "réf", "numero", "numéro", "demande"}


def _decode(data: bytes) -> str:
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise _malformed("encodage non reconnu (UTF-8 ou Windows-1252 attendu).")


def parse_french_amount(text: str) -> int | None:
    """ "1 234,56" / "1234.56" / "12" / "-12,50" → cents (absolute value: statements show debits negative)."""
    value = re.sub(r"[\s\u00a0\u202f€]", "", text or "")
    if value.startswith(("-", "+")):
        value = value[1:]
    if re.fullmatch(r"\d+([.,]\d{1,2})?", value) is None:
        return None
    whole, _, decimals = value.replace(",", ".").partition(".")
    return int(whole) * 100 + int((decimals or "0").ljust(2, "0"))


def _parse_date(text: str) -> dt.date | None:
    text = text.strip()
    for pattern in ("%Y-%m-%d", "%d/%m/%Y", "%d/%m/%y", "%d-%m-%Y", "%d.%m.%Y"):
        try:
            return dt.datetime.strptime(text, pattern).date()
        except ValueError:
            continue
    return None


def parse_statement_csv(data: bytes) -> list[StatementLine]:
    """`reference;montant;date[;reference_bancaire]`, French decimal comma. A `,` separator is accepted too
    (then write amounts with a point, or quote them). An optional header row is skipped."""
    text = _decode(data)
    first = text.lstrip().splitlines()[0] if text.strip() else ""
    delimiter = ";" if ";" in first else ("\t" if "\t" in first else ",")
    rows = list(csv.reader(io.StringIO(text), delimiter=delimiter))
    lines: list[StatementLine] = []
    for number, row in enumerate(rows, start=1):
        cells = [c.strip() for c in row]
        if not any(cells):
            continue
        if number == _first_row(rows) and _is_header(cells):
            continue
        if len(cells) < 3:
            raise _malformed(
                f"ligne {number} : trois colonnes attendues (référence;montant;date), {len(cells)} lue(s)."
            )
        amount = parse_french_amount(cells[1])
        if amount is None:
            raise _malformed(f"ligne {number} : montant « {cells[1]} » illisible (ex. 123,45).")
        day = _parse_date(cells[2])
        if day is None:
            raise _malformed(f"ligne {number} : date « {cells[2]} » illisible (AAAA-MM-JJ ou JJ/MM/AAAA).")
        lines.append(
            StatementLine(
                references=_tokens(cells[0]),
                amount_cents=amount,
                paid_on=day,
                bank_reference=cells[3][:70] if len(cells) > 3 else "",
                label=f"ligne {number}",
            )
        )
    if not lines:
        raise _malformed("aucune ligne de paiement.")
    return lines


def _is_header(cells: list[str]) -> bool:
    """A first row naming its columns: a known word first, or neither an amount nor a date where they go."""
    if cells[0].lower().strip("\"' ") in _HEADER_WORDS:
        return True
    return len(cells) >= 3 and parse_french_amount(cells[1]) is None and _parse_date(cells[2]) is None


def _first_row(rows: list[list[str]]) -> int:
    for number, row in enumerate(rows, start=1):
        if any(c.strip() for c in row):
            return number
    return 0
