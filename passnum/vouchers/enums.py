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


class BeneficiaryPublic(models.TextChoices):
    """The person's situation, as the distributor sees it: for orientation and for the funnel by public."""

    JOB_SEEKER = "demandeur_emploi", "Demandeur ou demandeuse d’emploi"
    MINIMUM_INCOME = "minima_sociaux", "Allocataire des minima sociaux (RSA, AAH, ASPA…)"
    YOUTH = "jeune", "Jeune de 16 à 25 ans"
    STUDENT = "etudiant", "Étudiant ou étudiante"
    SENIOR = "senior", "Senior (60 ans et plus)"
    FAMILY = "famille", "Parent, famille"
    DISABILITY = "handicap", "Personne en situation de handicap"
    NEWCOMER = "primo_arrivant", "Personne nouvellement arrivée en France"
    OTHER = "autre", "Autre situation"
