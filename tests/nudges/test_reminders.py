"""The reminder to people (`nudges_send`, `passnum nudge`): one message, N days after the hand-out, only with
consent, naming the oriented place or the finder; at most once (database constraints); failures retried; the
opt-out from the wallet honoured by the nudges and the expiry alerts alike."""

import datetime as dt
import io
import json

import pytest
from django.core import mail
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import IntegrityError, transaction
from django.test import override_settings
from django.utils import timezone

from passnum.common import sms
from passnum.common.sms import SmsError
from passnum.common.standard import Service
from passnum.journal.models import JournalEntry
from passnum.nudges.models import Nudge
from passnum.nudges.services import (
    NudgeReport,
    _nudge_one,
    days_ago_cutoff,
    nudges_due,
    nudges_send,
    reminders_opt_out,
)
from passnum.places.enums import QualificationStatus
from passnum.programs.models import Program
from passnum.settlement.expiry import expiry_alerts
from passnum.vouchers import digital, signing
from passnum.vouchers.models import Beneficiary, DigitalPass, ExpiryAlert
from passnum.vouchers.redemption import Desk, redeem
from tests.desk.scenario import build
from tests.nudges.world import EMAIL, PHONE_E164, days_later, give_pass

pytestmark = pytest.mark.django_db
AFTER = 21  # PASSNUM_NUDGE_AFTER_DAYS in the settings
T = Service.EVERYDAY_TOOLS


class FailingSms:
    """An SMS provider that refuses everything."""

    def send(self, to, text):
        raise SmsError("Le fournisseur de SMS ne répond pas.", code="sms_unavailable")


@pytest.fixture(autouse=True)
def _outboxes(tmp_path, settings):
    settings.PASSNUM_SIGNING_KEYS_DIR = tmp_path / "keys"
    settings.SMS_BACKEND = "passnum.common.sms.MemoryBackend"
    settings.PASSNUM_NUDGE_AFTER_DAYS = AFTER
    settings.PASSNUM_PUBLIC_URL = "https://pass.exemple.fr"
    signing.load_keys.cache_clear()
    sms.MemoryBackend.outbox.clear()
    yield
    sms.MemoryBackend.outbox.clear()
    signing.load_keys.cache_clear()


@pytest.fixture
def sc():
    return build()


def _clear():
    mail.outbox.clear()
    sms.MemoryBackend.outbox.clear()


def test_cutoff_counts_whole_days_in_paris():
    cutoff = days_ago_cutoff(dt.date(2026, 3, 22), 21)
    assert cutoff.isoformat() == "2026-03-02T00:00:00+01:00"  # handed out on 1 March: due on 22 March


def test_nothing_before_the_delay(sc):
    give_pass(sc)
    _clear()
    report = nudges_send(today=days_later(AFTER - 1))
    assert report.sent == 0 and sms.MemoryBackend.outbox == [] and mail.outbox == []
    assert not Nudge.objects.exists()


def test_one_reminder_names_the_oriented_place_and_is_journaled(sc):
    dp = give_pass(sc)
    _clear()
    report = nudges_send(today=days_later(AFTER))

    assert report.sent == 1 and report.sms == 1 and report.emails == 1 and report.with_place == 1
    [(to, text)] = sms.MemoryBackend.outbox
    assert to == PHONE_E164
    assert "Médiathèque Jean Falala, 1 place de l’Hôtel de Ville, 51100 Reims" in text
    assert "10 chèques" in text and "Plus de rappel" in text
    [message] = mail.outbox
    assert message.to == [EMAIL]
    assert "Médiathèque Jean Falala\n1 place de l’Hôtel de Ville\n51100 Reims" in message.body
    assert "Ne plus recevoir de rappels" in message.body and "CCAS de Reims" in message.body
    assert f"il y a {AFTER} jours" in message.body

    nudge = Nudge.objects.get()
    assert (nudge.digital_pass_id, nudge.booklet_id, nudge.channel, nudge.messages, nudge.vouchers) == (
        dp.pk,
        dp.booklet_id,
        "both",
        2,
        10,
    )
    assert nudge.oriented_site_id == sc.site.pk
    entry = JournalEntry.objects.get(action="nudge.send")
    assert entry.object_id == str(nudge.pk) and entry.organisation_id == sc.distributor.pk
    assert entry.data == {
        "program": sc.program.pk,
        "booklet": dp.booklet_id,
        "digital_pass": dp.pk,
        "channel": "both",
        "messages": 2,
        "vouchers": 10,
        "oriented_site": sc.site.pk,
    }
    dumped = json.dumps(entry.data)
    assert PHONE_E164 not in dumped and "@" not in dumped
    dp.refresh_from_db()
    assert dp.reminder_contact  # kept for the expiry reminders


