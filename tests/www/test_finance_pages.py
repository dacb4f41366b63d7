"""The finance pages (passnum/www/finance.py, passnum/www/payments.py): a funder's runs, claims, bulk approval,
line rejection, incidents, payment files, « Marquer payée », bank statement import; a place's payments and
statements; an organisation's bank account. Every refusal is in French and changes nothing; a member who is not
finance cannot act; outsiders (another funder, another place) get 403/404 and see nothing."""

import html
from dataclasses import dataclass

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from passnum.accounts.enums import Role
from passnum.common.standard import Service
from passnum.places.models import BankAccount as PlaceBankAccount
from passnum.places.services import bank_account_review
from passnum.settlement.enums import ClaimStatus, IncidentStatus, LineStatus
from passnum.settlement.models import BankAccount, Claim, ClaimLine, FinanceIncident, PaymentFile
from passnum.settlement.payments import bank_account_set, payment_file_create
from passnum.settlement.services import claim_line_reject, claim_mark_paid, claims_approve
from passnum.vouchers import codes
from passnum.vouchers.redemption import Desk, redeem
from tests.desk.scenario import build
from tests.factories import MembershipFactory, OrganisationFactory, UserFactory, member_of
from tests.settlement.flow import settle_all

pytestmark = pytest.mark.django_db

FUNDER_IBAN = ("FR7630001007941234567890185", "BDFEFRPPXXX")
PLACE_IBAN = ("FR7630004000031234567890143", "BNPAFRPPXXX")

OVERVIEW = reverse("www:finance_overview")
CLAIMS = reverse("www:finance_claims")
INCIDENTS = reverse("www:finance_incidents")
FILES = reverse("www:finance_payment_files")
STATEMENT = reverse("www:finance_statement_import")
PAYMENTS = reverse("www:place_payments")
BANK = reverse("www:bank_account")


@dataclass
class World:
    sc: object
    funder: object
    place: object
    claim: Claim  # the funder's claim on the place (3 lines of 6 €)
    co_claim: Claim  # the co-funder's claim on the place (3 lines of 4 €)
    finance: object  # Role.FINANCE in the funder
    reader: object  # Role.MEMBER in the funder
    funder_admin: object
    place_admin: object
    place_member: object
    other_funder_user: object  # admin of another funder
    other_place_user: object  # admin of another place
    cofunder_admin: object


def _finance_member(org):
    user = UserFactory()
    MembershipFactory(user=user, organisation=org, role=Role.FINANCE)
    return user


@pytest.fixture
def w():
    sc = build()
    desk = Desk(place=sc.place, user=sc.place_user)
    for position in (1, 2, 3):
        redeem(raw_code=sc.code(position), desk=desk, service=Service.EVERYDAY_TOOLS)
    settle_all()
    other_funder = OrganisationFactory(funder=True, name="Région Grand Est")
    other_place = OrganisationFactory(place=True, name="Tiers-lieu du Cèdre")
    return World(
        sc=sc,
        funder=sc.funder,
        place=sc.place,
        claim=Claim.objects.get(funder=sc.funder),
        co_claim=Claim.objects.get(funder=sc.cofunder),
        finance=_finance_member(sc.funder),
        reader=member_of(sc.funder, admin=False),
        funder_admin=member_of(sc.funder),
        place_admin=member_of(sc.place),
        place_member=sc.place_user,
        other_funder_user=member_of(other_funder),
        other_place_user=member_of(other_place),
        cofunder_admin=member_of(sc.cofunder),
    )


def as_user(client, user):
    client.force_login(user)
    return client


def text(response) -> str:
    return html.unescape(response.content.decode())


def follow_text(response) -> str:
    assert response.status_code == 200, response.status_code
    return text(response)


