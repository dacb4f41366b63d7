from django.db import models


class TerritoryLevel(models.TextChoices):
    COMMUNE = "commune", "Commune"
    EPCI = "epci", "EPCI"
    DEPARTEMENT = "departement", "Département"
    REGION = "region", "Région"


class CommuneKind(models.TextChoices):
    ACTUELLE = "actuelle", "Commune"
    DELEGUEE = "deleguee", "Commune déléguée"
    ASSOCIEE = "associee", "Commune associée"
    ARRONDISSEMENT = "arrondissement", "Arrondissement municipal"


class EpciKind(models.TextChoices):
    CC = "CC", "Communauté de communes"
    CA = "CA", "Communauté d’agglomération"
    CU = "CU", "Communauté urbaine"
    METRO = "METRO", "Métropole"
    MET69 = "MET69", "Métropole de Lyon"
