"""API keys: created with their hash only, authenticated in one query, revoked for good; the `passnum apikey`
command; the /cles-api/ page (admins create and revoke, members only look, outsiders see nothing of others)."""

import hashlib
import re
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from passnum.accounts.apikeys import api_key_authenticate, api_key_create, api_key_revoke
from passnum.accounts.models import ApiKey
from passnum.common.errors import DomainError
from passnum.journal.models import JournalEntry
from tests.factories import OrganisationFactory, member_of

pytestmark = pytest.mark.django_db

KEY = re.compile(r"^pn_[A-Za-z0-9_-]{43}$")


@pytest.fixture
def place():
    return OrganisationFactory(place=True, name="Médiathèque Jean Falala", slug="mediatheque-falala")


# --- services ------------------------------------------------------------------------------------------------


def test_create_stores_only_the_hash_and_a_prefix(place):
    admin = member_of(place)
    api_key, raw = api_key_create(organisation=place, name="  Caisse   de l’accueil ", actor=admin)
    assert KEY.match(raw)
    assert api_key.name == "Caisse de l’accueil" and api_key.created_by == admin
    assert api_key.key_hash == hashlib.sha256(raw.encode()).hexdigest() and api_key.prefix == raw[:10]
    assert raw not in str(ApiKey.objects.values_list().get())
    entry = JournalEntry.objects.get(action="api_key.create")
    assert entry.actor == admin and entry.organisation == place and raw not in str(entry.data)


def test_create_refuses_bad_names_and_kinds(place):
    for name, code in [("  ", "name_required"), ("x" * 101, "name_too_long")]:
        with pytest.raises(DomainError) as exc:
            api_key_create(organisation=place, name=name)
        assert exc.value.code == code
    with pytest.raises(DomainError) as exc:
        api_key_create(organisation=OrganisationFactory(funder=True), name="Tableur")
    assert exc.value.code == "api_not_for_kind"


def test_authenticate_in_one_query_and_revoke_for_good(place, django_assert_num_queries):
    api_key, raw = api_key_create(organisation=place, name="Caisse")
    with django_assert_num_queries(1):
        found = api_key_authenticate(raw)
    assert found == api_key and found.organisation == place  # organisation loaded with it
    with django_assert_num_queries(0):
        assert (found.name, found.prefix, found.created_at, found.revoked_at) == (
            api_key.name,
            api_key.prefix,
            api_key.created_at,
            None,
        )
        assert (found.organisation.kind, found.organisation.is_active, found.organisation.name) == (
            place.kind,
            True,
            place.name,
        )
    place.is_active = False
    place.save()
    assert api_key_authenticate(raw) is None  # an inactive organisation's keys are refused
    place.is_active = True
    place.save()
    with django_assert_num_queries(0):
        assert api_key_authenticate("") is None
        assert api_key_authenticate("mauvais") is None
        assert api_key_authenticate("pn_" + "x" * 500) is None
    assert api_key_authenticate(raw[:-1]) is None
    revoked = api_key_revoke(api_key=api_key)
    assert revoked.revoked_at is not None and api_key_authenticate(raw) is None
    with pytest.raises(DomainError) as exc:
        api_key_revoke(api_key=api_key)
    assert exc.value.code == "api_key_revoked"
    assert JournalEntry.objects.filter(action="api_key.revoke").count() == 1


# --- command -------------------------------------------------------------------------------------------------


def run(*args) -> str:
    out = StringIO()
    call_command("apikey", *args, stdout=out)
    return out.getvalue()


def test_command_create_prints_the_key_last(place):
    output = run("create", "--organisation", place.slug, "--name", "Logiciel d’accueil")
    lines = output.strip().splitlines()
    key = lines[-1]
    assert KEY.match(key) and "ne sera plus jamais affichée" in lines[0]
    found = api_key_authenticate(key)
    assert found is not None and found.organisation == place and found.created_by is None


def test_command_list_and_revoke(place):
    key = run("create", "--organisation", place.slug, "--name", "Caisse").strip().splitlines()[-1]
    api_key = ApiKey.objects.get()
    listing = run("list", "--organisation", place.slug)
    assert f"{api_key.prefix}…" in listing and "active" in listing and key not in listing
    assert "révoquée" in run("revoke", "--organisation", place.slug, api_key.prefix)
    assert api_key_authenticate(key) is None
    assert "révoquée le" in run("list", "--organisation", place.slug)
    with pytest.raises(CommandError, match="déjà révoquée"):
        run("revoke", "--organisation", place.slug, str(api_key.pk))


