"""The distributor's hand-out journey in Chromium, on a phone-sized screen and at desktop width: choose the
booklet, describe the person, propose places, choose one, deliver on paper or by SMS, and the confirmation; a
refusal shown accessibly. Every page is checked by axe-core at desktop width and at 320 px (`assert_accessible`)."""

import re

import pytest
from django.core.cache import cache

from passnum.common import sms
from passnum.common.standard import Service
from passnum.vouchers import signing
from passnum.vouchers.enums import VoucherStatus
from passnum.vouchers.models import Beneficiary, Booklet, DigitalPass
from tests.browser.conftest import assert_accessible, assert_no_horizontal_scroll, chromium_missing, in_ci
from tests.browser.conftest import login as log_in
from tests.desk.scenario import build

if chromium_missing() and not in_ci():
    pytest.skip(f"Tests de navigateur ignorés : {chromium_missing()}", allow_module_level=True)

from playwright.sync_api import expect  # noqa: E402 — only once Playwright is known to be there

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]

PHONE = {"width": 360, "height": 740}
PICK = "/prescripteur/remettre/"
FIRST_NAME = re.compile(r"^Prénom")  # not the consent box ("… son prénom soit noté")


@pytest.fixture(autouse=True)
def _setup(settings, tmp_path, live_server):
    settings.PASSNUM_SIGNING_KEYS_DIR = tmp_path / "keys"
    settings.MEDIA_ROOT = tmp_path / "media"
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
def sc():
    return build()


def tick(page, label):
    """A DSFR checkbox or radio button is drawn by its label, which takes the click (as it does for a person)."""
    box = page.locator("input[type=checkbox], input[type=radio]").and_(page.get_by_label(label))
    if not box.is_checked():
        page.locator(f"label[for='{box.get_attribute('id')}']").click()
    expect(box).to_be_checked()


def submit(page, button):
    with page.expect_navigation():
        page.get_by_role("button", name=button, exact=True).click()


def test_hand_out_on_paper_on_a_phone(page, live_server, sc):
    booklet = sc.new_booklet(hand_out=False)
    log_in(page, live_server, sc.distributor_user.email)
    page.set_viewport_size(PHONE)

    page.goto(f"{live_server.url}{PICK}")
    expect(page.get_by_role("heading", level=1)).to_have_text("Remettre un carnet")
    assert_accessible(page)
    page.get_by_label("Numéro du carnet ou code d’un chèque").fill(str(booklet.number))
    submit(page, "Choisir ce carnet")
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Remettre le carnet n° {booklet.number}")
    assert_no_horizontal_scroll(page)
    assert_accessible(page)

    page.get_by_label("Année de naissance").fill("1958")
    page.get_by_label("Commune de résidence").fill("51100")
    page.get_by_label("Situation").select_option(label="Senior (60 ans et plus)")
    tick(page, "Maîtrise des outils numériques du quotidien")
    submit(page, "Proposer des lieux")
    expect(page.locator("#erreurs")).to_have_count(0)
    expect(page.locator("#radio-id_site")).to_contain_text(sc.site.name)
    expect(page.locator("#radio-id_site")).to_contain_text("dans la commune")
    assert_no_horizontal_scroll(page)
    assert_accessible(page)

    tick(page, sc.site.name)
    tick(page, "Sur papier")
    submit(page, "Remettre le carnet")
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Carnet n° {booklet.number} remis")
    assert_no_horizontal_scroll(page)
    assert_accessible(page)

    booklet.refresh_from_db()
    beneficiary = booklet.beneficiary
    assert booklet.oriented_site == sc.site
    assert set(booklet.vouchers.values_list("status", flat=True)) == {VoucherStatus.DISTRIBUTED}
    assert (beneficiary.birth_year, beneficiary.commune_id, beneficiary.needs) == (
        1958,
        "51454",
        [Service.EVERYDAY_TOOLS],
    )
    expect(page.locator("#reference")).to_have_text(beneficiary.reference)
    expect(page.locator("main")).to_contain_text(sc.site.name)
    pdf = page.get_by_role("link", name="Télécharger le carnet à imprimer (PDF)")
    expect(pdf).to_have_attribute("href", f"/carnets/{booklet.pk}/pdf/")
    with page.expect_download() as download:
        pdf.click()
    assert download.value.suggested_filename == f"carnet-{sc.program.slug}-{booklet.number}.pdf"

    with page.expect_navigation():
        page.get_by_role("link", name="Remettre un autre carnet").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Remettre un carnet")
    assert_accessible(page)


