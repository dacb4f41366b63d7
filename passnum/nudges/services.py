"""Nudges that raise the use of passes (issue 8, point 4). See docs/nudges.md.

1. `nudges_send(today=…)`, the daily job (`passnum nudge`): a person holding an active digital pass, who agreed
   to reminders (the encrypted `reminder_contact` is not empty) and has used no voucher of the booklet
   PASSNUM_NUDGE_AFTER_DAYS days after the hand-out, while the program is valid, gets ONE reminder (SMS and/or
   e-mail) naming the place they were oriented to, or the finder when there is none. Once per booklet and pass:
   the Nudge unique constraints. A failed send leaves no row, so the next day's run tries again.
2. `reminders_opt_out(digital_pass=…)`: the person stops every reminder from the wallet page.
3. `unused_booklets(distributor=…)`: booklets a distributor handed out some days ago and nobody has used.
4. `sleeping_stock(funder=…)` and `booklets_reallocate(…)`: booklets asleep in a distributor's stock, and their
   reallocation to another distributor by the lead funder's admins.

Nothing personal is logged or journaled: ids, counts and channels only."""

import datetime as dt
import logging
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import Count, Exists, F, Min, OuterRef, Q, Subquery, Sum
from django.urls import reverse
from django.utils import timezone

from passnum.accounts import perms
from passnum.accounts.enums import OrganisationKind, Role
from passnum.accounts.models import Organisation, User
from passnum.common.dates import french_date
from passnum.common.errors import DomainError, PermissionRefused
from passnum.journal.services import journal_record
from passnum.places.enums import QualificationStatus
from passnum.programs.models import Program
from passnum.programs.selectors import program_list_for
from passnum.vouchers.digital import channel_of, contact_open, contact_send
from passnum.vouchers.enums import VoucherStatus
from passnum.vouchers.models import Beneficiary, Booklet, DigitalPass, Voucher
from passnum.vouchers.stock import MAX_MOVE, _numbers_text

from .models import Nudge

logger = logging.getLogger(__name__)

S = VoucherStatus
PARIS = ZoneInfo("Europe/Paris")
USED = [S.REDEEMED, S.CLAIMED, S.PAID]
MAX_REALLOCATE = MAX_MOVE  # booklets per reallocation, as per allocation: one transaction, one journal entry
MAX_DAYS = 3650


def local_today() -> dt.date:
    return timezone.now().astimezone(PARIS).date()


def days_ago_cutoff(today: dt.date, days: int) -> dt.datetime:
    """The instant before which something happened at least `days` whole days before `today` (Paris dates):
    00:00 on the day after `today - days`. Handed out on 1 March, 21 days: due from 22 March."""
    return dt.datetime.combine(today - dt.timedelta(days=days - 1), dt.time(0, 0), tzinfo=PARIS)


def _used():
    return Exists(Voucher.objects.filter(booklet=OuterRef("pk"), status__in=USED))


def _usable():
    return Exists(Voucher.objects.filter(booklet=OuterRef("pk"), status=S.DISTRIBUTED))


# --- 1. the reminder to people -----------------------------------------------------------------------------

SMS_WITH_PLACE = (
    "Pass numérique : vos {vouchers} chèques vous attendent jusqu'au {until}. Lieu conseillé : {place}. "
    "Plus de rappel : bouton sur la page de votre pass."
)
SMS_WITH_FINDER = (
    "Pass numérique : vos {vouchers} chèques vous attendent jusqu'au {until}. Trouvez un lieu près de chez "
    "vous : {finder} Plus de rappel : bouton sur la page de votre pass."
)
EMAIL_SUBJECT = "Vos chèques du pass numérique vous attendent"
EMAIL_BODY = """Bonjour,

Vous avez reçu un pass numérique « {program} » il y a {days} jours et vous n’avez pas encore utilisé vos chèques.
Il vous en reste {vouchers}, utilisables jusqu’au {until} inclus, pour vous faire accompagner gratuitement dans
un lieu de médiation numérique.

{where}

Montrez le QR code d’un chèque ou dictez son code : la page de votre pass est celle du lien reçu lors de la remise.

Vous recevez ce rappel, unique, parce que vous l’avez accepté. Pour ne plus recevoir de rappels, ouvrez la page de
votre pass et choisissez « Ne plus recevoir de rappels », ou dites-le à {distributor}.

— Pass numérique
"""
WHERE_PLACE = "Le lieu qui vous a été conseillé :\n{name}\n{address}\n{postal_code} {commune}"
WHERE_FINDER = "Trouvez un lieu près de chez vous :\n{finder}"


