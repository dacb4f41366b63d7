"""Issuance and stock, clicked through in Chromium as people do it: the lead funder issues, allocates, cancels and
prints booklets; a distributor transfers, returns and prints them. axe at desktop width and 320 px on every page
a form lands on."""

import pytest
from django.core.cache import cache

from passnum.programs.models import ProgramFunder
from passnum.settlement.verify import ledger_verify
from passnum.vouchers import signing
from passnum.vouchers.models import Booklet
from passnum.vouchers.services import booklets_issue
from passnum.vouchers.stock import booklets_allocate
from tests.browser.conftest import assert_accessible, chromium_missing, in_ci
from tests.browser.conftest import login as log_in
from tests.factories import OrganisationFactory, member_of

if chromium_missing() and not in_ci():
    pytest.skip(f"Tests de navigateur ignorés : {chromium_missing()}", allow_module_level=True)

from playwright.sync_api import expect  # noqa: E402 — only once Playwright is known to be there

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]


@pytest.fixture(autouse=True)
def _setup(settings, tmp_path):
    settings.PASSNUM_SIGNING_KEYS_DIR = tmp_path / "keys"
    settings.MEDIA_ROOT = tmp_path / "media"
    signing.load_keys.cache_clear()
    cache.clear()
    yield
    signing.load_keys.cache_clear()


@pytest.fixture
def ccas():
    return OrganisationFactory(distributor=True, name="CCAS de Reims")


@pytest.fixture
def france_services():
    return OrganisationFactory(distributor=True, name="France Services Épernay")


def _holders(program) -> dict[int, str | None]:
    """Booklet number → name of the distributor holding it (None: the funder's pool)."""
    return {
        b.number: b.distributor.name if b.distributor else None
        for b in Booklet.objects.filter(program=program).select_related("distributor")
    }


def _submit(page, form, button: str) -> None:
    with page.expect_navigation():
        form.get_by_role("button", name=button).click()
    page.wait_for_load_state()


def _booklets_page(page, live_server, program) -> None:
    page.goto(f"{live_server.url}/financeur/dispositifs/{program.slug}/carnets/")


def test_lead_funder_issues_then_allocates_by_quantity_and_by_range(
    page, live_server, program, funder, ccas, france_services
):
    log_in(page, live_server, member_of(funder).email)
    _booklets_page(page, live_server, program)
    assert page.get_by_text("Aucun carnet émis").is_visible()
    assert_accessible(page)

    issue = page.get_by_role("form", name="Émettre")
    issue.get_by_label("Nombre de carnets à émettre").fill("6")
    _submit(page, issue, "Émettre")
    assert page.get_by_text("Carnets n° 1 à 6 émis.").is_visible()
    assert _holders(program) == dict.fromkeys(range(1, 7))
    assert page.get_by_text("6 carnets émis, dont 6 libres").is_visible()
    assert_accessible(page)

    allocate = page.get_by_role("form", name="Attribuer à un prescripteur")
    allocate.get_by_label("Prescripteur").select_option(label="CCAS de Reims")
    allocate.get_by_label("Quantité de carnets").fill("2")
    _submit(page, allocate, "Attribuer")
    assert page.get_by_text("2 carnet(s) attribué(s) à CCAS de Reims.").is_visible()
    assert _holders(program) == {1: "CCAS de Reims", 2: "CCAS de Reims", 3: None, 4: None, 5: None, 6: None}
    assert_accessible(page)

    allocate = page.get_by_role("form", name="Attribuer à un prescripteur")
    allocate.get_by_label("Prescripteur").select_option(label="France Services Épernay")
    allocate.get_by_label("Ou du carnet n°").fill("4")
    allocate.get_by_label("au carnet n°").fill("5")
    _submit(page, allocate, "Attribuer")
    assert page.get_by_text("2 carnet(s) attribué(s) à France Services Épernay.").is_visible()
    held = {1: "CCAS de Reims", 2: "CCAS de Reims", 3: None, 4: "France Services Épernay", 5: "France Services Épernay"}
    assert _holders(program) == {**held, 6: None}
    table = page.get_by_role("table", name="Carnets attribués, par prescripteur")
    assert table.get_by_role("row", name="France Services Épernay 2 0").is_visible()
    assert_accessible(page)

    # a range that overlaps another distributor's booklets is refused, nothing moves
    allocate = page.get_by_role("form", name="Attribuer à un prescripteur")
    allocate.get_by_label("Prescripteur").select_option(label="CCAS de Reims")
    allocate.get_by_label("Ou du carnet n°").fill("5")
    allocate.get_by_label("au carnet n°").fill("6")
    _submit(page, allocate, "Attribuer")
    assert page.title().startswith("Erreur : ")
    assert page.locator("#erreurs").get_by_text("Aucun carnet n’a été attribué").is_visible()
    assert page.get_by_text("Carnets non disponibles (déjà attribués, remis, annulés ou inexistants) : 5.").is_visible()
    assert _holders(program) == {**held, 6: None}
    assert_accessible(page)
    assert ledger_verify() == []


