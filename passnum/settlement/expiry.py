"""The daily expiry job (`passnum expire`): expire what can no longer be used, and remind before it happens.

`expire_due(today=…)`: for every program whose grace period is over (valid_until + grace_days < today, Paris
date), every voucher still `issued` (in a distributor's stock) or `distributed` (handed out, not used) becomes
`expired`, and each funder's share of its value returns to the program budget: the same ledger posting as
`vouchers_expire` (outstanding / handed_out → budget, committed_cents decreases), done set-based, chunk by
chunk, in one database transaction per program. One report per program, journaled as `program.expiry`.
Running it again the same day finds nothing left to expire and does nothing more.

`expiry_alerts(today=…)`: 30 and 15 days before a program's last day of use (valid_until), an e-mail to the
members of each distributor still holding booklets of it, and a message to each person holding a digital pass of
it with unused vouchers who agreed to reminders (their contact is kept encrypted on the pass only then). Each
reminder goes at most once per (distributor or pass, program, 30|15): the ExpiryAlert unique constraints. A run
that missed the 30-day day (job down) sends the 15-day one only, never two at once. Nothing before 30 days."""

import datetime as dt
import logging
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import Count, Q
from django.utils import timezone

from passnum.accounts.models import Organisation, User
from passnum.common.dates import french_date
from passnum.common.money import format_euros
from passnum.journal.services import journal_record
from passnum.programs.models import Program, ProgramFunder
from passnum.settlement.enums import TransactionKind
from passnum.settlement.ledger import split_by_shares
from passnum.settlement.services import local_today
from passnum.vouchers.digital import channel_of, contact_open, contact_send
from passnum.vouchers.enums import VoucherStatus
from passnum.vouchers.models import DigitalPass, ExpiryAlert, Voucher, VoucherStatusLog
from passnum.vouchers.services import SOURCE_ACCOUNT, release_to_budget

logger = logging.getLogger(__name__)

S = VoucherStatus
CHUNK = 2000  # vouchers locked, logged and updated per statement
EXPIRY_REASON = "Fin de validité"
ALERT_DAYS = ExpiryAlert.DAYS_BEFORE  # (30, 15)


def grace_until(program: Program) -> dt.date:
    """The last day of the grace period: the program expires the day after."""
    return program.valid_until + dt.timedelta(days=program.grace_days)


# --- expiry ---------------------------------------------------------------------------------------------


@dataclass
class DistributorStock:
    """Booklets a distributor still held (allocated, never handed out) when the program expired."""

    distributor_id: int | None  # None: never allocated, still with the operator
    name: str
    booklets: int
    vouchers: int


@dataclass
class ExpiryReport:
    program_id: int
    program_name: str
    valid_until: dt.date
    grace_until: dt.date
    today: dt.date
    dry_run: bool = False
    expired_issued: int = 0
    expired_distributed: int = 0
    returned_cents: dict[int, int] = field(default_factory=dict)  # funder id → cents back in the budget
    funder_names: dict[int, str] = field(default_factory=dict)
    stock: list[DistributorStock] = field(default_factory=list)

    @property
    def expired(self) -> int:
        return self.expired_issued + self.expired_distributed

    @property
    def returned_total_cents(self) -> int:
        return sum(self.returned_cents.values())

    def lines(self) -> list[str]:
        """The report in French, for the command's output and the operator's mail."""
        head = "[simulation] " if self.dry_run else ""
        out = [
            f"{head}Dispositif « {self.program_name} » (n° {self.program_id}) : fin de validité le "
            f"{french_date(self.valid_until)}, délai de grâce jusqu’au {french_date(self.grace_until)}.",
            f"  Chèques expirés : {self.expired} (en stock chez un prescripteur ou non attribués : "
            f"{self.expired_issued} ; remis et non utilisés : {self.expired_distributed}).",
            f"  Valeur rendue aux budgets : {format_euros(self.returned_total_cents)}",
        ]
        for funder_id, cents in sorted(self.returned_cents.items()):
            out.append(f"    {self.funder_names.get(funder_id, funder_id)} : {format_euros(cents)}")
        if self.stock:
            out.append("  Carnets encore en stock à l’expiration :")
            for s in self.stock:
                out.append(f"    {s.name} : {s.booklets} carnet(s), {s.vouchers} chèque(s)")
        return out

    def journal_data(self) -> dict:
        return {
            "today": self.today.isoformat(),
            "valid_until": self.valid_until.isoformat(),
            "grace_until": self.grace_until.isoformat(),
            "expired_issued": self.expired_issued,
            "expired_distributed": self.expired_distributed,
            "returned_cents": {str(k): v for k, v in sorted(self.returned_cents.items())},
            "stock": [
                {"distributor": s.distributor_id, "booklets": s.booklets, "vouchers": s.vouchers} for s in self.stock
            ],
        }