def finder_url() -> str:
    return settings.PASSNUM_PUBLIC_URL.rstrip("/") + reverse("www:finder")


def _place_of(booklet: Booklet):
    """The place the person was oriented to, while it may still welcome them (qualified); None otherwise."""
    site = booklet.oriented_site
    if site is None or site.status != QualificationStatus.QUALIFIED:
        return None
    return site


def _address(site) -> str:
    return ", ".join(part for part in (site.address, site.address_complement) if part)


def nudge_texts(digital_pass: DigitalPass, *, vouchers: int, today: dt.date) -> tuple[str, str, str]:
    """(SMS, e-mail subject, e-mail body) for this pass: the oriented place by name and address, or the finder."""
    booklet = digital_pass.booklet
    program = booklet.program
    site = _place_of(booklet)
    until = french_date(program.valid_until)
    handed_out = timezone.localtime(booklet.handed_out_at, PARIS).date()
    common = {"vouchers": vouchers, "until": until, "finder": finder_url()}
    if site is not None:
        place = f"{site.name}, {_address(site)}, {site.postal_code} {site.commune_name}"
        sms = SMS_WITH_PLACE.format(place=place, **common)
        where = WHERE_PLACE.format(
            name=site.name, address=_address(site), postal_code=site.postal_code, commune=site.commune_name
        )
    else:
        sms = SMS_WITH_FINDER.format(**common)
        where = WHERE_FINDER.format(finder=common["finder"])
    body = EMAIL_BODY.format(
        program=program.name,
        days=(today - handed_out).days,
        where=where,
        distributor=digital_pass.organisation.name,
        **common,
    )
    return sms, EMAIL_SUBJECT, body


@dataclass
class NudgeReport:
    today: dt.date
    after_days: int
    dry_run: bool = False
    sent: int = 0  # people reminded (one reminder each)
    sms: int = 0
    emails: int = 0
    with_place: int = 0  # the reminder named the place they were oriented to
    with_finder: int = 0  # no place (or no longer qualified): the finder instead
    failed: int = 0  # nothing could be sent: no row kept, tried again on the next run
    unreadable: int = 0  # contact that cannot be decrypted (PASSNUM_CONTACT_KEY replaced?)
    skipped: int = 0  # changed meanwhile: opted out, revoked, used, or reminded by a concurrent run
    programs: dict[int, int] = field(default_factory=dict)  # program id → people reminded

    def lines(self) -> list[str]:
        head = "[simulation] " if self.dry_run else ""
        verb = "à relancer" if self.dry_run else "relancée(s)"
        out = [
            f"{head}Relances du {french_date(self.today)} (pass numériques non utilisés {self.after_days} jours "
            f"après la remise) : {self.sent} personne(s) {verb}."
        ]
        if self.sent:
            out.append(
                f"  {self.sms} SMS, {self.emails} courriel(s) ; lieu conseillé nommé : {self.with_place}, "
                f"carte des lieux : {self.with_finder}."
            )
        for program_id, n in sorted(self.programs.items()):
            out.append(f"  Dispositif n° {program_id} : {n} personne(s).")
        if self.failed:
            out.append(f"  Envois en échec, retentés au prochain passage : {self.failed}.")
        if self.unreadable:
            out.append(f"  Contacts illisibles (clé PASSNUM_CONTACT_KEY changée ?) : {self.unreadable}.")
        if self.skipped:
            out.append(f"  Ignorés (rappels refusés, pass révoqué ou utilisé entre-temps) : {self.skipped}.")
        return out


