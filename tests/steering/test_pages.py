"""The steering page and its exports: what each role sees, filters that narrow and never widen, 404 for what lies
outside one's scope, and CSV/XLSX that carry the same figures as the page."""

import csv
import html
import io

import pytest
from django.urls import reverse
from openpyxl import load_workbook

from tests.factories import OrganisationFactory, member_of

pytestmark = pytest.mark.django_db
PAGE = reverse("www:steering")


def get(client, user, url=PAGE, **params):
    client.force_login(user)
    return client.get(url, params)


def text(response) -> str:
    return html.unescape(response.content.decode())


def test_anonymous_is_sent_to_login(client, world):
    response = client.get(PAGE)
    assert response.status_code == 302 and "/connexion/" in response["Location"]
    assert client.get(reverse("www:steering_xlsx")).status_code == 302


def test_a_funder_sees_its_funnel_people_and_breakdowns(client, world):
    page = text(get(client, member_of(world.marne, admin=False)))
    assert "Pilotage" in page and "Personnes aidées" in page
    assert "Pass Marne" in page and "Pass Ardennes" not in page
    assert "CCAS de Reims" in page and "Médiathèque Jean Falala" in page
    assert "Votre part" in page
    for title in ("Entonnoir", "Par prescripteur", "Par département", "Services suivis", "Par âge", "Semaine"):
        assert title in page


def test_a_funder_filtering_on_another_funders_program_gets_404(client, world):
    user = member_of(world.reims)
    assert get(client, user, dispositif=world.other.slug).status_code == 404
    assert get(client, user, dispositif="nope").status_code == 404
    assert get(client, user, departement="99").status_code == 404
    assert get(client, user, prescripteur="abc").status_code == 404
    assert get(client, user, prescripteur=world.epn.pk).status_code == 404  # not a distributor
    url = reverse("www:steering_csv", args=["entonnoir"])
    assert get(client, user, url, dispositif=world.other.slug).status_code == 404
    assert get(client, user, reverse("www:steering_csv", args=["inconnu"])).status_code == 404


def test_filters_narrow_the_figures(client, world):
    user = member_of(world.marne)
    page = text(get(client, user, departement="08"))
    assert "France Services Sedan" in page and "CCAS de Reims" not in page.split("Par prescripteur")[1]


def test_a_distributor_sees_only_its_booklets(client, world):
    user = member_of(world.ccas, admin=False)
    page = text(get(client, user))
    assert "les carnets confiés à votre structure" in page
    assert "Budget" not in page and "Pass Ardennes" not in page
    assert "France Services Sedan" not in page
    # it cannot filter on other distributors or départements
    assert get(client, user, prescripteur=world.fs.pk).status_code == 404
    assert get(client, user, departement="51").status_code == 404


def test_a_place_sees_its_redemptions_only(client, world):
    user = member_of(world.epn, admin=False)
    page = text(get(client, user))
    assert "Médiathèque Jean Falala" in page and "Tiers-lieu Le Cèdre" not in page
    assert "CCAS de Reims" not in page and "Délai" not in page
    assert get(client, user, lieu=world.cedre.pk).status_code == 404


def test_an_outsider_sees_nothing_of_others(client, world):
    outsider = member_of(OrganisationFactory(funder=True, name="Région lointaine"))
    page = text(get(client, outsider))
    assert get(client, outsider).status_code == 200
    for name in ("Pass Marne", "Pass Ardennes", "CCAS de Reims", "Médiathèque Jean Falala", "Le Cèdre"):
        assert name not in page
    assert get(client, outsider, dispositif=world.program.slug).status_code == 404
    body = get(client, outsider, reverse("www:steering_csv", args=["lieux"])).content.decode("utf-8-sig")
    assert "Médiathèque" not in body
    # a place from another funder's programs, as a filter, shows nothing either
    page = text(get(client, outsider, lieu=world.epn.pk))
    assert "Médiathèque Jean Falala" not in page.split("Filtrer")[1].split("</select>")[-1]


def test_csv_export_has_the_page_figures(client, world):
    response = get(client, member_of(world.marne), reverse("www:steering_csv", args=["entonnoir"]))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    body = response.content.decode("utf-8")
    assert body.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(body.lstrip("\ufeff")), delimiter=";"))
    header = next(i for i, r in enumerate(rows) if r and r[0] == "Étape")
    table = {r[0]: r for r in rows[header + 1 :] if r}
    assert table["Chèques encaissés"][1] == "5"
    assert table["Chèques encaissés"][3] == "30,00"  # the Marne's 60 % of 5 × 10 €
    assert table["Budget"][3] == "600,00"


def test_xlsx_export_has_one_sheet_per_table(client, world):
    response = get(client, member_of(world.marne), reverse("www:steering_xlsx"), dispositif=world.program.slug)
    assert response.status_code == 200
    book = load_workbook(io.BytesIO(response.content))
    assert "Entonnoir" in book.sheetnames and "Par lieu de médiation" in book.sheetnames
    sheet = book["Entonnoir"]
    rows = [[c.value for c in row] for row in sheet.iter_rows()]
    assert any((r[0] or "") == "Dispositif : Pass Marne" for r in rows)
    redeemed = next(r for r in rows if r[0] == "Chèques encaissés")
    assert redeemed[1] == 5 and float(redeemed[3]) == 30.0


def test_the_operator_sees_everything(client, world):
    page = text(get(client, member_of(OrganisationFactory(operator=True))))
    assert "Pass Marne" in page and "Pass Ardennes" in page


def test_empty_dashboard_for_a_new_funder_has_no_error(client, db):
    response = get(client, member_of(OrganisationFactory(funder=True)))
    assert response.status_code == 200
    assert "Aucune donnée pour l’instant." in text(response)
