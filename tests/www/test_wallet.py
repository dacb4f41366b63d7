"""The wallet page (public, the token is the credential) and the distributor's pages to send and revoke the link,
through Django's test client."""

import datetime as dt
import re

import pytest
from django.core import mail
from django.core.cache import cache
from django.urls import reverse
from django.utils import timezone

from passnum.common import sms
from passnum.common.standard import Service
from passnum.journal.models import JournalEntry
from passnum.vouchers import codes, digital, signing
from passnum.vouchers.enums import VoucherStatus
from passnum.vouchers.models import DigitalPass
from passnum.vouchers.services import booklet_allocate, booklets_issue, voucher_redeem
from passnum.www.wallet import WALLET_RATE
from tests.factories import OrganisationFactory, ProgramFactory, member_of

pytestmark = pytest.mark.django_db
S = VoucherStatus
PUBLIC_URL = "https://pass-numerique.exemple.fr"


@pytest.fixture(autouse=True)
def _setup(tmp_path, settings):
    settings.PASSNUM_SIGNING_KEYS_DIR = tmp_path / "keys"
    settings.PASSNUM_PUBLIC_URL = PUBLIC_URL
    settings.SMS_BACKEND = "passnum.common.sms.MemoryBackend"
    signing.load_keys.cache_clear()
    sms.MemoryBackend.outbox.clear()
    cache.clear()  # the rate limiter counts in the (per-process) LocMem cache
    yield
    cache.clear()
    sms.MemoryBackend.outbox.clear()
    signing.load_keys.cache_clear()


@pytest.fixture
def distributor():
    return OrganisationFactory(distributor=True, name="CCAS de Reims")


@pytest.fixture
def agent(distributor):
    return member_of(distributor, admin=False, first_name="Dominique", last_name="Agent")


@pytest.fixture
def booklet(program, distributor):
    return booklet_allocate(booklet=booklets_issue(program=program, count=1).first(), distributor=distributor)


@pytest.fixture
def token(booklet, agent, distributor):
    digital.digital_pass_send(booklet=booklet, phone="06 12 34 56 78", actor=agent, organisation=distributor)
    return re.search(r"/pass/([A-Za-z0-9_-]+)/", sms.MemoryBackend.outbox[-1][1]).group(1)


def wallet_url(token):
    return reverse("www:wallet", args=[token])


def text(response) -> str:
    return response.content.decode()


def assert_private_headers(response):
    assert response["Cache-Control"] == "no-store"
    assert response["Referrer-Policy"] == "no-referrer"
    assert "noindex" in response["X-Robots-Tag"]


# --- the wallet ----------------------------------------------------------------------------------------------


def test_wallet_shows_codes_qr_codes_and_what_is_left(client, program, booklet, token):
    vouchers = list(booklet.vouchers.order_by("position"))
    voucher_redeem(voucher=vouchers[0], place=OrganisationFactory(place=True), service=Service.EVERYDAY_TOOLS)

    response = client.get(wallet_url(token))
    assert response.status_code == 200
    assert_private_headers(response)
    page = text(response)
    assert program.name in page
    assert "9 sur 10, soit 90,00" in page
    for v in vouchers:
        assert codes.display(v.code) in page
    # A QR code for each usable voucher, named for screen readers; the used one has none.
    svgs = re.findall(r"<svg [^>]*>", page)
    qr = [s for s in svgs if "QR code du chèque" in s]
    assert len(qr) == 9
    assert all('role="img"' in s for s in qr)
    assert f'aria-label="QR code du chèque {codes.display(vouchers[1].code)}"' in page
    assert f"QR code du chèque {codes.display(vouchers[0].code)}" not in page
    today = timezone.localdate()
    assert f"Utilisé le {today.day if today.day > 1 else '1er'} " in page
    assert "Utilisable" in page
    # Validity, grace, services and the finder.
    assert program.valid_until.strftime("%Y") in page and "délai de grâce" in page
    assert f'action="{reverse("www:finder")}"' in page
    assert 'name="services" value="outils_du_quotidien"' in page


def test_the_qr_codes_carry_signed_payloads(client, booklet, token):
    segno = pytest.importorskip("segno")
    voucher = booklet.vouchers.order_by("position").first()
    payload = signing.sign_code(voucher.code)  # Ed25519 is deterministic: the same payload as on the page
    expected = segno.make(payload, error="m").svg_inline(scale=4, dark="#000", light="#fff")
    path = re.search(r'd="(M[^"]+)"', expected.split('class="qrline"', 1)[1]).group(1)
    assert path in text(client.get(wallet_url(token)))
    assert signing.verify_payload(payload) == voucher.code


