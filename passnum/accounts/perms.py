"""Who may do what. Predicates take the user and the organisation they act for (request.organisation)."""

from passnum.accounts.enums import OrganisationKind, Role
from passnum.accounts.models import Membership, Organisation


def membership_for(user, organisation: Organisation | None) -> Membership | None:
    if organisation is None or not getattr(user, "is_authenticated", False):
        return None
    return Membership.objects.filter(user=user, organisation=organisation).first()


def is_member(user, organisation: Organisation | None) -> bool:
    return membership_for(user, organisation) is not None


def is_admin(user, organisation: Organisation | None) -> bool:
    m = membership_for(user, organisation)
    return m is not None and m.role == Role.ADMIN


def can_invite(user, organisation: Organisation | None) -> bool:
    return is_admin(user, organisation)


def can_create_program(user, organisation: Organisation | None) -> bool:
    return organisation is not None and organisation.kind == OrganisationKind.FUNDER and is_admin(user, organisation)


def can_view_program(user, organisation: Organisation | None, program) -> bool:
    """Funders of the program (lead or co-funder) see it."""
    if organisation is None or not is_member(user, organisation):
        return False
    return program.funders.filter(funder=organisation).exists()


def can_edit_program(user, organisation: Organisation | None, program) -> bool:
    """Only the lead funder's admins edit; co-funders see the program read-only."""
    return organisation is not None and program.owner_id == organisation.id and is_admin(user, organisation)


def can_manage_finance(user, organisation: Organisation | None) -> bool:
    """A funder's admins and finance users validate claims, reject lines and produce payment files."""
    if organisation is None or organisation.kind != OrganisationKind.FUNDER:
        return False
    m = membership_for(user, organisation)
    return m is not None and m.role in (Role.ADMIN, Role.FINANCE)


def can_edit_bank_account(user, organisation: Organisation | None) -> bool:
    """Only an organisation's admins set where it is paid from or to."""
    return is_admin(user, organisation)
