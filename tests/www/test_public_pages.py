"""Public pages through Django's test client: the finder, a place's page, "Mon pass", and the rate limiter."""

import datetime as dt
import json
import re

import pytest
from django.core.cache import cache, caches
from django.test import RequestFactory
from django.urls import reverse

from passnum.accounts.enums import OrganisationKind
from passnum.accounts.models import Organisation
from passnum.common import ratelimit
from passnum.places.enums import QualificationStatus
from passnum.places.models import Site, SiteService
from passnum.vouchers import codes
from passnum.vouchers.services import booklet_allocate, booklet_hand_out, booklets_issue
from passnum.www.public import MY_PASS_RATE, opening_week
from tests.factories import OrganisationFactory

pytestmark = pytest.mark.django_db

FINDER = reverse("www:finder")
MY_PASS = reverse("www:my_pass")


@pytest.fixture(autouse=True)
def _empty_cache():
    cache.clear()  # the rate limiter counts in the (per-process) LocMem cache
    yield
    cache.clear()


@pytest.fixture
def place_org():
    return Organisation.objects.create(name="Réseau de lieux", slug="reseau-lieux", kind=OrganisationKind.PLACE)


def make_site(org, name, commune="51454", *, status=QualificationStatus.QUALIFIED, services=None, **fields):
    services = services or {"outils_du_quotidien": 1, "demarches_administratives": 2}
    defaults = {
        "address": "2 rue des Fuseliers",
        "postal_code": "51100",
        "commune_name": "Reims",
        "latitude": 49.25,
        "longitude": 4.03,
        "opening_hours": "Mo-Fr 09:00-12:00,14:00-18:30; Sa 09:00-12:00",
        "publics": ["seniors"],
        "supports": ["surdite"],
        "access_modes": ["telephoner", "rdv_en_ligne"],
        "phone": "03 26 00 00 00",
        "email": "contact@mediatheque.example",
        "website": "https://mediatheque.example",
        "booking_url": "https://rdv.example/mediatheque",
    }
    defaults.update(fields)
    site = Site.objects.create(
        organisation=None if status == QualificationStatus.LISTED else org,
        name=name,
        commune_id=commune,
        services=list(services),
        source_id=f"test-{name}",
        status=status,
        **defaults,
    )
    SiteService.objects.bulk_create(
        [SiteService(site=site, service=code, vouchers_per_session=n) for code, n in services.items()]
    )
    return site


def cache_keys() -> list[str]:
    """The keys in the cache, to check that no address is stored in clear (LocMem, the tests' default)."""
    store = getattr(caches["default"], "_cache", None)
    if store is None:
        pytest.skip("the cache backend does not list its keys")
    return [str(key) for key in store]


def text(response) -> str:
    return response.content.decode()


def title(response) -> str:
    return re.search(r"<title>(.*?)</title>", text(response), re.S).group(1).strip()


# --- the finder ----------------------------------------------------------------------------------------------


def test_finder_empty_form(client):
    response = client.get(FINDER)
    assert response.status_code == 200
    body = text(response)
    assert "Commune ou code postal" in body and 'method="get"' in body
    assert "Résultats" not in body and "lieux-carte-donnees" not in body
    assert title(response).startswith("Trouver un lieu")


def test_finder_lists_places_in_the_html_without_javascript(client, place_org):
    near = make_site(place_org, "Médiathèque Jean Falala")
    make_site(place_org, "EPN d’Épernay", "51230", latitude=49.04, longitude=3.96)
    hidden = make_site(place_org, "Lieu suspendu", status=QualificationStatus.SUSPENDED)
    response = client.get(FINDER, {"q": "51100"})
    body = text(response)
    assert response.status_code == 200
    assert "2 lieux près de Reims (51)." in body and title(response).startswith("2 lieux près de Reims (51)")
    assert body.index("Médiathèque Jean Falala") < body.index("EPN d’Épernay")
    assert f'href="{reverse("www:place_detail", args=[near.pk])}"' in body
    assert "Lieu suspendu" not in body and f"/lieux/{hidden.pk}/" not in body
    assert 'role="status"' in body and '<h2 id="resultats-titre">' in body and "<h3" in body
    assert "dans la commune" in body and "dans le département" in body
    # the map is an enhancement: hidden container, data in a JSON script tag, deferred scripts
    assert '<div id="carte-lieux" class="fr-mb-4w" hidden></div>' in body
    data = json.loads(re.search(r'id="lieux-carte-donnees" type="application/json">(.*?)</script>', body).group(1))
    assert [p["name"] for p in data["places"]] == ["Médiathèque Jean Falala", "EPN d’Épernay"]
    assert data["tiles"]["url"] and data["icons"]["icon"].endswith("marker-icon.png")
    assert "vendor/leaflet/leaflet.js" in body and "www/finder-map.js" in body


