import pytest
from django.core import mail

from passnum.accounts.models import Organisation, User
from passnum.common.errors import DomainError, InvalidTransition, PermissionRefused
from passnum.journal.models import JournalEntry
from passnum.places.models import BankAccount, QualificationLog, Site, SupportingDocument
from passnum.places.selectors import can_review_site, reviewers_for_site, sites_in_territory_of
from passnum.places.services import bank_account_change, bank_account_review, catalogue_set, site_apply, site_decide
from tests.factories import OrganisationFactory, ProgramFactory, member_of
from tests.places.helpers import IBAN, big_file, fake_exe, signup, site_data

pytestmark = pytest.mark.django_db


@pytest.fixture
def marne_program(funder, cofunder):
    return ProgramFactory(owner=funder, cofunder=cofunder)  # territory: département 51


def test_signup_creates_pending_site_bank_and_documents(marne_program, funder, django_capture_on_commit_callbacks):
    reviewer = member_of(funder)
    with django_capture_on_commit_callbacks(execute=True):
        org = signup()
    site = Site.objects.get(organisation=org)
    assert site.status == "pending" and site.commune_id == "51454"
    assert sorted(site.catalogue.values_list("service", "vouchers_per_session")) == [
        ("demarches_administratives", 2),
        ("outils_du_quotidien", 1),
    ]
    assert BankAccount.objects.get(organisation=org).status == "pending"
    assert SupportingDocument.objects.get(organisation=org).content_type == "application/pdf"
    assert User.objects.get(email="admin@lieu.fr").memberships.get().role == "admin"
    assert [m.to for m in mail.outbox] == [[reviewer.email]]
    assert set(reviewers_for_site(site=site)) == {pf.funder for pf in marne_program.funders.all()}
    assert JournalEntry.objects.filter(action="bank.change", organisation=org).exists()


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"siret": "21510045400011"}, "invalid_siret"),
        ({"siret": "", "rna": ""}, "identifier_required"),
        ({"rna": "X123", "siret": ""}, "invalid_rna"),
        ({"iban": "FR7630006000011234567890188"}, "invalid_iban"),
        ({"iban": "US12345678901234567890"}, "invalid_iban"),
        ({"bic": "DEUTDEFF"}, "bic_iban_mismatch"),
        ({"bic": "XX"}, "invalid_bic"),
        ({"sites": []}, "sites_required"),
        ({"sites": [site_data(opening_hours="le lundi matin")]}, "invalid_opening_hours"),
        ({"sites": [site_data(insee_code="99999")]}, "unknown_insee_code"),
        ({"sites": [site_data(postal_code="5110")]}, "invalid_postal_code"),
        ({"sites": [site_data(services={})]}, "services_required"),
        ({"sites": [site_data(services={"cuisine": 1})]}, "unknown_service"),
        ({"sites": [site_data(services={"outils_du_quotidien": 11})]}, "invalid_vouchers_per_session"),
        ({"sites": [site_data(latitude=91.0)]}, "invalid_coordinates"),
        ({"sites": [site_data(longitude=None)]}, "coordinates_incomplete"),
        ({"docs": [("immatriculation", big_file(6 * 1024 * 1024))]}, "document_too_large"),
        ({"docs": [("immatriculation", fake_exe())]}, "document_bad_type"),
    ],
)
def test_signup_refusals_save_nothing(kwargs, code):
    with pytest.raises(DomainError) as exc:
        signup(**kwargs)
    assert exc.value.code == code and exc.value.message
    assert not Organisation.objects.exists()
    assert not User.objects.exists()
    assert not Site.objects.exists()


def test_signup_refuses_taken_email_and_weak_password():
    signup()
    with pytest.raises(DomainError) as exc:
        signup(siret="30112233900015")
    assert exc.value.code == "email_taken"


def test_funder_qualifies_and_place_is_told(marne_program, funder, django_capture_on_commit_callbacks):
    org = signup()
    site = Site.objects.get(organisation=org)
    reviewer = member_of(funder)
    with django_capture_on_commit_callbacks(execute=True):
        site_decide(site=site, decision="qualify", reason="", actor=reviewer, organisation=funder)
    site.refresh_from_db()
    assert site.status == "qualified"
    assert BankAccount.objects.get(organisation=org).status == "validated"
    assert "qualifié" in mail.outbox[-1].subject and mail.outbox[-1].to == ["admin@lieu.fr"]
    assert list(QualificationLog.objects.filter(site=site).values_list("to_status", flat=True)) == [
        "pending",
        "qualified",
    ]


