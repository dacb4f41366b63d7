"""Test helpers: settle everything redeemed so far, and pay it, through the real services."""

import datetime as dt

from passnum.settlement.services import claim_mark_paid, claims_approve, local_today, settle


def settle_all(*, days_ahead: int = 1):
    """A cut-off tomorrow, as if settling tomorrow: every redemption made so far is claimed."""
    day = local_today() + dt.timedelta(days=days_ahead)
    return settle(cutoff=day, today=day)


def settle_and_pay():
    result = settle_all()
    for claim in result.claims:
        claims_approve(claims=[claim], funder=claim.funder)
        claim_mark_paid(claim=claim)
    return result


def validate_place_bank_details(*places):
    """Stands for a funder's review of the places' pending bank details (the review itself is tested with the
    places' qualification): payment files pay only validated details."""
    from django.utils import timezone

    from passnum.places.enums import BankAccountStatus
    from passnum.places.models import BankAccount

    for place in places:
        pending = BankAccount.objects.filter(organisation=place, status=BankAccountStatus.PENDING).first()
        if pending is None:
            continue
        BankAccount.objects.filter(organisation=place, status=BankAccountStatus.VALIDATED).update(
            status=BankAccountStatus.REPLACED
        )
        BankAccount.objects.filter(pk=pending.pk).update(status=BankAccountStatus.VALIDATED, reviewed_at=timezone.now())