def state():
    """Everything a refusal must leave as it was."""
    return (
        sorted(Claim.objects.values_list("pk", "status", "rejected_cents", "paid_at", "payment_file_id")),
        sorted(ClaimLine.objects.values_list("pk", "status")),
        sorted(FinanceIncident.objects.values_list("pk", "status")),
        PaymentFile.objects.count(),
        sorted(BankAccount.objects.values_list("organisation_id", "iban")),
        sorted(PlaceBankAccount.objects.values_list("organisation_id", "iban", "status")),
    )


def line_of(claim, n=0) -> ClaimLine:
    return claim.lines.order_by("pk")[n]


def banks(w, *, validate=True):
    """The funder's debtor account; the place's details, validated by the funder unless told otherwise."""
    bank_account_set(organisation=w.funder, holder_name=w.funder.name, iban=FUNDER_IBAN[0], bic=FUNDER_IBAN[1])
    account = bank_account_set(organisation=w.place, holder_name=w.place.name, iban=PLACE_IBAN[0], bic=PLACE_IBAN[1])
    if validate:
        bank_account_review(account=account, approve=True, reason="", actor=w.funder_admin, organisation=w.funder)


# --- overview and claims list ---------------------------------------------------------------------------


def test_overview_lists_runs_with_claims_by_status(client, w):
    page = follow_text(as_user(client, w.reader).get(OVERVIEW))
    assert "<h1>Règlements</h1>" in page
    assert w.claim.run.cutoff.strftime("%Y") in page
    assert "1 demande, 18,00\xa0€." in page  # to approve: the funder's share, 3 × 6 €
    assert "Seuls les administrateurs et les membres « Finances »" in page  # the reader is told


def test_claims_list_shows_only_the_funders_claims_and_checkboxes_to_finance(client, w):
    page = follow_text(as_user(client, w.finance).get(CLAIMS))
    assert w.claim.reference in page and w.co_claim.reference not in page
    assert f'name="claims" value="{w.claim.pk}"' in page and "Valider les demandes cochées" in page
    reader_page = follow_text(as_user(client, w.reader).get(CLAIMS))
    assert w.claim.reference in reader_page
    assert 'name="claims"' not in reader_page and "Valider les demandes cochées" not in reader_page


def test_claims_list_filters_and_reports_bad_filters(client, w):
    c = as_user(client, w.finance)
    page = follow_text(c.get(CLAIMS, {"status": ClaimStatus.PAID}))
    assert w.claim.reference not in page and "Aucune demande pour ces critères." in page
    page = follow_text(c.get(CLAIMS, {"run": w.claim.run_id, "status": ClaimStatus.SUBMITTED}))
    assert w.claim.reference in page
    page = follow_text(c.get(CLAIMS, {"run": "abc", "status": "nope", "page": "9999999999"}))
    assert "Cet arrêté n’existe pas" in page and "Statut inconnu" in page
    assert w.claim.reference in page  # bad filters are ignored


def test_bulk_approve(client, w):
    response = as_user(client, w.finance).post(f"{CLAIMS}?status=submitted", {"claims": [w.claim.pk]})
    assert response.status_code == 302 and response["Location"] == f"{CLAIMS}?status=submitted"
    w.claim.refresh_from_db()
    assert w.claim.status == ClaimStatus.APPROVED and w.claim.approved_by == w.finance
    page = follow_text(client.get(response["Location"]))
    assert "1 demande validée, 18,00\xa0€ à payer." in page


def test_funder_admin_may_approve_too(client, w):
    as_user(client, w.funder_admin).post(CLAIMS, {"claims": [w.claim.pk]})
    w.claim.refresh_from_db()
    assert w.claim.status == ClaimStatus.APPROVED


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({}, "Cochez au moins une demande à valider"),
        ({"claims": ["x"]}, "Une des demandes cochées est introuvable"),
        ({"claims": ["99999999"]}, "Une des demandes cochées est introuvable"),
    ],
)
def test_bulk_approve_refusals_change_nothing(client, w, data, message):
    before = state()
    response = as_user(client, w.finance).post(CLAIMS, data, follow=True)
    assert message in follow_text(response)
    assert state() == before


