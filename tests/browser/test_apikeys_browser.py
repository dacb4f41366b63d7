"""API keys in Chromium: an admin creates a key (shown once), then revokes it after confirming; a member only sees
the list. axe at desktop width and 320 px on every page."""

import pytest
from django.core.cache import cache

from passnum.accounts.apikeys import api_key_authenticate, api_key_create
from tests.browser.conftest import assert_accessible, chromium_missing, in_ci
from tests.browser.conftest import login as log_in
from tests.factories import OrganisationFactory, member_of

if chromium_missing() and not in_ci():
    pytest.skip(f"Tests de navigateur ignorés : {chromium_missing()}", allow_module_level=True)

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()


def test_admin_creates_then_revokes_a_key(page, live_server):
    place = OrganisationFactory(place=True, name="Médiathèque Jean Falala")
    admin = member_of(place)
    log_in(page, live_server, admin.email)
    page.goto(f"{live_server.url}/cles-api/")
    assert page.get_by_text("Aucune clé pour le moment.").is_visible()
    assert_accessible(page)

    with page.expect_navigation():  # empty name: the error is shown, nothing is created
        page.get_by_role("button", name="Créer la clé").click()
    assert page.get_by_text("Donnez un nom à la clé.").first.is_visible()
    assert_accessible(page)

    page.get_by_label("Nom de la clé").fill("Caisse de l’accueil")
    with page.expect_navigation():
        page.get_by_role("button", name="Créer la clé").click()
    assert page.get_by_text("Copiez-la maintenant : elle ne sera plus jamais affichée.").is_visible()
    key = page.get_by_label("Votre nouvelle clé").input_value()
    assert key.startswith("pn_") and api_key_authenticate(key).organisation == place
    assert key not in page.url
    assert_accessible(page)

    page.goto(f"{live_server.url}/cles-api/")  # shown once: not any more
    assert key not in page.content() and f"{key[:10]}…" in page.content()
    with page.expect_navigation():
        page.get_by_role("link", name="Révoquer la clé « Caisse de l’accueil »").click()
    assert page.get_by_role("heading", name="Révoquer la clé « Caisse de l’accueil »").is_visible()
    assert_accessible(page)
    with page.expect_navigation():
        page.get_by_role("button", name="Révoquer la clé").click()
    assert page.get_by_text("Clé « Caisse de l’accueil » révoquée").is_visible()
    assert api_key_authenticate(key) is None
    assert_accessible(page)


def test_a_member_only_sees_the_keys(page, live_server):
    distributor = OrganisationFactory(distributor=True, name="CCAS de Reims")
    api_key_create(organisation=distributor, name="Logiciel d’accueil")
    member = member_of(distributor, admin=False)
    log_in(page, live_server, member.email)
    with page.expect_navigation():
        page.get_by_role("link", name="Clés d’API").click()
    assert page.get_by_role("cell", name="Logiciel d’accueil").is_visible()
    assert page.get_by_role("button", name="Créer la clé").count() == 0
    assert page.get_by_text("Seuls les administrateurs de la structure créent et révoquent les clés.").is_visible()
    assert_accessible(page)