def nudges_due(*, today: dt.date, after_days: int | None = None):
    """Active passes with a reminder contact, whose booklet was handed out (and the pass sent) at least
    `after_days` days ago, with no voucher used and at least one still usable, in a program valid today, and no
    reminder yet for the pass or its booklet."""
    after_days = settings.PASSNUM_NUDGE_AFTER_DAYS if after_days is None else after_days
    cutoff = days_ago_cutoff(today, after_days)
    booklet = OuterRef("booklet_id")
    return (
        DigitalPass.objects.filter(
            revoked_at__isnull=True,
            created_at__lt=cutoff,
            booklet__handed_out_at__lt=cutoff,
            booklet__program__valid_from__lte=today,
            booklet__program__valid_until__gte=today,
        )
        .exclude(reminder_contact="")
        .filter(~Exists(Nudge.objects.filter(Q(digital_pass=OuterRef("pk")) | Q(booklet=booklet))))
        .filter(~Exists(Voucher.objects.filter(booklet=booklet, status__in=USED)))
        .annotate(unused=Subquery(_count_usable(booklet)))
        .filter(unused__gt=0)
        .select_related("booklet", "booklet__program", "booklet__oriented_site", "organisation")
        .order_by("id")
    )


def _count_usable(booklet_ref):
    return (
        Voucher.objects.filter(booklet=booklet_ref, status=S.DISTRIBUTED)
        .order_by()
        .values("booklet")
        .annotate(n=Count("id"))
        .values("n")
    )


def _claim_nudge(**fields) -> Nudge | None:
    """Insert the nudge row in its own savepoint: None when the pass or booklet has one already (PostgreSQL makes
    a concurrent run's insert wait for the first, then fail)."""
    try:
        with transaction.atomic():
            return Nudge.objects.create(**fields)
    except IntegrityError:
        return None


def _nudge_one(digital_pass: DigitalPass, today: dt.date, report: NudgeReport) -> None:
    phone, email = contact_open(digital_pass.reminder_contact)
    if not phone and not email:
        report.unreadable += 1
        logger.warning("Nudge for digital pass %s: reminder contact unreadable", digital_pass.pk)
        return
    booklet = digital_pass.booklet
    site = _place_of(booklet)
    if report.dry_run:
        _count(report, booklet.program_id, site, ["sms"] * bool(phone) + ["email"] * bool(email))
        return
    with transaction.atomic():
        # Re-read under a lock: the person may have opted out, or used a voucher, since the candidates were read.
        locked = (
            DigitalPass.objects.select_for_update(of=("self",))
            .filter(pk=digital_pass.pk, revoked_at__isnull=True)
            .exclude(reminder_contact="")
            .first()
        )
        if locked is None or Voucher.objects.filter(booklet_id=booklet.pk, status__in=USED).exists():
            report.skipped += 1
            return
        phone, email = contact_open(locked.reminder_contact)
        unused = Voucher.objects.filter(booklet_id=booklet.pk, status=S.DISTRIBUTED).count()
        planned = "both" if phone and email else ("sms" if phone else "email")
        nudge = _claim_nudge(
            digital_pass=locked,
            booklet_id=booklet.pk,
            channel=planned,
            messages=int(bool(phone)) + int(bool(email)),
            vouchers=unused,
            oriented_site=site,
        )
        if nudge is None:
            report.skipped += 1
            return
        sms, subject, body = nudge_texts(digital_pass, vouchers=unused, today=today)
        channels = contact_send(
            phone=phone, email=email, sms=sms, subject=subject, body=body, label=f"Nudge for digital pass {locked.pk}"
        )
        if not channels:
            transaction.set_rollback(True)  # no row kept: tomorrow's run tries again
            report.failed += 1
            return
        nudge.channel = channel_of(channels)
        nudge.messages = len(channels)
        nudge.save(update_fields=["channel", "messages"])
        journal_record(
            action="nudge.send",
            organisation=digital_pass.organisation,
            obj=nudge,
            data={
                "program": booklet.program_id,
                "booklet": booklet.pk,
                "digital_pass": digital_pass.pk,
                "channel": nudge.channel,
                "messages": nudge.messages,
                "vouchers": unused,
                "oriented_site": site.pk if site else None,
            },
        )
    _count(report, booklet.program_id, site, channels)