def programs_due(today: dt.date) -> list[Program]:
    """Programs whose grace period ended before `today` and that still have vouchers to expire."""
    candidates = Program.objects.filter(valid_until__lt=today).order_by("valid_until", "id")
    due = [p for p in candidates if grace_until(p) < today]
    if not due:
        return []
    pending = set(
        Voucher.objects.filter(program__in=due, status__in=list(SOURCE_ACCOUNT))
        .values_list("program_id", flat=True)
        .distinct()
    )
    return [p for p in due if p.pk in pending]


def _stock(program: Program) -> list[DistributorStock]:
    rows = (
        Voucher.objects.filter(program=program, status=S.ISSUED)
        .values("booklet__distributor_id", "booklet__distributor__name")
        .annotate(booklets=Count("booklet_id", distinct=True), vouchers=Count("id"))
        .order_by("booklet__distributor__name")
    )
    return [
        DistributorStock(
            distributor_id=r["booklet__distributor_id"],
            name=r["booklet__distributor__name"] or "Non attribués (stock de l’opérateur)",
            booklets=r["booklets"],
            vouchers=r["vouchers"],
        )
        for r in rows
    ]


def _new_report(program: Program, today: dt.date, dry_run: bool) -> ExpiryReport:
    funders = ProgramFunder.objects.filter(program=program).select_related("funder").order_by("id")
    return ExpiryReport(
        program_id=program.pk,
        program_name=program.name,
        valid_until=program.valid_until,
        grace_until=grace_until(program),
        today=today,
        dry_run=dry_run,
        funder_names={pf.funder_id: pf.funder.name for pf in funders},
    )


def _simulate(program: Program, report: ExpiryReport, shares: list[tuple[int, int]]) -> None:
    groups = (
        Voucher.objects.filter(program=program, status__in=list(SOURCE_ACCOUNT))
        .values("status", "face_value_cents")
        .annotate(n=Count("id"))
    )
    returned: dict[int, int] = defaultdict(int)
    for g in groups:
        if g["status"] == S.ISSUED:
            report.expired_issued += g["n"]
        else:
            report.expired_distributed += g["n"]
        for funder_id, part in split_by_shares(g["face_value_cents"], shares):
            returned[funder_id] += part * g["n"]
    report.returned_cents = dict(returned)


def program_expire(*, program: Program, today: dt.date, dry_run: bool = False, actor=None) -> ExpiryReport:
    """Expire every issued|distributed voucher of one program, in one transaction (see the module's docstring).
    The ProgramFunder rows are locked first (as booklets_issue does), then the vouchers chunk by chunk in id order:
    a concurrent hand-out or cancellation waits, then finds them expired."""
    report = _new_report(program, today, dry_run)
    with transaction.atomic():
        funders = list(ProgramFunder.objects.select_for_update(of=("self",)).filter(program=program).order_by("id"))
        shares = [(pf.funder_id, pf.share_bps) for pf in funders]
        report.stock = _stock(program)
        if dry_run:
            _simulate(program, report, shares)
            return report
        counts: Counter[tuple[str, int]] = Counter()  # (status, face value) → vouchers
        now = timezone.now()
        last_id = 0
        while True:
            chunk = list(
                Voucher.objects.select_for_update(of=("self",))
                .filter(program=program, status__in=list(SOURCE_ACCOUNT), pk__gt=last_id)
                .order_by("pk")
                .values_list("pk", "status", "face_value_cents")[:CHUNK]
            )
            if not chunk:
                break
            last_id = chunk[-1][0]
            VoucherStatusLog.objects.bulk_create(
                [
                    VoucherStatusLog(
                        voucher_id=pk,
                        from_status=status,
                        to_status=S.EXPIRED,
                        reason=EXPIRY_REASON,
                        actor=actor if getattr(actor, "is_authenticated", False) else None,
                        at=now,
                    )
                    for pk, status, _ in chunk
                ]
            )
            Voucher.objects.filter(pk__in=[pk for pk, _, _ in chunk], status__in=list(SOURCE_ACCOUNT)).update(
                status=S.EXPIRED, expired_at=now
            )
            counts.update((status, face) for _, status, face in chunk)
        if not counts:
            return report
        for (status, _face), n in counts.items():
            if status == S.ISSUED:
                report.expired_issued += n
            else:
                report.expired_distributed += n
        returned = release_to_budget(
            Counter({(program.pk, face, status): n for (status, face), n in counts.items()}),
            kind=TransactionKind.EXPIRE,
            memo=EXPIRY_REASON,
            obj=program,
        )
        report.returned_cents = {funder_id: cents for (_, funder_id), cents in returned.items()}
        # A digital pass of an expired program has nothing left to remind: its contact goes.
        DigitalPass.objects.filter(booklet__program=program).exclude(reminder_contact="").update(reminder_contact="")
        journal_record(action="program.expiry", actor=actor, obj=program, data=report.journal_data())
    return report


