"""Forms parse and present; the services decide. Money is typed in euros and converted to cents once."""

import re
from decimal import Decimal, InvalidOperation

from django import forms
from django.contrib.auth.forms import AuthenticationForm, PasswordResetForm, SetPasswordForm
from dsfr.forms import DsfrBaseForm, DsfrDjangoTemplates

from passnum.accounts.enums import OrganisationKind, Role
from passnum.accounts.models import Organisation
from passnum.common.money import InvalidAmount, parse_euros
from passnum.common.standard import Public, Service
from passnum.geo.enums import TerritoryLevel
from passnum.programs.models import MAX_BUDGET_CENTS, MAX_FACE_VALUE_CENTS

CODE_SPLIT = re.compile(r"[\s,;]+")

# FORM_RENDERER (TemplatesSetting) looks templates up in INSTALLED_APPS order, where "django.forms" precedes "dsfr":
# Django's stock widget and error templates would win over django-dsfr's, and checkboxes, radio buttons and error
# messages would lose their DSFR markup (fr-checkbox-group, fr-radio-group, fr-error-text). Every form here (and
# the funders' formset) renders with django-dsfr's own renderer, which looks in django-dsfr's templates first.
DSFR_FORM_RENDERER = DsfrDjangoTemplates()


class PassnumForm(DsfrBaseForm):
    default_renderer = DSFR_FORM_RENDERER


class LoginForm(PassnumForm, AuthenticationForm):
    username = forms.EmailField(label="Adresse électronique", widget=forms.EmailInput(attrs={"autocomplete": "email"}))
    password = forms.CharField(
        label="Mot de passe",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )
    error_messages = {
        "invalid_login": "Adresse électronique ou mot de passe incorrect.",
        "inactive": "Ce compte est désactivé.",
    }


class PasswordResetRequestForm(PassnumForm, PasswordResetForm):
    email = forms.EmailField(label="Adresse électronique", widget=forms.EmailInput(attrs={"autocomplete": "email"}))


class NewPasswordForm(PassnumForm, SetPasswordForm):
    pass


class EurosField(forms.CharField):
    def __init__(self, *args, min_cents=0, max_cents=None, **kwargs):
        self.min_cents, self.max_cents = min_cents, max_cents
        kwargs.setdefault("widget", forms.TextInput(attrs={"inputmode": "decimal"}))
        super().__init__(*args, **kwargs)

    def to_python(self, value):
        value = super().to_python(value)
        if value in self.empty_values:
            return None
        try:
            cents = parse_euros(value)
        except InvalidAmount as exc:
            raise forms.ValidationError(str(exc)) from exc
        if cents < self.min_cents:
            raise forms.ValidationError(
                "Le montant ne peut pas être négatif." if self.min_cents == 0 else "Le montant doit être positif."
            )
        if self.max_cents is not None and cents > self.max_cents:
            raise forms.ValidationError("Ce montant est trop élevé.")
        return cents


class PercentField(forms.CharField):
    """'60' or '33,33' → basis points (6000, 3333)."""

    def to_python(self, value):
        value = super().to_python(value)
        if value in self.empty_values:
            return None
        try:
            pct = Decimal(value.replace(",", ".").replace("%", "").strip())
        except InvalidOperation as exc:
            raise forms.ValidationError("Indiquez un pourcentage, par exemple 60 ou 33,33.") from exc
        bps = pct * 100
        if bps != bps.to_integral_value():
            raise forms.ValidationError("Au plus deux décimales.")
        if not 0 < bps <= 10_000:
            raise forms.ValidationError("Une part est comprise entre 0,01 % et 100 %.")
        return int(bps)


class DateInput(forms.DateInput):
    """The browser's date picker. Its value is always ISO 8601 (2026-03-01), whatever the language: with the
    French locale's format (01/03/2026) the browser would show an empty field and an edit would lose its dates."""

    input_type = "date"

    def __init__(self, attrs=None):
        super().__init__(attrs=attrs, format="%Y-%m-%d")


class CodesField(forms.CharField):
    widget = forms.TextInput

    def to_python(self, value):
        value = super().to_python(value) or ""
        return [c.upper() for c in CODE_SPLIT.split(value.strip()) if c]


