"""The distributor's hand-out pages (choose the booklet, the person and their orientation, the confirmation),
through Django's test client: the full flow on paper and as a digital pass, every refusal with nothing changed,
double submits, and outsiders."""

import re
import uuid

import pytest
from django.core import mail
from django.urls import reverse

from passnum.common import sms
from passnum.common.standard import Service
from passnum.journal.models import JournalEntry
from passnum.vouchers import codes, signing
from passnum.vouchers.enums import BeneficiaryPublic, VoucherStatus
from passnum.vouchers.models import Beneficiary, Booklet, DigitalPass
from passnum.vouchers.services import booklet_allocate, booklets_issue
from tests.desk.scenario import build, make_site
from tests.factories import OrganisationFactory, ProgramFactory, member_of

pytestmark = pytest.mark.django_db
S = VoucherStatus
PICK = reverse("www:hand_out")
PUBLIC_URL = "https://pass-numerique.exemple.fr"


class RefusingSmsBackend(sms.BaseBackend):
    def send(self, to, text):
        raise sms.SmsError("Le crédit de SMS est épuisé chez le fournisseur.", code="sms_no_credit")


@pytest.fixture(autouse=True)
def _setup(tmp_path, settings):
    settings.PASSNUM_SIGNING_KEYS_DIR = tmp_path / "keys"
    settings.PASSNUM_PUBLIC_URL = PUBLIC_URL
    settings.SMS_BACKEND = "passnum.common.sms.MemoryBackend"
    signing.load_keys.cache_clear()
    sms.MemoryBackend.outbox.clear()
    yield
    sms.MemoryBackend.outbox.clear()
    signing.load_keys.cache_clear()


@pytest.fixture
def sc():
    return build()


@pytest.fixture
def booklet(sc):
    return sc.new_booklet(hand_out=False)


@pytest.fixture
def agent(client, sc):
    client.force_login(sc.distributor_user)
    return sc.distributor_user


def person_url(booklet):
    return reverse("www:hand_out_person", args=[booklet.pk])


def done_url(booklet):
    return reverse("www:hand_out_done", args=[booklet.pk])


def text(response) -> str:
    return response.content.decode()


def token_of(response) -> str:
    return re.search(r'name="token" value="([0-9a-f]{32})"', text(response)).group(1)


def person(**fields):
    data = {
        "first_name": "",
        "birth_year": "1958",
        "commune": "51100",
        "public": BeneficiaryPublic.SENIOR,
        "needs": [Service.EVERYDAY_TOOLS],
    }
    data.update(fields)
    return {k: v for k, v in data.items() if v is not None}


def give(client, booklet, token=None, **fields):
    data = {"action": "give", "token": token or uuid.uuid4().hex, "delivery": "papier", "site": "aucun", **person()}
    data.update(fields)
    return client.post(person_url(booklet), {k: v for k, v in data.items() if v is not None})


def assert_nothing_changed(booklet):
    booklet.refresh_from_db()
    assert booklet.handed_out_at is None and booklet.beneficiary is None and booklet.oriented_site is None
    assert set(booklet.vouchers.values_list("status", flat=True)) == {S.ISSUED}
    assert not Beneficiary.objects.exists()
    assert not DigitalPass.objects.exists()
    assert not JournalEntry.objects.filter(action="booklet.hand_out", object_id=str(booklet.pk)).exists()


def error_summary(response) -> str:
    match = re.search(
        r'<div class="fr-alert fr-alert--error[^"]*" role="alert" id="erreurs">(.*?)</div>', text(response), re.S
    )
    assert match, "pas de résumé des erreurs (#erreurs)"
    return match.group(1)


# --- 1. choosing the booklet -----------------------------------------------------------------------------------


def test_pick_page_lists_the_stock_with_a_button_each(client, sc, agent, booklet):
    response = client.get(PICK)
    assert response.status_code == 200
    page = text(response)
    assert "Choisir le carnet" in page and "Étape 1 sur 3" in page
    assert f'href="{person_url(booklet)}"' in page
    assert f'Remettre<span class="fr-sr-only"> le carnet n° {booklet.number}' in page
    assert f'href="{person_url(sc.booklet)}"' not in page  # handed out already: not in stock
    assert 'name="program"' not in page  # one program only: no dispositif to choose