def test_distributor_admin_transfers_and_returns_booklets(page, live_server, program, funder, ccas, france_services):
    booklets_issue(program=program, count=3)
    booklets_allocate(program=program, distributor=ccas, quantity=3, organisation=funder)
    log_in(page, live_server, member_of(ccas).email)
    page.goto(f"{live_server.url}/prescripteur/stock/")
    assert page.get_by_text("3 carnets prêts à remettre.").is_visible()
    assert_accessible(page)

    move = page.get_by_role("form", name="Transférer ou rendre des carnets")
    move.get_by_label(f"{program.name} — carnet n° 1", exact=True).check()
    move.get_by_label("Prescripteur destinataire (pour un transfert)").select_option(label="France Services Épernay")
    _submit(page, move, "Transférer au prescripteur choisi")
    assert page.get_by_text("1 carnet(s) transféré(s) à France Services Épernay.").is_visible()
    assert _holders(program) == {1: "France Services Épernay", 2: "CCAS de Reims", 3: "CCAS de Reims"}
    assert page.get_by_text("2 carnets prêts à remettre.").is_visible()
    assert_accessible(page)

    move = page.get_by_role("form", name="Transférer ou rendre des carnets")
    move.get_by_label(f"{program.name} — carnet n° 3", exact=True).check()
    _submit(page, move, "Rendre au financeur")
    assert page.get_by_text("1 carnet(s) rendu(s) au financeur.").is_visible()
    assert _holders(program) == {1: "France Services Épernay", 2: "CCAS de Reims", 3: None}
    assert_accessible(page)

    # a transfer without a recipient, or without a booklet, is refused and nothing moves
    move = page.get_by_role("form", name="Transférer ou rendre des carnets")
    move.get_by_label(f"{program.name} — carnet n° 2", exact=True).check()
    _submit(page, move, "Transférer au prescripteur choisi")
    assert page.get_by_text("Choisissez le prescripteur destinataire.").is_visible()
    move = page.get_by_role("form", name="Transférer ou rendre des carnets")
    _submit(page, move, "Rendre au financeur")
    assert page.get_by_text("Choisissez au moins un carnet de votre stock.").is_visible()
    assert _holders(program) == {1: "France Services Épernay", 2: "CCAS de Reims", 3: None}
    assert_accessible(page)


