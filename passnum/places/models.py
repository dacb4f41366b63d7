"""Places (lieux de médiation numérique): their sites, catalogue, qualification and bank details.

A Site is one physical place in the national standard's sense. It is either *listed* (imported from open data,
with no organisation behind it on the platform) or belongs to a place organisation that applied for
qualification. Coordinates are WGS84 degrees; they are not money, so floats are fine here."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from passnum.common.models import AppendOnlyModel
from passnum.places.enums import (
    MAX_VOUCHERS_PER_SESSION,
    BankAccountStatus,
    DocumentKind,
    QualificationStatus,
)

OWN_SOURCE = "pass-numerique"


class Site(models.Model):
    organisation = models.ForeignKey(
        "accounts.Organisation", null=True, blank=True, on_delete=models.PROTECT, related_name="sites"
    )
    name = models.CharField("nom", max_length=250)
    pivot = models.CharField("SIRET ou RNA", max_length=14, blank=True)
    address = models.CharField("adresse", max_length=250)
    address_complement = models.CharField("complément d’adresse", max_length=250, blank=True)
    postal_code = models.CharField("code postal", max_length=5)
    commune = models.ForeignKey(
        "geo.Commune", null=True, blank=True, on_delete=models.PROTECT, related_name="+", verbose_name="commune"
    )
    commune_name = models.CharField("commune", max_length=150)
    latitude = models.FloatField("latitude", null=True, blank=True)
    longitude = models.FloatField("longitude", null=True, blank=True)
    opening_hours = models.CharField("horaires (OpenStreetMap)", max_length=500, blank=True)
    services = models.JSONField("services", default=list, blank=True)
    publics = models.JSONField("publics", default=list, blank=True)
    supports = models.JSONField("prise en charge spécifique", default=list, blank=True)
    access_modes = models.JSONField("modalités d’accès", default=list, blank=True)
    typologie = models.CharField("typologie", max_length=200, blank=True)
    phone = models.CharField("téléphone", max_length=20, blank=True)
    email = models.EmailField("courriel", blank=True)
    website = models.URLField("site web", max_length=500, blank=True)
    booking_url = models.URLField("prise de rendez-vous", max_length=500, blank=True)
    summary = models.CharField("présentation", max_length=280, blank=True)
    description = models.TextField("présentation détaillée", blank=True)
    source = models.CharField("source", max_length=100, default=OWN_SOURCE)
    source_id = models.CharField("identifiant dans la source", max_length=250)
    updated_on = models.DateField("date de mise à jour", default=timezone.localdate)
    status = models.CharField(
        "qualification", max_length=12, choices=QualificationStatus.choices, default=QualificationStatus.LISTED
    )
    status_changed_at = models.DateTimeField(null=True, blank=True)
    standard_row = models.JSONField("ligne d’origine", default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "lieu"
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["source", "source_id"], name="site_source_id_unique"),
            models.CheckConstraint(condition=Q(status__in=QualificationStatus.values), name="site_status_valid"),
            models.CheckConstraint(
                condition=Q(status=QualificationStatus.LISTED) | Q(organisation__isnull=False),
                name="site_applied_has_organisation",
            ),
            models.CheckConstraint(
                condition=Q(latitude__isnull=True) | (Q(latitude__gte=-90) & Q(latitude__lte=90)),
                name="site_latitude_range",
            ),
            models.CheckConstraint(
                condition=Q(longitude__isnull=True) | (Q(longitude__gte=-180) & Q(longitude__lte=180)),
                name="site_longitude_range",
            ),
        ]
        indexes = [
            models.Index(fields=["status", "latitude", "longitude"], name="site_status_geo_idx"),
            models.Index(fields=["commune", "status"], name="site_commune_status_idx"),
        ]

    def __str__(self):
        return f"{self.name} ({self.commune_name})"

    @property
    def is_qualified(self) -> bool:
        return self.status == QualificationStatus.QUALIFIED


class SiteService(models.Model):
    """One service of the catalogue of a site, with how many vouchers one session costs."""

    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="catalogue")
    service = models.CharField("service", max_length=40)
    vouchers_per_session = models.PositiveSmallIntegerField("chèques par séance", default=1)

    class Meta:
        verbose_name = "service proposé"
        constraints = [
            models.UniqueConstraint(fields=["site", "service"], name="site_service_unique"),
            models.CheckConstraint(
                condition=Q(vouchers_per_session__gte=1) & Q(vouchers_per_session__lte=MAX_VOUCHERS_PER_SESSION),
                name="site_service_vouchers_range",
            ),
        ]

    def __str__(self):
        return f"{self.site_id}: {self.service} × {self.vouchers_per_session}"


class QualificationLog(AppendOnlyModel):
    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="qualification_log")
    from_status = models.CharField(max_length=12, choices=QualificationStatus.choices)
    to_status = models.CharField(max_length=12, choices=QualificationStatus.choices)
    reason = models.TextField(blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    organisation = models.ForeignKey(
        "accounts.Organisation", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = "décision de qualification"
        ordering = ["at", "id"]

    def __str__(self):
        return f"{self.site_id}: {self.from_status} → {self.to_status}"


class BankAccount(models.Model):
    """A place's bank details. A change creates a new row that a funder must validate before any payment."""

    organisation = models.ForeignKey("accounts.Organisation", on_delete=models.PROTECT, related_name="bank_accounts")
    holder_name = models.CharField("titulaire du compte", max_length=70)
    iban = models.CharField("IBAN", max_length=34)
    bic = models.CharField("BIC", max_length=11)
    status = models.CharField(
        "statut", max_length=10, choices=BankAccountStatus.choices, default=BankAccountStatus.PENDING
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)
    review_reason = models.TextField(blank=True)

    class Meta:
        verbose_name = "coordonnées bancaires"
        verbose_name_plural = "coordonnées bancaires"
        constraints = [
            models.CheckConstraint(condition=Q(status__in=BankAccountStatus.values), name="bank_status_valid"),
            models.UniqueConstraint(
                fields=["organisation"], condition=Q(status="validated"), name="bank_one_validated_per_org"
            ),
            models.UniqueConstraint(
                fields=["organisation"], condition=Q(status="pending"), name="bank_one_pending_per_org"
            ),
            models.CheckConstraint(
                condition=Q(status="pending") | Q(status="replaced") | Q(reviewed_at__isnull=False),
                name="bank_reviewed_has_date",
            ),
        ]

    def __str__(self):
        return f"{self.holder_name} ****{self.iban[-4:]}"

    @property
    def masked_iban(self) -> str:
        return f"{self.iban[:4]} **** **** {self.iban[-4:]}"


def document_path(instance, filename):
    return f"documents/{instance.organisation_id}/{timezone.now():%Y%m%d%H%M%S}-{instance.kind}{_ext(filename)}"


def _ext(filename: str) -> str:
    return "." + filename.rsplit(".", 1)[-1].lower() if "." in filename else ""


class SupportingDocument(models.Model):
    organisation = models.ForeignKey("accounts.Organisation", on_delete=models.PROTECT, related_name="documents")
    kind = models.CharField("type de pièce", max_length=20, choices=DocumentKind.choices)
    file = models.FileField("fichier", upload_to=document_path)
    content_type = models.CharField(max_length=100)
    size_bytes = models.PositiveIntegerField()
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    uploaded_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = "pièce justificative"
        constraints = [
            models.CheckConstraint(condition=Q(kind__in=DocumentKind.values), name="document_kind_valid"),
        ]

    def __str__(self):
        return f"{self.get_kind_display()} ({self.organisation_id})"