def test_pick_by_number_by_voucher_code_and_by_qr_payload(client, sc, agent, booklet):
    code = sc.code(3, booklet)
    for typed in [str(booklet.number), f" {booklet.number} ", codes.display(code), code.lower(), sc.qr(1, booklet)]:
        response = client.post(PICK, {"booklet": typed})
        assert response.status_code == 302, typed
        assert response["Location"] == person_url(booklet)
    assert_nothing_changed(booklet)


def test_pick_a_booklet_already_handed_out_shows_its_confirmation(client, sc, agent):
    response = client.post(PICK, {"booklet": str(sc.booklet.number)}, follow=True)
    assert response.redirect_chain[-1][0] == done_url(sc.booklet)
    assert f"Le carnet n° {sc.booklet.number} a déjà été remis." in text(response)


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("", "Scannez un chèque du carnet ou saisissez son numéro."),
        ("   ", "Scannez un chèque du carnet ou saisissez son numéro."),
        ("9999", "Ce carnet n’est pas dans votre stock."),
        ("ABCD-EFGH", "Ce code n’a pas le bon format (13 caractères)."),
        ("PN1.abc.def.ghi", "Ce QR code est signé par une clé inconnue."),
    ],
)
def test_pick_refusals_are_shown_and_nothing_changes(client, sc, agent, booklet, typed, message):
    response = client.post(PICK, {"booklet": typed})
    assert response.status_code == 200
    page = text(response)
    assert "<title>Erreur : " in page
    summary = error_summary(response)
    assert message in summary and 'href="#id_booklet"' in summary
    assert 'class="fr-input-group fr-input-group--error"' in page
    assert_nothing_changed(booklet)


def test_a_mistyped_code_or_a_tampered_qr_code_is_explained(client, sc, agent, booklet):
    code = sc.code(1, booklet)
    wrong = code[:-1] + next(c for c in codes.CHECK_ALPHABET if c != code[-1])
    response = client.post(PICK, {"booklet": wrong})
    assert "Code mal recopié ? Le caractère de contrôle ne correspond pas." in error_summary(response)
    genuine = sc.qr(1, booklet).split(".")
    tampered = ".".join([genuine[0], sc.code(2, booklet), *genuine[2:]])
    response = client.post(PICK, {"booklet": tampered})
    assert "Ce QR code a été modifié : sa signature ne correspond pas." in error_summary(response)
    assert_nothing_changed(booklet)


def test_another_distributors_booklet_is_not_in_stock(client, sc, agent):
    other = OrganisationFactory(distributor=True, name="France Services d’Épernay")
    theirs = booklets_issue(program=sc.program, count=1).first()
    booklet_allocate(booklet=theirs, distributor=other)
    for typed in [str(theirs.number), theirs.vouchers.first().code]:
        response = client.post(PICK, {"booklet": typed})
        assert "Ce carnet n’est pas dans votre stock." in error_summary(response)
    assert f"n° {theirs.number}<" not in text(client.get(PICK))


def test_same_number_in_two_programs_asks_for_the_dispositif(client, sc, agent, booklet):
    program2 = ProgramFactory(owner=sc.funder, name="Pass numérique Châlons")
    twin = booklets_issue(program=program2, count=booklet.number).last()
    assert twin.number == booklet.number
    booklet_allocate(booklet=twin, distributor=sc.distributor)

    page = text(client.get(PICK))
    assert 'name="program"' in page and "Pass numérique Châlons" in page
    response = client.post(PICK, {"booklet": str(booklet.number), "program": ""})
    assert response.status_code == 200
    summary = error_summary(response)
    assert f"Plusieurs dispositifs ont un carnet n° {booklet.number} dans votre stock" in summary
    assert 'href="#id_program"' in summary
    assert_nothing_changed(booklet)

    response = client.post(PICK, {"booklet": str(booklet.number), "program": str(program2.pk)})
    assert response["Location"] == person_url(twin)
    response = client.post(PICK, {"booklet": str(booklet.number), "program": str(sc.program.pk)})
    assert response["Location"] == person_url(booklet)


