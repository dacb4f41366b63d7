"""The steering page in Chromium, clicked through as people use it: a funder opens « Pilotage » from its home,
reads the funnel, narrows it to a program then to a distributor by clicking its row, downloads a table as CSV and
the workbook as XLSX; a distributor and a place see their own scope. axe at desktop width and 320 px."""

import io
import re

import pytest
from openpyxl import load_workbook

from tests.browser.conftest import assert_accessible, chromium_missing, in_ci
from tests.browser.conftest import login as log_in
from tests.factories import member_of
from tests.steering.world import build_world

if chromium_missing() and not in_ci():
    pytest.skip(f"Tests de navigateur ignorés : {chromium_missing()}", allow_module_level=True)

from playwright.sync_api import expect  # noqa: E402 — only once Playwright is known to be there

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]


@pytest.fixture
def world(transactional_db):
    return build_world()


def test_a_funder_answers_who_was_helped_where_and_what_sleeps(page, live_server, world):
    user = member_of(world.marne, admin=False)
    log_in(page, live_server, user.email)
    page.get_by_role("link", name="Pilotage").first.click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Pilotage")
    figures = page.locator(".passnum-figure")
    expect(figures.filter(has_text="Personnes aidées")).to_contain_text("3")
    expect(page.get_by_role("table", name="Entonnoir")).to_contain_text("Chèques encaissés")
    assert_accessible(page)

    page.get_by_label("Dispositif", exact=True).select_option(label="Pass Marne")
    page.get_by_role("button", name="Afficher").click()
    expect(page).to_have_url(re.compile(rf"/pilotage/\?dispositif={world.program.slug}(&|$)"))
    distributors = page.get_by_role("table", name="Par prescripteur")
    distributors.get_by_role("link", name="France Services Sedan").click()
    expect(page.get_by_label("Prescripteur", exact=True)).to_have_value(str(world.fs.pk))
    expect(page.get_by_role("table", name="Entonnoir")).to_contain_text("Remis aux personnes")
    expect(page.get_by_role("table", name="Par prescripteur")).not_to_contain_text("CCAS de Reims")

    with page.expect_download() as download:
        page.get_by_role("link", name="Télécharger « Par lieu de médiation » (CSV)").click()
    body = download.value.path().read_text(encoding="utf-8-sig")
    assert "Tiers-lieu Le Cèdre" in body and "Médiathèque" not in body
    with page.expect_download() as download:
        page.get_by_role("link", name="Télécharger tous les tableaux (XLSX)").click()
    book = load_workbook(io.BytesIO(download.value.path().read_bytes()))
    assert "Entonnoir" in book.sheetnames

    page.get_by_role("link", name="Tout afficher").click()
    expect(page).to_have_url(f"{live_server.url}/pilotage/")
    page.get_by_role("link", name="Voir le stock qui dort et le réaffecter").click()
    expect(page).to_have_url(f"{live_server.url}/financeur/stock-dormant/")


def test_a_distributor_and_a_place_see_their_own_scope(page, live_server, world):
    distributor = member_of(world.ccas, admin=False)
    log_in(page, live_server, distributor.email)
    page.goto(f"{live_server.url}/pilotage/")
    expect(page.locator("main")).to_contain_text("les carnets confiés à votre structure")
    expect(page.locator("main")).not_to_contain_text("France Services Sedan")
    expect(page.get_by_label("Prescripteur", exact=True)).to_have_count(0)
    assert_accessible(page)
    page.get_by_role("link", name="Voir les carnets remis jamais utilisés").click()
    expect(page).to_have_url(f"{live_server.url}/prescripteur/carnets-non-utilises/")

    page.context.clear_cookies()
    place = member_of(world.epn, admin=False)
    log_in(page, live_server, place.email)
    page.get_by_role("link", name="Pilotage").first.click()
    expect(page.locator("main")).to_contain_text("les chèques encaissés dans votre lieu")
    expect(page.locator("main")).not_to_contain_text("Tiers-lieu Le Cèdre")
    assert_accessible(page)
