"""Settlement in Chromium, clicked through as people do it: a funder's finance officer rejects a line with a
reason, approves claims in bulk, generates and downloads the SEPA payment file, imports a CSV bank statement and
closes the incident; a place sees its payment status and downloads its statements; a funder's admin sets the
account it pays from. axe at desktop width and 320 px on every page (and 360 px on the place's list)."""

from pathlib import Path

import pytest
from django.core.cache import cache

from passnum.accounts.enums import Role
from passnum.common.standard import Service
from passnum.places.services import bank_account_review
from passnum.settlement.enums import ClaimStatus, IncidentStatus, LineStatus
from passnum.settlement.models import BankAccount, Claim, FinanceIncident, PaymentFile
from passnum.settlement.payments import bank_account_set, payment_file_create
from passnum.settlement.services import claim_line_reject, claim_mark_paid, claims_approve
from passnum.vouchers import codes, signing
from passnum.vouchers.redemption import Desk, redeem
from tests.browser.conftest import assert_accessible, assert_no_axe_violations, chromium_missing, in_ci
from tests.browser.conftest import login as log_in
from tests.desk.scenario import build, make_site
from tests.factories import MembershipFactory, OrganisationFactory, UserFactory, member_of
from tests.settlement.flow import settle_all

if chromium_missing() and not in_ci():
    pytest.skip(f"Tests de navigateur ignorés : {chromium_missing()}", allow_module_level=True)

from playwright.sync_api import expect  # noqa: E402 — only once Playwright is known to be there

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]

PHONE = {"width": 360, "height": 740}
ACCOUNTS = {
    "funder": ("FR7630001007941234567890185", "BDFEFRPPXXX"),
    "place": ("FR7630004000031234567890143", "BNPAFRPPXXX"),
    "place2": ("FR7630006000011234567890189", "AGRIFRPPXXX"),
}


@pytest.fixture(autouse=True)
def _setup(settings, tmp_path):
    settings.PASSNUM_SIGNING_KEYS_DIR = tmp_path / "keys"
    settings.MEDIA_ROOT = tmp_path / "media"
    signing.load_keys.cache_clear()
    cache.clear()
    yield
    signing.load_keys.cache_clear()


def _world():
    """Two places, each with three vouchers redeemed, settled: the funder has one claim on each."""
    sc = build()
    place2 = OrganisationFactory(place=True, name="Tiers-lieu du Cèdre")
    make_site(place2, name="Tiers-lieu du Cèdre")
    for position in (1, 2, 3):
        redeem(raw_code=sc.code(position), desk=Desk(place=sc.place), service=Service.EVERYDAY_TOOLS)
    for position in (4, 5, 6):
        redeem(raw_code=sc.code(position), desk=Desk(place=place2), service=Service.EVERYDAY_TOOLS)
    settle_all()
    return sc, place2


def _bank_details(sc, *places):
    """The funder's debtor account; each place's details, validated by a funder admin."""
    bank_account_set(
        organisation=sc.funder, holder_name=sc.funder.name, iban=ACCOUNTS["funder"][0], bic=ACCOUNTS["funder"][1]
    )
    reviewer = member_of(sc.funder)
    for place, key in zip(places, ("place", "place2"), strict=False):
        account = bank_account_set(
            organisation=place, holder_name=place.name, iban=ACCOUNTS[key][0], bic=ACCOUNTS[key][1]
        )
        bank_account_review(account=account, approve=True, reason="", actor=reviewer, organisation=sc.funder)


def _finance_user(org):
    user = UserFactory()
    MembershipFactory(user=user, organisation=org, role=Role.FINANCE)
    return user


def _click(page, locator) -> None:
    with page.expect_navigation():
        locator.click()
    page.wait_for_load_state()