def test_bulk_approve_with_another_funders_claim_refuses_the_whole_batch(client, w):
    before = state()
    response = as_user(client, w.finance).post(CLAIMS, {"claims": [w.claim.pk, w.co_claim.pk]}, follow=True)
    assert "Une des demandes cochées est introuvable : aucune demande n’a été validée." in follow_text(response)
    assert state() == before


def test_bulk_approve_of_an_approved_claim_is_refused_in_french(client, w):
    claims_approve(claims=[w.claim], funder=w.funder)
    before = state()
    response = as_user(client, w.finance).post(CLAIMS, {"claims": [w.claim.pk]}, follow=True)
    assert "elle ne peut plus être validée. Aucune demande n’a été validée." in follow_text(response)
    assert state() == before


def test_non_finance_member_cannot_approve(client, w):
    before = state()
    assert as_user(client, w.reader).post(CLAIMS, {"claims": [w.claim.pk]}).status_code == 403
    assert state() == before


# --- claim detail, line rejection, mark paid ------------------------------------------------------------


def test_claim_detail_lists_lines_with_codes_and_reject_links(client, w):
    line = line_of(w.claim)
    page = follow_text(as_user(client, w.finance).get(reverse("www:finance_claim", args=[w.claim.pk])))
    assert f"Demande {w.claim.reference}" in page
    assert codes.display(line.voucher.code) in page and "6,00\xa0€" in page
    assert "Maîtrise des outils numériques du quotidien" in page
    assert reverse("www:finance_line_reject", args=[w.claim.pk, line.pk]) in page
    assert reverse("www:statement_pdf", args=[w.claim.pk]) in page
    reader_page = follow_text(as_user(client, w.reader).get(reverse("www:finance_claim", args=[w.claim.pk])))
    assert "rejeter/" not in reader_page and "Marquer payée" not in reader_page


def test_reject_a_line_with_a_reason(client, w):
    line = line_of(w.claim)
    url = reverse("www:finance_line_reject", args=[w.claim.pk, line.pk])
    c = as_user(client, w.finance)
    assert "Motif du rejet" in follow_text(c.get(url))
    response = c.post(url, {"reason": "Séance en double"})
    assert response.status_code == 302
    line.refresh_from_db()
    w.claim.refresh_from_db()
    assert line.status == LineStatus.REJECTED and w.claim.rejected_cents == 600
    incident = FinanceIncident.objects.get()
    assert incident.reason == "Séance en double" and incident.status == IncidentStatus.OPEN
    page = follow_text(c.get(response["Location"]))
    assert "Ligne rejetée : 6,00\xa0€ retirés" in page and "Séance en double" in page


@pytest.mark.parametrize(
    ("reason", "message"),
    [("", "Indiquez le motif du rejet."), ("   ", "Indiquez le motif du rejet."), ("x" * 501, "500 caractères")],
)
def test_reject_needs_a_reason(client, w, reason, message):
    line = line_of(w.claim)
    before = state()
    response = as_user(client, w.finance).post(
        reverse("www:finance_line_reject", args=[w.claim.pk, line.pk]), {"reason": reason}
    )
    page = follow_text(response)
    assert message in page and 'role="alert"' in page and page.count("<title>Erreur : ") == 1
    assert state() == before


def test_reject_after_approval_is_refused(client, w):
    claims_approve(claims=[w.claim], funder=w.funder)
    line = line_of(w.claim)
    before = state()
    response = as_user(client, w.finance).post(
        reverse("www:finance_line_reject", args=[w.claim.pk, line.pk]), {"reason": "Trop tard"}, follow=True
    )
    assert "Cette ligne ne peut plus être rejetée" in follow_text(response)
    assert state() == before