def test_a_second_run_sends_nothing_more(sc):
    give_pass(sc)
    nudges_send(today=days_later(AFTER))
    _clear()
    assert nudges_send(today=days_later(AFTER)).sent == 0
    assert nudges_send(today=days_later(AFTER + 10)).sent == 0
    assert sms.MemoryBackend.outbox == [] and mail.outbox == []
    assert Nudge.objects.count() == 1


def test_without_a_place_the_reminder_points_to_the_finder(sc):
    give_pass(sc, site=False, phone="")
    _clear()
    report = nudges_send(today=days_later(AFTER))
    assert report.with_finder == 1 and report.with_place == 0
    assert "https://pass.exemple.fr/lieux/" in mail.outbox[0].body
    assert Nudge.objects.get().channel == "email"


def test_a_place_no_longer_qualified_is_not_named(sc):
    give_pass(sc, email="")
    sc.site.status = QualificationStatus.SUSPENDED
    sc.site.save(update_fields=["status"])
    _clear()
    nudges_send(today=days_later(AFTER))
    [(_, text)] = sms.MemoryBackend.outbox
    assert "Médiathèque" not in text and "https://pass.exemple.fr/lieux/" in text
    assert Nudge.objects.get().oriented_site_id is None


def test_no_reminder_without_consent(sc):
    dp = give_pass(sc, consent=False)
    assert dp.reminder_contact == ""
    _clear()
    assert nudges_send(today=days_later(AFTER)).sent == 0
    assert sms.MemoryBackend.outbox == [] and mail.outbox == []


def test_no_reminder_once_a_voucher_is_used(sc):
    dp = give_pass(sc)
    redeem(raw_code=dp.booklet.vouchers.order_by("position")[0].code, desk=Desk(place=sc.place), service=T)
    _clear()
    assert nudges_send(today=days_later(AFTER)).sent == 0
    assert mail.outbox == [] and not Nudge.objects.exists()


def test_no_reminder_for_a_revoked_pass(sc):
    dp = give_pass(sc)
    digital.digital_pass_revoke(booklet=dp.booklet, reason="Téléphone perdu", actor=None, organisation=sc.distributor)
    _clear()
    assert nudges_send(today=days_later(AFTER)).sent == 0


def test_no_reminder_outside_the_validity_of_the_program(sc):
    give_pass(sc)
    Program.objects.filter(pk=sc.program.pk).update(valid_until=days_later(AFTER - 1))
    _clear()
    assert nudges_send(today=days_later(AFTER)).sent == 0
    Program.objects.filter(pk=sc.program.pk).update(
        valid_from=days_later(AFTER + 1), valid_until=days_later(AFTER + 100)
    )
    assert nudges_send(today=days_later(AFTER)).sent == 0
    assert mail.outbox == []


def test_a_pass_sent_later_than_the_hand_out_waits_its_own_delay(sc):
    dp = give_pass(sc)
    # handed out on paper long ago, the link sent today: the person gets the full delay with the link
    dp.booklet.__class__.objects.filter(pk=dp.booklet_id).update(handed_out_at=timezone.now() - dt.timedelta(days=60))
    _clear()
    assert nudges_send(today=days_later(1)).sent == 0
    assert nudges_send(today=days_later(AFTER)).sent == 1


def test_a_pass_sent_again_after_revocation_gets_no_second_reminder(sc):
    dp = give_pass(sc)
    nudges_send(today=days_later(AFTER))
    digital.digital_pass_revoke(booklet=dp.booklet, reason="Téléphone perdu", actor=None, organisation=sc.distributor)
    again = digital.digital_pass_send(
        booklet=dp.booklet, phone="06 98 76 54 32", email="", organisation=sc.distributor, actor=None
    )
    DigitalPass.objects.filter(pk=again.pk).update(created_at=timezone.now() - dt.timedelta(days=AFTER + 1))
    _clear()
    assert nudges_send(today=days_later(AFTER + 1)).sent == 0
    assert sms.MemoryBackend.outbox == []


