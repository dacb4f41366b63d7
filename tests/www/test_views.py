import pytest
from django.urls import reverse

from passnum.accounts.middleware import SESSION_KEY
from passnum.programs.models import Program
from passnum.settlement.verify import ledger_verify
from tests.factories import OrganisationFactory, ProgramFactory, member_of

pytestmark = pytest.mark.django_db


def program_post(funder, cofunder, **overrides):
    data = {
        "name": "Pass numérique Reims",
        "description": "",
        "face_value": "10",
        "vouchers_per_booklet": "10",
        "valid_from": "2026-01-01",
        "valid_until": "2026-12-31",
        "grace_days": "30",
        "eligible_services": ["outils_du_quotidien", "demarches_administratives"],
        "target_publics": ["seniors"],
        "territory_regions": "",
        "territory_departements": "51",
        "territory_epci": "",
        "territory_communes": "",
        "funders-TOTAL_FORMS": "2",
        "funders-INITIAL_FORMS": "0",
        "funders-MIN_NUM_FORMS": "1",
        "funders-MAX_NUM_FORMS": "10",
        "funders-0-funder": str(funder.id),
        "funders-0-share": "60",
        "funders-0-budget": "6000",
        "funders-1-funder": str(cofunder.id),
        "funders-1-share": "40",
        "funders-1-budget": "4 000,00",
    }
    data.update(overrides)
    return data


@pytest.fixture
def funder_admin(client, funder):
    user = member_of(funder)
    client.force_login(user)
    return user


def test_healthz(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["database"] == "ok"


def test_anonymous_sees_landing_and_is_sent_to_login(client):
    assert "Se connecter" in client.get("/").content.decode()
    response = client.get(reverse("www:program_list"))
    assert response.status_code == 302 and response.url.startswith(reverse("www:login"))


def test_login_page_and_failed_login_message(client, funder):
    user = member_of(funder)
    response = client.post(reverse("www:login"), {"username": user.email, "password": "faux"})
    assert "Adresse électronique ou mot de passe incorrect." in response.content.decode()
    response = client.post(reverse("www:login"), {"username": user.email, "password": "mot-de-passe-de-test-1"})
    assert response.status_code == 302


def test_funder_creates_co_funded_program(client, funder_admin, funder, cofunder):
    response = client.post(reverse("www:program_create"), program_post(funder, cofunder))
    assert response.status_code == 302, response.content.decode()
    program = Program.objects.get()
    assert response.url == reverse("www:program_detail", args=[program.slug])
    assert [pf.budget_cents for pf in program.funders.all()] == [600_000, 400_000]
    page = client.get(reverse("www:program_list")).content.decode()
    assert "Pass numérique Reims" in page and cofunder.name in page
    assert ledger_verify() == []


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"funders-1-share": "30"}, "Les parts des financeurs doivent faire exactement 100 %"),
        ({"territory_departements": "51, 00"}, "Code département inconnu : 00."),
        ({"territory_communes": "99999", "territory_departements": ""}, "Code commune inconnu : 99999."),
        ({"valid_until": "2025-01-01"}, "La fin de validité doit être postérieure au début."),
        ({"face_value": "-10"}, "Le montant doit être positif."),
        ({"face_value": "dix"}, "n’est pas un montant valide"),
        ({"funders-1-budget": "-5"}, "Le montant ne peut pas être négatif."),
        ({"funders-1-budget": "99999999999999"}, "trop élevé"),
        ({"funders-1-share": "abc"}, "Indiquez un pourcentage"),
        ({"territory_departements": ""}, "Le territoire est obligatoire."),
        ({"funders-1-funder": ""}, "Choisissez le financeur de cette part."),
    ],
)
def test_bad_program_input_shows_french_message_and_saves_nothing(
    client, funder_admin, funder, cofunder, overrides, message
):
    response = client.post(reverse("www:program_create"), program_post(funder, cofunder, **overrides))
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not Program.objects.exists()


def test_outsider_gets_404_and_sees_nothing(client, funder, cofunder):
    program = ProgramFactory(owner=funder, cofunder=cofunder, name="Secret")
    outsider_org = OrganisationFactory(funder=True)
    client.force_login(member_of(outsider_org))
    assert client.get(reverse("www:program_detail", args=[program.slug])).status_code == 404
    assert client.get(reverse("www:program_edit", args=[program.slug])).status_code == 404
    response = client.post(reverse("www:program_edit", args=[program.slug]), program_post(funder, cofunder))
    assert response.status_code == 404
    assert "Secret" not in client.get(reverse("www:program_list")).content.decode()
    assert "Secret" not in client.get("/").content.decode()


