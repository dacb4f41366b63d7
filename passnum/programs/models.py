"""Programs (dispositifs): who funds them, with which shares and budgets, where and for what.

Amounts are integer cents. Shares are basis points; a program's shares sum to exactly 10 000 (checked by the
services under a row lock, since a CHECK cannot span rows). Shares and face value freeze at the first issuance
so that every voucher of a program splits the same way in the ledger."""

from django.db import models
from django.db.models import F, Q
from django.utils import timezone

from passnum.geo.enums import TerritoryLevel

MAX_FACE_VALUE_CENTS = 10_000  # 100 €: a voucher pays one session of mediation, not equipment
MAX_BUDGET_CENTS = 10_000_000_000  # 100 M€ per funder and program
MAX_VOUCHERS_PER_BOOKLET = 50
MAX_GRACE_DAYS = 365


class Program(models.Model):
    name = models.CharField("nom", max_length=200)
    slug = models.SlugField("identifiant", unique=True, max_length=80)
    description = models.TextField("description", blank=True)
    owner = models.ForeignKey(
        "accounts.Organisation",
        on_delete=models.PROTECT,
        related_name="owned_programs",
        verbose_name="financeur pilote",
    )
    face_value_cents = models.PositiveIntegerField("valeur faciale (centimes)", default=1000)
    vouchers_per_booklet = models.PositiveSmallIntegerField("chèques par carnet", default=10)
    valid_from = models.DateField("début de validité")
    valid_until = models.DateField("fin de validité")
    grace_days = models.PositiveSmallIntegerField("délai de grâce (jours)", default=30)
    eligible_services = models.JSONField("services éligibles", default=list)
    target_publics = models.JSONField("publics visés", default=list)
    # {service code: most vouchers one session may take}; a service absent here follows the place's catalogue.
    session_vouchers = models.JSONField("chèques par séance (plafond par service)", default=dict, blank=True)
    next_booklet_number = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "dispositif"
        ordering = ["-valid_from", "name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(face_value_cents__gt=0) & Q(face_value_cents__lte=MAX_FACE_VALUE_CENTS),
                name="program_face_value_range",
            ),
            models.CheckConstraint(
                condition=Q(vouchers_per_booklet__gte=1) & Q(vouchers_per_booklet__lte=MAX_VOUCHERS_PER_BOOKLET),
                name="program_vouchers_per_booklet_range",
            ),
            models.CheckConstraint(condition=Q(valid_until__gte=F("valid_from")), name="program_dates_order"),
            models.CheckConstraint(condition=Q(grace_days__lte=MAX_GRACE_DAYS), name="program_grace_days_max"),
            models.CheckConstraint(condition=Q(next_booklet_number__gte=1), name="program_next_booklet_pos"),
        ]

    def __str__(self):
        return self.name


class ProgramFunder(models.Model):
    """One funder's part in a program. `committed_cents` is the value of the vouchers issued against this
    budget and not cancelled; the CHECK below is the database's last barrier against over-issuance."""

    program = models.ForeignKey(Program, on_delete=models.CASCADE, related_name="funders")
    funder = models.ForeignKey(
        "accounts.Organisation",
        on_delete=models.PROTECT,
        related_name="program_shares",
        verbose_name="financeur",
    )
    share_bps = models.PositiveIntegerField("part (points de base)")
    budget_cents = models.BigIntegerField("budget (centimes)")
    committed_cents = models.BigIntegerField("engagé (centimes)", default=0)

    class Meta:
        verbose_name = "financeur du dispositif"
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["program", "funder"], name="program_funder_unique"),
            models.CheckConstraint(
                condition=Q(share_bps__gte=1) & Q(share_bps__lte=10_000), name="program_funder_share_range"
            ),
            models.CheckConstraint(
                condition=Q(budget_cents__gte=0) & Q(budget_cents__lte=MAX_BUDGET_CENTS),
                name="program_funder_budget_range",
            ),
            models.CheckConstraint(
                condition=Q(committed_cents__gte=0) & Q(committed_cents__lte=F("budget_cents")),
                name="program_funder_within_budget",
            ),
        ]

    def __str__(self):
        return f"{self.funder} — {self.share_bps / 100:.2f} %"

    @property
    def available_cents(self) -> int:
        return self.budget_cents - self.committed_cents


class ProgramTerritory(models.Model):
    """One item of a program's territory: a commune, an EPCI, a département or a région (INSEE codes)."""

    program = models.ForeignKey(Program, on_delete=models.CASCADE, related_name="territory")
    level = models.CharField("niveau", max_length=12, choices=TerritoryLevel.choices)
    code = models.CharField("code", max_length=9)

    class Meta:
        verbose_name = "territoire du dispositif"
        constraints = [
            models.UniqueConstraint(fields=["program", "level", "code"], name="program_territory_unique"),
            models.CheckConstraint(condition=Q(level__in=TerritoryLevel.values), name="program_territory_level"),
        ]

    def __str__(self):
        return f"{self.get_level_display()} {self.code}"
