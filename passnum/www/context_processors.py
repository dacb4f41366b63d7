from types import SimpleNamespace

from django.conf import settings

from passnum.accounts.enums import OrganisationKind


def site(request):
    """State branding from settings (not from the database), and the organisation the user acts for."""
    org = getattr(request, "organisation", None)
    return {
        "SITE_CONFIG": SimpleNamespace(**settings.PASSNUM_BRAND),
        "current_organisation": org,
        "current_membership": getattr(request, "membership", None),
        "user_memberships": getattr(request, "memberships", []),
        "OrganisationKind": OrganisationKind,
    }