def test_wallet_shows_nothing_personal(client, booklet, token, agent, distributor):
    page = text(client.get(wallet_url(token)))
    for personal in ("06 12 34 56 78", "612345678", "06 •• •• •• 78", distributor.name, agent.email, "Dominique"):
        assert personal not in page


def test_revoked_and_unknown_links_are_404(client, booklet, token, agent, distributor):
    response = client.get(wallet_url("x" * 43))
    assert response.status_code == 404
    assert_private_headers(response)
    assert "Ce lien n’est plus valable : demandez un nouveau lien à la structure qui vous a remis le pass" in text(
        response
    )

    digital.digital_pass_revoke(booklet=booklet, reason="Téléphone perdu", actor=agent, organisation=distributor)
    response = client.get(wallet_url(token))
    assert response.status_code == 404
    assert "Ce lien n’est plus valable" in text(response)
    assert codes.display(booklet.vouchers.first().code) not in text(response)


def test_wallet_of_a_program_that_is_over(client, distributor, agent):
    today = timezone.localdate()
    program = ProgramFactory(valid_from=today - dt.timedelta(days=800), valid_until=today - dt.timedelta(days=400))
    booklet = booklet_allocate(booklet=booklets_issue(program=program, count=1).first(), distributor=distributor)
    digital.digital_pass_send(booklet=booklet, phone="0612345678", actor=agent, organisation=distributor)
    token = re.search(r"/pass/([A-Za-z0-9_-]+)/", sms.MemoryBackend.outbox[-1][1]).group(1)
    assert "Ce pass n’est plus valable" in text(client.get(wallet_url(token)))


def test_unknown_links_are_rate_limited_per_address(client, token):
    limit, window = WALLET_RATE
    for i in range(limit):
        assert client.get(wallet_url(f"inconnu{i:036d}")).status_code == 404
    response = client.get(wallet_url("inconnu-de-trop"))
    assert response.status_code == 429
    assert_private_headers(response)
    assert 0 < int(response["Retry-After"]) <= window
    assert "Trop de liens non valables" in text(response)
    # Past the limit, even a good link is refused from that address: a hit would otherwise stand out.
    assert client.get(wallet_url(token)).status_code == 429
    # Another address is not affected.
    assert client.get(wallet_url(token), REMOTE_ADDR="198.51.100.7").status_code == 200


def test_good_links_do_not_count(client, token):
    for _ in range(WALLET_RATE[0] + 5):
        assert client.get(wallet_url(token)).status_code == 200


def test_wallet_is_get_only(client, token):
    assert client.post(wallet_url(token)).status_code == 405


# --- the distributor's pages ---------------------------------------------------------------------------------


def send_url(booklet):
    return reverse("www:digital_pass_send", args=[booklet.pk])


def revoke_url(booklet):
    return reverse("www:digital_pass_revoke", args=[booklet.pk])


def test_distributor_sends_by_email_then_revokes_and_resends(
    client, booklet, agent, django_capture_on_commit_callbacks
):
    client.force_login(agent)
    page = client.get(send_url(booklet))
    assert page.status_code == 200
    assert "La personne accepte de recevoir ce lien" in text(page)
    assert "Carnet en stock" in text(page)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            send_url(booklet), {"phone": "", "email": "camille@exemple.fr", "consent": "on"}, follow=True
        )
    assert response.redirect_chain == [(send_url(booklet), 302)]
    page = text(response)
    assert "Lien du pass numérique envoyé par courriel à c•••@exemple.fr" in page
    assert "Un lien est actif" in page and "Révoquer le lien" in page
    [message] = mail.outbox
    assert message.to == ["camille@exemple.fr"]
    assert client.get(re.search(r"https?://[^/]+(/pass/[^/\s]+/)", message.body).group(1)).status_code == 200
    assert "camille@exemple.fr" not in text(client.get(send_url(booklet)))

    response = client.post(revoke_url(booklet), {"reason": "Adresse erronée"}, follow=True)
    assert "Lien révoqué" in text(response)
    assert "Adresse erronée" in text(response)  # the history of revoked links
    assert digital.digital_pass_current(booklet=booklet) is None

    response = client.post(send_url(booklet), {"phone": "07 11 22 33 44", "consent": "on"}, follow=True)
    assert "envoyé par SMS à 07 •• •• •• 44" in text(response)
    assert sms.MemoryBackend.outbox[-1][0] == "+33711223344"


