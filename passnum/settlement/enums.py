from django.db import models


class AccountKind(models.TextChoices):
    """Ledger accounts. Natural balances: commitment is negative (what funders pledged), all others positive.
    Every transaction sums to zero, so the sum over all accounts is always zero."""

    COMMITMENT = "commitment", "Engagement du financeur"  # (program, funder): -budget pledged
    BUDGET = "budget", "Budget disponible"  # (program, funder): pledged, not yet issued
    OUTSTANDING = "outstanding", "Chèques émis en stock"  # (program, funder): issued, not yet handed out
    HANDED_OUT = "handed_out", "Chèques remis aux bénéficiaires"  # (program, funder): handed out, not yet used
    RELEASED = "released", "Valeur libérée (ancien usage)"  # kept for old ledgers; expiry now returns to budget
    PAYABLE = "payable", "À payer au lieu"  # (place, funder): redeemed, not yet paid
    CONTESTED = "contested", "Contesté par le financeur"  # (place, funder): claim lines rejected, under incident
    PAID = "paid", "Payé"  # (funder): paid to places, by the funder itself


class TransactionKind(models.TextChoices):
    BUDGET_SET = "budget_set", "Budget engagé ou modifié"
    ISSUE = "issue", "Émission de chèques"
    HAND_OUT = "hand_out", "Remise au bénéficiaire"
    CANCEL = "cancel", "Annulation de chèques"
    REDEEM = "redeem", "Encaissement"
    REDEEM_UNDO = "redeem_undo", "Annulation d’encaissement"
    PAY = "pay", "Paiement"
    EXPIRE = "expire", "Expiration"
    REJECT = "reject", "Rejet d’une ligne de demande (incident)"
    INCIDENT_CLOSE = "incident_close", "Clôture d’incident"


class ClaimStatus(models.TextChoices):
    SUBMITTED = "submitted", "À valider par le financeur"
    APPROVED = "approved", "Validée, à payer"
    IN_PAYMENT = "in_payment", "Virement préparé"
    PAID = "paid", "Payée"
    REJECTED = "rejected", "Entièrement rejetée"


class LineStatus(models.TextChoices):
    CLAIMED = "claimed", "Demandée"
    REJECTED = "rejected", "Rejetée"
    PAID = "paid", "Payée"


class IncidentStatus(models.TextChoices):
    OPEN = "open", "Ouvert"
    REINSTATED = "reinstated", "Clos : ligne rétablie, à payer"
    WRITTEN_OFF = "written_off", "Clos : rejet confirmé, valeur rendue au financeur"


class PaymentFileStatus(models.TextChoices):
    READY = "ready", "Prêt à transmettre à la banque"
    PAID = "paid", "Payé"