def expire_due(*, today: dt.date | None = None, dry_run: bool = False, actor=None) -> list[ExpiryReport]:
    """Expire every program whose grace period is over (see the module's docstring). One report per program that
    had something to expire; an empty list when there is nothing (a second run the same day)."""
    today = today or local_today()
    reports = []
    for program in programs_due(today):
        report = program_expire(program=program, today=today, dry_run=dry_run, actor=actor)
        if report.expired:
            reports.append(report)
    return reports


# --- alerts before expiry ---------------------------------------------------------------------------------

DISTRIBUTOR_SUBJECT = "Pass numérique « {program} » : {booklets} carnet(s) en stock, utilisables jusqu’au {until}"
DISTRIBUTOR_BODY = """Bonjour,

{distributor} a encore en stock {booklets} carnet(s) du dispositif « {program} » ({vouchers} chèques), qui n’ont
pas été remis.

Les chèques de ce dispositif ne peuvent être utilisés que jusqu’au {until} inclus, soit dans {days} jours. Remettez
ces carnets avant cette date aux personnes qui en ont besoin : après, les chèques non utilisés expirent et leur
valeur revient aux financeurs.

— Pass numérique
"""
PERSON_SMS = (
    "Pass numérique « {program} » : il vous reste {vouchers} chèque(s) à utiliser avant le {until} inclus, "
    "avec le lien reçu à la remise. Plus de rappel : bouton sur la page de votre pass, ou {distributor}."
)
PERSON_SUBJECT = "Vos chèques du pass numérique sont utilisables jusqu’au {until}"
PERSON_BODY = """Bonjour,

Il vous reste {vouchers} chèque(s) du pass numérique « {program} ». Ils sont utilisables jusqu’au {until} inclus,
soit dans {days} jours, dans les lieux de médiation numérique du dispositif. Retrouvez-les avec le lien que vous avez
reçu lors de la remise de votre pass.

Vous recevez ce rappel parce que vous l’avez accepté. Pour ne plus en recevoir, utilisez le bouton « Ne plus
recevoir de rappels » sur la page de votre pass, ou dites-le à {distributor}.

— Pass numérique
"""


@dataclass
class AlertLine:
    program_id: int
    days_before: int
    target: str  # "distributor" or "pass"
    name: str  # the distributor's name; for a pass, its number (never the person's contact)
    booklets: int
    vouchers: int
    messages: int


