import pytest
from django.urls import reverse

from passnum.accounts.models import User
from passnum.places.models import Site, SupportingDocument
from passnum.places.services import site_decide
from tests.factories import OrganisationFactory, ProgramFactory, member_of
from tests.places.helpers import IBAN, pdf, signup

pytestmark = pytest.mark.django_db


def signup_post(**overrides):
    data = {
        "structure-name": "EPN de Châlons",
        "structure-siret": "21510108000012",
        "structure-rna": "",
        "structure-first_name": "Lou",
        "structure-last_name": "Martin",
        "structure-email": "lou@epn.fr",
        "structure-password": "un-mot-de-passe-solide",
        "lieux-TOTAL_FORMS": "1",
        "lieux-INITIAL_FORMS": "0",
        "lieux-MIN_NUM_FORMS": "1",
        "lieux-MAX_NUM_FORMS": "20",
        "lieux-0-name": "EPN de Châlons",
        "lieux-0-address": "12 rue Léon Bourgeois",
        "lieux-0-postal_code": "51000",
        "lieux-0-insee_code": "51108",
        "lieux-0-latitude": "48.957",
        "lieux-0-longitude": "4.363",
        "lieux-0-opening_hours": "Mo-Fr 09:00-12:00",
        "lieux-0-services": ["outils_du_quotidien"],
        "lieux-0-vouchers_per_session": "1",
        "banque-holder_name": "Ville de Châlons",
        "banque-iban": "FR76 3000 6000 0112 3456 7890 189",
        "banque-bic": "AGRIFRPP",
        "pieces-registration": pdf(),
        "pieces-certify": "on",
    }
    data.update(overrides)
    return data


def test_checklist_is_public(client):
    page = client.get(reverse("www:place_checklist")).content.decode()
    assert "sans quota" in page and "Aide aux démarches administratives" in page


def test_signup_through_the_page(client, funder):
    ProgramFactory(owner=funder)
    response = client.post(reverse("www:place_signup"), signup_post())
    assert response.status_code == 302, response.content.decode()[:3000]
    assert response.url == reverse("www:place_signup_done")
    site = Site.objects.get()
    assert site.status == "pending" and site.commune_name == "Châlons-en-Champagne"
    page = client.get(reverse("www:my_sites")).content.decode()
    assert "En attente de validation" in page


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"banque-iban": "FR7630006000011234567890188"}, "IBAN invalide"),
        ({"lieux-0-opening_hours": "lundi matin"}, "Horaires illisibles"),
        ({"lieux-0-insee_code": "99999"}, "Code INSEE inconnu : 99999."),
        ({"lieux-0-postal_code": "510"}, "Le code postal a 5 chiffres."),
        ({"structure-siret": "123"}, "n’est pas valide"),
        ({"structure-siret": ""}, "Indiquez le SIRET ou le numéro RNA"),
        ({"pieces-certify": ""}, "Ce champ est obligatoire."),
        ({"structure-password": "court"}, "trop court"),
    ],
)
def test_signup_errors_are_shown_and_nothing_saved(client, overrides, message):
    response = client.post(reverse("www:place_signup"), signup_post(**overrides))
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not Site.objects.exists() and not User.objects.exists()


def test_signup_refuses_a_disguised_file(client):
    from django.core.files.uploadedfile import SimpleUploadedFile

    fake = SimpleUploadedFile("statuts.pdf", b"<html>not a pdf</html>", content_type="application/pdf")
    response = client.post(reverse("www:place_signup"), signup_post(**{"pieces-registration": fake}))
    assert "Format non accepté" in response.content.decode()
    assert not Site.objects.exists()


@pytest.fixture
def pending_site(funder):
    ProgramFactory(owner=funder)
    org = signup()
    return Site.objects.get(organisation=org)


def test_reviewer_sees_and_decides(client, funder, pending_site):
    client.force_login(member_of(funder))
    page = client.get(reverse("www:review_list")).content.decode()
    assert pending_site.name in page
    response = client.post(reverse("www:review_detail", args=[pending_site.pk]), {"decision": "refuse", "reason": ""})
    assert "Indiquez le motif" in response.content.decode()
    response = client.post(reverse("www:review_detail", args=[pending_site.pk]), {"decision": "qualify", "reason": ""})
    assert response.status_code == 302
    pending_site.refresh_from_db()
    assert pending_site.status == "qualified"