def test_non_finance_member_cannot_reject(client, w):
    line = line_of(w.claim)
    url = reverse("www:finance_line_reject", args=[w.claim.pk, line.pk])
    before = state()
    c = as_user(client, w.reader)
    assert c.get(url).status_code == 403
    assert c.post(url, {"reason": "Non"}).status_code == 403
    assert state() == before


def test_a_line_of_another_claim_is_404(client, w):
    other_line = line_of(w.co_claim)
    url = reverse("www:finance_line_reject", args=[w.claim.pk, other_line.pk])
    assert as_user(client, w.finance).post(url, {"reason": "Non"}).status_code == 404


def test_mark_paid_by_hand(client, w):
    claims_approve(claims=[w.claim], funder=w.funder)
    url = reverse("www:finance_claim_paid", args=[w.claim.pk])
    c = as_user(client, w.finance)
    assert "Marquer payée" in follow_text(c.get(reverse("www:finance_claim", args=[w.claim.pk])))
    response = c.post(url, {"reference": "VIR-0122"})
    assert response.status_code == 302
    w.claim.refresh_from_db()
    assert w.claim.status == ClaimStatus.PAID and w.claim.paid_reference == "VIR-0122"
    again = c.post(url, {"reference": "VIR-0122"}, follow=True)
    assert "était déjà payée : rien n’a changé" in follow_text(again)


def test_mark_paid_refusals_change_nothing(client, w):
    url = reverse("www:finance_claim_paid", args=[w.claim.pk])
    before = state()
    page = follow_text(as_user(client, w.finance).post(url, {"reference": ""}))  # not approved yet
    assert "elle doit être validée avant d’être payée" in page and 'role="alert"' in page
    claims_approve(claims=[w.claim], funder=w.funder)
    before = state()
    page = follow_text(client.post(url, {"reference": "x" * 71}))
    assert "70 caractères au plus" in page
    assert state() == before
    assert as_user(client, w.reader).post(url, {"reference": ""}).status_code == 403
    assert state() == before


# --- incidents ------------------------------------------------------------------------------------------


def _incident(w, reason="Séance en double"):
    return claim_line_reject(line=line_of(w.claim), funder=w.funder, reason=reason, actor=w.finance)


def test_incidents_list_and_close(client, w):
    incident = _incident(w)
    c = as_user(client, w.finance)
    page = follow_text(c.get(INCIDENTS))
    assert "Séance en double" in page and w.claim.reference in page
    url = reverse("www:finance_incident", args=[incident.pk])
    assert "Conclure l’incident" in follow_text(c.get(url))
    response = c.post(url, {"outcome": IncidentStatus.REINSTATED, "resolution": "Séance bien réalisée"})
    assert response.status_code == 302
    incident.refresh_from_db()
    assert incident.status == IncidentStatus.REINSTATED and incident.resolution == "Séance bien réalisée"
    assert "Incident clos : Clos : ligne rétablie" in follow_text(c.get(url))
    assert "Aucun incident ouvert." in follow_text(c.get(INCIDENTS))
    assert "Séance en double" in follow_text(c.get(INCIDENTS, {"etat": "clos"}))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"resolution": "Vu"}, "Choisissez une décision."),
        ({"outcome": "paid", "resolution": "Vu"}, "Choisissez une des deux décisions proposées."),
        ({"outcome": IncidentStatus.WRITTEN_OFF, "resolution": ""}, "Indiquez la conclusion de l’incident."),
    ],
)
def test_incident_close_refusals(client, w, data, message):
    incident = _incident(w)
    before = state()
    page = follow_text(as_user(client, w.finance).post(reverse("www:finance_incident", args=[incident.pk]), data))
    assert message in page and 'role="alert"' in page
    assert state() == before


def test_non_finance_member_cannot_close_an_incident(client, w):
    incident = _incident(w)
    url = reverse("www:finance_incident", args=[incident.pk])
    before = state()
    c = as_user(client, w.reader)
    page = follow_text(c.get(url))
    assert "Séance en double" in page and "Clore l’incident" not in page
    assert c.post(url, {"outcome": IncidentStatus.WRITTEN_OFF, "resolution": "Non"}).status_code == 403
    assert state() == before