# --- 2. the person, orientation, delivery ----------------------------------------------------------------------


def test_full_flow_on_paper(client, sc, agent, booklet):
    response = client.get(person_url(booklet))
    assert response.status_code == 200
    page = text(response)
    assert "Étape 2 sur 3" in page and "Tout est facultatif" in page
    assert "Proposer des lieux" in page and 'value="give"' not in page  # orientation comes after the person
    token = token_of(response)

    form = person(first_name="", needs=[Service.EVERYDAY_TOOLS, Service.ADMIN_PROCEDURES], consent_reminders="on")
    response = client.post(person_url(booklet), {"action": "propose", "token": token, **form})
    assert response.status_code == 200
    page = text(response)
    assert token_of(response) == token  # the same page, the same hand-out
    assert sc.site.name in page and "dans la commune" in page
    assert f'name="site" value="{sc.site.pk}"' in page and 'name="site" value="aucun"' in page
    assert "Maîtrise des outils numériques du quotidien" in page
    assert 'value="give"' in page
    assert_nothing_changed(booklet)

    response = client.post(
        person_url(booklet), {"action": "give", "token": token, "site": str(sc.site.pk), "delivery": "papier", **form}
    )
    assert response.status_code == 302 and response["Location"] == done_url(booklet)

    booklet.refresh_from_db()
    assert booklet.handed_out_at is not None and booklet.hand_out_key == token
    assert booklet.oriented_site == sc.site
    assert set(booklet.vouchers.values_list("status", flat=True)) == {S.DISTRIBUTED}
    beneficiary = booklet.beneficiary
    assert beneficiary.distributor == sc.distributor
    assert re.fullmatch(r"B[0-9A-Z]{5}-[0-9A-Z]{5}", beneficiary.reference)
    assert beneficiary.first_name == "" and not beneficiary.consent_first_name
    assert beneficiary.birth_year == 1958 and beneficiary.commune_id == "51454"
    assert beneficiary.public == BeneficiaryPublic.SENIOR
    assert beneficiary.needs == [Service.EVERYDAY_TOOLS, Service.ADMIN_PROCEDURES]
    assert beneficiary.consent_reminders is True
    entry = JournalEntry.objects.get(action="booklet.hand_out", object_id=str(booklet.pk))
    assert entry.actor == sc.distributor_user and entry.organisation == sc.distributor
    assert entry.data == {"vouchers": 10, "oriented_site": sc.site.pk}
    assert "1958" not in str(entry.data) and "51454" not in str(entry.data)  # the journal knows nothing of the person
    assert not DigitalPass.objects.exists() and not sms.MemoryBackend.outbox

    response = client.get(done_url(booklet))
    assert response.status_code == 200
    assert response["Cache-Control"].startswith("max-age=0") or "no-cache" in response["Cache-Control"]
    page = text(response)
    assert f"Carnet n° {booklet.number} remis" in page and sc.program.name in page
    assert "10 chèques utilisables sur 10, soit 100,00" in page
    assert beneficiary.reference in page
    assert sc.site.name in page and "1 place de l’Hôtel de Ville" in page and "51100 Reims" in page
    assert f'href="{reverse("www:booklet_pdf", args=[booklet.pk])}"' in page
    assert f'href="{PICK}"' in page and "Remettre un autre carnet" in page
    assert client.get(reverse("www:booklet_pdf", args=[booklet.pk]))["Content-Type"] == "application/pdf"