def test_reviewer_member_cannot_decide(client, funder, pending_site):
    client.force_login(member_of(funder, admin=False))
    assert client.get(reverse("www:review_detail", args=[pending_site.pk])).status_code == 200
    response = client.post(reverse("www:review_detail", args=[pending_site.pk]), {"decision": "qualify"})
    assert response.status_code == 403


def test_funder_of_another_territory_gets_404(client, pending_site):
    oise = OrganisationFactory(funder=True)
    ProgramFactory(owner=oise, territory=[("departement", "60")])
    client.force_login(member_of(oise))
    assert pending_site.name not in client.get(reverse("www:review_list")).content.decode()
    assert client.get(reverse("www:review_detail", args=[pending_site.pk])).status_code == 404
    doc = SupportingDocument.objects.get()
    assert client.get(reverse("www:document_download", args=[doc.pk])).status_code == 404


def test_other_place_and_distributor_see_nothing(client, pending_site):
    other = OrganisationFactory(place=True)
    client.force_login(member_of(other))
    doc = SupportingDocument.objects.get()
    assert client.get(reverse("www:document_download", args=[doc.pk])).status_code == 404
    assert client.get(reverse("www:my_site_catalogue", args=[pending_site.pk])).status_code == 404
    assert client.get(reverse("www:review_list")).status_code == 403
    distributor = OrganisationFactory(distributor=True)
    client.force_login(member_of(distributor))
    assert client.get(reverse("www:my_sites")).status_code == 403


def test_place_downloads_its_document_and_reviewer_too(client, funder, pending_site):
    doc = SupportingDocument.objects.get()
    client.force_login(User.objects.get(email="admin@lieu.fr"))
    response = client.get(reverse("www:document_download", args=[doc.pk]))
    assert response.status_code == 200 and response["Cache-Control"] == "private, no-store"
    client.force_login(member_of(funder))
    assert client.get(reverse("www:document_download", args=[doc.pk])).status_code == 200


def test_bank_change_page(client, funder, pending_site):
    org = pending_site.organisation
    reviewer = member_of(funder)
    site_decide(site=pending_site, decision="qualify", reason="", actor=reviewer, organisation=funder)
    member = member_of(org, admin=False)
    client.force_login(member)
    assert client.get(reverse("www:bank_details")).status_code == 200
    assert (
        client.post(reverse("www:bank_details"), {"holder_name": "X", "iban": IBAN, "bic": "AGRIFRPP"}).status_code
        == 403
    )
    client.force_login(User.objects.get(email="admin@lieu.fr"))
    response = client.post(reverse("www:bank_details"), {"holder_name": "X", "iban": "FR76", "bic": "AGRIFRPP"})
    assert "IBAN invalide" in response.content.decode()
    response = client.post(
        reverse("www:bank_details"),
        {"holder_name": "Ville de Reims", "iban": "FR7610107001011234567890129", "bic": "BREDFRPP"},
    )
    assert response.status_code == 302
    client.force_login(reviewer)
    page = client.get(reverse("www:review_list")).content.decode()
    assert "**** 0129" in page


def test_catalogue_edit_and_site_add(client, pending_site):
    client.force_login(User.objects.get(email="admin@lieu.fr"))
    url = reverse("www:my_site_catalogue", args=[pending_site.pk])
    response = client.post(
        url,
        {
            "outils_du_quotidien": "2",
            **{
                k: "0"
                for k in [
                    "demarches_administratives",
                    "insertion_professionnelle",
                    "usage_securise",
                    "parentalite_education",
                    "loisirs_creations",
                    "comprehension_monde_numerique",
                    "acces_internet_materiel",
                    "materiel_prix_solidaire",
                ]
            },
        },
    )
    assert response.status_code == 302
    assert list(pending_site.catalogue.values_list("service", "vouchers_per_session")) == [("outils_du_quotidien", 2)]
    response = client.post(
        reverse("www:my_site_add"),
        {
            "name": "Annexe",
            "address": "1 rue X",
            "postal_code": "51100",
            "insee_code": "51454",
            "services": ["usage_securise"],
            "vouchers_per_session": "1",
        },
    )
    assert response.status_code == 302
    assert Site.objects.filter(organisation=pending_site.organisation).count() == 2
