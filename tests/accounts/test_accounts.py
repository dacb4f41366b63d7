import pytest
from django.core import mail

from passnum.accounts.enums import OrganisationKind, Role
from passnum.accounts.models import Membership, Organisation
from passnum.accounts.services import invitation_accept, invitation_create, organisation_create
from passnum.common.errors import DomainError
from tests.factories import OrganisationFactory, member_of

pytestmark = pytest.mark.django_db


def test_create_organisation_with_valid_identifiers():
    org = organisation_create(name="CCAS de Reims", kind=OrganisationKind.DISTRIBUTOR, siret="301 122 339 00015")
    assert (org.siret, org.siren) == ("30112233900015", "301122339")
    asso = organisation_create(name="Asso", kind=OrganisationKind.PLACE, rna="w512000123", insee_code="51454")
    assert asso.rna == "W512000123"


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"siret": "30112233900016"}, "invalid_siret"),
        ({"siret": "123"}, "invalid_siret"),
        ({"siren": "301122330"}, "invalid_siren"),
        ({"rna": "W12"}, "invalid_rna"),
        ({"siret": "30112233900015", "siren": "312233448"}, "siret_siren_mismatch"),
        ({"insee_code": "99999"}, "unknown_insee_code"),
        ({"kind": "bank"}, "invalid_kind"),
        ({"name": ""}, "name_required"),
    ],
)
def test_bad_identifiers_are_refused(kwargs, code):
    params = {"name": "Org", "kind": OrganisationKind.FUNDER, **kwargs}
    with pytest.raises(DomainError) as exc:
        organisation_create(**params)
    assert exc.value.code == code
    assert not Organisation.objects.exists()


def test_invitation_flow_sends_mail_and_creates_membership(django_capture_on_commit_callbacks):
    org = OrganisationFactory(distributor=True)
    admin = member_of(org)
    tokens = []
    with django_capture_on_commit_callbacks(execute=True):
        invitation = invitation_create(
            organisation=org,
            email="Nouvelle@Exemple.fr",
            role=Role.MEMBER,
            invited_by=admin,
            accept_url_builder=lambda t: tokens.append(t) or f"https://x/invitation/{t}/",
        )
    assert invitation.email == "nouvelle@exemple.fr"
    assert tokens[0] not in invitation.token_hash  # only the hash is stored
    assert len(mail.outbox) == 1 and tokens[0] in mail.outbox[0].body
    with pytest.raises(DomainError) as exc:
        invitation_accept(token=tokens[0], password="court")
    assert exc.value.code == "weak_password"
    user = invitation_accept(token=tokens[0], password="un-mot-de-passe-solide", first_name="Lou")
    assert Membership.objects.get(user=user, organisation=org).role == Role.MEMBER
    with pytest.raises(DomainError) as exc:
        invitation_accept(token=tokens[0], password="un-mot-de-passe-solide")
    assert exc.value.code == "invitation_used"
    with pytest.raises(DomainError) as exc:
        invitation_accept(token="inconnu", password="x")
    assert exc.value.code == "invitation_unknown"


def test_cannot_invite_existing_member():
    org = OrganisationFactory()
    admin = member_of(org)
    with pytest.raises(DomainError) as exc:
        invitation_create(
            organisation=org, email=admin.email, role=Role.MEMBER, invited_by=admin, accept_url_builder=str
        )
    assert exc.value.code == "already_member"


def test_existing_account_must_be_logged_in_to_accept(django_capture_on_commit_callbacks):
    from passnum.common.errors import PermissionRefused

    org = OrganisationFactory(distributor=True)
    admin = member_of(org)
    existing = member_of(OrganisationFactory())
    tokens = []
    invitation_create(
        organisation=org,
        email=existing.email,
        role=Role.MEMBER,
        invited_by=admin,
        accept_url_builder=lambda t: tokens.append(t) or t,
    )
    with pytest.raises(PermissionRefused):
        invitation_accept(token=tokens[0])  # the link alone does not open an existing account
    with pytest.raises(PermissionRefused):
        invitation_accept(token=tokens[0], acting_user=admin)
    assert invitation_accept(token=tokens[0], acting_user=existing) == existing
    assert Membership.objects.filter(user=existing, organisation=org).exists()