def test_finder_tile_url_comes_from_settings(client, place_org, settings):
    settings.PASSNUM_MAP_TILE_URL = "https://tuiles.example/{z}/{x}/{y}.png"
    settings.PASSNUM_MAP_ATTRIBUTION = "© Exemple"
    make_site(place_org, "Médiathèque")
    body = text(client.get(FINDER, {"q": "Reims"}))
    data = json.loads(re.search(r'id="lieux-carte-donnees" type="application/json">(.*?)</script>', body).group(1))
    assert data["tiles"] == {"url": "https://tuiles.example/{z}/{x}/{y}.png", "attribution": "© Exemple"}


def test_finder_without_coordinates_has_no_map(client, place_org):
    make_site(place_org, "Sans position", latitude=None, longitude=None)
    body = text(client.get(FINDER, {"q": "Reims"}))
    assert "Sans position" in body and "carte-lieux" not in body and "leaflet" not in body


def test_finder_filters(client, place_org):
    make_site(place_org, "Pour les seniors", publics=["seniors"], supports=["surdite", "handicaps_moteurs"])
    make_site(place_org, "Pour les jeunes", publics=["jeunes"], supports=[], services={"usage_securise": 1})
    response = client.get(FINDER, {"q": "reims", "publics": ["seniors"], "supports": ["handicaps_moteurs"]})
    body = text(response)
    assert "Pour les seniors" in body and "Pour les jeunes" not in body
    assert "1 lieu près de Reims (51)." in body
    body = text(client.get(FINDER, {"q": "reims", "services": ["usage_securise"]}))
    assert "Pour les jeunes" in body and "Pour les seniors" not in body
    body = text(client.get(FINDER, {"q": "reims", "services": ["materiel_prix_solidaire"]}))
    assert "Aucun lieu trouvé près de Reims (51) avec ces critères." in body


def test_finder_postcode_of_several_communes_offers_a_choice(client, place_org):
    make_site(place_org, "Fismes", "51250", postal_code="51170", commune_name="Fismes")
    response = client.get(FINDER, {"q": "51170"})
    body = text(response)
    assert "Fismes" in body and "près de 51170" in body
    assert 'type="radio" name="commune"' in body and "Votre commune" in body
    body = text(client.get(FINDER, {"q": "51170", "commune": "51250"}))
    assert "1 lieu près de Fismes (51)." in body
    # a commune that is not one of the postcode's is ignored
    body = text(client.get(FINDER, {"q": "51170", "commune": "51454"}))
    assert "près de 51170" in body


def test_finder_homonyms_must_be_chosen(client):
    response = client.get(FINDER, {"q": "Saint-Martin"})
    body = text(response)
    assert "Plusieurs communes correspondent à « Saint-Martin »" in body
    assert "Saint-Martin (65)" in body and "Résultats" not in body
    body = text(client.get(FINDER, {"q": "Saint-Martin", "commune": "65392"}))
    assert "près de Saint-Martin (65)" in body


def test_finder_bad_input_messages_in_french(client):
    response = client.get(FINDER, {"q": "Zzzzville"})
    assert response.status_code == 200
    assert "Aucune commune ne correspond à « Zzzzville »" in text(response)
    assert title(response).startswith("Erreur")
    assert "Indiquez une commune ou un code postal." in text(
        client.get(FINDER, {"q": "", "services": ["usage_securise"]})
    )
    body = text(client.get(FINDER, {"q": "Reims", "services": ["piratage"]}))
    assert "Sélectionnez un choix valide" in body
    assert "La recherche n’a pas abouti" in body


def test_finder_is_get_only(client):
    assert client.post(FINDER, {"q": "Reims"}).status_code == 405


# --- a place -------------------------------------------------------------------------------------------------