def test_refuse_and_suspend_need_a_reason_then_place_reapplies(marne_program, funder):
    org = signup()
    site = Site.objects.get(organisation=org)
    reviewer = member_of(funder)
    with pytest.raises(DomainError) as exc:
        site_decide(site=site, decision="refuse", reason=" ", actor=reviewer, organisation=funder)
    assert exc.value.code == "reason_required"
    site_decide(site=site, decision="refuse", reason="Horaires manquants", actor=reviewer, organisation=funder)
    with pytest.raises(InvalidTransition):
        site_decide(site=site, decision="suspend", reason="x", actor=reviewer, organisation=funder)
    admin = User.objects.get(email="admin@lieu.fr")
    site_apply(site=site, actor=admin, organisation=org)
    site_decide(site=site, decision="qualify", reason="", actor=reviewer, organisation=funder)
    site_decide(site=site, decision="suspend", reason="Fermé pour travaux", actor=reviewer, organisation=funder)
    site.refresh_from_db()
    assert site.status == "suspended"


def test_funder_outside_the_territory_cannot_review(marne_program):
    org = signup()
    site = Site.objects.get(organisation=org)
    oise = OrganisationFactory(funder=True)
    ProgramFactory(owner=oise, territory=[("departement", "60")])
    assert not can_review_site(organisation=oise, site=site)
    assert site not in sites_in_territory_of(organisation=oise)
    with pytest.raises(PermissionRefused):
        site_decide(site=site, decision="qualify", reason="", actor=member_of(oise), organisation=oise)
    site.refresh_from_db()
    assert site.status == "pending"


def test_operator_can_review_anywhere():
    org = signup()
    site = Site.objects.get(organisation=org)
    operator = OrganisationFactory(operator=True)
    assert can_review_site(organisation=operator, site=site)


def test_bank_change_needs_revalidation_and_is_journaled(marne_program, funder):
    org = signup()
    site = Site.objects.get(organisation=org)
    reviewer = member_of(funder)
    site_decide(site=site, decision="qualify", reason="", actor=reviewer, organisation=funder)
    admin = User.objects.get(email="admin@lieu.fr")
    new = bank_account_change(
        organisation=org, holder_name="Ville de Reims", iban="FR7610107001011234567890129", bic="BREDFRPP", actor=admin
    )
    assert new.status == "pending"
    assert BankAccount.objects.get(organisation=org, status="validated").iban == IBAN  # old one still in force
    assert JournalEntry.objects.filter(action="bank.change", object_id=str(new.id)).exists()
    with pytest.raises(DomainError):
        bank_account_review(account=new, approve=False, reason="", actor=reviewer, organisation=funder)
    bank_account_review(account=new, approve=True, reason="Vérifié par téléphone", actor=reviewer, organisation=funder)
    assert BankAccount.objects.get(organisation=org, status="validated").pk == new.pk
    assert BankAccount.objects.filter(organisation=org, status="replaced").count() == 1
    with pytest.raises(DomainError):
        bank_account_review(account=new, approve=True, reason="", actor=reviewer, organisation=funder)


def test_only_admins_change_bank_or_catalogue():
    org = signup()
    site = Site.objects.get(organisation=org)
    member = member_of(org, admin=False)
    with pytest.raises(PermissionRefused):
        bank_account_change(organisation=org, holder_name="X", iban=IBAN, bic="AGRIFRPP", actor=member)
    with pytest.raises(PermissionRefused):
        catalogue_set(site=site, services={"outils_du_quotidien": 1}, actor=member, organisation=org)
    admin = User.objects.get(email="admin@lieu.fr")
    catalogue_set(site=site, services={"usage_securise": 3}, actor=admin, organisation=org)
    assert list(site.catalogue.values_list("service", "vouchers_per_session")) == [("usage_securise", 3)]


def test_bank_holder_name_must_fit_a_sepa_transfer():
    from passnum.common.errors import DomainError
    from passnum.places.models import BankAccount

    org = signup()
    admin = User.objects.get(email="admin@lieu.fr")
    before = BankAccount.objects.count()
    with pytest.raises(DomainError) as exc:
        bank_account_change(organisation=org, holder_name="Œ" * 40, iban=IBAN, bic="AGRIFRPP", actor=admin)
    assert exc.value.code == "holder_too_long"  # 40 characters, 80 once transliterated (Œ → OE)
    assert BankAccount.objects.count() == before
