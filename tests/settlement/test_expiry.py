"""The daily expiry job: expiry after the grace period (value back to each funder's budget, ledger intact,
idempotent), and the reminders 30 and 15 days before the last day of use (once each, only with consent)."""

import datetime as dt
import io
import json

import pytest
from django.core import mail
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import IntegrityError, transaction

from passnum.common import sms
from passnum.common.dates import french_date
from passnum.common.standard import Service
from passnum.journal.models import JournalEntry
from passnum.programs.models import Program, ProgramFunder
from passnum.settlement.expiry import alert_threshold, expire_due, expiry_alerts, grace_until
from passnum.settlement.ledger import account_balances, split_by_shares
from passnum.settlement.models import LedgerTransaction
from passnum.settlement.verify import ledger_verify
from passnum.vouchers import digital, signing
from passnum.vouchers.enums import VoucherStatus
from passnum.vouchers.handout import Person, booklet_give
from passnum.vouchers.models import Booklet, ExpiryAlert, Voucher, VoucherStatusLog
from passnum.vouchers.redemption import Desk, redeem
from passnum.vouchers.services import booklet_hand_out, booklets_issue
from tests.desk.scenario import build
from tests.factories import member_of

pytestmark = pytest.mark.django_db
S = VoucherStatus
T = Service.EVERYDAY_TOOLS
PHONE, PHONE_E164 = "06 12 34 56 78", "+33612345678"
EMAIL = "camille.martin@exemple.fr"


@pytest.fixture(autouse=True)
def _outboxes(tmp_path, settings):
    settings.PASSNUM_SIGNING_KEYS_DIR = tmp_path / "keys"
    settings.SMS_BACKEND = "passnum.common.sms.MemoryBackend"
    signing.load_keys.cache_clear()
    sms.MemoryBackend.outbox.clear()
    yield
    sms.MemoryBackend.outbox.clear()
    signing.load_keys.cache_clear()


@pytest.fixture
def sc():
    """60/40 program; sc.booklet handed out (10 distributed); 2 of them used; one more booklet in the
    distributor's stock (10 issued) and one never allocated (10 issued)."""
    sc = build()
    redeem(raw_code=sc.code(1), desk=Desk(place=sc.place), service=T, count=2)
    sc.stock_booklet = sc.new_booklet(hand_out=False)
    sc.unallocated = booklets_issue(program=sc.program, count=1)[0]
    return sc


def _after_grace(program) -> dt.date:
    return grace_until(program) + dt.timedelta(days=1)


def _committed(program) -> dict[int, int]:
    return dict(ProgramFunder.objects.filter(program=program).values_list("funder_id", "committed_cents"))


# --- expiry -----------------------------------------------------------------------------------------------


def test_nothing_expires_until_the_grace_period_is_over(sc):
    assert expire_due(today=sc.program.valid_until + dt.timedelta(days=1)) == []
    assert expire_due(today=grace_until(sc.program)) == []
    assert not Voucher.objects.filter(status=S.EXPIRED).exists()


def test_expiry_returns_each_cofunders_share_to_its_budget(sc):
    before = _committed(sc.program)
    budget_before = account_balances()

    [report] = expire_due(today=_after_grace(sc.program))

    assert (report.expired_issued, report.expired_distributed) == (20, 8)
    assert report.returned_cents == {sc.funder.pk: 28 * 600, sc.cofunder.pk: 28 * 400}
    assert report.returned_total_cents == 28 * 1000
    after = _committed(sc.program)
    assert before[sc.funder.pk] - after[sc.funder.pk] == 16_800
    assert before[sc.cofunder.pk] - after[sc.cofunder.pk] == 11_200
    balances = account_balances()
    for funder, share in ((sc.funder, 600), (sc.cofunder, 400)):
        key = f"budget:p{sc.program.pk}:f{funder.pk}"
        assert balances[key] - budget_before[key] == 28 * share
        assert balances.get(f"outstanding:p{sc.program.pk}:f{funder.pk}", 0) == 0
        assert balances.get(f"handed_out:p{sc.program.pk}:f{funder.pk}", 0) == 0
    assert ledger_verify() == []
    assert Voucher.objects.filter(program=sc.program, status=S.EXPIRED).count() == 28
    assert Voucher.objects.filter(program=sc.program, status=S.REDEEMED).count() == 2
    assert VoucherStatusLog.objects.filter(to_status=S.EXPIRED, reason="Fin de validité").count() == 28
    assert not Voucher.objects.filter(status=S.EXPIRED, expired_at__isnull=True).exists()