def test_place_page(client, place_org):
    site = make_site(place_org, "Médiathèque Jean Falala", description="Un lieu pour tous.\n\nAu centre-ville.")
    response = client.get(reverse("www:place_detail", args=[site.pk]))
    body = text(response)
    assert response.status_code == 200
    assert "<h1>Médiathèque Jean Falala</h1>" in body and title(response).startswith("Médiathèque Jean Falala")
    assert "<caption" in body and "Chèques par séance" in body
    assert re.search(r"<td>Aide aux démarches administratives</td><td>2</td>", body)
    assert "Mo-Fr 09:00-12:00,14:00-18:30; Sa 09:00-12:00" in body and "9\u00a0h – 12\u00a0h" in body
    assert "14\u00a0h – 18\u00a0h\u00a030" in body
    assert "2 rue des Fuseliers" in body and "51100 Reims" in body
    assert 'href="tel:0326000000"' in body and 'href="mailto:contact@mediatheque.example"' in body
    assert 'href="https://rdv.example/mediatheque"' in body and "Prendre un RDV en ligne" in body
    assert "Seniors" in body and "Surdité" in body and "Au centre-ville." in body
    headings = re.findall(r"<h([1-6])", body)
    assert headings[0] == "1" and all(int(b) - int(a) <= 1 for a, b in zip(headings, headings[1:], strict=False))


def test_place_page_only_for_qualified_places(client, place_org):
    for status in ("listed", "pending", "suspended", "refused"):
        site = make_site(place_org, f"Lieu {status}", status=status)
        response = client.get(reverse("www:place_detail", args=[site.pk]))
        assert response.status_code == 404
        assert f"Lieu {status}" not in text(response)
    assert client.get("/lieux/999999/").status_code == 404


def test_place_page_never_links_a_script_url(client, place_org):
    site = make_site(place_org, "Lieu", website="javascript:alert(1)", booking_url="", opening_hours="")
    body = text(client.get(reverse("www:place_detail", args=[site.pk])))
    assert "javascript:" not in body and "Horaires non renseignés" in body


def test_opening_week_in_french():
    monday = dt.date(2026, 1, 5)
    week = opening_week("Mo-Fr 09:00-12:00,14:00-18:30; Sa 09:00-12:00", start=monday)
    assert week[0] == {"day": "lundi 5 janvier", "slots": ["9\u00a0h – 12\u00a0h", "14\u00a0h – 18\u00a0h\u00a030"]}
    assert week[5]["slots"] == ["9\u00a0h – 12\u00a0h"] and week[6] == {"day": "dimanche 11 janvier", "slots": []}
    assert opening_week("24/7", start=monday)[0]["slots"] == ["0\u00a0h – minuit"]
    assert opening_week("n’importe quoi", start=monday) is None
    assert opening_week("", start=monday) is None


# --- "Mon pass" ----------------------------------------------------------------------------------------------


@pytest.fixture
def distributor():
    return OrganisationFactory(distributor=True, name="CCAS de Reims")


@pytest.fixture
def booklet(program, distributor):
    booklet = booklets_issue(program=program, count=1).first()
    booklet_allocate(booklet=booklet, distributor=distributor)
    return booklet_hand_out(booklet=booklet)


def a_code(booklet) -> str:
    return booklet.vouchers.order_by("position").first().code


def test_my_pass_form(client):
    response = client.get(MY_PASS)
    assert response.status_code == 200
    assert 'method="post"' in text(response) and "Code d’un chèque" in text(response)
    assert "no-cache" in response["Cache-Control"] or "max-age=0" in response["Cache-Control"]


def test_my_pass_shows_validity_vouchers_left_and_places(client, program, booklet, place_org):
    make_site(place_org, "Médiathèque de Reims")
    make_site(place_org, "Lieu des Ardennes", "08105", latitude=49.77, longitude=4.72)
    code = a_code(booklet)
    response = client.post(MY_PASS, {"code": codes.display(code).lower(), "lieu": "51100"})
    body = text(response)
    assert response.status_code == 200
    assert program.name in body
    assert program.valid_until.strftime("%Y") in body and "délai de grâce" in body
    assert "10 sur 10, soit 100,00" in body
    assert "Utilisable" in body and "pas encore été remis" not in body
    assert "Médiathèque de Reims" in body and "Lieu des Ardennes" not in body  # the program covers the Marne only
    assert "du plus proche au plus éloigné de Reims (51)" in body
    # nothing personal, and not the code itself
    assert "CCAS de Reims" not in body and code not in body and codes.display(code) not in body
    assert codes.display(code)[-6:] in body


