from django.db import models


class AccountKind(models.TextChoices):
    """Ledger accounts. Natural balances: commitment is negative (what funders pledged), all others positive.
    Every transaction sums to zero, so the sum over all accounts is always zero."""

    COMMITMENT = "commitment", "Engagement du financeur"  # (program, funder): -budget pledged
    BUDGET = "budget", "Budget disponible"  # (program, funder): pledged, not yet issued
    OUTSTANDING = "outstanding", "Chèques en circulation"  # (program, funder): issued, not yet used
    RELEASED = "released", "Valeur libérée (expirée)"  # (program, funder): expired, back to the funder
    PAYABLE = "payable", "À payer au lieu"  # (place, funder): redeemed, not yet paid
    PAID = "paid", "Payé"  # (funder): paid to places, by the funder itself


class TransactionKind(models.TextChoices):
    BUDGET_SET = "budget_set", "Budget engagé ou modifié"
    ISSUE = "issue", "Émission de chèques"
    CANCEL = "cancel", "Annulation de chèques"
    REDEEM = "redeem", "Encaissement"
    REDEEM_UNDO = "redeem_undo", "Annulation d’encaissement"
    PAY = "pay", "Paiement"
    EXPIRE = "expire", "Expiration"