def test_expiry_of_an_uneven_split_adds_up_to_the_cent():
    sc = build(face_value_cents=333)
    sc.new_booklet(hand_out=False)
    parts = dict(split_by_shares(333, [(sc.funder.pk, 6000), (sc.cofunder.pk, 4000)]))

    [report] = expire_due(today=_after_grace(sc.program))

    assert report.returned_cents == {sc.funder.pk: 20 * parts[sc.funder.pk], sc.cofunder.pk: 20 * parts[sc.cofunder.pk]}
    assert report.returned_total_cents == 20 * 333
    assert ledger_verify() == []


def test_rerunning_the_same_day_does_nothing_more(sc):
    today = _after_grace(sc.program)
    expire_due(today=today)
    transactions, journal = LedgerTransaction.objects.count(), JournalEntry.objects.count()
    committed = _committed(sc.program)

    assert expire_due(today=today) == []
    assert expire_due(today=today + dt.timedelta(days=1)) == []

    assert LedgerTransaction.objects.count() == transactions
    assert JournalEntry.objects.count() == journal
    assert _committed(sc.program) == committed
    assert ledger_verify() == []


def test_report_names_distributors_still_holding_stock_and_is_journaled(sc):
    [report] = expire_due(today=_after_grace(sc.program))

    stock = {s.name: (s.booklets, s.vouchers) for s in report.stock}
    assert stock == {"CCAS de Reims": (1, 10), "Non attribués (stock de l’opérateur)": (1, 10)}
    text = "\n".join(report.lines())
    assert sc.program.name in text and "Chèques expirés : 28" in text
    assert "Département de la Marne : 168,00" in text.replace("\u202f", " ").replace("\xa0", " ")
    entry = JournalEntry.objects.get(action="program.expiry")
    assert entry.object_id == str(sc.program.pk)
    assert entry.data["expired_issued"] == 20 and entry.data["expired_distributed"] == 8
    assert entry.data["returned_cents"] == {str(sc.funder.pk): 16_800, str(sc.cofunder.pk): 11_200}
    assert entry.data["stock"][0]["booklets"] == 1


def test_dry_run_reports_without_changing_anything(sc):
    transactions = LedgerTransaction.objects.count()
    [report] = expire_due(today=_after_grace(sc.program), dry_run=True)
    assert report.dry_run and report.expired == 28
    assert report.returned_cents == {sc.funder.pk: 16_800, sc.cofunder.pk: 11_200}
    assert LedgerTransaction.objects.count() == transactions
    assert not Voucher.objects.filter(status=S.EXPIRED).exists()


def test_other_programs_are_left_alone(sc):
    later = build()  # same dates, but a longer grace period
    Program.objects.filter(pk=later.program.pk).update(grace_days=90)
    [report] = expire_due(today=_after_grace(sc.program))
    assert report.program_id == sc.program.pk
    assert Voucher.objects.filter(program=later.program, status=S.DISTRIBUTED).count() == 10


def test_command_prints_the_reports_and_is_idempotent(sc):
    day = _after_grace(sc.program).isoformat()
    out = io.StringIO()
    call_command("expire", "--today", day, "--dry-run", stdout=out)
    assert "[simulation]" in out.getvalue() and "Chèques expirés : 28" in out.getvalue()
    assert not Voucher.objects.filter(status=S.EXPIRED).exists()

    out = io.StringIO()
    call_command("expire", "--today", day, stdout=out)
    assert "Chèques expirés : 28" in out.getvalue()
    assert "CCAS de Reims : 1 carnet(s), 10 chèque(s)" in out.getvalue()

    out = io.StringIO()
    call_command("expire", "--today", day, stdout=out)
    assert "aucun chèque à expirer" in out.getvalue()

    with pytest.raises(CommandError):
        call_command("expire", "--today", "31/12/2026")


# --- alerts to distributors -------------------------------------------------------------------------------


@pytest.fixture
def stock():
    """A distributor with two booklets in stock (not handed out), and two members."""
    sc = build()
    sc.new_booklet(hand_out=False)
    sc.new_booklet(hand_out=False)
    member_of(sc.distributor, admin=True, email="directrice@ccas-reims.fr")
    return sc


def _days_before(program, days):
    return program.valid_until - dt.timedelta(days=days)


def test_alert_threshold():
    sc = build()
    p = sc.program
    assert alert_threshold(p, _days_before(p, 31)) is None
    assert alert_threshold(p, _days_before(p, 30)) == 30
    assert alert_threshold(p, _days_before(p, 16)) == 30
    assert alert_threshold(p, _days_before(p, 15)) == 15
    assert alert_threshold(p, p.valid_until) == 15
    assert alert_threshold(p, p.valid_until + dt.timedelta(days=1)) is None


def test_nothing_before_30_days(stock):
    report = expiry_alerts(today=_days_before(stock.program, 31))
    assert report.sent == [] and mail.outbox == [] and not ExpiryAlert.objects.exists()


