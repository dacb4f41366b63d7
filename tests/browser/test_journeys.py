"""What people do in a real browser, end to end, with an axe-core check of every page they see.

Chromium is Debian's (/usr/bin/chromium); see conftest.py. Every test gets a new browser context."""

import datetime as dt
import re

import pytest
from django.core import mail
from django.utils import timezone

from passnum.accounts.enums import Role
from passnum.accounts.models import Membership
from passnum.accounts.services import invitation_create
from passnum.programs.models import Program
from passnum.settlement.verify import ledger_verify
from tests.browser.conftest import (
    DESKTOP,
    NARROW,
    assert_accessible,
    assert_no_axe_violations,
    assert_no_horizontal_scroll,
    chromium_missing,
    in_ci,
    login,
)
from tests.factories import OrganisationFactory, ProgramFactory, member_of

if chromium_missing() and not in_ci():
    pytest.skip(f"Tests de navigateur ignorés : {chromium_missing()}", allow_module_level=True)

from playwright.sync_api import expect  # noqa: E402 — only once Playwright is known to be there

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]

NEW_PASSWORD = "un-nouveau-mot-de-passe-42"


# --- helpers ------------------------------------------------------------------------------------------------


def nav_link(page, name):
    return page.get_by_role("navigation", name="Menu principal").get_by_role("link", name=name, exact=True)


def logout(page):
    page.locator("header .fr-header__tools").get_by_role("button", name="Se déconnecter").click()
    page.wait_for_url("**/connexion/")


def links_in(message) -> list[str]:
    return re.findall(r"https?://\S+", message.body)


def tick(page, label):
    """A DSFR checkbox is drawn by its label, which takes the click (as it does for a person)."""
    box = page.get_by_label(label, exact=True)
    if not box.is_checked():
        page.locator(f"label[for='{box.get_attribute('id')}']").click()
    expect(box).to_be_checked()


def fill_program_form(page, *, name, valid_from, valid_until, departements="51", funders=()):
    """Fill the create/edit form as a person would. `funders`: (organisation name, share %, budget €) rows."""
    page.get_by_label("Nom du dispositif").fill(name)
    page.get_by_label("Valeur d’un chèque (€)").fill("10")
    page.get_by_label("Nombre de chèques par carnet").fill("10")
    page.get_by_label("Début de validité", exact=True).fill(valid_from.isoformat())
    page.get_by_label("Fin de validité", exact=True).fill(valid_until.isoformat())
    page.get_by_label("Délai de grâce (jours)").fill("30")
    tick(page, "Aide aux démarches administratives")
    tick(page, "Maîtrise des outils numériques du quotidien")
    page.get_by_label("Départements (codes INSEE)").fill(departements)
    for number, (organisation, share, budget) in enumerate(funders, start=1):
        row = page.locator(f"#financeur-{number}")
        row.get_by_role("combobox").select_option(label=organisation)
        row.get_by_label("Part (%)").fill(share)
        row.get_by_label("Budget (€)").fill(budget)


def save(page):
    with page.expect_navigation():
        page.locator("main form").get_by_role("button", name="Enregistrer").click()


@pytest.fixture
def marne():
    return OrganisationFactory(funder=True, name="Département de la Marne")


@pytest.fixture
def reims():
    return OrganisationFactory(funder=True, name="CU du Grand Reims")


@pytest.fixture
def marne_admin(marne):
    return member_of(marne, admin=True, first_name="Alix", last_name="Martin")


def dates():
    today = timezone.localdate()
    return today, today + dt.timedelta(days=365)


# --- funders: programs --------------------------------------------------------------------------------------


