"""The public open-data page on activity in Chromium, without logging in: read the table by program and
département, download the CSV by its link, open the Data Package; axe at desktop width and 320 px."""

import csv
import io
import json
from pathlib import Path

import pytest

from passnum.steering import opendata as od
from tests.browser.conftest import assert_accessible, chromium_missing, in_ci
from tests.steering.test_opendata import World

if chromium_missing() and not in_ci():
    pytest.skip(f"Tests de navigateur ignorés : {chromium_missing()}", allow_module_level=True)

from playwright.sync_api import expect  # noqa: E402 — only once Playwright is known to be there

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]


def test_open_data_page_and_downloads(page, live_server):
    World()
    page.goto(f"{live_server.url}/")
    page.get_by_role("contentinfo").get_by_role("link", name="Données ouvertes").click()  # from the footer
    expect(page.get_by_role("heading", level=1)).to_have_text("Données ouvertes sur l’activité du pass numérique")
    table = page.get_by_role(
        "table", name="Pass numérique Marne : activité par département, depuis le début du dispositif"
    )
    expect(table).to_be_visible()
    marne = table.get_by_role("row", name="Marne (51)")
    expect(marne.get_by_role("cell")).to_have_text(["22", "219", "25", "250,00 €", "24", "21"], use_inner_text=True)
    # The other program: one booklet in the Marne, secret.
    other = page.get_by_role("table", name="Autre dispositif : activité par département, depuis le début du dispositif")
    expect(other.get_by_role("row", name="Marne (51)").get_by_role("cell").first).to_have_text("secret")
    assert_accessible(page)

    with page.expect_download() as download_info:
        page.get_by_role("link", name="Activité par dispositif, département et mois").click()
    download = download_info.value
    assert download.suggested_filename == "activite-departements.csv"
    rows = list(csv.DictReader(io.StringIO(Path(download.path()).read_text(encoding="utf-8"))))
    assert list(rows[0]) == od.columns(od.DEPARTEMENTS)
    assert {(r["mois"], r["code_departement"]) for r in rows if r["dispositif"] == "pass-marne"} == {
        ("2026-01", "51"),
        ("2026-01", "75"),
        ("2026-01", ""),
        ("2026-02", "51"),
    }

    page.get_by_role("link", name="Description du jeu de données (Data Package)").click()
    page.wait_for_url("**/donnees-ouvertes/datapackage.json")
    descriptor = json.loads(page.locator("body").inner_text())
    assert [r["path"] for r in descriptor["resources"]] == ["activite-departements.csv", "activite-communes.csv"]
    page.go_back()
    expect(page.get_by_role("link", name="Les mêmes lieux au format JSON (standard national, v1.0.1)")).to_be_visible()


def test_open_data_page_without_activity(page, live_server):
    page.goto(f"{live_server.url}/donnees-ouvertes/")
    expect(page.get_by_text("Aucune activité n’a encore été enregistrée.")).to_be_visible()
    assert_accessible(page)