def test_distributor_alerted_at_30_and_15_days_once_each(stock):
    p = stock.program
    report = expiry_alerts(today=_days_before(p, 30))

    assert len(mail.outbox) == 2  # one per member, neither sees the other's address
    assert sorted(m.to[0] for m in mail.outbox) == sorted(
        stock.distributor.memberships.values_list("user__email", flat=True)
    )
    message = mail.outbox[0]
    assert p.name in message.subject and "2 carnet(s)" in message.subject
    assert "2 carnet(s)" in message.body and "20 chèques" in message.body
    assert french_date(p.valid_until) in message.body and "dans 30 jours" in message.body
    [line] = report.sent
    assert (line.target, line.days_before, line.booklets, line.messages) == ("distributor", 30, 2, 2)

    for days in (30, 29, 16):  # same day again, then the days in between
        assert expiry_alerts(today=_days_before(p, days)).sent == []
    assert len(mail.outbox) == 2

    expiry_alerts(today=_days_before(p, 15))
    assert len(mail.outbox) == 4 and "dans 15 jours" in mail.outbox[-1].body
    for days in (15, 10, 0):
        expiry_alerts(today=_days_before(p, days))
    assert len(mail.outbox) == 4
    assert sorted(ExpiryAlert.objects.values_list("days_before", flat=True)) == [15, 30]

    entries = JournalEntry.objects.filter(action="expiry.alert")
    assert entries.count() == 2
    for entry in entries:
        assert "@" not in json.dumps(entry.data)


def test_a_missed_30_day_run_sends_only_the_15_day_alert(stock):
    expiry_alerts(today=_days_before(stock.program, 10))
    assert len(mail.outbox) == 2
    assert list(ExpiryAlert.objects.values_list("days_before", flat=True)) == [15]


def test_no_alert_once_every_booklet_is_handed_out(stock):
    for booklet in Booklet.objects.filter(program=stock.program, handed_out_at__isnull=True):
        booklet_hand_out(booklet=booklet, organisation=stock.distributor)
    assert expiry_alerts(today=_days_before(stock.program, 30)).sent == []
    assert mail.outbox == []


def test_the_database_refuses_a_second_alert(stock):
    ExpiryAlert.objects.create(program=stock.program, days_before=30, distributor=stock.distributor)
    with pytest.raises(IntegrityError), transaction.atomic():
        ExpiryAlert.objects.create(program=stock.program, days_before=30, distributor=stock.distributor)
    with pytest.raises(IntegrityError), transaction.atomic():
        ExpiryAlert.objects.create(program=stock.program, days_before=20, distributor=stock.distributor)


# --- alerts to people holding a digital pass --------------------------------------------------------------


def _give_pass(sc, *, consent_at_hand_out=False, consent_at_send=None, phone=PHONE, email=EMAIL):
    booklet = sc.new_booklet(hand_out=False)
    booklet_give(
        booklet=booklet,
        distributor=sc.distributor,
        person=Person(consent_reminders=consent_at_hand_out),
        actor=sc.distributor_user,
    )
    return digital.digital_pass_send(
        booklet=booklet,
        phone=phone,
        email=email,
        actor=sc.distributor_user,
        organisation=sc.distributor,
        consent_reminders=consent_at_send,
    )


def test_contact_is_kept_encrypted_only_with_consent():
    sc = build()
    with_consent = _give_pass(sc, consent_at_hand_out=True)
    assert with_consent.reminder_contact
    assert PHONE_E164 not in with_consent.reminder_contact and "exemple" not in with_consent.reminder_contact
    assert digital.contact_open(with_consent.reminder_contact) == (PHONE_E164, EMAIL)
    assert _give_pass(sc).reminder_contact == ""
    assert _give_pass(sc, consent_at_send=True).reminder_contact != ""
    assert _give_pass(sc, consent_at_hand_out=True, consent_at_send=False).reminder_contact == ""
    entry = JournalEntry.objects.filter(action="digital_pass.send").first()
    assert PHONE_E164 not in json.dumps(entry.data) and EMAIL not in json.dumps(entry.data)