def test_funder_rejects_approves_pays_and_imports_a_statement(page, live_server, tmp_path):
    sc, place2 = _world()
    _bank_details(sc, sc.place, place2)
    claim = Claim.objects.get(funder=sc.funder, place=sc.place)
    claim2 = Claim.objects.get(funder=sc.funder, place=place2)
    officer = _finance_user(sc.funder)
    log_in(page, live_server, officer.email)
    main = page.locator("main")

    _click(page, page.get_by_role("navigation", name="Menu principal").get_by_role("link", name="Règlements"))
    expect(page.get_by_role("heading", level=1, name="Règlements")).to_be_visible()
    expect(page.locator("#a-valider")).to_contain_text("2 demandes, 36,00")
    assert_accessible(page)

    # the claims list, then one claim: reject a line, first without a reason
    _click(page, main.get_by_role("link", name="Demandes", exact=True))
    expect(main.get_by_role("link", name=claim.reference)).to_be_visible()
    assert_accessible(page)
    _click(page, main.get_by_role("link", name=claim.reference, exact=True))
    expect(page.get_by_role("heading", level=1, name=f"Demande {claim.reference}")).to_be_visible()
    assert_accessible(page)
    line = claim.lines.order_by("redeemed_at", "pk").first()
    code = codes.display(line.voucher.code)
    _click(page, main.get_by_role("link", name=f"Rejeter le chèque {code}"))
    assert_accessible(page)
    _click(page, main.get_by_role("button", name="Rejeter la ligne"))
    expect(page.locator("#erreurs")).to_contain_text("La ligne n’a pas été rejetée")
    expect(main).to_contain_text("Indiquez le motif du rejet.")
    assert page.title().startswith("Erreur : ")
    assert_accessible(page)
    main.get_by_label("Motif du rejet").fill("Séance en double")
    _click(page, main.get_by_role("button", name="Rejeter la ligne"))
    expect(main).to_contain_text("Ligne rejetée : 6,00")
    expect(main.get_by_role("table", name="Lignes rejetées de cette demande")).to_contain_text("Séance en double")
    assert_accessible(page)
    line.refresh_from_db()
    assert line.status == LineStatus.REJECTED

    # bulk approval of both claims
    _click(page, main.get_by_role("link", name="Demandes", exact=True))
    for c in (claim, claim2):
        main.get_by_label(f"Valider la demande {c.reference}").check()
    _click(page, main.get_by_role("button", name="Valider les demandes cochées"))
    expect(main).to_contain_text("2 demandes validées, 30,00")
    assert_accessible(page)
    assert set(Claim.objects.filter(funder=sc.funder).values_list("status", flat=True)) == {ClaimStatus.APPROVED}

    # the payment file, in the 2019 format, then downloaded
    _click(page, main.get_by_role("link", name="Virements"))
    expect(main).to_contain_text("2 demandes validées, 30,00")
    assert_accessible(page)
    main.get_by_text("pain.001.001.09 (format ISO 20022 de 2019").click()
    _click(page, main.get_by_role("button", name="Générer le fichier de virements"))
    payment_file = PaymentFile.objects.get()
    expect(main).to_contain_text(f"Fichier de virements {payment_file.message_id} généré : 2 virements, 30,00")
    assert_accessible(page)
    with page.expect_download() as dl:
        main.get_by_role("link", name=payment_file.message_id).click()
    download = dl.value
    assert download.suggested_filename == f"{payment_file.message_id}.xml"
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)
    assert saved.read_bytes() == payment_file.content.encode()
    assert b"urn:iso:std:iso:20022:tech:xsd:pain.001.001.09" in saved.read_bytes()

    # the bank statement (CSV): both claims paid
    _click(page, main.get_by_role("link", name="Relevé bancaire"))
    assert_accessible(page)
    statement = tmp_path / "releve.csv"
    statement.write_text(
        f"reference;montant;date\n{claim.reference};12,00;22/01/2027\n{claim2.reference};18,00;22/01/2027\n"
    )
    main.get_by_label("Relevé bancaire").set_input_files(statement)
    _click(page, main.get_by_role("button", name="Importer le relevé"))
    expect(main.locator("#rapport")).to_contain_text("2 demande(s) payée(s) (30,00")
    assert_accessible(page)
    assert set(Claim.objects.filter(funder=sc.funder).values_list("status", flat=True)) == {ClaimStatus.PAID}

    # the incident: the rejection is confirmed
    _click(page, main.get_by_role("link", name="Incidents"))
    assert_accessible(page)
    _click(page, main.get_by_role("link", name=f"Conclure l’incident du chèque {code}"))
    assert_accessible(page)
    main.get_by_text("Confirmer le rejet").click()
    main.get_by_label("Conclusion").fill("Doublon confirmé par le lieu")
    _click(page, main.get_by_role("button", name="Clore l’incident"))
    expect(main).to_contain_text("Incident clos : Clos : rejet confirmé")
    assert_accessible(page)
    assert FinanceIncident.objects.get().status == IncidentStatus.WRITTEN_OFF


