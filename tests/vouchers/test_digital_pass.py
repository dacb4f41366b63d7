"""Digital passes: sending the link (SMS, e-mail, both), the hand-out it implies, one active pass per booklet,
revoking, token hashing, masked hints, refusals, and a journal without personal data."""

import hashlib
import json
import re

import pytest
from django.core import mail
from django.db import IntegrityError, transaction
from django.utils import timezone

from passnum.common import sms
from passnum.common.errors import DomainError
from passnum.journal.models import JournalEntry
from passnum.vouchers import digital, signing
from passnum.vouchers.enums import VoucherStatus
from passnum.vouchers.models import DigitalPass, VoucherStatusLog
from passnum.vouchers.services import booklet_allocate, booklet_hand_out, booklets_issue
from tests.factories import OrganisationFactory, member_of

pytestmark = pytest.mark.django_db
S = VoucherStatus
PUBLIC_URL = "https://pass-numerique.exemple.fr"
PHONE = "06 12 34 56 78"
EMAIL = "Camille.Martin@Exemple.FR"


@pytest.fixture(autouse=True)
def _setup(tmp_path, settings):
    settings.PASSNUM_SIGNING_KEYS_DIR = tmp_path / "keys"
    settings.PASSNUM_PUBLIC_URL = PUBLIC_URL
    settings.SMS_BACKEND = "passnum.common.sms.MemoryBackend"
    signing.load_keys.cache_clear()
    sms.MemoryBackend.outbox.clear()
    yield
    sms.MemoryBackend.outbox.clear()
    signing.load_keys.cache_clear()


@pytest.fixture
def distributor():
    return OrganisationFactory(distributor=True, name="CCAS de Reims")


@pytest.fixture
def agent(distributor):
    return member_of(distributor, admin=False)


@pytest.fixture
def booklet(program, distributor):
    return booklet_allocate(booklet=booklets_issue(program=program, count=1).first(), distributor=distributor)


def send(booklet, agent, distributor, **contact):
    return digital.digital_pass_send(booklet=booklet, actor=agent, organisation=distributor, **contact)


def token_from(text: str) -> str:
    return re.search(re.escape(PUBLIC_URL) + r"/pass/([A-Za-z0-9_-]+)/", text).group(1)


# --- sending ----------------------------------------------------------------------------------------------------


def test_send_by_sms_hands_out_the_booklet_and_texts_the_link(booklet, agent, distributor):
    assert booklet.handed_out_at is None
    digital_pass = send(booklet, agent, distributor, phone=PHONE)

    assert digital_pass.channel == "sms"
    assert digital_pass.recipient_hint == "06 •• •• •• 78"
    assert digital_pass.created_by == agent and digital_pass.organisation == distributor
    booklet.refresh_from_db()
    assert booklet.handed_out_at is not None
    assert set(booklet.vouchers.values_list("status", flat=True)) == {S.DISTRIBUTED}
    assert VoucherStatusLog.objects.filter(voucher__booklet=booklet, to_status=S.DISTRIBUTED).count() == 10

    [(to, text)] = sms.MemoryBackend.outbox
    assert to == "+33612345678"
    token = token_from(text)
    assert text == f"Vos chèques du pass numérique : {PUBLIC_URL}/pass/{token}/ Gardez ce lien pour vous."
    assert sms.is_gsm7(text) and sms.gsm7_length(text) <= 160
    assert digital.digital_pass_get(token=token) == digital_pass
    assert mail.outbox == []