def test_funder_admin_creates_a_cofunded_program(page, live_server, marne, reims, marne_admin):
    login(page, live_server, marne_admin.email)
    nav_link(page, "Dispositifs").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Dispositifs")
    expect(page.get_by_text("Aucun dispositif pour l’instant.")).to_be_visible()
    page.locator("main").get_by_role("link", name="Créer un dispositif").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Créer un dispositif")

    start, end = dates()
    fill_program_form(
        page,
        name="Pass numérique Marne 2026",
        valid_from=start,
        valid_until=end,
        funders=[("Département de la Marne", "60", "6000"), ("CU du Grand Reims", "40", "4000")],
    )
    save(page)

    page.wait_for_url(f"{live_server.url}/financeur/dispositifs/pass-numerique-marne-2026/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Pass numérique Marne 2026")
    expect(page.get_by_role("status")).to_contain_text("Dispositif « Pass numérique Marne 2026 » créé.")
    funders = page.get_by_role("table", name="Financeurs")
    expect(funders.get_by_role("row").nth(1)).to_contain_text("Département de la Marne (pilote)")
    expect(funders.get_by_role("row").nth(1)).to_contain_text("60 %")
    expect(funders.get_by_role("row").nth(1)).to_contain_text("6 000,00 €")
    expect(funders.get_by_role("row").nth(2)).to_contain_text("CU du Grand Reims")
    expect(funders.get_by_role("row").nth(2)).to_contain_text("4 000,00 €")
    expect(page.locator("dd").filter(has_text="Marne (51)")).to_have_count(1)
    expect(page.locator("main").get_by_role("link", name="Modifier")).to_be_visible()

    nav_link(page, "Dispositifs").click()
    row = (
        page.get_by_role("table", name="Dispositifs que votre organisation finance")
        .get_by_role("row")
        .filter(has_text="Pass numérique Marne 2026")
    )
    expect(row).to_have_count(1)
    expect(row).to_contain_text("Département de la Marne (60 %), CU du Grand Reims (40 %)")
    expect(row).to_contain_text("10,00 €")

    program = Program.objects.get(slug="pass-numerique-marne-2026")
    assert program.owner == marne
    assert {(pf.funder.name, pf.share_bps, pf.budget_cents) for pf in program.funders.select_related("funder")} == {
        ("Département de la Marne", 6000, 600_000),
        ("CU du Grand Reims", 4000, 400_000),
    }
    assert list(program.territory.values_list("level", "code")) == [("departement", "51")]
    assert program.eligible_services == ["demarches_administratives", "outils_du_quotidien"]
    assert ledger_verify() == []


def test_bad_program_input_is_explained_and_nothing_is_saved(page, live_server, marne, reims, marne_admin):
    login(page, live_server, marne_admin.email)
    page.goto("/financeur/dispositifs/nouveau/")
    start, end = dates()
    fill_program_form(
        page,
        name="Pass à 90 %",
        valid_from=start,
        valid_until=end,
        funders=[("Département de la Marne", "50", "5000"), ("CU du Grand Reims", "40", "4000")],
    )
    save(page)
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("Le dispositif n’a pas été enregistré")
    expect(alert).to_contain_text("Les parts des financeurs doivent faire exactement 100 %")
    expect(page).to_have_title(re.compile(r"^Erreur"))
    assert not Program.objects.exists()

    # The form comes back filled in: fix the shares, then get the territory wrong.
    expect(page.get_by_label("Nom du dispositif")).to_have_value("Pass à 90 %")
    page.locator("#financeur-1").get_by_label("Part (%)").fill("60")
    page.get_by_label("Départements (codes INSEE)").fill("99")
    save(page)
    expect(page.get_by_role("alert")).to_contain_text("Code département inconnu : 99.")
    assert not Program.objects.exists()

    # Territory right, dates the wrong way round: the message sits next to the end date.
    page.get_by_label("Départements (codes INSEE)").fill("51")
    page.get_by_label("Début de validité", exact=True).fill(end.isoformat())
    page.get_by_label("Fin de validité", exact=True).fill(start.isoformat())
    save(page)
    end_field = page.get_by_label("Fin de validité", exact=True)
    expect(end_field).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#id_valid_until-desc-error")).to_have_text(
        "La fin de validité doit être postérieure au début."
    )
    assert not Program.objects.exists()
    assert ledger_verify() == []