class ProgramForm(PassnumForm):
    name = forms.CharField(label="Nom du dispositif", max_length=200)
    description = forms.CharField(label="Description", required=False, widget=forms.Textarea(attrs={"rows": 3}))
    face_value = EurosField(label="Valeur d’un chèque (€)", min_cents=1, max_cents=MAX_FACE_VALUE_CENTS, initial="10")
    vouchers_per_booklet = forms.IntegerField(label="Nombre de chèques par carnet", initial=10)
    valid_from = forms.DateField(label="Début de validité", widget=DateInput())
    valid_until = forms.DateField(label="Fin de validité", widget=DateInput())
    grace_days = forms.IntegerField(
        label="Délai de grâce (jours)", initial=30, help_text="Après la fin de validité, avant expiration."
    )
    eligible_services = forms.MultipleChoiceField(
        label="Services éligibles", choices=Service.choices, widget=forms.CheckboxSelectMultiple
    )
    target_publics = forms.MultipleChoiceField(
        label="Publics visés", choices=Public.choices, widget=forms.CheckboxSelectMultiple, required=False
    )
    territory_regions = CodesField(label="Régions (codes INSEE)", required=False, help_text="Exemple : 32")
    territory_departements = CodesField(
        label="Départements (codes INSEE)", required=False, help_text="Exemple : 60, 2A"
    )
    territory_epci = CodesField(label="EPCI (numéros SIREN)", required=False, help_text="Exemple : 200067999")
    territory_communes = CodesField(
        label="Communes (codes INSEE)",
        required=False,
        help_text="Exemple : 60057. Séparez les codes par des virgules.",
    )

    def territory(self) -> list[tuple[str, str]]:
        d = self.cleaned_data
        return (
            [(TerritoryLevel.REGION, c) for c in d["territory_regions"]]
            + [(TerritoryLevel.DEPARTEMENT, c) for c in d["territory_departements"]]
            + [(TerritoryLevel.EPCI, c) for c in d["territory_epci"]]
            + [(TerritoryLevel.COMMUNE, c) for c in d["territory_communes"]]
        )


class FunderShareForm(PassnumForm):
    funder = forms.ModelChoiceField(
        label="Financeur", queryset=Organisation.objects.none(), required=False, empty_label="— Aucun —"
    )
    share = PercentField(label="Part (%)", required=False, widget=forms.TextInput(attrs={"inputmode": "decimal"}))
    budget = EurosField(label="Budget (€)", required=False, max_cents=MAX_BUDGET_CENTS)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["funder"].queryset = Organisation.objects.filter(
            kind=OrganisationKind.FUNDER, is_active=True
        ).order_by("name")

    def clean(self):
        data = super().clean()
        if data.get("funder") and (data.get("share") is None or data.get("budget") is None):
            raise forms.ValidationError("Indiquez la part et le budget de ce financeur.")
        if not data.get("funder") and (data.get("share") is not None or data.get("budget") is not None):
            raise forms.ValidationError("Choisissez le financeur de cette part.")
        return data


FunderShareFormSet = forms.formset_factory(
    FunderShareForm, extra=0, min_num=1, max_num=10, validate_max=True, renderer=DSFR_FORM_RENDERER
)


class SwitchOrganisationForm(PassnumForm):
    organisation = forms.TypedChoiceField(label="Organisation", coerce=int, widget=forms.RadioSelect)

    def __init__(self, *args, memberships, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["organisation"].choices = [
            (m.organisation_id, f"{m.organisation.name} ({m.organisation.get_kind_display()})") for m in memberships
        ]


class InvitationForm(PassnumForm):
    email = forms.EmailField(label="Adresse électronique de la personne")
    role = forms.ChoiceField(label="Rôle", choices=Role.choices, initial=Role.MEMBER)


class AcceptInvitationForm(PassnumForm):
    first_name = forms.CharField(label="Prénom", max_length=150, required=False)
    last_name = forms.CharField(label="Nom", max_length=150, required=False)
    password = forms.CharField(
        label="Mot de passe (12 caractères au moins)",
        strip=False,
        required=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )

    def __init__(self, *args, new_account=True, **kwargs):
        """A person who already has an account only accepts; a new one must choose a password (the form
        would otherwise mark it optional)."""
        super().__init__(*args, **kwargs)
        self.fields["password"].required = new_account