def test_only_what_was_given_is_kept(client, sc, agent, booklet):
    response = give(client, booklet, birth_year="", commune="", public="", needs=None)
    assert response.status_code == 302
    beneficiary = Booklet.objects.get(pk=booklet.pk).beneficiary
    assert (beneficiary.first_name, beneficiary.birth_year, beneficiary.commune_id, beneficiary.public) == (
        "",
        None,
        None,
        "",
    )
    assert beneficiary.needs == [] and not beneficiary.consent_first_name and not beneficiary.consent_reminders
    booklet.refresh_from_db()
    assert booklet.oriented_site is None
    page = text(client.get(done_url(booklet)))
    assert "Aucun lieu conseillé" in page


def test_first_name_is_kept_with_consent(client, sc, agent, booklet):
    response = give(client, booklet, first_name="  Josiane ", consent_first_name="on", site=str(sc.site.pk))
    assert response.status_code == 302
    beneficiary = Booklet.objects.get(pk=booklet.pk).beneficiary
    assert beneficiary.first_name == "Josiane" and beneficiary.consent_first_name


def test_commune_by_insee_code_by_name_and_a_choice_among_homonyms(client, sc, agent, booklet):
    token = uuid.uuid4().hex
    for typed in ["51454", "Reims"]:
        response = client.post(person_url(booklet), {"action": "propose", "token": token, **person(commune=typed)})
        assert response.status_code == 200 and 'name="site"' in text(response), typed
    # Several communes of that name: the page asks which one, nothing is proposed yet.
    response = client.post(person_url(booklet), {"action": "propose", "token": token, **person(commune="Sainte-Marie")})
    page = text(response)
    assert 'name="commune_choice"' in page and 'name="site"' not in page
    assert "Plusieurs communes correspondent à « Sainte-Marie » : choisissez-la." in error_summary(response)
    choice = re.search(r'name="commune_choice" value="([0-9AB]{5})"', page).group(1)
    response = give(client, booklet, token=token, commune="Sainte-Marie", commune_choice=choice)
    assert response.status_code == 302
    assert Booklet.objects.get(pk=booklet.pk).beneficiary.commune_id == choice


def test_suggestions_are_the_nearest_qualified_places_offering_the_needs(client, sc, agent, booklet):
    far = make_site(sc.place, commune="51108", name="Espace numérique de Châlons", services={Service.PARENTING: 1})
    far.commune_name, far.postal_code = "Châlons-en-Champagne", "51000"
    far.save()
    outside = make_site(sc.place, commune="75056", name="Lieu parisien", services={Service.PARENTING: 1})
    response = client.post(
        person_url(booklet), {"action": "propose", "token": uuid.uuid4().hex, **person(needs=[Service.PARENTING])}
    )
    page = text(response)
    assert far.name in page and outside.name not in page
    assert sc.site.name not in page  # does not offer the need
    response = give(client, booklet, site=str(outside.pk))  # not a suggestion: refused
    assert "Ce lieu ne fait plus partie des propositions" in error_summary(response)
    assert_nothing_changed(booklet)


@pytest.mark.parametrize(
    ("fields", "message", "anchor"),
    [
        ({"first_name": "Josiane"}, "Le prénom n’est noté qu’avec l’accord de la personne", "id_first_name"),
        ({"birth_year": "1800"}, "L’année de naissance est comprise entre", "id_birth_year"),
        ({"birth_year": "58"}, "Indiquez l’année en quatre chiffres, par exemple 1958.", "id_birth_year"),
        ({"commune": "Zzyzxville"}, "Aucune commune ne correspond à « Zzyzxville »", "id_commune"),
        ({"commune": "99999"}, "Aucune commune ne correspond à « 99999 »", "id_commune"),
        ({"public": "astronaute"}, "Sélectionnez un choix valide", "id_public"),
    ],
)
@pytest.mark.parametrize("action", ["propose", "give"])
def test_person_refusals_are_shown_and_nothing_changes(client, sc, agent, booklet, fields, message, anchor, action):
    data = {"action": action, "token": uuid.uuid4().hex, "site": "aucun", "delivery": "papier", **person(**fields)}
    response = client.post(person_url(booklet), data)
    assert response.status_code == 200
    summary = error_summary(response)
    assert message in summary and f'href="#{anchor}"' in summary
    assert ("Le carnet n’a pas été remis" if action == "give" else "Aucun lieu proposé") in summary
    assert "<title>Erreur : " in text(response)
    assert_nothing_changed(booklet)