def test_cofunder_reads_but_cannot_edit(client, funder, cofunder):
    program = ProgramFactory(owner=funder, cofunder=cofunder)
    client.force_login(member_of(cofunder))
    page = client.get(reverse("www:program_detail", args=[program.slug])).content.decode()
    assert "Lecture seule" in page and reverse("www:program_edit", args=[program.slug]) not in page
    assert client.get(reverse("www:program_edit", args=[program.slug])).status_code == 403
    response = client.post(reverse("www:program_edit", args=[program.slug]), program_post(funder, cofunder, name="X"))
    assert response.status_code == 403
    program.refresh_from_db()
    assert program.name != "X"


def test_lead_funder_member_cannot_create_or_edit(client, funder, cofunder):
    program = ProgramFactory(owner=funder, cofunder=cofunder)
    client.force_login(member_of(funder, admin=False))
    assert client.get(reverse("www:program_create")).status_code == 403
    assert client.get(reverse("www:program_edit", args=[program.slug])).status_code == 403
    assert client.get(reverse("www:program_detail", args=[program.slug])).status_code == 200


def test_lead_admin_edits(client, funder_admin, funder, cofunder):
    program = ProgramFactory(owner=funder, cofunder=cofunder)
    assert client.get(reverse("www:program_edit", args=[program.slug])).status_code == 200
    response = client.post(
        reverse("www:program_edit", args=[program.slug]), program_post(funder, cofunder, name="Nouveau nom")
    )
    assert response.status_code == 302
    program.refresh_from_db()
    assert program.name == "Nouveau nom"
    assert ledger_verify() == []


@pytest.mark.parametrize("kind", ["distributor", "place", "operator"])
def test_non_funders_get_403_on_funder_pages(client, kind):
    org = OrganisationFactory(**{kind: True})
    client.force_login(member_of(org))
    assert client.get(reverse("www:program_list")).status_code == 403
    assert client.get(reverse("www:program_create")).status_code == 403
    assert client.get("/").status_code == 200


def test_switch_only_between_own_organisations(client, funder):
    distributor = OrganisationFactory(distributor=True, name="CCAS de Test")
    stranger = OrganisationFactory(funder=True)
    user = member_of(funder)
    member_of_distributor = user.memberships.create(organisation=distributor, role="member")
    assert member_of_distributor
    client.force_login(user)
    response = client.post(reverse("www:organisation_switch"), {"organisation": distributor.id})
    assert response.status_code == 302
    assert client.session[SESSION_KEY] == distributor.id
    assert "CCAS de Test" in client.get("/").content.decode()
    response = client.post(reverse("www:organisation_switch"), {"organisation": stranger.id})
    assert response.status_code == 200  # refused: not a choice
    assert client.session[SESSION_KEY] == distributor.id


def test_forged_session_organisation_is_ignored(client, funder):
    stranger = OrganisationFactory(funder=True)
    program = ProgramFactory(owner=stranger)
    client.force_login(member_of(funder))
    session = client.session
    session[SESSION_KEY] = stranger.id
    session.save()
    assert client.get(reverse("www:program_detail", args=[program.slug])).status_code == 404


def test_member_cannot_invite_admin_can(client, funder, mailoutbox, django_capture_on_commit_callbacks):
    client.force_login(member_of(funder, admin=False))
    assert client.post(reverse("www:members"), {"email": "a@b.fr", "role": "member"}).status_code == 403
    client.force_login(member_of(funder))
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("www:members"), {"email": "nouveau@exemple.fr", "role": "member"})
    assert response.status_code == 302
    assert len(mailoutbox) == 1 and "/invitation/" in mailoutbox[0].body


def test_program_list_query_count_is_flat(client, funder_admin, funder, cofunder, django_assert_max_num_queries):
    for _ in range(5):
        ProgramFactory(owner=funder, cofunder=cofunder)
    with django_assert_max_num_queries(12):
        response = client.get(reverse("www:program_list"))
    assert response.status_code == 200


def test_program_detail_names_the_territory_in_french(client, funder_admin, funder, cofunder):
    program = ProgramFactory(owner=funder, cofunder=cofunder)
    page = client.get(reverse("www:program_detail", args=[program.slug]), HTTP_ACCEPT_LANGUAGE="en-US").content
    assert "Département : Marne (51)" in page.decode()
    assert "Lecture seule" not in page.decode()
