"""Places' sign-up and space, funders' review, and the booklet stock pages in Chromium, with axe at desktop width
and 320 px on every page."""

import pytest
from django.core.cache import cache

from passnum.places.models import Site
from passnum.vouchers import signing
from passnum.vouchers.services import booklets_issue
from passnum.vouchers.stock import booklets_allocate
from tests.browser.conftest import assert_accessible, chromium_missing, in_ci
from tests.browser.conftest import login as log_in
from tests.factories import OrganisationFactory, ProgramFactory, member_of

if chromium_missing() and not in_ci():
    pytest.skip(f"Tests de navigateur ignorés : {chromium_missing()}", allow_module_level=True)

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]


@pytest.fixture(autouse=True)
def _setup(settings, tmp_path):
    settings.PASSNUM_SIGNING_KEYS_DIR = tmp_path / "keys"
    settings.MEDIA_ROOT = tmp_path / "media"
    signing.load_keys.cache_clear()
    cache.clear()
    yield
    signing.load_keys.cache_clear()


def test_public_checklist_and_signup_pages(page, live_server):
    page.goto(f"{live_server.url}/lieux-de-mediation/criteres/")
    assert_accessible(page)
    with page.expect_navigation():
        page.get_by_role("link", name="Inscrire ma structure").click()
    assert_accessible(page)
    with page.expect_navigation():  # empty: every error shown, nothing saved
        page.locator("main form button[type=submit]").click()
    assert page.locator("#erreurs").is_visible()
    assert_accessible(page)
    assert not Site.objects.exists()


def test_place_space_and_funder_review(page, live_server, funder):
    from tests.places.helpers import signup

    program = ProgramFactory(owner=funder)
    org = signup()
    site = Site.objects.get(organisation=org)
    log_in(page, live_server, "admin@lieu.fr", "un-mot-de-passe-solide")
    for path in [
        "/lieu/mes-lieux/",
        f"/lieu/mes-lieux/{site.pk}/catalogue/",
        "/lieu/mes-lieux/nouveau/",
        "/lieu/coordonnees-bancaires/",
        "/lieu/pieces/",
    ]:
        page.goto(f"{live_server.url}{path}")
        assert_accessible(page)

    page.context.clear_cookies()
    reviewer = member_of(funder)
    log_in(page, live_server, reviewer.email)
    page.goto(f"{live_server.url}/financeur/lieux/")
    assert_accessible(page)
    with page.expect_navigation():
        page.get_by_role("link", name=site.name).click()
    assert_accessible(page)
    page.get_by_label("Qualifier le lieu").check()
    with page.expect_navigation():
        page.get_by_role("button", name="Enregistrer la décision").click()
    page.wait_for_load_state()
    site.refresh_from_db()
    assert site.status == "qualified"
    assert program  # the program's territory (Marne) covers the site

    page.goto(f"{live_server.url}/financeur/dispositifs/{program.slug}/carnets/")
    assert_accessible(page)
    page.get_by_label("Nombre de carnets à émettre").fill("3")
    with page.expect_navigation():
        page.get_by_role("button", name="Émettre").click()
    page.wait_for_load_state()
    assert page.get_by_text("Carnets n° 1 à 3 émis.").is_visible()
    assert_accessible(page)


def test_distributor_stock_page(page, live_server, program, funder):
    ccas = OrganisationFactory(distributor=True, name="CCAS de Reims")
    OrganisationFactory(distributor=True, name="France Services")
    booklets_issue(program=program, count=2)
    booklets_allocate(program=program, distributor=ccas, quantity=2, organisation=funder)
    user = member_of(ccas)
    log_in(page, live_server, user.email)
    page.goto(f"{live_server.url}/prescripteur/stock/")
    assert_accessible(page)
    page.locator("main input[type=checkbox]").first.check()
    with page.expect_navigation():
        page.get_by_role("button", name="Rendre au financeur").click()
    page.wait_for_load_state()
    assert page.get_by_text("1 carnet(s) rendu(s) au financeur.").is_visible()
    assert_accessible(page)