@pytest.mark.parametrize(
    ("fields", "message", "anchor"),
    [
        ({"site": ""}, "Choisissez un lieu, ou « Sans orientation ».", "id_site_0"),
        ({"delivery": ""}, "Choisissez comment la personne reçoit ses chèques.", "id_delivery_0"),
        ({"delivery": "numerique"}, "indiquez un numéro de portable, une adresse électronique", "id_phone"),
        ({"delivery": "numerique", "phone": "06 12 34 56 78"}, "qu’avec l’accord de la personne", "id_consent_digital"),
        ({"delivery": "numerique", "phone": "01 23 45 67 89", "consent_digital": "on"}, "portable", "id_phone"),
        (
            {"delivery": "numerique", "email": "pas-une-adresse", "consent_digital": "on"},
            "n’est pas valable",
            "id_email",
        ),
    ],
)
def test_orientation_and_delivery_refusals(client, sc, agent, booklet, fields, message, anchor):
    response = give(client, booklet, **fields)
    assert response.status_code == 200
    summary = error_summary(response)
    assert message in summary and f'href="#{anchor}"' in summary
    assert_nothing_changed(booklet)
    assert not sms.MemoryBackend.outbox


def test_a_bad_phone_number_is_ignored_on_paper(client, sc, agent, booklet):
    response = give(client, booklet, phone="01 23", email="nope")
    assert response.status_code == 302
    assert not DigitalPass.objects.exists() and not sms.MemoryBackend.outbox


def test_digital_delivery_by_sms_and_email(client, sc, agent, booklet, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):  # the e-mail leaves once the hand-out is committed
        response = give(
            client,
            booklet,
            site=str(sc.site.pk),
            delivery="numerique",
            phone="06 12 34 56 78",
            email="camille@exemple.fr",
            consent_digital="on",
        )
    assert response.status_code == 302 and response["Location"] == done_url(booklet)
    booklet.refresh_from_db()
    assert booklet.handed_out_at is not None and booklet.beneficiary is not None
    assert set(booklet.vouchers.values_list("status", flat=True)) == {S.DISTRIBUTED}
    [(to, sent)] = sms.MemoryBackend.outbox
    assert to == "+33612345678" and f"{PUBLIC_URL}/pass/" in sent
    [email] = mail.outbox
    assert email.to == ["camille@exemple.fr"]
    digital_pass = DigitalPass.objects.get(booklet=booklet)
    assert digital_pass.channel == "both" and digital_pass.recipient_hint == "06 •• •• •• 78 et c•••@exemple.fr"

    page = text(client.get(done_url(booklet)))
    assert "06 •• •• •• 78 et c•••@exemple.fr" in page and "par SMS et par courriel" in page
    assert "06 12 34 56 78" not in page and "camille@" not in page
    assert reverse("www:booklet_pdf", args=[booklet.pk]) not in page


def test_a_refused_sms_undoes_the_hand_out(client, sc, agent, booklet, settings, django_capture_on_commit_callbacks):
    settings.SMS_BACKEND = f"{__name__}.RefusingSmsBackend"
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = give(
            client, booklet, delivery="numerique", phone="06 12 34 56 78", email="c@exemple.fr", consent_digital="on"
        )
    assert not callbacks  # the e-mail would only have left after a commit
    assert response.status_code == 200
    summary = error_summary(response)
    assert "Le SMS n’a pas pu être envoyé : Le crédit de SMS est épuisé chez le fournisseur." in summary
    assert 'href="#id_phone"' in summary
    assert_nothing_changed(booklet)
    assert not mail.outbox