def test_reminder_contact_is_kept_encrypted_only_with_consent(client, booklet, agent, token):
    from passnum.vouchers.models import DigitalPass

    client.force_login(agent)
    client.post(revoke_url(booklet), {"reason": "Nouveau numéro"})
    assert "un rappel avant la fin de validité" in text(client.get(send_url(booklet)))
    client.post(send_url(booklet), {"phone": "07 11 22 33 44", "consent": "on"})
    assert DigitalPass.objects.filter(revoked_at=None).get().reminder_contact == ""
    client.post(revoke_url(booklet), {"reason": "Avec rappel cette fois"})
    client.post(send_url(booklet), {"phone": "07 11 22 33 44", "consent": "on", "reminders": "on"})
    sealed = DigitalPass.objects.filter(revoked_at=None).get().reminder_contact
    assert sealed and "711223344" not in sealed
    assert digital.contact_open(sealed)[0] == "+33711223344"


def test_send_form_errors(client, booklet, agent):
    client.force_login(agent)
    response = client.post(send_url(booklet), {"phone": "06 12", "email": "", "consent": "on"})
    assert response.status_code == 200
    page = text(response)
    assert "<title>Erreur : " in page
    assert "pas un numéro de portable français" in page
    assert not DigitalPass.objects.exists()

    response = client.post(send_url(booklet), {"phone": "", "email": ""})
    page = text(response)
    assert "Indiquez un numéro de portable, une adresse électronique, ou les deux." in page
    assert "Le lien ne peut être envoyé qu’avec l’accord de la personne." in page

    response = client.post(send_url(booklet), {"phone": "06 12 34 56 78"})  # no consent
    assert "accord de la personne" in text(response)
    assert not DigitalPass.objects.exists() and sms.MemoryBackend.outbox == []


def test_second_send_is_refused_with_the_message(client, booklet, agent, token):
    client.force_login(agent)
    response = client.post(send_url(booklet), {"email": "c@exemple.fr", "consent": "on"})
    assert response.status_code == 200
    assert "Révoquez-le d’abord" in text(response)
    assert DigitalPass.objects.count() == 1


def test_revoke_needs_a_reason(client, booklet, agent, token):
    client.force_login(agent)
    response = client.post(revoke_url(booklet), {"reason": "  "})
    assert response.status_code == 200
    assert "Indiquez le motif de la révocation." in text(response)
    assert digital.digital_pass_current(booklet=booklet) is not None
    assert client.get(revoke_url(booklet)).status_code == 405


def test_outsider_distributor_gets_404(client, booklet, token):
    outsider = member_of(OrganisationFactory(distributor=True))
    client.force_login(outsider)
    assert client.get(send_url(booklet)).status_code == 404
    assert client.post(send_url(booklet), {"phone": "0612345678", "consent": "on"}).status_code == 404
    assert client.post(revoke_url(booklet), {"reason": "Perdu"}).status_code == 404
    assert digital.digital_pass_current(booklet=booklet) is not None
    assert not JournalEntry.objects.filter(action="digital_pass.revoke").exists()


@pytest.mark.parametrize("kind", ["funder", "place"])
def test_other_kinds_get_403(client, booklet, kind):
    client.force_login(member_of(OrganisationFactory(**{kind: True})))
    assert client.get(send_url(booklet)).status_code == 403
    assert client.post(revoke_url(booklet), {"reason": "Perdu"}).status_code == 403


def test_the_booklets_funder_gets_403(client, program, booklet, funder):
    client.force_login(member_of(funder))
    assert client.get(send_url(booklet)).status_code == 403


def test_anonymous_is_sent_to_login(client, booklet):
    for response in (client.get(send_url(booklet)), client.post(revoke_url(booklet), {"reason": "Perdu"})):
        assert response.status_code == 302 and response.url.startswith(reverse("www:login"))


def test_unknown_booklet_is_404(client, agent):
    client.force_login(agent)
    assert client.get(reverse("www:digital_pass_send", args=[999_999])).status_code == 404
