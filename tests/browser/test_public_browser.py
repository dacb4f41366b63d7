"""The public pages in Chromium: the finder with and without JavaScript, a place's page, "Mon pass" with a real
voucher. Every page state is checked by axe-core at desktop width and at 320 px (`assert_accessible`).

Map tiles point at a closed local port: tests run without network, and the page must not depend on the tiles."""

import re

import pytest
from django.core.cache import cache

from passnum.accounts.enums import OrganisationKind
from passnum.accounts.models import Organisation
from passnum.places.enums import QualificationStatus
from passnum.places.models import Site, SiteService
from passnum.vouchers import codes
from passnum.vouchers.services import booklet_allocate, booklet_hand_out, booklets_issue
from tests.browser.conftest import (
    AXE_JS,
    DESKTOP,
    TIMEOUT_MS,
    assert_accessible,
    chromium_missing,
    in_ci,
)
from tests.factories import OrganisationFactory

if chromium_missing() and not in_ci():
    pytest.skip(chromium_missing(), allow_module_level=True)

from playwright.sync_api import expect  # noqa: E402 — only once Playwright is known to be there

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]

DEAD_TILES = "http://127.0.0.1:9/{z}/{x}/{y}.png"  # nothing listens on the discard port: every tile fails at once


@pytest.fixture(autouse=True)
def _offline_tiles_and_fresh_limits(settings):
    settings.PASSNUM_MAP_TILE_URL = DEAD_TILES
    settings.PASSNUM_MAP_ATTRIBUTION = "© les contributeurs d’OpenStreetMap https://www.openstreetmap.org/copyright"
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def places():
    org = Organisation.objects.create(name="Réseau de lieux", slug="reseau-lieux", kind=OrganisationKind.PLACE)
    rows = [
        # name, commune, lat, lon, services, publics, supports
        (
            "Médiathèque Jean Falala",
            "51454",
            49.2583,
            4.0317,
            {"outils_du_quotidien": 1},
            ["tous_publics"],
            ["surdite"],
        ),
        (
            "Maison de quartier Orgeval",
            "51454",
            49.2700,
            4.0140,
            {"demarches_administratives": 2},
            ["seniors"],
            ["handicaps_moteurs"],
        ),
        ("EPN de Tinqueux", "51573", 49.2500, 3.9900, {"usage_securise": 1, "outils_du_quotidien": 1}, ["jeunes"], []),
        ("France services d’Épernay", "51230", None, None, {"demarches_administratives": 1}, [], []),
    ]
    sites = []
    for i, (name, commune, lat, lon, services, publics, supports) in enumerate(rows):
        site = Site.objects.create(
            organisation=org,
            name=name,
            address=f"{i + 1} place de la République",
            postal_code="51100",
            commune_id=commune,
            commune_name="Reims",
            latitude=lat,
            longitude=lon,
            opening_hours="Mo-Fr 09:00-12:00,14:00-18:00; Sa 09:00-12:00",
            services=list(services),
            publics=publics,
            supports=supports,
            access_modes=["telephoner", "rdv_en_ligne"],
            phone="03 26 00 00 0" + str(i),
            email=f"lieu{i}@exemple.fr",
            booking_url="https://rdv.exemple.fr/lieu",
            source_id=f"navigateur-{i}",
            status=QualificationStatus.QUALIFIED,
        )
        SiteService.objects.bulk_create(
            [SiteService(site=site, service=code, vouchers_per_session=n) for code, n in services.items()]
        )
        sites.append(site)
    Site.objects.create(
        organisation=org,
        name="Lieu en attente",
        address="1 rue cachée",
        postal_code="51100",
        commune_id="51454",
        commune_name="Reims",
        latitude=49.2550,  # not shown, but it counts for the mean position of Reims' places
        longitude=4.0350,
        source_id="navigateur-attente",
        status=QualificationStatus.PENDING,
    )
    return sites


@pytest.fixture
def page_without_js(browser, live_server):
    context = browser.new_context(locale="fr-FR", viewport=DESKTOP, base_url=live_server.url, java_script_enabled=False)
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    yield page
    context.close()


def load_axe_without_page_scripts(page):
    """The page runs no script of its own: give axe-core to it through Playwright, as `assert_accessible`
    would through a script tag."""
    page.evaluate("(source) => { (0, eval)(source); }", AXE_JS.read_text(encoding="utf-8"))