def test_the_database_allows_one_nudge_per_pass_and_per_booklet(sc):
    dp = give_pass(sc)
    Nudge.objects.create(digital_pass=dp, booklet=dp.booklet, channel="sms", messages=1)
    with pytest.raises(IntegrityError), transaction.atomic():
        Nudge.objects.create(digital_pass=dp, booklet=dp.booklet, channel="email", messages=1)
    digital.digital_pass_revoke(booklet=dp.booklet, reason="Téléphone perdu", actor=None, organisation=sc.distributor)
    again = digital.digital_pass_send(booklet=dp.booklet, email=EMAIL, organisation=sc.distributor, actor=None)
    with pytest.raises(IntegrityError), transaction.atomic():
        Nudge.objects.create(digital_pass=again, booklet=dp.booklet, channel="email", messages=1)
    third = give_pass(sc)
    with pytest.raises(IntegrityError), transaction.atomic():
        Nudge.objects.create(digital_pass=third, booklet=third.booklet, channel="fax", messages=1)
    with pytest.raises(IntegrityError), transaction.atomic():
        Nudge.objects.create(digital_pass=third, booklet=third.booklet, channel="sms", messages=0)


def test_a_failed_sms_is_reported_and_retried_the_next_day(sc, settings):
    dp = give_pass(sc, email="")
    _clear()
    settings.SMS_BACKEND = "tests.nudges.test_reminders.FailingSms"
    report = nudges_send(today=days_later(AFTER))
    assert report.failed == 1 and report.sent == 0
    assert "  Envois en échec, retentés au prochain passage : 1." in report.lines()
    assert not Nudge.objects.exists() and not JournalEntry.objects.filter(action="nudge.send").exists()
    settings.SMS_BACKEND = "passnum.common.sms.MemoryBackend"
    assert nudges_send(today=days_later(AFTER + 1)).sent == 1
    assert [to for to, _ in sms.MemoryBackend.outbox] == [PHONE_E164]
    assert Nudge.objects.get().digital_pass_id == dp.pk


def test_when_the_sms_fails_the_email_still_goes(sc, settings):
    give_pass(sc)
    other = give_pass(sc, email="")
    _clear()
    settings.SMS_BACKEND = "tests.nudges.test_reminders.FailingSms"
    report = nudges_send(today=days_later(AFTER))  # the first pass fails on SMS only, the second entirely
    assert report.sent == 1 and report.failed == 1 and report.emails == 1 and report.sms == 0
    nudge = Nudge.objects.get()
    assert (nudge.channel, nudge.messages) == ("email", 1)
    assert not Nudge.objects.filter(digital_pass=other).exists()


def test_a_mail_server_failure_does_not_stop_the_run(sc):
    give_pass(sc, phone="")
    give_pass(sc, email="")
    _clear()
    with override_settings(EMAIL_BACKEND="tests.nudges.test_reminders.BrokenMail"):
        report = nudges_send(today=days_later(AFTER))
    assert report.failed == 1 and report.sent == 1 and len(sms.MemoryBackend.outbox) == 1


class BrokenMail:
    def __init__(self, *args, **kwargs):
        pass

    def send_messages(self, messages):
        raise ConnectionRefusedError("SMTP down")


def test_unreadable_contact_is_reported(sc):
    dp = give_pass(sc)
    DigitalPass.objects.filter(pk=dp.pk).update(reminder_contact="gAAAA-not-a-token")
    report = nudges_send(today=days_later(AFTER))
    assert report.unreadable == 1 and report.sent == 0


def test_dry_run_sends_and_records_nothing(sc):
    give_pass(sc)
    _clear()
    report = nudges_send(today=days_later(AFTER), dry_run=True)
    assert report.sent == 1 and report.sms == 1 and report.emails == 1
    assert report.lines()[0].startswith("[simulation] ")
    assert sms.MemoryBackend.outbox == [] and mail.outbox == [] and not Nudge.objects.exists()


def test_candidates_exclude_other_states_at_once(sc):
    due = give_pass(sc)
    give_pass(sc, consent=False)
    used = give_pass(sc)
    redeem(raw_code=used.booklet.vouchers.order_by("position")[0].code, desk=Desk(place=sc.place), service=T)
    assert [p.pk for p in nudges_due(today=days_later(AFTER))] == [due.pk]
    assert nudges_due(today=days_later(AFTER)).first().unused == 10


# --- the command -------------------------------------------------------------------------------------------