# --- payment files --------------------------------------------------------------------------------------


def test_payment_files_page_lists_runs_to_pay_and_missing_bank_details(client, w):
    claims_approve(claims=[w.claim], funder=w.funder)
    page = follow_text(as_user(client, w.finance).get(FILES))
    assert "Compte de paiement manquant" in page and "Un administrateur de votre organisation" in page
    assert "Générer le fichier de virements" in page and "pain.001.001.09" in page
    assert "Lieux sans coordonnées bancaires" in page and w.place.name in page and "Non saisies" in page


def test_pending_place_bank_details_link_admins_to_their_review(client, w):
    banks(w, validate=False)
    claims_approve(claims=[w.claim], funder=w.funder)
    account = PlaceBankAccount.objects.get(organisation=w.place)
    page = follow_text(as_user(client, w.funder_admin).get(FILES))
    assert reverse("www:review_bank", args=[account.pk]) in page and "À valider" in page
    page = follow_text(as_user(client, w.finance).get(FILES))
    assert "En attente de validation par un administrateur" in page and "review_bank" not in page
    page = follow_text(as_user(client, w.place_member).get(PAYMENTS))
    assert "Coordonnées bancaires en attente de validation" in page and "se terminant par 0143" in page


def test_generate_and_download_a_payment_file(client, w):
    banks(w)
    claims_approve(claims=[w.claim], funder=w.funder)
    c = as_user(client, w.finance)
    url = reverse("www:finance_payment_file_generate", args=[w.claim.run_id])
    response = c.post(url, {f"arrete-{w.claim.run_id}-version": "pain.001.001.09"}, follow=True)
    page = follow_text(response)
    payment_file = PaymentFile.objects.get()
    assert payment_file.version == "pain.001.001.09" and payment_file.total_cents == 1800
    assert f"Fichier de virements {payment_file.message_id} généré : 1 virement, 18,00\xa0€." in page
    assert "Lieux sans coordonnées bancaires" not in page
    w.claim.refresh_from_db()
    assert w.claim.status == ClaimStatus.IN_PAYMENT
    download = c.get(reverse("www:finance_payment_file_download", args=[payment_file.pk]))
    assert download.status_code == 200 and download["Content-Type"] == "application/xml"
    assert download["Content-Disposition"] == f'attachment; filename="{payment_file.message_id}.xml"'
    assert download.content == payment_file.content.encode()
    assert b"pain.001.001.09" in download.content


def test_generate_refusals_change_nothing(client, w):
    claims_approve(claims=[w.claim], funder=w.funder)
    c = as_user(client, w.finance)
    url = reverse("www:finance_payment_file_generate", args=[w.claim.run_id])
    before = state()
    page = follow_text(c.post(url, {f"arrete-{w.claim.run_id}-version": "pain.001.001.99"}))
    assert "Choisissez un des formats proposés." in page
    page = follow_text(c.post(url, {f"arrete-{w.claim.run_id}-version": "pain.001.001.03"}, follow=True))
    assert "n’a pas de compte bancaire enregistré" in page and "Aucun fichier n’a été généré." in page
    assert state() == before
    assert c.post(reverse("www:finance_payment_file_generate", args=[999999]), {}).status_code == 404


def test_non_finance_member_cannot_generate_or_download(client, w):
    banks(w)
    claims_approve(claims=[w.claim], funder=w.funder)
    url = reverse("www:finance_payment_file_generate", args=[w.claim.run_id])
    before = state()
    c = as_user(client, w.reader)
    assert c.post(url, {f"arrete-{w.claim.run_id}-version": "pain.001.001.03"}).status_code == 403
    assert state() == before
    payment_file = payment_file_create(run=w.claim.run, funder=w.funder)
    page = follow_text(c.get(FILES))
    assert payment_file.message_id in page and "finance_payment_file_download" not in page
    assert c.get(reverse("www:finance_payment_file_download", args=[payment_file.pk])).status_code == 403