def test_hand_out_from_the_stock_list_by_sms(page, live_server, sc):
    booklet = sc.new_booklet(hand_out=False)
    log_in(page, live_server, sc.distributor_user.email)
    page.goto(f"{live_server.url}{PICK}")
    with page.expect_navigation():
        page.get_by_role("link", name=f"Remettre le carnet n° {booklet.number}").click()
    assert_accessible(page)

    page.get_by_role("textbox", name=FIRST_NAME).fill("Josiane")
    tick(page, "La personne accepte que son prénom soit noté")
    page.get_by_label("Commune de résidence").fill("Reims")
    submit(page, "Proposer des lieux")
    tick(page, "Sans orientation")
    tick(page, "Par SMS ou courriel")
    page.get_by_label("Numéro de portable").fill("06 12 34 56 78")
    tick(page, "La personne accepte de recevoir ce lien")
    submit(page, "Remettre le carnet")
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Carnet n° {booklet.number} remis")
    expect(page.locator("#pass-numerique")).to_contain_text("06 •• •• •• 78")
    assert_accessible(page)

    [(to, _text)] = sms.MemoryBackend.outbox
    assert to == "+33612345678"
    assert DigitalPass.objects.get(booklet=booklet).channel == "sms"
    assert Booklet.objects.get(pk=booklet.pk).beneficiary.first_name == "Josiane"


def test_refusals_are_shown_accessibly_and_change_nothing(page, live_server, sc):
    booklet = sc.new_booklet(hand_out=False)
    log_in(page, live_server, sc.distributor_user.email)
    page.set_viewport_size(PHONE)

    page.goto(f"{live_server.url}{PICK}")
    page.get_by_label("Numéro du carnet ou code d’un chèque").fill("9999")
    submit(page, "Choisir ce carnet")
    expect(page).to_have_title(re.compile(r"^Erreur : Remettre un carnet — "))
    expect(page.locator("#erreurs")).to_contain_text("Ce carnet n’est pas dans votre stock.")
    expect(page.get_by_label("Numéro du carnet ou code d’un chèque")).to_have_attribute("aria-invalid", "true")
    assert_accessible(page)

    page.get_by_label("Numéro du carnet ou code d’un chèque").fill(str(booklet.number))
    submit(page, "Choisir ce carnet")
    page.get_by_role("textbox", name=FIRST_NAME).fill("Josiane")  # without the person's consent
    page.get_by_label("Année de naissance").fill("1800")
    submit(page, "Proposer des lieux")
    errors = page.locator("#erreurs")
    expect(errors).to_contain_text("Le prénom n’est noté qu’avec l’accord de la personne")
    expect(page.get_by_role("textbox", name=FIRST_NAME)).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#radio-id_site")).to_have_count(0)  # no place proposed until the form is right
    assert_no_horizontal_scroll(page)
    assert_accessible(page)

    errors.get_by_role("link").first.click()  # an anchor in the page: no navigation
    expect(page.get_by_role("textbox", name=FIRST_NAME)).to_be_focused()

    tick(page, "La personne accepte que son prénom soit noté")
    submit(page, "Proposer des lieux")
    expect(errors).to_contain_text("L’année de naissance est comprise entre")
    assert_accessible(page)

    booklet.refresh_from_db()
    assert booklet.handed_out_at is None and not Beneficiary.objects.exists()
    assert set(booklet.vouchers.values_list("status", flat=True)) == {VoucherStatus.ISSUED}
