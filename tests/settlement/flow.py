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
