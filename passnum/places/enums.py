from django.db import models


class QualificationStatus(models.TextChoices):
    LISTED = "listed", "Référencé (non qualifié)"
    PENDING = "pending", "En attente de validation"
    QUALIFIED = "qualified", "Qualifié"
    SUSPENDED = "suspended", "Suspendu"
    REFUSED = "refused", "Refusé"


Q = QualificationStatus

# listed: imported from open data, never applied. A refused site may apply again after fixing what was wrong.
TRANSITIONS: dict[str, frozenset[str]] = {
    Q.LISTED: frozenset({Q.PENDING}),
    Q.PENDING: frozenset({Q.QUALIFIED, Q.REFUSED}),
    Q.QUALIFIED: frozenset({Q.SUSPENDED, Q.PENDING}),
    Q.SUSPENDED: frozenset({Q.QUALIFIED, Q.PENDING}),
    Q.REFUSED: frozenset({Q.PENDING}),
}


class BankAccountStatus(models.TextChoices):
    PENDING = "pending", "À valider"
    VALIDATED = "validated", "Validé"
    REJECTED = "rejected", "Refusé"
    REPLACED = "replaced", "Remplacé"


class DocumentKind(models.TextChoices):
    STATUTES = "statuts", "Statuts ou délibération"
    REGISTRATION = "immatriculation", "Extrait Kbis, avis de situation SIRENE ou récépissé RNA"
    BANK = "rib", "Relevé d’identité bancaire"
    INSURANCE = "assurance", "Attestation d’assurance"
    OTHER = "autre", "Autre pièce"


MAX_VOUCHERS_PER_SESSION = 10