def _count(report: NudgeReport, program_id: int, site, channels: list[str]) -> None:
    report.sent += 1
    report.sms += channels.count("sms")
    report.emails += channels.count("email")
    if site is not None:
        report.with_place += 1
    else:
        report.with_finder += 1
    report.programs[program_id] = report.programs.get(program_id, 0) + 1


def nudges_send(*, today: dt.date | None = None, dry_run: bool = False, after_days: int | None = None) -> NudgeReport:
    """Send the reminders due today (see the module's docstring). Idempotent: a second run sends nothing more."""
    today = today or local_today()
    after_days = settings.PASSNUM_NUDGE_AFTER_DAYS if after_days is None else after_days
    report = NudgeReport(today=today, after_days=after_days, dry_run=dry_run)
    for digital_pass in nudges_due(today=today, after_days=after_days).iterator(chunk_size=500):
        _nudge_one(digital_pass, today, report)
    return report


# --- 2. opting out -----------------------------------------------------------------------------------------


def reminders_opt_out(*, digital_pass: DigitalPass) -> bool:
    """The person, from their wallet page, wants no more reminders (nudge or expiry). Their encrypted contact is
    erased from this pass and from the other active passes handed to them (same Beneficiary record), and their
    record's consent is withdrawn so that a pass sent later keeps no contact. True when something changed; doing
    it again changes nothing."""
    with transaction.atomic():
        digital_pass = (
            DigitalPass.objects.select_for_update(of=("self",))
            .select_related("booklet", "organisation")
            .get(pk=digital_pass.pk)
        )
        beneficiary_id = digital_pass.booklet.beneficiary_id
        passes = Q(pk=digital_pass.pk)
        if beneficiary_id is not None:
            passes |= Q(booklet__beneficiary_id=beneficiary_id, revoked_at__isnull=True)
        erased = DigitalPass.objects.filter(passes).exclude(reminder_contact="").update(reminder_contact="")
        withdrawn = 0
        if beneficiary_id is not None:
            withdrawn = Beneficiary.objects.filter(pk=beneficiary_id, consent_reminders=True).update(
                consent_reminders=False
            )
        if not erased and not withdrawn:
            return False
        journal_record(
            action="reminders.opt_out",
            organisation=digital_pass.organisation,
            obj=digital_pass,
            data={
                "booklet": digital_pass.booklet_id,
                "contacts_erased": erased,
                "consent_withdrawn": bool(withdrawn),
                "source": "wallet",
            },
        )
    return True


# --- 3. booklets handed out, unused (distributors) --------------------------------------------------------


def unused_booklets(*, distributor, days: int | None = None, today: dt.date | None = None):
    """The distributor's booklets handed out at least `days` days ago (default PASSNUM_NUDGE_AFTER_DAYS) with no
    voucher used and some still usable, by program then oldest hand-out. Annotated: `beneficiary_reference`,
    `reminders_on` (an active pass keeps a reminder contact), `digital` (an active pass exists), `nudged_at`."""
    today = today or local_today()
    days = settings.PASSNUM_NUDGE_AFTER_DAYS if days is None else days
    active = DigitalPass.objects.filter(booklet=OuterRef("pk"), revoked_at__isnull=True)
    return (
        Booklet.objects.filter(distributor=distributor, handed_out_at__lt=days_ago_cutoff(today, days))
        .filter(~_used())
        .filter(_usable())
        .annotate(
            beneficiary_reference=F("beneficiary__reference"),
            digital=Exists(active),
            reminders_on=Exists(active.exclude(reminder_contact="")),
            nudged_at=Subquery(Nudge.objects.filter(booklet=OuterRef("pk")).values("sent_at")[:1]),
        )
        .select_related("program", "oriented_site")
        .order_by("program__name", "program_id", "handed_out_at", "number")
    )