def test_pass_holder_reminded_at_30_and_15_days_then_contact_erased():
    sc = build()
    dp = _give_pass(sc, consent_at_hand_out=True)
    mail.outbox.clear()
    sms.MemoryBackend.outbox.clear()
    p = sc.program

    report = expiry_alerts(today=_days_before(p, 30))

    assert [to for to, _ in sms.MemoryBackend.outbox] == [PHONE_E164]
    assert "10 chèque(s)" in sms.MemoryBackend.outbox[0][1] and "CCAS de Reims" in sms.MemoryBackend.outbox[0][1]
    assert [m.to for m in mail.outbox] == [[EMAIL]]
    assert [(a.target, a.days_before, a.messages) for a in report.sent] == [("pass", 30, 2)]
    alert = ExpiryAlert.objects.get(digital_pass=dp)
    assert (alert.channel, alert.vouchers, alert.days_before) == ("both", 10, 30)

    expiry_alerts(today=_days_before(p, 30))
    expiry_alerts(today=_days_before(p, 20))
    assert len(sms.MemoryBackend.outbox) == 1 and len(mail.outbox) == 1

    redeem(raw_code=dp.booklet.vouchers.order_by("position")[0].code, desk=Desk(place=sc.place), service=T)
    expiry_alerts(today=_days_before(p, 15))
    assert len(sms.MemoryBackend.outbox) == 2 and "9 chèque(s)" in sms.MemoryBackend.outbox[1][1]
    dp.refresh_from_db()
    assert dp.reminder_contact == ""  # the last reminder is gone: nothing more to send
    expiry_alerts(today=_days_before(p, 5))
    assert len(sms.MemoryBackend.outbox) == 2
    for entry in JournalEntry.objects.filter(action="expiry.alert"):
        assert PHONE_E164 not in json.dumps(entry.data) and "@" not in json.dumps(entry.data)


def test_no_message_without_consent():
    sc = build()
    _give_pass(sc)
    mail.outbox.clear()
    sms.MemoryBackend.outbox.clear()
    report = expiry_alerts(today=_days_before(sc.program, 30))
    assert sms.MemoryBackend.outbox == [] and mail.outbox == []
    assert report.without_consent == 1
    assert not ExpiryAlert.objects.filter(digital_pass__isnull=False).exists()


def test_revocation_and_opt_out_erase_the_contact():
    sc = build()
    revoked = _give_pass(sc, consent_at_hand_out=True)
    digital.digital_pass_revoke(
        booklet=revoked.booklet, reason="Téléphone perdu", actor=sc.distributor_user, organisation=sc.distributor
    )
    revoked.refresh_from_db()
    assert revoked.reminder_contact == ""
    stopped = _give_pass(sc, consent_at_hand_out=True)
    digital.digital_pass_reminders_stop(digital_pass=stopped)
    stopped.refresh_from_db()
    assert stopped.reminder_contact == ""
    sms.MemoryBackend.outbox.clear()
    expiry_alerts(today=_days_before(sc.program, 30))
    assert sms.MemoryBackend.outbox == []


def test_a_used_up_pass_gets_no_reminder_and_loses_its_contact():
    sc = build()
    dp = _give_pass(sc, phone="", consent_at_hand_out=True)
    codes_ = list(dp.booklet.vouchers.order_by("position").values_list("code", flat=True))
    for code in codes_[::2]:
        redeem(raw_code=code, desk=Desk(place=sc.place), service=T, count=2)
    mail.outbox.clear()
    report = expiry_alerts(today=_days_before(sc.program, 30))
    assert mail.outbox == [] and report.sent == []
    dp.refresh_from_db()
    assert dp.reminder_contact == ""


def test_expiry_erases_the_contacts_of_the_program():
    sc = build()
    dp = _give_pass(sc, consent_at_hand_out=True)
    expire_due(today=_after_grace(sc.program))
    dp.refresh_from_db()
    assert dp.reminder_contact == ""
    assert ledger_verify() == []


def test_sms_failure_is_retried_on_the_next_run(settings):
    sc = build()
    dp = _give_pass(sc, consent_at_hand_out=True, email="")
    settings.SMS_BACKEND = "passnum.common.sms.BrevoBackend"
    settings.BREVO_API_KEY = ""  # refuses: not configured
    report = expiry_alerts(today=_days_before(sc.program, 30))
    assert report.failed == 1 and not ExpiryAlert.objects.filter(digital_pass=dp).exists()
    settings.SMS_BACKEND = "passnum.common.sms.MemoryBackend"
    sms.MemoryBackend.outbox.clear()
    expiry_alerts(today=_days_before(sc.program, 29))
    assert len(sms.MemoryBackend.outbox) == 1
    assert ExpiryAlert.objects.filter(digital_pass=dp, days_before=30).exists()


def test_command_sends_the_alerts_too(stock):
    out = io.StringIO()
    call_command("expire", "--today", _days_before(stock.program, 30).isoformat(), stdout=out)
    assert "aucun chèque à expirer" in out.getvalue()
    assert "Rappels d’expiration" in out.getvalue() and "CCAS de Reims : 2 carnet(s) en stock" in out.getvalue()
    assert len(mail.outbox) == 2
    out = io.StringIO()
    call_command("expire", "--today", _days_before(stock.program, 30).isoformat(), stdout=out)
    assert len(mail.outbox) == 2