def test_place_sees_its_payments_and_downloads_its_statements(page, live_server, tmp_path):
    sc, _place2 = _world()
    _bank_details(sc, sc.place)
    claim = Claim.objects.get(funder=sc.funder, place=sc.place)
    claim_line_reject(line=claim.lines.order_by("pk").first(), funder=sc.funder, reason="Séance non justifiée")
    claims_approve(claims=[claim], funder=sc.funder)
    payment_file_create(run=claim.run, funder=sc.funder)
    claim_mark_paid(claim=claim, funder=sc.funder, reference="VIR-0122")
    co_claim = Claim.objects.get(funder=sc.cofunder, place=sc.place)
    admin = member_of(sc.place)
    log_in(page, live_server, admin.email)
    main = page.locator("main")

    _click(page, page.get_by_role("navigation", name="Menu principal").get_by_role("link", name="Paiements"))
    table = main.get_by_role("table")
    expect(table).to_contain_text(claim.reference)
    expect(table).to_contain_text("Payée")
    expect(table).to_contain_text(co_claim.reference)
    expect(table).to_contain_text("À valider")
    assert_accessible(page)
    page.set_viewport_size(PHONE)
    assert_no_axe_violations(page)

    with page.expect_download() as dl:
        main.get_by_role("link", name=f"PDF : relevé de la demande {claim.reference}").click()
    pdf = tmp_path / "releve.pdf"
    dl.value.save_as(pdf)
    assert dl.value.suggested_filename.endswith(".pdf") and pdf.read_bytes().startswith(b"%PDF")

    _click(page, main.get_by_role("link", name=claim.reference, exact=True))
    expect(main).to_contain_text("Motif : « Séance non justifiée »")
    expect(main).to_contain_text("VIR-0122")
    assert_accessible(page)
    with page.expect_download() as dl:
        main.get_by_role("link", name="Télécharger le relevé (CSV)").click()
    csv_path = Path(tmp_path / "releve.csv")
    dl.value.save_as(csv_path)
    body = csv_path.read_bytes().decode("utf-8-sig")
    assert claim.reference in body and "Rejet" in body

    page.goto(f"{live_server.url}/organisation/compte-bancaire/")  # a place's details have their own page
    assert page.url == f"{live_server.url}/lieu/coordonnees-bancaires/"


def test_funder_admin_sets_the_account_it_pays_from(page, live_server):
    sc = build()
    admin = member_of(sc.funder)
    log_in(page, live_server, admin.email)
    main = page.locator("main")
    page.goto(f"{live_server.url}/financeur/reglements/virements/")
    expect(main).to_contain_text("Compte de paiement manquant")
    assert_accessible(page)
    _click(page, main.get_by_role("link", name="Saisir le compte"))
    assert_accessible(page)
    main.get_by_label("Titulaire du compte").fill(sc.funder.name)
    main.locator("#id_iban").fill("FR76 3000 1007 9412 3456 7890 186")
    _click(page, main.get_by_role("button", name="Enregistrer le compte"))
    expect(page.locator("#erreurs")).to_contain_text("Les coordonnées n’ont pas été enregistrées")
    expect(main).to_contain_text("Cet IBAN n’est pas valide")
    assert page.title().startswith("Erreur : ")
    assert_accessible(page)
    main.locator("#id_iban").fill("FR76 3000 1007 9412 3456 7890 185")
    _click(page, main.get_by_role("button", name="Enregistrer le compte"))
    expect(main).to_contain_text("Coordonnées bancaires enregistrées.")
    expect(main).to_contain_text("se terminant par 0185")
    assert_accessible(page)
    assert BankAccount.objects.get(organisation=sc.funder).iban == ACCOUNTS["funder"][0]