@dataclass
class AlertReport:
    today: dt.date
    dry_run: bool = False
    sent: list[AlertLine] = field(default_factory=list)
    without_consent: int = 0  # passes with unused vouchers but no consent to reminders: nothing sent
    without_recipient: int = 0  # distributors with stock but no active member to write to
    failed: int = 0  # could not be sent (SMS provider, mail server): tried again on the next run
    contacts_erased: int = 0

    def lines(self) -> list[str]:
        head = "[simulation] " if self.dry_run else ""
        distributors = [a for a in self.sent if a.target == "distributor"]
        passes = [a for a in self.sent if a.target == "pass"]
        out = [
            f"{head}Rappels d’expiration du {french_date(self.today)} : {len(distributors)} prescripteur(s), "
            f"{len(passes)} pass numérique(s)."
        ]
        for a in distributors:
            out.append(
                f"  J-{a.days_before} dispositif n° {a.program_id} — {a.name} : {a.booklets} carnet(s) en stock, "
                f"{a.messages} courriel(s)."
            )
        by_program = Counter((a.program_id, a.days_before) for a in passes)
        for (program_id, days), n in sorted(by_program.items()):
            out.append(f"  J-{days} dispositif n° {program_id} : {n} pass numérique(s) prévenu(s).")
        if self.without_consent:
            out.append(f"  Sans accord pour les rappels (rien envoyé) : {self.without_consent} pass numérique(s).")
        if self.without_recipient:
            out.append(f"  Prescripteurs sans membre actif à prévenir : {self.without_recipient}.")
        if self.failed:
            out.append(f"  Envois en échec, retentés au prochain passage : {self.failed}.")
        if self.contacts_erased:
            out.append(f"  Contacts chiffrés effacés (rappels terminés) : {self.contacts_erased}.")
        return out


def alert_threshold(program: Program, today: dt.date) -> int | None:
    """30 or 15 when a reminder is due today, None otherwise (more than 30 days left, or already over)."""
    days_left = (program.valid_until - today).days
    if days_left < 0 or days_left > max(ALERT_DAYS):
        return None
    return min(d for d in ALERT_DAYS if days_left <= d)


def _claim_alert(**fields) -> ExpiryAlert | None:
    """Insert the alert row (in its own savepoint): None when it exists already (sent before, or by a concurrent
    run that holds it; PostgreSQL makes this insert wait for that run, then fail)."""
    try:
        with transaction.atomic():
            return ExpiryAlert.objects.create(**fields)
    except IntegrityError:
        return None


def _distributor_alerts(program: Program, days: int, today: dt.date, report: AlertReport) -> None:
    stock = (
        Voucher.objects.filter(
            program=program,
            status=S.ISSUED,
            booklet__distributor__isnull=False,
            booklet__handed_out_at__isnull=True,
        )
        .values("booklet__distributor_id")
        .annotate(booklets=Count("booklet_id", distinct=True), vouchers=Count("id"))
        .order_by("booklet__distributor_id")
    )
    done = set(
        ExpiryAlert.objects.filter(program=program, days_before=days, distributor__isnull=False).values_list(
            "distributor_id", flat=True
        )
    )
    until = french_date(program.valid_until)
    for row in stock:
        distributor_id = row["booklet__distributor_id"]
        if distributor_id in done:
            continue
        distributor = Organisation.objects.get(pk=distributor_id)
        emails = list(
            User.objects.filter(memberships__organisation=distributor, is_active=True)
            .exclude(email="")
            .order_by("id")
            .values_list("email", flat=True)
            .distinct()
        )
        if not emails:
            report.without_recipient += 1
            continue
        line = AlertLine(
            program.pk, days, "distributor", distributor.name, row["booklets"], row["vouchers"], len(emails)
        )
        if report.dry_run:
            report.sent.append(line)
            continue
        subject = DISTRIBUTOR_SUBJECT.format(program=program.name, booklets=row["booklets"], until=until)
        body = DISTRIBUTOR_BODY.format(
            distributor=distributor.name,
            booklets=row["booklets"],
            vouchers=row["vouchers"],
            program=program.name,
            until=until,
            days=(program.valid_until - today).days,
        )
        try:
            with transaction.atomic():
                alert = _claim_alert(
                    program=program,
                    days_before=days,
                    distributor=distributor,
                    channel="email",
                    messages=len(emails),
                    booklets=row["booklets"],
                    vouchers=row["vouchers"],
                )
                if alert is None:
                    continue
                for address in emails:  # one message each: members do not see each other's addresses
                    send_mail(subject=subject, message=body, from_email=None, recipient_list=[address])
                journal_record(
                    action="expiry.alert",
                    organisation=distributor,
                    obj=alert,
                    data={"program": program.pk, "days_before": days, "target": "distributor",
                          "booklets": row["booklets"], "messages": len(emails)},
                )  # fmt: skip
        except Exception as exc:  # the mail server: nothing recorded, the next run tries again
            logger.warning("Expiry alert to distributor %s not sent: %s", distributor_id, type(exc).__name__)
            report.failed += 1
            continue
        report.sent.append(line)