def test_cofunder_reads_only_and_outsider_sees_nothing(page, live_server, marne, reims):
    program = ProgramFactory(owner=marne, cofunder=reims, name="Pass numérique Reims")
    reims_admin = member_of(reims, admin=True)
    outsider = member_of(OrganisationFactory(funder=True, name="Département de l’Aube"), admin=True)
    detail = f"/financeur/dispositifs/{program.slug}/"

    login(page, live_server, reims_admin.email)
    page.goto(detail)
    expect(page.get_by_role("heading", level=1)).to_have_text("Pass numérique Reims")
    expect(page.get_by_text("Lecture seule : le dispositif est piloté par Département de la Marne")).to_be_visible()
    expect(page.get_by_role("link", name="Modifier")).to_have_count(0)
    response = page.goto(f"{detail}modifier/")
    assert response.status == 403
    expect(page.get_by_role("heading", level=1)).to_have_text("Accès refusé")
    assert_accessible(page)
    logout(page)

    login(page, live_server, outsider.email)
    expect(page.get_by_text("Pass numérique Reims")).to_have_count(0)
    response = page.goto(detail)
    assert response.status == 404
    expect(page.get_by_role("heading", level=1)).to_have_text("Page introuvable")
    response = page.goto(f"{detail}modifier/")
    assert response.status == 404
    logout(page)

    # A plain member of the lead funder reads, and is offered neither to edit nor to create.
    login(page, live_server, member_of(marne, admin=False).email)
    expect(page.get_by_role("link", name="Créer un dispositif")).to_have_count(0)
    page.goto(detail)
    expect(page.get_by_role("heading", level=1)).to_have_text("Pass numérique Reims")
    expect(page.get_by_role("link", name="Modifier")).to_have_count(0)
    nav_link(page, "Dispositifs").click()
    expect(page.get_by_role("link", name="Pass numérique Reims")).to_be_visible()
    expect(page.get_by_role("link", name="Créer un dispositif")).to_have_count(0)


# --- accounts -----------------------------------------------------------------------------------------------


def test_organisation_switcher_changes_the_organisation_in_the_header(page, live_server, marne):
    ccas = OrganisationFactory(distributor=True, name="CCAS de Reims")
    user = member_of(ccas, admin=False)
    Membership.objects.create(user=user, organisation=marne, role=Role.ADMIN)

    login(page, live_server, user.email)
    current = page.locator("#organisation-courante")
    expect(current).to_have_text("CCAS de Reims")  # the first by name
    expect(nav_link(page, "Dispositifs")).to_have_count(0)

    nav_link(page, "Changer d’organisation").click()
    expect(page.get_by_label("CCAS de Reims (Prescripteur)")).to_be_checked()
    page.get_by_text("Département de la Marne (Financeur)").click()
    page.get_by_role("button", name="Agir pour cette organisation").click()

    page.wait_for_url(f"{live_server.url}/")
    expect(page.get_by_role("status")).to_contain_text("Organisation changée.")
    expect(current).to_have_text("Département de la Marne")
    expect(page.get_by_role("heading", level=1)).to_have_text("Département de la Marne")
    expect(nav_link(page, "Dispositifs")).to_be_visible()

    # The choice holds on the next pages.
    nav_link(page, "Équipe").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Équipe de Département de la Marne")
    expect(current).to_have_text("Département de la Marne")


def test_admin_invites_a_person_who_joins_as_member(page, live_server, marne, marne_admin):
    login(page, live_server, marne_admin.email)
    nav_link(page, "Équipe").click()
    page.get_by_label("Adresse électronique de la personne").fill("Nouvelle.Personne@Exemple.fr")
    page.get_by_label("Rôle").select_option(label="Membre")
    page.get_by_role("button", name="Envoyer l’invitation").click()
    expect(page.get_by_role("status")).to_contain_text("Invitation envoyée.")

    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["nouvelle.personne@exemple.fr"]
    assert "Département de la Marne" in message.subject
    [link] = [url for url in links_in(message) if "/invitation/" in url]
    assert link.startswith(live_server.url)
    logout(page)

    page.goto(link)
    expect(page.get_by_role("heading", level=1)).to_have_text("Rejoindre « Département de la Marne »")
    expect(page.get_by_text("nouvelle.personne@exemple.fr")).to_be_visible()
    page.get_by_label("Prénom").fill("Nour")
    page.get_by_label(re.compile(r"^\s*Nom\b")).fill("Benali")
    page.get_by_label("Mot de passe").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Accepter l’invitation").click()

    page.wait_for_url(f"{live_server.url}/")
    expect(page.get_by_role("status")).to_contain_text("Bienvenue dans « Département de la Marne ».")
    expect(page.locator("#organisation-courante")).to_have_text("Département de la Marne")
    expect(page.get_by_text("Vous êtes membre de cette organisation.")).to_be_visible()
    membership = Membership.objects.get(user__email="nouvelle.personne@exemple.fr")
    assert (membership.organisation, membership.role) == (marne, Role.MEMBER)
    assert membership.user.get_full_name() == "Nour Benali"

    # The link was for one use only, and the new password works.
    response = page.goto(link)
    assert response.status == 404
    expect(page.get_by_text("Cette invitation a déjà été utilisée.")).to_be_visible()
    logout(page)
    login(page, live_server, "nouvelle.personne@exemple.fr", NEW_PASSWORD)