def test_command_refuses_bad_input(place):
    with pytest.raises(CommandError, match="Aucune organisation"):
        run("create", "--organisation", "inconnue", "--name", "x")
    with pytest.raises(CommandError, match="nom"):
        run("create", "--organisation", place.slug, "--name", " ")
    funder = OrganisationFactory(funder=True)
    with pytest.raises(CommandError, match="prescripteurs"):
        run("create", "--organisation", funder.slug, "--name", "x")
    with pytest.raises(CommandError, match="pas de clé"):
        run("revoke", "--organisation", place.slug, "pn_inconnue")
    with pytest.raises(CommandError, match="numéro"):
        run("revoke", "--organisation", place.slug, "n’importe quoi")
    assert "Aucune clé" in run("list", "--organisation", place.slug)


# --- page ----------------------------------------------------------------------------------------------------


def test_admin_creates_a_key_shown_once(client, place):
    admin = member_of(place)
    client.force_login(admin)
    response = client.post(reverse("www:api_keys"), {"name": "Caisse de l’accueil"})
    assert response.status_code == 200 and response["Cache-Control"] == "no-store"
    html = response.content.decode()
    key = re.search(r'value="(pn_[^"]+)"', html).group(1)
    assert api_key_authenticate(key).created_by == admin
    assert "ne sera plus jamais affichée" in html
    again = client.get(reverse("www:api_keys")).content.decode()
    assert key not in again and f"{key[:10]}…" in again and "Caisse de l’accueil" in again


def test_form_errors_are_shown(client, place):
    client.force_login(member_of(place))
    response = client.post(reverse("www:api_keys"), {"name": ""})
    assert response.status_code == 200 and "Donnez un nom à la clé." in response.content.decode()
    assert not ApiKey.objects.exists()


def test_admin_revokes_after_confirmation(client, place):
    admin = member_of(place)
    api_key, raw = api_key_create(organisation=place, name="Caisse")
    client.force_login(admin)
    url = reverse("www:api_key_revoke", args=[api_key.pk])
    confirm = client.get(url)
    assert confirm.status_code == 200 and "Révoquer la clé « Caisse »" in confirm.content.decode()
    assert api_key_authenticate(raw) is not None  # asking is not revoking
    response = client.post(url, follow=True)
    assert "révoquée" in response.content.decode()
    api_key.refresh_from_db()
    assert api_key.revoked_by == admin and api_key_authenticate(raw) is None
    assert client.post(url).status_code == 302  # already revoked: back to the list, nothing else


def test_a_member_sees_the_list_but_cannot_create_or_revoke(client, place):
    api_key, _ = api_key_create(organisation=place, name="Caisse")
    client.force_login(member_of(place, admin=False))
    html = client.get(reverse("www:api_keys")).content.decode()
    assert "Caisse" in html and "Créer la clé" not in html and "Révoquer" not in html
    assert client.post(reverse("www:api_keys"), {"name": "La mienne"}).status_code == 403
    assert client.get(reverse("www:api_key_revoke", args=[api_key.pk])).status_code == 403
    assert client.post(reverse("www:api_key_revoke", args=[api_key.pk])).status_code == 403
    assert ApiKey.objects.count() == 1 and ApiKey.objects.get().revoked_at is None


def test_an_outsider_sees_only_its_own_keys(client, place):
    mine, _ = api_key_create(organisation=place, name="Caisse de la médiathèque")
    other = OrganisationFactory(distributor=True, name="CCAS de Reims")
    api_key_create(organisation=other, name="Logiciel du CCAS")
    client.force_login(member_of(other))
    html = client.get(reverse("www:api_keys")).content.decode()
    assert "Logiciel du CCAS" in html and "Caisse de la médiathèque" not in html
    assert client.get(reverse("www:api_key_revoke", args=[mine.pk])).status_code == 404
    assert client.post(reverse("www:api_key_revoke", args=[mine.pk])).status_code == 404
    mine.refresh_from_db()
    assert mine.revoked_at is None


def test_funders_and_anonymous_people_have_no_keys_page(client):
    assert client.get(reverse("www:api_keys")).status_code == 302  # to the login page
    client.force_login(member_of(OrganisationFactory(funder=True)))
    assert client.get(reverse("www:api_keys")).status_code == 403
