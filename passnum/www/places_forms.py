from django import forms
from dsfr.forms import DsfrBaseForm

from passnum.common.standard import Public, Service, SpecificSupport
from passnum.places.enums import MAX_VOUCHERS_PER_SESSION, DocumentKind


class StructureForm(DsfrBaseForm):
    name = forms.CharField(label="Nom de la structure", max_length=200)
    siret = forms.CharField(label="SIRET", required=False, help_text="14 chiffres. Ou bien le numéro RNA ci-dessous.")
    rna = forms.CharField(label="Numéro RNA (associations)", required=False, help_text="W suivi de 9 chiffres.")
    first_name = forms.CharField(label="Votre prénom", max_length=150)
    last_name = forms.CharField(label="Votre nom", max_length=150)
    email = forms.EmailField(label="Votre adresse électronique (identifiant de connexion)")
    password = forms.CharField(
        label="Mot de passe (12 caractères au moins)",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )

    def clean(self):
        data = super().clean()
        if not data.get("siret", "").strip() and not data.get("rna", "").strip():
            self.add_error("siret", "Indiquez le SIRET ou le numéro RNA de la structure.")
        return data


class SiteForm(DsfrBaseForm):
    name = forms.CharField(label="Nom du lieu", max_length=250)
    address = forms.CharField(label="Adresse", max_length=250)
    address_complement = forms.CharField(label="Complément d’adresse", max_length=250, required=False)
    postal_code = forms.RegexField(
        label="Code postal", regex=r"^\d{5}$", error_messages={"invalid": "Le code postal a 5 chiffres."}
    )
    insee_code = forms.RegexField(
        label="Code INSEE de la commune",
        regex=r"^(\d{5}|2[AB]\d{3})$",
        help_text="5 caractères, par exemple 51454 pour Reims.",
        error_messages={"invalid": "Un code INSEE a 5 caractères, par exemple 51454."},
    )
    latitude = forms.FloatField(label="Latitude", required=False, min_value=-90, max_value=90)
    longitude = forms.FloatField(label="Longitude", required=False, min_value=-180, max_value=180)
    opening_hours = forms.CharField(
        label="Horaires (syntaxe OpenStreetMap)",
        required=False,
        max_length=500,
        help_text="Par exemple : Mo-Fr 09:00-12:00,14:00-18:00; Sa 09:00-12:00",
    )
    phone = forms.CharField(label="Téléphone", required=False, max_length=20)
    email = forms.EmailField(label="Courriel du lieu", required=False)
    website = forms.URLField(label="Site web", required=False, assume_scheme="https")
    booking_url = forms.URLField(label="Lien de prise de rendez-vous", required=False, assume_scheme="https")
    summary = forms.CharField(
        label="Présentation (280 caractères)", required=False, max_length=280, widget=forms.Textarea(attrs={"rows": 2})
    )
    services = forms.MultipleChoiceField(
        label="Services proposés", choices=Service.choices, widget=forms.CheckboxSelectMultiple
    )
    vouchers_per_session = forms.IntegerField(
        label="Chèques demandés pour une séance",
        min_value=1,
        max_value=MAX_VOUCHERS_PER_SESSION,
        initial=1,
        help_text="Modifiable ensuite service par service.",
    )
    publics = forms.MultipleChoiceField(
        label="Publics accueillis en particulier",
        choices=[c for c in Public.choices if c[0] != Public.EVERYONE],
        widget=forms.CheckboxSelectMultiple,
        required=False,
    )
    supports = forms.MultipleChoiceField(
        label="Accessibilité et prise en charge spécifique",
        choices=SpecificSupport.choices,
        widget=forms.CheckboxSelectMultiple,
        required=False,
    )

    def clean(self):
        data = super().clean()
        if (data.get("latitude") is None) != (data.get("longitude") is None):
            self.add_error("longitude", "Indiquez la latitude et la longitude, ou aucune.")
        return data


SiteFormSet = forms.formset_factory(SiteForm, extra=0, min_num=1, max_num=20, validate_min=True, validate_max=True)


class BankForm(DsfrBaseForm):
    holder_name = forms.CharField(label="Titulaire du compte", max_length=70)
    iban = forms.CharField(label="IBAN", max_length=42)
    bic = forms.CharField(label="BIC", max_length=11)


class SignupDocumentsForm(DsfrBaseForm):
    registration = forms.FileField(
        label="Justificatif d’existence (avis SIRENE, Kbis ou récépissé RNA)",
        help_text="PDF, PNG ou JPEG, 5 Mo au plus.",
    )
    bank_document = forms.FileField(
        label="Relevé d’identité bancaire", required=False, help_text="PDF, PNG ou JPEG, 5 Mo au plus."
    )
    certify = forms.BooleanField(
        label="Je certifie l’exactitude de ces informations et avoir lu la liste publique des critères."
    )


class DocumentForm(DsfrBaseForm):
    kind = forms.ChoiceField(label="Type de pièce", choices=DocumentKind.choices)
    file = forms.FileField(label="Fichier", help_text="PDF, PNG ou JPEG, 5 Mo au plus.")


class CatalogueForm(DsfrBaseForm):
    """One number per national service: 0 = not offered."""

    def __init__(self, *args, current: dict[str, int], **kwargs):
        super().__init__(*args, **kwargs)
        for code, label in Service.choices:
            self.fields[code] = forms.IntegerField(
                label=f"{label} — chèques par séance",
                min_value=0,
                max_value=MAX_VOUCHERS_PER_SESSION,
                initial=current.get(code, 0),
                help_text="0 si ce service n’est pas proposé.",
            )

    def services(self) -> dict[str, int]:
        return {code: n for code, n in self.cleaned_data.items() if n}


class DecisionForm(DsfrBaseForm):
    decision = forms.ChoiceField(
        label="Décision",
        choices=[("qualify", "Qualifier le lieu"), ("refuse", "Refuser"), ("suspend", "Suspendre")],
        widget=forms.RadioSelect,
    )
    reason = forms.CharField(
        label="Motif (obligatoire pour un refus ou une suspension, transmis au lieu)",
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
    )


class BankReviewForm(DsfrBaseForm):
    decision = forms.ChoiceField(
        label="Décision",
        choices=[("approve", "Valider ces coordonnées"), ("reject", "Refuser")],
        widget=forms.RadioSelect,
    )
    reason = forms.CharField(
        label="Motif (obligatoire pour un refus)", required=False, widget=forms.Textarea(attrs={"rows": 2})
    )