def test_password_reset_by_email(page, live_server, marne, marne_admin):
    page.goto("/connexion/")
    page.get_by_role("link", name="Mot de passe oublié ?").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Mot de passe oublié")
    page.get_by_label("Adresse électronique").fill(marne_admin.email)
    page.get_by_role("button", name="Recevoir le lien").click()

    page.wait_for_url("**/mot-de-passe/envoye/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Vérifiez votre messagerie")
    assert len(mail.outbox) == 1
    [link] = [url for url in links_in(mail.outbox[0]) if "/mot-de-passe/nouveau/" in url]
    assert mail.outbox[0].to == [marne_admin.email]

    page.goto(link)  # Django swaps the token for a session and redirects to …/set-password/
    expect(page.get_by_role("heading", level=1)).to_have_text("Choisir un nouveau mot de passe")
    assert_accessible(page)
    page.locator("#id_new_password1").fill(NEW_PASSWORD)
    page.locator("#id_new_password2").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Enregistrer").click()

    page.wait_for_url("**/mot-de-passe/change/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Mot de passe changé")
    assert_accessible(page)
    page.locator("main").get_by_role("link", name="Se connecter").click()
    login(page, live_server, marne_admin.email, NEW_PASSWORD)
    expect(page.get_by_role("heading", level=1)).to_have_text("Département de la Marne")

    # The link is spent.
    logout(page)
    page.goto(link)
    expect(page.get_by_text("Ce lien n’est plus valable.")).to_be_visible()


# --- accessibility: every page a person uses, at desktop width and at 320 px ------------------------------


def test_public_pages_are_accessible(page, live_server, marne_admin):
    page.goto("/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Le pass numérique, simple et transparent")
    assert_accessible(page)

    page.goto("/connexion/")
    assert_accessible(page)
    page.get_by_label("Adresse électronique").fill(marne_admin.email)
    page.get_by_label("Mot de passe", exact=True).fill("pas-le-bon-mot-de-passe")
    page.locator("main form").get_by_role("button", name="Se connecter").click()
    expect(page.get_by_text("Adresse électronique ou mot de passe incorrect.")).to_be_visible()
    assert_accessible(page)

    page.goto("/mot-de-passe/oublie/")
    assert_accessible(page)
    page.get_by_label("Adresse électronique").fill("personne@inconnue.fr")
    page.get_by_role("button", name="Recevoir le lien").click()
    page.wait_for_url("**/mot-de-passe/envoye/")
    assert_accessible(page)
    assert mail.outbox == []  # same answer, no e-mail, for an unknown address

    response = page.goto("/cette-page-n-existe-pas/")
    assert response.status == 404
    expect(page.get_by_role("heading", level=1)).to_have_text("Page introuvable")
    assert_accessible(page)


def test_home_of_each_kind_of_organisation_is_accessible(page, live_server):
    """One test (the live server flushes the database after each): a person of each kind logs in in turn."""
    for kind, heading in [
        ("funder", "Vos dispositifs"),
        ("distributor", "Votre stock de carnets"),
        ("place", "Accepter le pass numérique"),
        ("operator", None),
    ]:
        organisation = OrganisationFactory(name=f"Structure {kind}", **{kind: True})
        user = member_of(organisation, admin=True)
        login(page, live_server, user.email)
        expect(page.get_by_role("heading", level=1)).to_have_text(f"Structure {kind}")
        if heading:
            expect(page.get_by_role("heading", level=2).first).to_have_text(heading)
        assert_accessible(page)
        logout(page)


