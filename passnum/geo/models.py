"""France's administrative geography (Insee COG), shipped with the project and loaded by migration.

Every commune row carries its département, région and EPCI, so "is commune X in territory T" is a
single indexed query. Communes déléguées, associées and arrondissements municipaux carry those of
their parent commune.
"""

from django.db import models

from passnum.geo.enums import CommuneKind, EpciKind

# Vintage of the shipped data (passnum/geo/data/geo-cog2026.json.gz).
VINTAGE = "COG 2026"


class Region(models.Model):
    code = models.CharField("code Insee", max_length=3, primary_key=True)
    name = models.CharField("nom", max_length=100)

    class Meta:
        verbose_name = "région"
        verbose_name_plural = "régions"
        ordering = ["code"]

    def __str__(self):
        return f"{self.name} ({self.code})"


class Departement(models.Model):
    code = models.CharField("code Insee", max_length=3, primary_key=True)
    name = models.CharField("nom", max_length=100)
    region = models.ForeignKey(Region, on_delete=models.PROTECT, related_name="departements", verbose_name="région")

    class Meta:
        verbose_name = "département"
        verbose_name_plural = "départements"
        ordering = ["code"]

    def __str__(self):
        return f"{self.name} ({self.code})"


class Epci(models.Model):
    code = models.CharField("SIREN", max_length=9, primary_key=True)
    name = models.CharField("nom", max_length=200)
    kind = models.CharField("nature juridique", max_length=8, choices=EpciKind.choices)

    class Meta:
        verbose_name = "EPCI"
        verbose_name_plural = "EPCI"
        ordering = ["name"]

    def __str__(self):
        return f"{self.name} ({self.code})"


class Commune(models.Model):
    code = models.CharField("code Insee", max_length=5, primary_key=True)
    name = models.CharField("nom", max_length=100)
    kind = models.CharField("sorte", max_length=16, choices=CommuneKind.choices, default=CommuneKind.ACTUELLE)
    # ForeignKey creates the indexes these lookups need (db_index defaults to True).
    departement = models.ForeignKey(
        Departement, on_delete=models.PROTECT, related_name="communes", verbose_name="département"
    )
    region = models.ForeignKey(Region, on_delete=models.PROTECT, related_name="communes", verbose_name="région")
    epci = models.ForeignKey(
        Epci, on_delete=models.PROTECT, null=True, blank=True, related_name="communes", verbose_name="EPCI"
    )
    parent = models.ForeignKey(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="children",
        verbose_name="commune de rattachement",
        help_text="Pour une commune déléguée, associée ou un arrondissement municipal.",
    )
    population = models.PositiveIntegerField("population municipale", null=True, blank=True)

    class Meta:
        verbose_name = "commune"
        verbose_name_plural = "communes"
        ordering = ["code"]

    def __str__(self):
        return f"{self.name} ({self.code})"


class PostalCode(models.Model):
    # Lookups by code use the unique (code, commune) index: code is its leading column.
    code = models.CharField("code postal", max_length=5)
    commune = models.ForeignKey(Commune, on_delete=models.CASCADE, related_name="postal_codes", verbose_name="commune")

    class Meta:
        verbose_name = "code postal"
        verbose_name_plural = "codes postaux"
        ordering = ["code", "commune_id"]
        constraints = [models.UniqueConstraint(fields=["code", "commune"], name="geo_postalcode_unique_code_commune")]

    def __str__(self):
        return f"{self.code} {self.commune.name}"