# --- bank statement import ------------------------------------------------------------------------------


def _csv(*rows) -> SimpleUploadedFile:
    body = "reference;montant;date\n" + "\n".join(";".join(r) for r in rows)
    return SimpleUploadedFile("releve.csv", body.encode(), content_type="text/csv")


def test_import_a_csv_statement(client, w):
    banks(w)
    claims_approve(claims=[w.claim], funder=w.funder)
    payment_file_create(run=w.claim.run, funder=w.funder)
    c = as_user(client, w.finance)
    response = c.post(
        STATEMENT,
        {"statement": _csv((w.claim.reference, "18,00", "22/01/2027"), ("DR-2099-X-000001", "5,00", "22/01/2027"))},
    )
    page = follow_text(response)
    assert "1 demande(s) payée(s) (18,00\xa0€)" in page and "1 référence(s) inconnue(s)" in page
    assert "référence inconnue" in page
    w.claim.refresh_from_db()
    assert w.claim.status == ClaimStatus.PAID
    again = follow_text(c.post(STATEMENT, {"statement": _csv((w.claim.reference, "18,00", "22/01/2027"))}))
    assert "1 déjà payée(s)" in again


@pytest.mark.parametrize(
    ("upload", "message"),
    [
        (None, "Choisissez le fichier du relevé."),
        (SimpleUploadedFile("releve.csv", b"", content_type="text/csv"), "Ce fichier est vide."),
        (SimpleUploadedFile("releve.pdf", b"%PDF-1.4\n", content_type="application/pdf"), "Relevé illisible"),
        (SimpleUploadedFile("releve.csv", b"abc;def\n", content_type="text/csv"), "Relevé illisible"),
        (
            SimpleUploadedFile("releve.xml", b'<!DOCTYPE x [<!ENTITY a "b">]><Document/>', content_type="text/xml"),
            "refusé par sécurité",
        ),
    ],
)
def test_statement_import_refusals_change_nothing(client, w, upload, message):
    before = state()
    data = {"statement": upload} if upload is not None else {}
    page = follow_text(as_user(client, w.finance).post(STATEMENT, data))
    assert message in page and 'role="alert"' in page
    assert state() == before


def test_non_finance_member_cannot_import(client, w):
    claims_approve(claims=[w.claim], funder=w.funder)
    before = state()
    c = as_user(client, w.reader)
    assert "Importer le relevé" not in follow_text(c.get(STATEMENT))
    assert c.post(STATEMENT, {"statement": _csv((w.claim.reference, "18,00", "22/01/2027"))}).status_code == 403
    assert state() == before


# --- the place's payments and statements ----------------------------------------------------------------


def test_place_payments_list_every_funders_claim_with_status(client, w):
    claims_approve(claims=[w.claim], funder=w.funder)
    page = follow_text(as_user(client, w.place_member).get(PAYMENTS))
    assert w.claim.reference in page and w.co_claim.reference in page
    assert w.funder.name in page and w.sc.cofunder.name in page
    assert "Validée" in page and "À valider" in page
    assert "Coordonnées bancaires manquantes" in page and "Un administrateur de votre structure" in page
    detail = follow_text(client.get(reverse("www:place_payment", args=[w.claim.pk])))
    assert codes.display(line_of(w.claim).voucher.code) in detail


def test_place_sees_paid_date_and_rejection_reason(client, w):
    _incident(w, reason="Séance non justifiée")
    claims_approve(claims=[w.claim], funder=w.funder)
    claim_mark_paid(claim=w.claim, funder=w.funder, reference="VIR-1")
    page = follow_text(as_user(client, w.place_member).get(PAYMENTS))
    assert 'Payée</p> <span class="passnum-nowrap">le ' in page and "12,00\xa0€" in page
    detail = follow_text(client.get(reverse("www:place_payment", args=[w.claim.pk])))
    assert "Motif : « Séance non justifiée »" in detail and "VIR-1" in detail


