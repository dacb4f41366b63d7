from django.db import models


class VoucherStatus(models.TextChoices):
    ISSUED = "issued", "Émis"
    DISTRIBUTED = "distributed", "Remis au bénéficiaire"
    REDEEMED = "redeemed", "Encaissé"
    CLAIMED = "claimed", "Demandé en remboursement"
    PAID = "paid", "Payé"
    EXPIRED = "expired", "Expiré"
    CANCELLED = "cancelled", "Annulé"


S = VoucherStatus

# The only moves a voucher can make (DESIGN.md §3). Undoing a redemption is redeemed → distributed.
TRANSITIONS: dict[str, frozenset[str]] = {
    S.ISSUED: frozenset({S.DISTRIBUTED, S.EXPIRED, S.CANCELLED}),
    S.DISTRIBUTED: frozenset({S.REDEEMED, S.EXPIRED, S.CANCELLED}),
    S.REDEEMED: frozenset({S.CLAIMED, S.DISTRIBUTED}),
    S.CLAIMED: frozenset({S.PAID}),
    S.PAID: frozenset(),
    S.EXPIRED: frozenset(),
    S.CANCELLED: frozenset(),
}

# Value still owed to no one: issued and not yet used.
OUTSTANDING_STATUSES = (S.ISSUED, S.DISTRIBUTED)
# Value owed to a place, not yet paid.
PAYABLE_STATUSES = (S.REDEEMED, S.CLAIMED)


class CancelReason(models.TextChoices):
    LOST = "lost", "Perdu"
    STOLEN = "stolen", "Volé"
    WITHDRAWN = "withdrawn", "Retiré par le financeur"
    ERROR = "error", "Erreur d’émission"