def tick(page, label):
    """A DSFR checkbox is drawn by its label, which takes the click (as it does for a person)."""
    box = page.get_by_label(label, exact=True)
    if not box.is_checked():
        page.locator(f"label[for='{box.get_attribute('id')}']").click()
    expect(box).to_be_checked()


def search(page, text):
    page.get_by_label("Commune ou code postal").fill(text)
    with page.expect_navigation():
        page.locator("main form").get_by_role("button", name="Rechercher").click()


# --- the finder ----------------------------------------------------------------------------------------------


def test_finder_without_javascript(page_without_js, live_server, places):
    page = page_without_js
    page.goto("/lieux/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Trouver un lieu qui accepte le pass numérique")
    load_axe_without_page_scripts(page)
    assert_accessible(page)

    search(page, "Reims")
    expect(page).to_have_title(re.compile(r"^4 lieux près de Reims \(51\)"))
    expect(page.get_by_role("status")).to_have_text("4 lieux près de Reims (51).")
    results = page.locator("main ul.fr-raw-list > li")
    expect(results).to_have_count(4)
    expect(results.nth(0)).to_contain_text("Médiathèque Jean Falala")
    expect(results.nth(0)).to_contain_text("dans la commune")
    expect(results.nth(3)).to_contain_text("France services d’Épernay")
    expect(page.locator("#carte-lieux")).to_be_hidden()  # the map needs JavaScript; the list does not
    expect(page.get_by_text("Lieu en attente")).to_have_count(0)
    load_axe_without_page_scripts(page)
    assert_accessible(page)

    page.locator("summary").click()  # <details> folds the filters, without any script
    tick(page, "Handicaps moteurs")
    with page.expect_navigation():
        page.locator("main form").get_by_role("button", name="Rechercher").click()
    expect(page.get_by_role("status")).to_have_text("1 lieu près de Reims (51).")
    expect(page.locator("main ul.fr-raw-list > li")).to_have_count(1)

    with page.expect_navigation():
        page.get_by_role("link", name="Maison de quartier Orgeval").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Maison de quartier Orgeval")
    load_axe_without_page_scripts(page)
    assert_accessible(page)


def test_finder_with_the_map(page, live_server, places):
    page.goto("/lieux/")
    assert_accessible(page)
    search(page, "51100")
    expect(page.get_by_role("status")).to_have_text("4 lieux près de Reims (51).")
    carte = page.get_by_role("region", name="Carte des lieux trouvés")
    expect(carte).to_be_visible()
    markers = page.locator("#carte-lieux .leaflet-marker-icon")
    expect(markers).to_have_count(3)  # the place without coordinates is only in the list
    expect(page.locator("#carte-lieux img[alt='Médiathèque Jean Falala']")).to_have_count(1)
    expect(page.locator(".leaflet-control-attribution")).to_contain_text("OpenStreetMap")
    expect(page.locator(".leaflet-control-zoom-in")).to_have_attribute("title", "Zoomer")
    assert_accessible(page)

    markers.first.click()
    page.wait_for_function("() => getComputedStyle(document.querySelector('.leaflet-popup')).opacity === '1'")
    popup = page.locator(".leaflet-popup-content")
    expect(popup.get_by_role("link")).to_have_count(1)
    expect(page.locator(".leaflet-popup-close-button")).to_have_attribute("aria-label", "Fermer")
    assert_accessible(page)


def test_finder_filters(page, live_server, places):
    page.goto("/lieux/")
    page.get_by_label("Commune ou code postal").fill("Reims")
    expect(page.get_by_label("Seniors", exact=True)).to_be_hidden()  # the filters are folded away
    page.get_by_text("Filtrer par service, public ou accessibilité").click()
    tick(page, "Aide aux démarches administratives")
    tick(page, "Seniors")
    with page.expect_navigation():
        page.locator("main form").get_by_role("button", name="Rechercher").click()
    expect(page.get_by_role("status")).to_have_text("2 lieux près de Reims (51).")
    expect(page.locator("main ul.fr-raw-list > li").nth(0)).to_contain_text("Maison de quartier Orgeval")
    expect(page.get_by_label("Seniors", exact=True)).to_be_checked()  # the form keeps the choices
    assert_accessible(page)

    expect(page.locator("summary")).to_contain_text("(2 choix en cours)")
    page.locator("summary").click()
    tick(page, "Handicaps moteurs")
    tick(page, "Surdité")
    with page.expect_navigation():
        page.locator("main form").get_by_role("button", name="Rechercher").click()
    expect(page.get_by_role("status")).to_have_text("Aucun lieu trouvé près de Reims (51) avec ces critères.")
    assert_accessible(page)