def test_lead_funder_cancels_a_stolen_booklet_and_its_value_returns_to_the_budget(
    page, live_server, program, funder, cofunder, ccas
):
    booklets_issue(program=program, count=2)
    booklets_allocate(program=program, distributor=ccas, quantity=1, organisation=funder)
    shares = ProgramFunder.objects.filter(program=program)
    committed = dict(shares.values_list("funder__name", "committed_cents"))
    # 2 booklets × 10 vouchers × 10 €, 60 / 40
    assert committed == {"Département de la Marne": 12_000, "CU du Grand Reims": 8_000}
    log_in(page, live_server, member_of(funder).email)
    _booklets_page(page, live_server, program)

    # without a reason: refused, in French, and nothing changes
    cancel = page.get_by_role("form", name="Annuler un carnet perdu ou volé")
    cancel.get_by_label("Numéro du carnet").fill("1")
    _submit(page, cancel, "Annuler ce carnet")
    assert page.title().startswith("Erreur : ")
    errors = page.locator("#erreurs")
    assert errors.get_by_text("Le carnet n’a pas été annulé").is_visible()
    errors.get_by_role("link", name="« Annuler un carnet perdu ou volé »").click()  # same page: to the form
    expect(page.get_by_role("heading", name="Annuler un carnet perdu ou volé")).to_be_in_viewport()
    cancel = page.get_by_role("form", name="Annuler un carnet perdu ou volé")
    assert cancel.get_by_text("Ce champ est obligatoire.").is_visible()
    assert cancel.get_by_label("Numéro du carnet").input_value() == "1"
    assert not Booklet.objects.get(program=program, number=1).vouchers.filter(status="cancelled").exists()
    assert dict(shares.values_list("funder__name", "committed_cents")) == committed
    assert_accessible(page)

    cancel.get_by_label("Motif").select_option(label="Volé")
    cancel.get_by_label("Précision (sans donnée personnelle)").fill("Sac volé à l’accueil")
    _submit(page, cancel, "Annuler ce carnet")
    assert page.get_by_text("Carnet n° 1 annulé (10 chèque(s)) ; valeur rendue au budget.").is_visible()
    assert page.get_by_text("10 chèques annulés").is_visible()
    vouchers = Booklet.objects.get(program=program, number=1).vouchers.all()
    assert {v.status for v in vouchers} == {"cancelled"}
    assert {v.cancel_reason for v in vouchers} == {"Volé : Sac volé à l’accueil"}
    assert set(Booklet.objects.get(program=program, number=2).vouchers.values_list("status", flat=True)) == {"issued"}
    assert dict(shares.values_list("funder__name", "committed_cents")) == {
        "Département de la Marne": 6_000,
        "CU du Grand Reims": 4_000,
    }
    assert_accessible(page)

    # the cancelled booklet left the distributor's stock
    page.context.clear_cookies()
    log_in(page, live_server, member_of(ccas).email)
    page.goto(f"{live_server.url}/prescripteur/stock/")
    assert page.get_by_text("Aucun carnet prêt à remettre.").is_visible()
    assert ledger_verify() == []


def test_booklet_pdfs_download_from_the_stock_and_the_funder_pages(page, live_server, program, funder, ccas):
    booklets_issue(program=program, count=3)
    booklets_allocate(program=program, distributor=ccas, quantity=1, organisation=funder)
    log_in(page, live_server, member_of(ccas).email)
    page.goto(f"{live_server.url}/prescripteur/stock/")
    with page.expect_download() as dl:
        page.get_by_role("link", name="PDF à imprimer (carnet n° 1)").click()
    download = dl.value
    assert download.suggested_filename == f"carnet-{program.slug}-1.pdf"
    data = download.path().read_bytes()
    assert data.startswith(b"%PDF") and data.rstrip().endswith(b"%%EOF")

    page.context.clear_cookies()
    log_in(page, live_server, member_of(funder).email)
    _booklets_page(page, live_server, program)
    pdf = page.get_by_role("form", name="Imprimer")
    pdf.get_by_label("Du carnet n°").fill("1")
    pdf.get_by_label("au carnet n°").fill("3")
    pdf.get_by_label("Guichet : un carnet par A4").check()
    with page.expect_download() as dl:
        pdf.get_by_role("button", name="Télécharger le PDF").click()
    download = dl.value
    assert download.suggested_filename == f"carnets-{program.slug}-1-3-desk.pdf"
    data = download.path().read_bytes()
    assert data.startswith(b"%PDF") and data.rstrip().endswith(b"%%EOF")
    assert data.count(b"/Type /Page ") == 6  # a cover page and a coupon page per booklet

    # a range with no booklet issued: back to the page with a message
    pdf = page.get_by_role("form", name="Imprimer")
    pdf.get_by_label("Du carnet n°").fill("50")
    pdf.get_by_label("au carnet n°").fill("60")
    _submit(page, pdf, "Télécharger le PDF")
    assert page.get_by_text("Aucun carnet émis dans cette plage.").is_visible()
    assert_accessible(page)