def test_double_submit_with_the_same_token_hands_out_once(client, sc, agent, booklet):
    token = uuid.uuid4().hex
    first = give(client, booklet, token=token, site=str(sc.site.pk))
    second = give(client, booklet, token=token, site=str(sc.site.pk))
    assert first.status_code == second.status_code == 302
    assert first["Location"] == second["Location"] == done_url(booklet)
    assert Beneficiary.objects.count() == 1
    assert JournalEntry.objects.filter(action="booklet.hand_out", object_id=str(booklet.pk)).count() == 1
    page = text(client.get(done_url(booklet)))
    assert "a déjà été remis" not in page  # a retry of the same page is not news

    # Another page (another token) for the same booklet: not handed out again, told so.
    response = give(client, booklet, site="aucun")
    assert response["Location"] == done_url(booklet)
    assert "a déjà été remis" in text(client.get(done_url(booklet)))
    assert Beneficiary.objects.count() == 1
    assert Booklet.objects.get(pk=booklet.pk).oriented_site == sc.site


def test_digital_double_submit_sends_once(client, sc, agent, booklet):
    token = uuid.uuid4().hex
    for _ in range(2):
        response = give(client, booklet, token=token, delivery="numerique", phone="0612345678", consent_digital="on")
        assert response["Location"] == done_url(booklet)
    assert len(sms.MemoryBackend.outbox) == 1 and DigitalPass.objects.count() == 1


def test_an_admin_hands_out_too(client, sc, booklet):
    client.force_login(member_of(sc.distributor, admin=True))
    assert give(client, booklet).status_code == 302
    assert Booklet.objects.get(pk=booklet.pk).handed_out_at is not None


def test_person_page_of_a_handed_out_booklet_redirects_to_its_confirmation(client, sc, agent):
    response = client.get(person_url(sc.booklet))
    assert response.status_code == 302 and response["Location"] == done_url(sc.booklet)


def test_done_page_of_a_booklet_in_stock_leads_to_the_person_page(client, sc, agent, booklet):
    response = client.get(done_url(booklet))
    assert response.status_code == 302 and response["Location"] == person_url(booklet)


def test_done_page_of_a_booklet_handed_out_without_a_record(client, sc, agent):
    page = text(client.get(done_url(sc.booklet)))  # handed out by the scenario, without a person
    assert "pas de référence" in page and "Aucun lieu conseillé" in page


def test_person_data_never_travels_in_addresses(client, sc, agent, booklet):
    page = text(client.get(person_url(booklet)))
    assert re.search(r'<form method="post" action="' + re.escape(person_url(booklet)) + '"', page)
    assert client.get(person_url(booklet), {"first_name": "Josiane"}).status_code == 200
    assert not Beneficiary.objects.exists()
    response = give(client, booklet, first_name="Josiane", consent_first_name="on")
    assert "Josiane" not in response["Location"] and "1958" not in response["Location"]


# --- outsiders -------------------------------------------------------------------------------------------------


def test_outsiders_never_see_the_booklet(client, sc, booklet):
    urls = [PICK, person_url(booklet), done_url(booklet), person_url(sc.booklet), done_url(sc.booklet)]

    client.force_login(sc.place_user)  # a place: not a distributor
    for url in urls:
        assert client.get(url).status_code == 403, url
        assert client.post(url, {"booklet": str(booklet.number), **person()}).status_code in (403, 405), url

    client.force_login(member_of(sc.funder))  # a funder: not a distributor either
    for url in urls:
        assert client.get(url).status_code == 403, url

    other = OrganisationFactory(distributor=True, name="France Services d’Épernay")
    client.force_login(member_of(other, admin=True))
    assert client.get(PICK).status_code == 200
    assert f"n° {booklet.number}" not in text(client.get(PICK))
    for url in urls[1:]:
        assert client.get(url).status_code == 404, url
        assert client.post(url, {"action": "give", "token": uuid.uuid4().hex, **person()}).status_code in (404, 405)
    response = client.post(PICK, {"booklet": str(booklet.number)})
    assert "Ce carnet n’est pas dans votre stock." in error_summary(response)
    assert_nothing_changed(booklet)

    client.logout()
    for url in urls:
        response = client.get(url)
        assert response.status_code == 302 and reverse("www:login") in response["Location"]