# --- 4. sleeping stock (funders) ---------------------------------------------------------------------------


@dataclass
class SleepingRow:
    distributor_id: int
    distributor_name: str
    booklets: int
    vouchers: int
    value_cents: int
    oldest: dt.datetime


@dataclass
class SleepingProgram:
    program: Program
    can_reallocate: bool
    rows: list[SleepingRow] = field(default_factory=list)

    @property
    def booklets(self) -> int:
        return sum(r.booklets for r in self.rows)

    @property
    def value_cents(self) -> int:
        return sum(r.value_cents for r in self.rows)


def sleeping_after_days() -> int:
    return settings.PASSNUM_SLEEPING_AFTER_DAYS


def sleeping_booklets(*, program: Program, distributor=None, today: dt.date | None = None, days: int | None = None):
    """Booklets of the program allocated to a distributor at least `days` days ago (default
    PASSNUM_SLEEPING_AFTER_DAYS), never handed out, with vouchers still issued. Annotated `vouchers` (issued)."""
    today = today or local_today()
    days = sleeping_after_days() if days is None else days
    issued = Voucher.objects.filter(booklet=OuterRef("pk"), status=S.ISSUED)
    booklets = Booklet.objects.filter(
        program=program,
        distributor__isnull=False,
        handed_out_at__isnull=True,
        allocated_at__lt=days_ago_cutoff(today, days),
    ).filter(Exists(issued))
    if distributor is not None:
        booklets = booklets.filter(distributor=distributor)
    return booklets.order_by("allocated_at", "number")


def sleeping_booklets_count(*, funder, today: dt.date | None = None) -> int:
    """Sleeping booklets in every program the funder funds (the count on its home page)."""
    today = today or local_today()
    return (
        Booklet.objects.filter(
            program__in=program_list_for(organisation=funder).values("pk"),
            distributor__isnull=False,
            handed_out_at__isnull=True,
            allocated_at__lt=days_ago_cutoff(today, sleeping_after_days()),
        )
        .filter(Exists(Voucher.objects.filter(booklet=OuterRef("pk"), status=S.ISSUED)))
        .count()
    )


def sleeping_stock(*, user, funder, today: dt.date | None = None, days: int | None = None) -> list[SleepingProgram]:
    """For each program the funder funds (lead or co-funder), its sleeping booklets grouped by distributor: count,
    vouchers, value, oldest allocation. Programs without any are left out."""
    today = today or local_today()
    days = sleeping_after_days() if days is None else days
    programs = {p.pk: p for p in program_list_for(organisation=funder)}
    if not programs:
        return []
    rows = (
        Voucher.objects.filter(
            program_id__in=list(programs),
            status=S.ISSUED,
            booklet__distributor__isnull=False,
            booklet__handed_out_at__isnull=True,
            booklet__allocated_at__lt=days_ago_cutoff(today, days),
        )
        .values("program_id", "booklet__distributor_id", "booklet__distributor__name")
        .annotate(
            booklets=Count("booklet_id", distinct=True),
            vouchers=Count("id"),
            value=Sum("face_value_cents"),
            oldest=Min("booklet__allocated_at"),
        )
        .order_by("program_id", "booklet__distributor__name", "booklet__distributor_id")
    )
    out: dict[int, SleepingProgram] = {}
    for row in rows:
        program = programs[row["program_id"]]
        group = out.get(program.pk)
        if group is None:
            group = out[program.pk] = SleepingProgram(program, perms.can_edit_program(user, funder, program))
        group.rows.append(
            SleepingRow(
                row["booklet__distributor_id"],
                row["booklet__distributor__name"],
                row["booklets"],
                row["vouchers"],
                row["value"] or 0,
                row["oldest"],
            )
        )
    return sorted(out.values(), key=lambda g: (g.program.name, g.program.pk))