def test_funder_pages_are_accessible(page, live_server, marne, reims, marne_admin):
    program = ProgramFactory(owner=marne, cofunder=reims, name="Pass numérique Marne")
    Membership.objects.create(
        user=marne_admin, organisation=OrganisationFactory(distributor=True, name="Mairie d’Épernay"), role=Role.MEMBER
    )  # a second organisation, so the switch page is offered
    login(page, live_server, marne_admin.email)
    expect(page.locator("#organisation-courante")).to_have_text("Département de la Marne")
    assert_accessible(page)  # home with a program listed

    for path in [
        "/financeur/dispositifs/",
        "/financeur/dispositifs/nouveau/",
        f"/financeur/dispositifs/{program.slug}/",
        f"/financeur/dispositifs/{program.slug}/modifier/",
        "/equipe/",
        "/organisation/",
    ]:
        response = page.goto(path)
        assert response.status == 200, path
        assert_accessible(page)

    # The navigation at 320 px: a DSFR modal behind the "Menu" button.
    page.set_viewport_size(NARROW)
    page.get_by_role("button", name="Menu").click()
    menu = page.get_by_role("dialog")
    expect(menu).to_be_visible()
    expect(menu.get_by_role("link", name="Équipe")).to_be_visible()
    expect(menu.get_by_role("button", name="Se déconnecter")).to_be_visible()
    assert_no_axe_violations(page)
    menu.get_by_role("button", name="Fermer").click()
    expect(menu).to_be_hidden()
    page.set_viewport_size(DESKTOP)

    # Forms after a failed submit, errors shown.
    page.goto("/financeur/dispositifs/nouveau/")
    page.locator("#financeur-1").get_by_label("Part (%)").fill("")
    save(page)
    expect(page.get_by_role("alert")).to_contain_text("Corrigez les champs signalés ci-dessous.")
    expect(page.locator("#financeur-1")).to_contain_text("Indiquez la part et le budget de ce financeur.")
    assert_accessible(page)

    page.goto(f"/financeur/dispositifs/{program.slug}/modifier/")
    page.locator("#financeur-2").get_by_label("Part (%)").fill("10")
    save(page)
    expect(page.get_by_role("alert")).to_contain_text("Les parts des financeurs doivent faire exactement 100 %")
    assert_accessible(page)

    page.goto("/equipe/")
    page.get_by_label("Adresse électronique de la personne").fill(marne_admin.email)
    page.get_by_role("button", name="Envoyer l’invitation").click()
    expect(page.get_by_text("Cette personne fait déjà partie de l’organisation.")).to_be_visible()
    assert_accessible(page)


def test_invitation_pages_are_accessible(page, live_server, marne, marne_admin):
    tokens = []
    invitation_create(
        organisation=marne,
        email="invitee@exemple.fr",
        role=Role.MEMBER,
        invited_by=marne_admin,
        accept_url_builder=lambda token: tokens.append(token) or token,
    )
    [token] = tokens

    page.goto(f"/invitation/{token}/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Rejoindre « Département de la Marne »")
    assert_accessible(page)

    page.get_by_label("Mot de passe").fill("court")
    page.get_by_role("button", name="Accepter l’invitation").click()
    expect(page.get_by_label("Mot de passe")).to_have_attribute("aria-invalid", "true")
    assert_accessible(page)
    assert not Membership.objects.filter(user__email="invitee@exemple.fr").exists()

    response = page.goto("/invitation/jeton-inconnu/")
    assert response.status == 404
    expect(page.get_by_text("Cette invitation n’existe pas.")).to_be_visible()
    assert_accessible(page)


def test_login_works_and_is_accessible_without_javascript(browser, live_server, marne_admin):
    context = browser.new_context(locale="fr-FR", viewport=DESKTOP, base_url=live_server.url, java_script_enabled=False)
    try:
        page = context.new_page()
        page.goto("/")
        assert_accessible(page)
        login(page, live_server, marne_admin.email)
        expect(page.get_by_role("heading", level=1)).to_have_text("Département de la Marne")
        assert_accessible(page)
    finally:
        context.close()


# --- the checker itself -------------------------------------------------------------------------------------


def test_the_accessibility_check_catches_violations(page, browser, live_server):
    """axe-core really runs: a page with an image without text and a 600 px block fails both checks."""
    page.set_content(
        '<!DOCTYPE html><html lang="fr"><head><title>Essai</title></head><body><main><h1>Essai</h1>'
        '<img src="data:image/gif;base64,R0lGODlhAQABAAAAACw=">'
        '<div style="width:600px">large</div></main></body></html>'
    )
    with pytest.raises(pytest.fail.Exception, match=r"image-alt"):
        assert_no_axe_violations(page)
    page.set_viewport_size(NARROW)
    with pytest.raises(pytest.fail.Exception, match=r"défilement horizontal"):
        assert_no_horizontal_scroll(page)

    # Without JavaScript, through the script-less copy: the page's own markup is what gets checked.
    context = browser.new_context(locale="fr-FR", base_url=live_server.url, java_script_enabled=False)
    try:
        no_js = context.new_page()
        no_js.goto("/connexion/")
        assert_no_axe_violations(no_js)
        no_js.evaluate("() => document.querySelector('main').append(document.createElement('img'))")
        with pytest.raises(pytest.fail.Exception, match=r"image-alt"):
            assert_no_axe_violations(no_js)
    finally:
        context.close()