def _pass_alerts(program: Program, days: int, today: dt.date, report: AlertReport) -> None:
    passes = (
        DigitalPass.objects.filter(booklet__program=program, revoked_at__isnull=True)
        .annotate(unused=Count("booklet__vouchers", filter=Q(booklet__vouchers__status=S.DISTRIBUTED)))
        .filter(unused__gt=0)
        .select_related("organisation")
        .order_by("id")
    )
    done = set(
        ExpiryAlert.objects.filter(program=program, days_before=days, digital_pass__isnull=False).values_list(
            "digital_pass_id", flat=True
        )
    )
    until = french_date(program.valid_until)
    days_left = (program.valid_until - today).days
    last = days == min(ALERT_DAYS)
    for digital_pass in passes.iterator(chunk_size=500):
        if digital_pass.pk in done:
            continue
        if not digital_pass.reminder_contact:
            report.without_consent += 1
            continue
        phone, email = contact_open(digital_pass.reminder_contact)
        if not phone and not email:
            report.failed += 1
            logger.warning("Digital pass %s: reminder contact unreadable (PASSNUM_CONTACT_KEY?)", digital_pass.pk)
            continue
        line = AlertLine(program.pk, days, "pass", f"pass n° {digital_pass.pk}", 1, digital_pass.unused, 0)
        fields = {"program": program.name, "vouchers": digital_pass.unused, "until": until,
                  "distributor": digital_pass.organisation.name, "days": days_left}  # fmt: skip
        if report.dry_run:
            line.messages = int(bool(phone)) + int(bool(email))
            report.sent.append(line)
            continue
        with transaction.atomic():
            alert = _claim_alert(program=program, days_before=days, digital_pass=digital_pass)
            if alert is None:
                continue
            channels = contact_send(
                phone=phone,
                email=email,
                sms=PERSON_SMS.format(**fields),
                subject=PERSON_SUBJECT.format(**fields),
                body=PERSON_BODY.format(**fields),
                label=f"Expiry reminder for pass {digital_pass.pk}",
            )
            if not channels:
                transaction.set_rollback(True)  # nothing left: the next run tries again
                report.failed += 1
                continue
            alert.channel = channel_of(channels)
            alert.messages = len(channels)
            alert.vouchers = digital_pass.unused
            alert.booklets = 1
            alert.save(update_fields=["channel", "messages", "vouchers", "booklets"])
            if last:  # no reminder will follow: the contact has served its purpose
                DigitalPass.objects.filter(pk=digital_pass.pk).update(reminder_contact="")
                report.contacts_erased += 1
            journal_record(
                action="expiry.alert",
                organisation=digital_pass.organisation,
                obj=alert,
                data={"program": program.pk, "days_before": days, "target": "pass", "channel": alert.channel,
                      "vouchers": digital_pass.unused},
            )  # fmt: skip
        line.messages = len(channels)
        report.sent.append(line)


def _erase_useless_contacts(today: dt.date, report: AlertReport) -> None:
    """Contacts that can serve no reminder any more: programs past their last day of use, and passes whose
    vouchers are all used (or gone). Erased daily, whatever the consent said."""
    if report.dry_run:
        return
    kept = DigitalPass.objects.exclude(reminder_contact="")
    over = kept.filter(Q(booklet__program__valid_until__lt=today) | Q(revoked_at__isnull=False))
    report.contacts_erased += over.update(reminder_contact="")
    spent = (
        kept.annotate(unused=Count("booklet__vouchers", filter=Q(booklet__vouchers__status=S.DISTRIBUTED)))
        .filter(unused=0)
        .values_list("pk", flat=True)
    )
    ids = list(spent)
    if ids:
        report.contacts_erased += DigitalPass.objects.filter(pk__in=ids).update(reminder_contact="")


def expiry_alerts(*, today: dt.date | None = None, dry_run: bool = False) -> AlertReport:
    """Send the reminders due today (see the module's docstring); then erase contacts that serve no more."""
    today = today or local_today()
    report = AlertReport(today=today, dry_run=dry_run)
    horizon = today + dt.timedelta(days=max(ALERT_DAYS))
    for program in Program.objects.filter(valid_until__gte=today, valid_until__lte=horizon).order_by(
        "valid_until", "id"
    ):
        days = alert_threshold(program, today)
        if days is None:
            continue
        _distributor_alerts(program, days, today, report)
        _pass_alerts(program, days, today, report)
    _erase_useless_contacts(today, report)
    return report