def test_send_by_email_after_commit(booklet, agent, distributor, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        digital_pass = send(booklet, agent, distributor, email=EMAIL)
    assert len(callbacks) == 1
    assert digital_pass.channel == "email"
    assert digital_pass.recipient_hint == "C•••@exemple.fr"
    [message] = mail.outbox
    assert message.to == ["Camille.Martin@exemple.fr"]
    assert message.subject == "Votre pass numérique : vos chèques et leurs QR codes"
    token = token_from(message.body)
    assert digital.digital_pass_get(token=token) == digital_pass
    assert booklet.program.name in message.body
    assert sms.MemoryBackend.outbox == []


def test_no_email_when_the_transaction_rolls_back(booklet, agent, distributor, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(RuntimeError), transaction.atomic():
        send(booklet, agent, distributor, email=EMAIL)
        raise RuntimeError("rollback")
    assert mail.outbox == []
    assert not DigitalPass.objects.exists()


def test_send_by_both_uses_one_token(booklet, agent, distributor, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        digital_pass = send(booklet, agent, distributor, phone="+33 7 00 11 22 33", email="c@exemple.fr")
    assert digital_pass.channel == "both"
    assert digital_pass.recipient_hint == "07 •• •• •• 33 et c•••@exemple.fr"
    [(to, text)] = sms.MemoryBackend.outbox
    assert to == "+33700112233"
    assert token_from(text) == token_from(mail.outbox[0].body)


def test_an_already_handed_out_booklet_is_not_handed_out_again(booklet, agent, distributor):
    booklet_hand_out(booklet=booklet, organisation=distributor)
    handed_out_at = type(booklet).objects.get(pk=booklet.pk).handed_out_at
    send(booklet, agent, distributor, phone=PHONE)
    booklet.refresh_from_db()
    assert booklet.handed_out_at == handed_out_at
    assert JournalEntry.objects.filter(action="booklet.hand_out").count() == 1


def test_only_the_hash_of_the_token_is_stored(booklet, agent, distributor):
    digital_pass = send(booklet, agent, distributor, phone=PHONE)
    token = token_from(sms.MemoryBackend.outbox[0][1])
    assert len(token) >= 43  # 32 random bytes
    assert digital_pass.token_hash == hashlib.sha256(token.encode()).hexdigest()
    row = DigitalPass.objects.filter(pk=digital_pass.pk).values().get()
    assert token not in json.dumps(row, default=str)
    assert "12 34 56" not in json.dumps(row, default=str) and "612345678" not in json.dumps(row, default=str)


def test_tokens_are_unguessable_and_distinct(program, agent, distributor):
    tokens = set()
    for booklet in booklets_issue(program=program, count=3):
        booklet_allocate(booklet=booklet, distributor=distributor)
        send(booklet, agent, distributor, phone=PHONE)
        tokens.add(token_from(sms.MemoryBackend.outbox[-1][1]))
    assert len(tokens) == 3


def test_lookup_refuses_unknown_malformed_and_revoked_tokens(booklet, agent, distributor):
    send(booklet, agent, distributor, phone=PHONE)
    token = token_from(sms.MemoryBackend.outbox[0][1])
    assert digital.digital_pass_get(token="x" * 43) is None
    assert digital.digital_pass_get(token="") is None
    assert digital.digital_pass_get(token=token + "x" * 200) is None
    digital.digital_pass_revoke(booklet=booklet, reason="Téléphone perdu", actor=agent, organisation=distributor)
    assert digital.digital_pass_get(token=token) is None


# --- one active pass; revoke then resend ----------------------------------------------------------------------


def test_a_second_pass_is_refused_while_one_is_active(booklet, agent, distributor):
    send(booklet, agent, distributor, phone=PHONE)
    with pytest.raises(DomainError) as exc:
        send(booklet, agent, distributor, email=EMAIL)
    assert exc.value.code == "digital_pass_active"
    assert "Révoquez-le d’abord" in exc.value.message and "06 •• •• •• 78" in exc.value.message
    assert DigitalPass.objects.count() == 1
    assert len(sms.MemoryBackend.outbox) == 1


def test_revoke_then_send_a_new_link(booklet, agent, distributor):
    first = send(booklet, agent, distributor, phone=PHONE)
    old_token = token_from(sms.MemoryBackend.outbox[0][1])
    revoked = digital.digital_pass_revoke(
        booklet=booklet, reason="  Téléphone perdu  ", actor=agent, organisation=distributor
    )
    assert revoked.pk == first.pk
    assert revoked.revoked_at is not None and revoked.revoked_reason == "Téléphone perdu"

    second = send(booklet, agent, distributor, phone="07 98 76 54 32")
    new_token = token_from(sms.MemoryBackend.outbox[1][1])
    assert second.pk != first.pk and new_token != old_token
    assert digital.digital_pass_get(token=old_token) is None
    assert digital.digital_pass_get(token=new_token) == second
    assert digital.digital_pass_current(booklet=booklet) == second
    assert set(booklet.vouchers.values_list("status", flat=True)) == {S.DISTRIBUTED}  # vouchers unchanged


def test_revoke_needs_a_reason_and_an_active_pass(booklet, agent, distributor):
    with pytest.raises(DomainError) as exc:
        digital.digital_pass_revoke(booklet=booklet, reason="Perdu", actor=agent, organisation=distributor)
    assert exc.value.code == "digital_pass_none"
    send(booklet, agent, distributor, phone=PHONE)
    with pytest.raises(DomainError) as exc:
        digital.digital_pass_revoke(booklet=booklet, reason="   ", actor=agent, organisation=distributor)
    assert exc.value.code == "reason_required"
    assert digital.digital_pass_current(booklet=booklet) is not None


def test_database_allows_one_active_pass_per_booklet(booklet, agent, distributor):
    send(booklet, agent, distributor, phone=PHONE)
    with pytest.raises(IntegrityError), transaction.atomic():
        DigitalPass.objects.create(
            booklet=booklet, token_hash="0" * 64, channel="sms", recipient_hint="x", organisation=distributor
        )


@pytest.mark.parametrize(
    ("revoked_at", "reason"),
    [(None, "Téléphone perdu"), (timezone.now(), "")],
    ids=["reason-without-date", "date-without-reason"],
)
def test_database_ties_revocation_date_and_reason(booklet, distributor, revoked_at, reason):
    with pytest.raises(IntegrityError), transaction.atomic():
        DigitalPass.objects.create(
            booklet=booklet,
            token_hash="1" * 64,
            channel="sms",
            recipient_hint="x",
            organisation=distributor,
            revoked_at=revoked_at,
            revoked_reason=reason,
        )


# --- refusals --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("contact", "code"),
    [
        ({}, "contact_required"),
        ({"phone": "   ", "email": ""}, "contact_required"),
        ({"phone": "03 26 12 34 56"}, "phone_invalid"),  # a landline
        ({"phone": "06 12 34 56"}, "phone_invalid"),
        ({"phone": "+44 7700 900123"}, "phone_not_french"),
        ({"phone": "+590 6 12 34 56 78"}, "phone_invalid"),  # not a Guadeloupe mobile
        ({"phone": "06 12 34 56 7a"}, "phone_invalid"),
        ({"email": "camille@"}, "email_invalid"),
        ({"email": "pas une adresse"}, "email_invalid"),
        ({"phone": PHONE, "email": "x@y"}, "email_invalid"),
    ],
)
def test_bad_contacts_are_refused_and_nothing_changes(booklet, agent, distributor, contact, code):
    with pytest.raises(DomainError) as exc:
        send(booklet, agent, distributor, **contact)
    assert exc.value.code == code
    assert exc.value.message  # French, for the form
    booklet.refresh_from_db()
    assert booklet.handed_out_at is None
    assert not DigitalPass.objects.exists()
    assert sms.MemoryBackend.outbox == []


def test_an_outsider_distributor_is_refused(booklet, agent):
    other = OrganisationFactory(distributor=True)
    with pytest.raises(DomainError) as exc:
        digital.digital_pass_send(booklet=booklet, phone=PHONE, actor=agent, organisation=other)
    assert exc.value.code == "booklet_not_in_stock"
    send(booklet, agent, booklet.distributor, phone=PHONE)
    with pytest.raises(DomainError) as exc:
        digital.digital_pass_revoke(booklet=booklet, reason="Perdu", actor=agent, organisation=other)
    assert exc.value.code == "booklet_not_in_stock"
    assert digital.digital_pass_current(booklet=booklet) is not None


def test_a_booklet_in_no_stock_is_refused(program, agent, distributor):
    booklet = booklets_issue(program=program, count=1).first()
    with pytest.raises(DomainError) as exc:
        send(booklet, agent, distributor, phone=PHONE)
    assert exc.value.code == "booklet_not_in_stock"


def test_an_sms_refused_by_the_provider_keeps_nothing(booklet, agent, distributor, settings):
    settings.SMS_BACKEND = "passnum.common.sms.BrevoBackend"
    settings.BREVO_API_KEY = ""  # not configured: the backend refuses before any request
    with pytest.raises(DomainError) as exc:
        send(booklet, agent, distributor, phone=PHONE)
    assert exc.value.code == "sms_not_configured"
    assert exc.value.message.startswith("Le SMS n’a pas pu être envoyé")
    booklet.refresh_from_db()
    assert booklet.handed_out_at is None
    assert not DigitalPass.objects.exists()
    assert not JournalEntry.objects.filter(action__startswith="digital_pass").exists()


# --- phone numbers and hints -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "e164"),
    [
        ("06 12 34 56 78", "+33612345678"),
        ("06.12.34.56.78", "+33612345678"),
        ("07-12-34-56-78", "+33712345678"),
        ("+33 6 12 34 56 78", "+33612345678"),
        ("+33 (0)6 12 34 56 78", "+33612345678"),
        ("0033612345678", "+33612345678"),
        ("0690 12 34 56", "+590690123456"),  # Guadeloupe
        ("+590 690 12 34 56", "+590690123456"),
        ("0694 12 34 56", "+594694123456"),  # Guyane
        ("0696 12 34 56", "+596696123456"),  # Martinique
        ("0692 12 34 56", "+262692123456"),  # La Réunion
        ("0639 12 34 56", "+262639123456"),  # Mayotte
        ("+262 639 12 34 56", "+262639123456"),
    ],
)
def test_phone_numbers_normalise_to_e164(raw, e164):
    assert digital.normalise_phone(raw) == e164


@pytest.mark.parametrize(
    ("e164", "hint"),
    [("+33612345678", "06 •• •• •• 78"), ("+590690123456", "06 •• •• •• 56"), ("+262639123456", "06 •• •• •• 56")],
)
def test_phone_hints_are_masked(e164, hint):
    assert digital.mask_phone_hint(e164) == hint


def test_email_hints_are_masked():
    assert digital.mask_email_hint("camille.martin@exemple.fr") == "c•••@exemple.fr"


# --- the journal -----------------------------------------------------------------------------------------------


def test_journal_records_send_and_revoke_without_personal_data(booklet, agent, distributor):
    send(booklet, agent, distributor, phone=PHONE, email=EMAIL)
    digital.digital_pass_revoke(booklet=booklet, reason="Téléphone perdu", actor=agent, organisation=distributor)
    sent = JournalEntry.objects.get(action="digital_pass.send")
    revoked = JournalEntry.objects.get(action="digital_pass.revoke")
    assert sent.data == {"booklet": booklet.pk, "channel": "both"}
    assert revoked.data == {"booklet": booklet.pk, "reason": "Téléphone perdu"}
    for entry in (sent, revoked):
        assert entry.actor == agent and entry.organisation == distributor
        assert entry.object_type == "vouchers.digitalpass"
        dumped = json.dumps(entry.data, ensure_ascii=False).lower()
        for personal in ("612345678", "camille", "exemple.fr", "••"):
            assert personal not in dumped
