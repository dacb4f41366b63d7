from django.db import models


class OrganisationKind(models.TextChoices):
    FUNDER = "funder", "Financeur"
    DISTRIBUTOR = "distributor", "Prescripteur"
    PLACE = "place", "Lieu de médiation numérique"
    OPERATOR = "operator", "Opérateur"


class Role(models.TextChoices):
    ADMIN = "admin", "Administrateur"
    MEMBER = "member", "Membre"
    FINANCE = "finance", "Finances (valide les remboursements)"