def test_command_prints_a_french_report_and_is_idempotent(sc):
    give_pass(sc)
    give_pass(sc, site=False)
    _clear()
    out = io.StringIO()
    call_command("nudge", "--today", days_later(AFTER).isoformat(), "--dry-run", stdout=out)
    assert "[simulation] Relances du" in out.getvalue() and "2 personne(s) à relancer" in out.getvalue()
    assert mail.outbox == []
    out = io.StringIO()
    call_command("nudge", "--today", days_later(AFTER).isoformat(), stdout=out)
    text = out.getvalue()
    assert "2 personne(s) relancée(s)" in text
    assert "2 SMS, 2 courriel(s) ; lieu conseillé nommé : 1, carte des lieux : 1." in text
    assert f"Dispositif n° {sc.program.pk} : 2 personne(s)." in text
    assert PHONE_E164 not in text and EMAIL not in text
    out = io.StringIO()
    call_command("nudge", "--today", days_later(AFTER).isoformat(), stdout=out)
    assert "0 personne(s) relancée(s)" in out.getvalue()
    assert len(mail.outbox) == 2


def test_command_refuses_a_bad_date():
    with pytest.raises(CommandError, match="Date invalide"):
        call_command("nudge", "--today", "22/03/2026")


# --- opting out --------------------------------------------------------------------------------------------


def test_opt_out_erases_the_contact_withdraws_consent_and_is_journaled(sc):
    dp = give_pass(sc)
    beneficiary = dp.booklet.beneficiary
    assert beneficiary.consent_reminders
    assert reminders_opt_out(digital_pass=dp) is True
    dp.refresh_from_db()
    beneficiary.refresh_from_db()
    assert dp.reminder_contact == "" and beneficiary.consent_reminders is False
    entry = JournalEntry.objects.get(action="reminders.opt_out")
    assert entry.object_id == str(dp.pk) and entry.organisation_id == sc.distributor.pk
    assert entry.data == {"booklet": dp.booklet_id, "contacts_erased": 1, "consent_withdrawn": True, "source": "wallet"}
    assert reminders_opt_out(digital_pass=dp) is False  # twice: nothing more
    assert JournalEntry.objects.filter(action="reminders.opt_out").count() == 1


def test_after_opt_out_no_nudge_and_no_expiry_alert(sc):
    dp = give_pass(sc)
    reminders_opt_out(digital_pass=dp)
    _clear()
    assert nudges_send(today=days_later(AFTER)).sent == 0
    report = expiry_alerts(today=sc.program.valid_until - dt.timedelta(days=30))
    assert [a for a in report.sent if a.target == "pass"] == []
    assert not ExpiryAlert.objects.filter(digital_pass=dp).exists()
    assert sms.MemoryBackend.outbox == [] and EMAIL not in [m.to[0] for m in mail.outbox]


def test_opt_out_covers_every_active_pass_of_the_person(sc):
    dp = give_pass(sc)
    beneficiary = dp.booklet.beneficiary
    second = give_pass(sc)
    second.booklet.__class__.objects.filter(pk=second.booklet_id).update(beneficiary=beneficiary)
    stranger = give_pass(sc)
    reminders_opt_out(digital_pass=dp)
    assert set(DigitalPass.objects.exclude(reminder_contact="").values_list("pk", flat=True)) == {stranger.pk}
    assert Beneficiary.objects.get(pk=stranger.booklet.beneficiary_id).consent_reminders is True


def test_a_later_pass_for_the_person_keeps_no_contact(sc):
    dp = give_pass(sc)
    reminders_opt_out(digital_pass=dp)
    digital.digital_pass_revoke(booklet=dp.booklet, reason="Téléphone perdu", actor=None, organisation=sc.distributor)
    again = digital.digital_pass_send(booklet=dp.booklet, email=EMAIL, organisation=sc.distributor, actor=None)
    assert again.reminder_contact == ""  # follows the withdrawn consent of the person's record


def test_the_job_rereads_under_lock_a_pass_opted_out_since_it_was_read(sc):
    """The job reads its candidates, then the person opts out before their turn: nothing is sent."""
    dp = give_pass(sc)
    stale = nudges_due(today=days_later(AFTER)).get()
    reminders_opt_out(digital_pass=dp)
    _clear()
    report = NudgeReport(today=days_later(AFTER), after_days=AFTER)
    _nudge_one(stale, days_later(AFTER), report)
    assert report.sent == 0 and report.skipped == 1 and sms.MemoryBackend.outbox == [] and mail.outbox == []
    assert not Nudge.objects.exists()