def test_statements_download_for_place_and_funder(client, w):
    for user in (w.place_member, w.reader):
        c = as_user(client, user)
        pdf = c.get(reverse("www:statement_pdf", args=[w.claim.pk]))
        assert pdf.status_code == 200 and pdf["Content-Type"] == "application/pdf"
        assert pdf.content.startswith(b"%PDF") and "attachment;" in pdf["Content-Disposition"]
        assert w.claim.reference in pdf["Content-Disposition"]
        csv = c.get(reverse("www:statement_csv", args=[w.claim.pk]))
        assert csv.status_code == 200 and csv["Content-Type"].startswith("text/csv")
        body = b"".join(csv.streaming_content).decode("utf-8-sig")
        assert w.claim.reference in body and codes.display(line_of(w.claim).voucher.code) in body


# --- bank account ---------------------------------------------------------------------------------------


def test_a_place_is_sent_to_its_own_bank_details_page(client, w):
    response = as_user(client, w.place_admin).get(BANK)
    assert response.status_code == 302 and response["Location"] == reverse("www:bank_details")


def test_funder_admin_sets_the_debtor_account(client, w):
    c = as_user(client, w.funder_admin)
    page = follow_text(c.get(BANK))
    assert "depuis lequel" in page and "Aucun compte enregistré." in page
    response = c.post(BANK, {"holder_name": w.funder.name, "iban": "FR76 3000 1007 9412 3456 7890 185", "bic": ""})
    assert response.status_code == 302
    account = BankAccount.objects.get(organisation=w.funder)
    assert account.iban == FUNDER_IBAN[0] and account.bic.startswith("BDFEFRPP")
    page = follow_text(c.get(BANK))
    assert "Coordonnées bancaires enregistrées." in page and "se terminant par 0185" in page
    assert FUNDER_IBAN[0] not in page  # masked
    assert "se terminant par <strong>0185</strong>" in follow_text(c.get(FILES))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"holder_name": "", "iban": FUNDER_IBAN[0], "bic": ""}, "Indiquez le titulaire du compte."),
        ({"holder_name": "X", "iban": "", "bic": ""}, "Indiquez l’IBAN."),
        ({"holder_name": "X", "iban": "FR7630001007941234567890186", "bic": ""}, "Cet IBAN n’est pas valide"),
        ({"holder_name": "X", "iban": "US64SVBKUS6S3300958879", "bic": ""}, "Cet IBAN n’est pas valide"),
        ({"holder_name": "X", "iban": FUNDER_IBAN[0], "bic": "XX"}, "Ce BIC n’est pas valide"),
        ({"holder_name": "X", "iban": FUNDER_IBAN[0], "bic": "AGRIFRPP"}, "n’est pas celui de la banque de l’IBAN"),
        ({"holder_name": "X" * 71, "iban": FUNDER_IBAN[0], "bic": ""}, "70 caractères au plus"),
    ],
)
def test_bank_account_refusals_in_french(client, w, data, message):
    before = state()
    page = follow_text(as_user(client, w.funder_admin).post(BANK, data))
    assert message in page and 'role="alert"' in page and "<title>Erreur : " in page
    assert state() == before


def test_bank_account_non_admins_only_read(client, w):
    banks(w)
    before = state()
    for user in (w.reader, w.finance):
        c = as_user(client, user)
        page = follow_text(c.get(BANK))
        assert "se terminant par 0185" in page
        assert "Seuls les administrateurs" in page and 'name="iban"' not in page
        assert c.post(BANK, {"holder_name": "X", "iban": FUNDER_IBAN[0], "bic": ""}).status_code == 403
    assert state() == before


# --- outsiders ------------------------------------------------------------------------------------------