def test_my_pass_booklet_not_handed_out(client, program):
    booklet = booklets_issue(program=program, count=1).first()
    body = text(client.post(MY_PASS, {"code": a_code(booklet)}))
    assert "ce carnet n’a pas encore été remis" in body.lower()
    assert "Aucun pour l’instant" in body


def test_my_pass_typo_format_and_unknown_code_get_distinct_french_messages(client, booklet):
    code = a_code(booklet)
    wrong_check = code[:-1] + next(ch for ch in codes.ALPHABET if ch != code[-1])
    body = text(client.post(MY_PASS, {"code": wrong_check}))
    assert "Code mal recopié ?" in body and "Code inconnu" not in body
    body = text(client.post(MY_PASS, {"code": "ABC"}))
    assert "Ce code n’a pas le bon format" in body
    unknown = codes.generate_code()
    response = client.post(MY_PASS, {"code": unknown})
    assert "Code inconnu" in text(response) and "Code mal recopié" not in text(response)
    assert title(response).startswith("Erreur")
    assert "Indiquez le code d’un chèque." in text(client.post(MY_PASS, {"code": ""}))


def test_my_pass_never_reads_a_code_from_the_url(client, program, booklet):
    response = client.get(MY_PASS, {"code": a_code(booklet)})
    assert response.status_code == 200 and program.name not in text(response)


def test_my_pass_unknown_place_still_lists_places(client, booklet, place_org):
    make_site(place_org, "Médiathèque de Reims")
    body = text(client.post(MY_PASS, {"code": a_code(booklet), "lieu": "Zzzzville"}))
    assert "Aucune commune ne correspond à « Zzzzville »" in body and "Médiathèque de Reims" in body


def test_my_pass_rate_limited_per_client_address(client, booklet):
    limit, window = MY_PASS_RATE
    code = a_code(booklet)
    for _ in range(limit):
        assert client.post(MY_PASS, {"code": code}, REMOTE_ADDR="203.0.113.7").status_code == 200
    response = client.post(MY_PASS, {"code": code}, REMOTE_ADDR="203.0.113.7")
    assert response.status_code == 429
    assert 0 < int(response["Retry-After"]) <= window
    body = text(response)
    assert "Trop de vérifications" in body and "Réessayez dans" in body and "minute" in body
    assert booklet.program.name not in body
    assert title(response).startswith("Trop de vérifications")
    # another address is not affected, and no address is stored in clear
    assert client.post(MY_PASS, {"code": code}, REMOTE_ADDR="198.51.100.2").status_code == 200
    assert not any("203.0.113.7" in key for key in cache_keys())


# --- the rate limiter ----------------------------------------------------------------------------------------


def test_ratelimit_fixed_window():
    now = 1_000_000.0
    results = [ratelimit.hit("t", "k", limit=3, window=60, now=now + i) for i in range(4)]
    assert [r.allowed for r in results] == [True, True, True, False]
    assert [r.remaining for r in results[:3]] == [2, 1, 0]
    assert results[3].retry_after == 60 - (now + 3) % 60
    assert ratelimit.hit("t", "autre", limit=3, window=60, now=now).allowed
    assert ratelimit.hit("t", "k", limit=3, window=60, now=now + 60).allowed  # next window
    ratelimit.reset("t", "k", window=60, now=now)
    assert ratelimit.hit("t", "k", limit=3, window=60, now=now).allowed


def test_ratelimit_keys_are_hashed():
    ratelimit.hit("t", "203.0.113.7", limit=1, window=60)
    keys = cache_keys()
    assert keys and not any("203.0.113.7" in key for key in keys)


def test_client_ip(settings):
    request = RequestFactory().get("/", REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="6.6.6.6, 203.0.113.7")
    settings.PASSNUM_TRUSTED_PROXY_COUNT = 0
    assert ratelimit.client_ip(request) == "127.0.0.1"
    settings.PASSNUM_TRUSTED_PROXY_COUNT = 1
    assert ratelimit.client_ip(request) == "203.0.113.7"  # what nginx saw; the client-sent entry is ignored
    settings.PASSNUM_TRUSTED_PROXY_COUNT = 2
    assert ratelimit.client_ip(request) == "6.6.6.6"
    settings.PASSNUM_TRUSTED_PROXY_COUNT = 3
    assert ratelimit.client_ip(request) == "127.0.0.1"