REALLOCATED_FROM_SUBJECT = "Pass numérique « {program} » : {count} carnet(s) réattribué(s) à un autre prescripteur"
REALLOCATED_FROM_BODY = """Bonjour,

{funder}, financeur pilote du dispositif « {program} », a réattribué à {to} {count} carnet(s) qui étaient dans le
stock de {source} depuis plus de {days} jours sans avoir été remis (n° {numbers}).

Ces carnets ne sont plus dans votre stock. Pour en recevoir de nouveau, adressez-vous à {funder}.

— Pass numérique
"""
REALLOCATED_TO_SUBJECT = "Pass numérique « {program} » : {count} carnet(s) ajouté(s) à votre stock"
REALLOCATED_TO_BODY = """Bonjour,

{funder}, financeur pilote du dispositif « {program} », a attribué à {to} {count} carnet(s) (n° {numbers}),
jusqu’ici non remis chez un autre prescripteur. Ils sont dans votre stock, prêts à être remis :

{stock_url}

Les chèques de ce dispositif sont utilisables jusqu’au {until} inclus.

— Pass numérique
"""


def _admin_emails(organisation) -> list[str]:
    return list(
        User.objects.filter(memberships__organisation=organisation, memberships__role=Role.ADMIN, is_active=True)
        .exclude(email="")
        .order_by("id")
        .values_list("email", flat=True)
        .distinct()
    )


def _notify_reallocation(program, funder, source, target, numbers: str, count: int, days: int) -> None:
    """One e-mail per admin of each distributor (they do not see each other's addresses), after the commit."""
    fields = {
        "program": program.name,
        "funder": funder.name,
        "source": source.name,
        "to": target.name,
        "count": count,
        "numbers": numbers,
        "days": days,
        "until": french_date(program.valid_until),
        "stock_url": settings.PASSNUM_PUBLIC_URL.rstrip("/") + reverse("www:distributor_stock"),
    }
    messages = [
        (REALLOCATED_FROM_SUBJECT.format(**fields), REALLOCATED_FROM_BODY.format(**fields), _admin_emails(source)),
        (REALLOCATED_TO_SUBJECT.format(**fields), REALLOCATED_TO_BODY.format(**fields), _admin_emails(target)),
    ]

    def send():
        for subject, body, addresses in messages:
            for address in addresses:
                try:
                    send_mail(subject=subject, message=body, from_email=None, recipient_list=[address])
                except Exception as exc:  # the reallocation stands; the mail server's failure is logged
                    logger.warning("Reallocation notice not sent: %s", type(exc).__name__)

    transaction.on_commit(send)


