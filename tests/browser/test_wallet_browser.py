"""The digital pass in Chromium: a distributor sends the link by e-mail; the person opens it on a phone and sees
the codes and QR codes. Every page is checked by axe-core at desktop width and at 320 px (`assert_accessible`)."""

import re

import pytest
from django.core import mail
from django.core.cache import cache

from passnum.common import sms
from passnum.vouchers import codes, signing
from passnum.vouchers.models import DigitalPass
from passnum.vouchers.services import booklet_allocate, booklets_issue
from tests.browser.conftest import TIMEOUT_MS, assert_accessible, assert_no_horizontal_scroll, chromium_missing, in_ci
from tests.browser.conftest import login as log_in
from tests.factories import OrganisationFactory, member_of

if chromium_missing() and not in_ci():
    pytest.skip(f"Tests de navigateur ignorés : {chromium_missing()}", allow_module_level=True)

from playwright.sync_api import expect  # noqa: E402 — only once Playwright is known to be there

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]

PHONE = {"width": 375, "height": 667}


@pytest.fixture(autouse=True)
def _setup(settings, tmp_path, live_server):
    settings.PASSNUM_SIGNING_KEYS_DIR = tmp_path / "keys"
    settings.PASSNUM_PUBLIC_URL = live_server.url
    settings.SMS_BACKEND = "passnum.common.sms.MemoryBackend"
    signing.load_keys.cache_clear()
    sms.MemoryBackend.outbox.clear()
    cache.clear()
    yield
    cache.clear()
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


def tick(page, label):
    """A DSFR checkbox is drawn by its label, which takes the click (as it does for a person)."""
    box = page.get_by_label(label, exact=True)
    if not box.is_checked():
        page.locator(f"label[for='{box.get_attribute('id')}']").click()
    expect(box).to_be_checked()


@pytest.fixture
def phone(browser, live_server):
    """The person's phone: a 375 px wide touch screen, a context of its own (no distributor's session)."""
    context = browser.new_context(
        locale="fr-FR", viewport=PHONE, is_mobile=True, has_touch=True, device_scale_factor=2, base_url=live_server.url
    )
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    context.close()
    assert not errors, "Erreurs JavaScript :\n" + "\n".join(errors)


def test_distributor_emails_the_pass_and_the_person_opens_it_on_a_phone(
    page, phone, live_server, program, booklet, agent
):
    log_in(page, live_server, agent.email)
    page.goto(f"/prescripteur/carnets/{booklet.pk}/pass-numerique/")
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Pass numérique du carnet n° {booklet.number}")
    expect(page.get_by_text("Carnet en stock")).to_be_visible()
    assert_accessible(page)

    # A mistake first: the form says what is wrong, accessibly.
    page.get_by_label(re.compile(r"Numéro de portable")).fill("03 26 00 00 00")
    with page.expect_navigation():
        page.locator("main form").get_by_role("button", name="Envoyer le lien").click()
    expect(page).to_have_title(re.compile(r"^Erreur"))
    expect(page.get_by_text("pas un numéro de portable français")).to_be_visible()
    assert_accessible(page)

    page.get_by_label(re.compile(r"Numéro de portable")).fill("")
    page.get_by_label(re.compile(r"Adresse électronique")).fill("camille@exemple.fr")
    tick(page, "La personne accepte de recevoir ce lien")
    with page.expect_navigation():
        page.locator("main form").get_by_role("button", name="Envoyer le lien").click()
    expect(page.get_by_text("Lien du pass numérique envoyé par courriel à c•••@exemple.fr")).to_be_visible()
    expect(page.get_by_role("heading", name="Un lien est actif")).to_be_visible()
    expect(page.get_by_role("button", name="Révoquer le lien")).to_be_visible()
    assert_accessible(page)

    [message] = mail.outbox
    assert message.to == ["camille@exemple.fr"]
    [link] = re.findall(re.escape(live_server.url) + r"/pass/[A-Za-z0-9_-]+/", message.body)

    phone.goto(link)
    expect(phone.get_by_role("heading", level=1)).to_have_text("Mon pass numérique")
    expect(phone.get_by_text(program.name, exact=True)).to_be_visible()
    expect(phone.locator("#cheques-restants")).to_have_text(re.compile(r"^10 sur 10, soit 100,00"))
    vouchers = list(booklet.vouchers.order_by("position"))
    for voucher in vouchers:
        expect(phone.get_by_text(codes.display(voucher.code), exact=True)).to_be_visible()
    first_qr = phone.get_by_role("img", name=f"QR code du chèque {codes.display(vouchers[0].code)}")
    expect(first_qr).to_be_visible()
    box = first_qr.bounding_box()
    assert box["width"] >= 200 and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
    expect(phone.get_by_role("img", name=re.compile(r"^QR code du chèque "))).to_have_count(len(vouchers))
    expect(phone.get_by_text("CCAS de Reims")).to_have_count(0)
    assert_no_horizontal_scroll(phone)
    assert_accessible(phone)

    # "Where to go": the finder, with the program's services.
    phone.get_by_label(re.compile(r"Commune ou code postal")).fill("Reims")
    with phone.expect_navigation():
        phone.get_by_role("button", name="Trouver un lieu").click()
    assert "/lieux/?" in phone.url and "services=" in phone.url
    expect(phone.get_by_role("heading", level=1)).to_have_text("Trouver un lieu qui accepte le pass numérique")


def test_revoked_link_on_the_phone(page, phone, live_server, booklet, agent):
    log_in(page, live_server, agent.email)
    page.goto(f"/prescripteur/carnets/{booklet.pk}/pass-numerique/")
    page.get_by_label(re.compile(r"Numéro de portable")).fill("06 12 34 56 78")
    tick(page, "La personne accepte de recevoir ce lien")
    with page.expect_navigation():
        page.locator("main form").get_by_role("button", name="Envoyer le lien").click()
    expect(page.get_by_text("envoyé par SMS à 06 •• •• •• 78")).to_be_visible()
    [(to, text)] = sms.MemoryBackend.outbox
    assert to == "+33612345678"
    link = re.search(r"https?://\S+/pass/\S+/", text).group(0)

    page.get_by_label(re.compile(r"Motif de la révocation")).fill("Téléphone perdu")
    with page.expect_navigation():
        page.get_by_role("button", name="Révoquer le lien").click()
    expect(page.get_by_text("Lien révoqué")).to_be_visible()
    expect(page.get_by_role("table", name="Liens révoqués")).to_contain_text("Téléphone perdu")
    assert_accessible(page)
    assert DigitalPass.objects.get().revoked_at is not None

    phone.goto(link)
    expect(phone.get_by_role("heading", level=1)).to_have_text("Ce lien n’est plus valable")
    expect(phone.get_by_text("demandez un nouveau lien à la structure qui vous a remis le pass")).to_be_visible()
    assert_accessible(phone)
