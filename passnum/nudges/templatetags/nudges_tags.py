"""Counts for the home pages, so that the home view (passnum/www/views.py) needs no change for them."""

from django import template
from django.conf import settings

from passnum.accounts.enums import OrganisationKind
from passnum.nudges.services import sleeping_booklets_count, unused_booklets

register = template.Library()


@register.simple_tag
def unused_booklets_count(organisation) -> int:
    """Booklets the distributor handed out PASSNUM_NUDGE_AFTER_DAYS days ago or more, still unused."""
    if organisation is None or organisation.kind != OrganisationKind.DISTRIBUTOR:
        return 0
    return unused_booklets(distributor=organisation).count()


@register.simple_tag
def sleeping_count(organisation) -> int:
    """Booklets asleep at distributors, in the programs the funder funds."""
    if organisation is None or organisation.kind != OrganisationKind.FUNDER:
        return 0
    return sleeping_booklets_count(funder=organisation)


@register.simple_tag
def nudge_after_days() -> int:
    return settings.PASSNUM_NUDGE_AFTER_DAYS