def booklets_reallocate(
    *,
    program: Program,
    from_distributor,
    to_distributor,
    booklet_ids: list[int] | None = None,
    all_sleeping: bool = False,
    actor,
    organisation,
    today: dt.date | None = None,
) -> list[Booklet]:
    """The lead funder's admins move sleeping booklets of `program` from one distributor's stock to another's:
    the booklets chosen (`booklet_ids`), or every sleeping booklet of that distributor (`all_sleeping`). Under row
    locks, every booklet is checked again; if one was handed out, moved or returned meanwhile, the whole request is
    refused and nothing changes. Journaled (`booklet.reallocate`); both distributors' admins get an e-mail."""
    today = today or local_today()
    days = sleeping_after_days()
    if not perms.can_edit_program(actor, organisation, program):
        raise PermissionRefused(
            "Seuls les administrateurs du financeur pilote du dispositif réattribuent ses carnets.",
            code="reallocate_not_lead_admin",
        )
    if from_distributor is None or from_distributor.kind != OrganisationKind.DISTRIBUTOR:
        raise DomainError("Le prescripteur d’origine n’est pas un prescripteur.", code="not_a_distributor")
    if to_distributor is None:
        raise DomainError("Choisissez le prescripteur destinataire.", code="target_required", field="target")
    if to_distributor.kind != OrganisationKind.DISTRIBUTOR or not to_distributor.is_active:
        raise DomainError(
            f"« {to_distributor.name} » n’est pas un prescripteur actif.", code="not_a_distributor", field="target"
        )
    if to_distributor.pk == from_distributor.pk:
        raise DomainError(
            "Choisissez un autre prescripteur que celui qui détient les carnets.",
            code="same_distributor",
            field="target",
        )
    ids = sorted({int(pk) for pk in booklet_ids or []})
    if not all_sleeping and not ids:
        raise DomainError("Cochez au moins un carnet.", code="booklets_required", field="booklets")
    if len(ids) > MAX_REALLOCATE:
        raise DomainError(f"Au plus {MAX_REALLOCATE} carnets à la fois.", code="too_many_booklets")
    cutoff = days_ago_cutoff(today, days)
    with transaction.atomic():
        if all_sleeping:
            ids = list(
                sleeping_booklets(program=program, distributor=from_distributor, today=today)
                .order_by("pk")
                .values_list("pk", flat=True)[: MAX_REALLOCATE + 1]
            )
            if not ids:
                raise DomainError(
                    f"{from_distributor.name} n’a plus de carnet dormant de ce dispositif.",
                    code="no_sleeping_booklets",
                )
            if len(ids) > MAX_REALLOCATE:
                raise DomainError(
                    f"Plus de {MAX_REALLOCATE} carnets dormants : cochez-les par lots.", code="too_many_booklets"
                )
        # Locked in id order, like every other writer of booklets, so that two writers cannot deadlock.
        booklets = list(Booklet.objects.select_for_update(of=("self",)).filter(pk__in=ids).order_by("pk"))
        found = {b.pk for b in booklets if b.program_id == program.pk}
        if found != set(ids):
            raise DomainError("Carnet introuvable dans ce dispositif.", code="booklet_unknown")
        handed_out = [b.number for b in booklets if b.handed_out_at is not None]
        if handed_out:
            raise DomainError(
                f"Ces carnets ont été remis entre-temps : {_numbers_text(handed_out)}. Rien n’a été réattribué.",
                code="booklet_handed_out",
            )
        moved = [b.number for b in booklets if b.distributor_id != from_distributor.pk]
        if moved:
            raise DomainError(
                f"Ces carnets ne sont plus dans le stock de {from_distributor.name} : {_numbers_text(moved)}. "
                "Rien n’a été réattribué.",
                code="booklet_not_in_stock",
            )
        awake = [b.number for b in booklets if b.allocated_at is None or b.allocated_at >= cutoff]
        if awake:
            raise DomainError(
                f"Ces carnets ont été attribués il y a moins de {days} jours : {_numbers_text(awake)}. "
                "Rien n’a été réattribué.",
                code="booklet_not_sleeping",
            )
        with_issued = set(
            Voucher.objects.filter(booklet_id__in=ids, status=S.ISSUED).values_list("booklet_id", flat=True).distinct()
        )
        empty = [b.number for b in booklets if b.pk not in with_issued]
        if empty:
            raise DomainError(
                f"Ces carnets n’ont plus de chèque utilisable : {_numbers_text(empty)}. Rien n’a été réattribué.",
                code="booklet_empty",
            )
        now = timezone.now()
        Booklet.objects.filter(pk__in=ids).update(distributor=to_distributor, allocated_at=now)
        numbers = _numbers_text([b.number for b in booklets])
        journal_record(
            action="booklet.reallocate",
            actor=actor,
            organisation=organisation,
            obj=program,
            data={
                "from": from_distributor.pk,
                "to": to_distributor.pk,
                "numbers": numbers,
                "count": len(booklets),
                "all_sleeping": all_sleeping,
            },
        )
        _notify_reallocation(program, organisation, from_distributor, to_distributor, numbers, len(booklets), days)
    return list(Booklet.objects.filter(pk__in=ids).order_by("number"))


def distributor_choices(*, exclude=None):
    """Active distributors a funder may reallocate to, by name."""
    qs = Organisation.objects.filter(kind=OrganisationKind.DISTRIBUTOR, is_active=True).order_by("name")
    return qs.exclude(pk=exclude.pk) if exclude is not None else qs