def test_finder_asks_which_commune_and_explains_errors(page, live_server, places):
    page.goto("/lieux/")
    search(page, "Saint-Martin")
    expect(page.get_by_text("Plusieurs communes correspondent à « Saint-Martin »")).to_be_visible()
    expect(page.get_by_role("group", name=re.compile("Votre commune"))).to_be_visible()
    assert_accessible(page)

    search(page, "Zzzzville")
    expect(page).to_have_title(re.compile(r"^Erreur"))
    expect(page.get_by_role("alert")).to_contain_text("La recherche n’a pas abouti")
    expect(page.get_by_text("Aucune commune ne correspond à « Zzzzville »")).to_be_visible()
    assert_accessible(page)


def test_place_page(page, live_server, places):
    site = places[0]
    page.goto(f"/lieux/{site.pk}/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Médiathèque Jean Falala")
    table = page.get_by_role("table", name=re.compile("combien de chèques"))
    expect(table.get_by_role("row")).to_have_count(2)
    expect(table).to_contain_text("Maîtrise des outils numériques du quotidien")
    expect(page.get_by_role("link", name="03 26 00 00 00")).to_have_attribute("href", "tel:0326000000")
    expect(page.get_by_role("link", name=re.compile("Prendre rendez-vous en ligne"))).to_be_visible()
    expect(page.get_by_text("Mo-Fr 09:00-12:00,14:00-18:00; Sa 09:00-12:00")).to_be_visible()
    assert_accessible(page)

    page.goto(f"/lieux/{Site.objects.get(name='Lieu en attente').pk}/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Page introuvable")


# --- "Mon pass" ----------------------------------------------------------------------------------------------


@pytest.fixture
def voucher_code(program):
    booklet = booklets_issue(program=program, count=1).first()
    booklet_allocate(booklet=booklet, distributor=OrganisationFactory(distributor=True, name="CCAS de Reims"))
    booklet_hand_out(booklet=booklet)
    return booklet.vouchers.order_by("position").first().code


def check(page, code, lieu=""):
    page.get_by_label("Code d’un chèque").fill(code)
    page.get_by_label("Commune ou code postal").fill(lieu)
    with page.expect_navigation():
        page.locator("main form").get_by_role("button", name="Vérifier").click()


def test_my_pass_with_a_real_voucher(page, live_server, program, voucher_code, places):
    page.goto("/mon-pass/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Mon pass")
    assert_accessible(page)

    typo = voucher_code[:-1] + next(ch for ch in codes.ALPHABET if ch != voucher_code[-1])
    check(page, typo)
    expect(page).to_have_title(re.compile(r"^Erreur"))
    expect(page.get_by_text("Code mal recopié ?")).to_be_visible()
    expect(page.get_by_label("Code d’un chèque")).to_have_attribute("aria-invalid", "true")
    assert_accessible(page)

    check(page, codes.display(voucher_code).lower(), "51100")
    assert "code" not in page.url.lower() and voucher_code not in page.url
    expect(page.get_by_role("heading", level=2, name=program.name)).to_be_visible()
    expect(page.locator("dd").nth(1)).to_have_text(re.compile(r"^10 sur 10, soit 100,00"))
    expect(page.get_by_text("Utilisable", exact=True)).to_be_visible()
    expect(page.get_by_role("status")).to_contain_text("du plus proche au plus éloigné de Reims (51)")
    expect(page.locator("main ul.fr-raw-list > li").first).to_contain_text("Médiathèque Jean Falala")
    expect(page.get_by_text("CCAS de Reims")).to_have_count(0)
    expect(page.get_by_label("Code d’un chèque")).to_have_value("")
    assert voucher_code not in page.content()
    assert_accessible(page)


def test_my_pass_booklet_not_handed_out(page, live_server, program, places):
    booklet = booklets_issue(program=program, count=1).first()
    page.goto("/mon-pass/")
    check(page, booklet.vouchers.first().code)
    expect(page.get_by_role("heading", name="Ce carnet n’a pas encore été remis")).to_be_visible()
    assert_accessible(page)