def test_outsiders_see_nothing(client, w):
    incident = _incident(w)
    banks(w)
    claims_approve(claims=[w.claim], funder=w.funder)
    payment_file = payment_file_create(run=w.claim.run, funder=w.funder)
    line = line_of(w.claim, 1)
    before = state()

    # another funder: its own (empty) pages, and 404 on everything of this funder
    c = as_user(client, w.other_funder_user)
    for url in (OVERVIEW, CLAIMS, INCIDENTS, FILES):
        page = follow_text(c.get(url))
        assert w.claim.reference not in page and w.place.name not in page
    for url in (
        reverse("www:finance_claim", args=[w.claim.pk]),
        reverse("www:finance_line_reject", args=[w.claim.pk, line.pk]),
        reverse("www:finance_incident", args=[incident.pk]),
        reverse("www:finance_payment_file_download", args=[payment_file.pk]),
        reverse("www:statement_pdf", args=[w.claim.pk]),
        reverse("www:statement_csv", args=[w.claim.pk]),
    ):
        assert c.get(url).status_code == 404, url
    assert c.post(reverse("www:finance_claim_paid", args=[w.claim.pk]), {}).status_code == 404
    assert c.post(reverse("www:finance_line_reject", args=[w.claim.pk, line.pk]), {"reason": "x"}).status_code == 404
    assert c.post(reverse("www:finance_incident", args=[incident.pk]), {"outcome": "written_off"}).status_code == 404
    gen = reverse("www:finance_payment_file_generate", args=[w.claim.run_id])
    assert c.post(gen, {f"arrete-{w.claim.run_id}-version": "pain.001.001.03"}).status_code == 404
    page = follow_text(c.post(CLAIMS, {"claims": [w.claim.pk]}, follow=True))
    assert "introuvable" in page
    report = follow_text(c.post(STATEMENT, {"statement": _csv((w.claim.reference, "18,00", "22/01/2027"))}))
    assert "1 référence(s) inconnue(s)" in report  # another funder's claim is never matched

    # the co-funder sees its own claim on the place, not the funder's
    c = as_user(client, w.cofunder_admin)
    assert w.claim.reference not in follow_text(c.get(CLAIMS))
    assert c.get(reverse("www:finance_claim", args=[w.claim.pk])).status_code == 404

    # another place: its payments are empty, this place's claims are 404
    c = as_user(client, w.other_place_user)
    page = follow_text(c.get(PAYMENTS))
    assert w.claim.reference not in page and "Aucune demande de remboursement" in page
    for url in (
        reverse("www:place_payment", args=[w.claim.pk]),
        reverse("www:statement_pdf", args=[w.claim.pk]),
        reverse("www:statement_csv", args=[w.claim.pk]),
    ):
        assert c.get(url).status_code == 404, url
    assert c.get(BANK)["Location"] == reverse("www:bank_details")
    c = as_user(client, w.other_funder_user)
    assert "se terminant par" not in follow_text(c.get(BANK))  # its own (empty) account only

    # a place cannot use the funder pages, a funder cannot use the place pages
    assert as_user(client, w.place_admin).get(OVERVIEW).status_code == 403
    assert client.post(CLAIMS, {"claims": [w.claim.pk]}).status_code == 403
    assert as_user(client, w.funder_admin).get(PAYMENTS).status_code == 403
    assert state() == before


def test_anonymous_is_sent_to_login(client, w):
    for url in (OVERVIEW, CLAIMS, PAYMENTS, BANK, reverse("www:statement_pdf", args=[w.claim.pk])):
        response = client.get(url)
        assert response.status_code == 302 and "/connexion/" in response["Location"]


def test_a_distributor_gets_403(client, w):
    c = as_user(client, w.sc.distributor_user)
    for url in (OVERVIEW, PAYMENTS, BANK, reverse("www:statement_pdf", args=[w.claim.pk])):
        assert c.get(url).status_code == 403, url
