"""Forms of the distributor's hand-out journey (passnum/www/handout.py). They parse and present; the domain
(passnum.vouchers.handout and .digital) decides, and its refusals are shown on the field they name."""

from django import forms

from passnum.common.errors import DomainError
from passnum.common.standard import Service
from passnum.places.finder import communes_for_query
from passnum.vouchers import digital
from passnum.vouchers.enums import BeneficiaryPublic
from passnum.vouchers.handout import Person, person_clean
from passnum.www.forms import PassnumForm

NO_ORIENTATION = "aucun"
PAPER, DIGITAL = "papier", "numerique"
CONTACT_REQUIRED = (
    "Pour un envoi par SMS ou courriel, indiquez un numéro de portable, une adresse électronique, ou les deux."
)
# Inputs about the person: the browser must neither remember nor suggest them (a shared desk computer).
NO_MEMORY = {"autocomplete": "off", "spellcheck": "false"}


class ConditionalCheckbox(forms.CheckboxInput):
    """A checkbox required only in some cases (the form's clean() decides): no `required` attribute."""

    def use_required_attribute(self, initial):
        return False


class PickForm(PassnumForm):
    """What the distributor typed, scanned or pasted to find the booklet; the dispositif when several."""

    booklet = forms.CharField(
        label="Numéro du carnet ou code d’un chèque",
        max_length=300,
        help_text="Le numéro imprimé sur le carnet (par exemple 42), le code d’un de ses chèques "
        "(XXXX-XXXX-XXXX-X) ou le contenu de son QR code, lu par une douchette.",
        error_messages={"required": "Scannez un chèque du carnet ou saisissez son numéro."},
        widget=forms.TextInput(attrs={**NO_MEMORY, "autocapitalize": "characters"}),
    )
    program = forms.ChoiceField(
        label="Dispositif",
        required=False,
        help_text="Utile seulement pour un numéro de carnet : le même numéro peut exister dans plusieurs dispositifs.",
    )

    def __init__(self, *args, programs=(), **kwargs):
        super().__init__(*args, **kwargs)
        if len(programs) > 1:
            self.fields["program"].choices = [("", "Tous les dispositifs")] + [(str(p.pk), p.name) for p in programs]
        else:
            del self.fields["program"]


def _year(value: str) -> int | None:
    value = "".join(value.split())
    if not value:
        return None
    if not (value.isdigit() and len(value) == 4):
        raise forms.ValidationError("Indiquez l’année en quatre chiffres, par exemple 1958.", code="birth_year_format")
    return int(value)


class PersonForm(PassnumForm):
    """The person, with the least data that serves: everything is optional."""

    first_name = forms.CharField(
        label="Prénom",
        max_length=60,
        required=False,
        help_text="Seulement si la personne l’accepte : il aide à la reconnaître à son prochain passage.",
        widget=forms.TextInput(attrs=NO_MEMORY),
    )
    consent_first_name = forms.BooleanField(label="La personne accepte que son prénom soit noté", required=False)
    birth_year = forms.CharField(
        label="Année de naissance",
        max_length=8,
        required=False,
        help_text="Par exemple : 1958.",
        widget=forms.TextInput(attrs={**NO_MEMORY, "inputmode": "numeric"}),
    )
    commune = forms.CharField(
        label="Commune de résidence",
        max_length=100,
        required=False,
        help_text="Nom, code postal ou code Insee, par exemple Reims, 51100 ou 51454 : pour proposer les lieux "
        "les plus proches.",
        widget=forms.TextInput(attrs=NO_MEMORY),
    )
    commune_choice = forms.ChoiceField(label="Laquelle ?", required=False, widget=forms.RadioSelect)
    public = forms.ChoiceField(
        label="Situation",
        required=False,
        choices=[("", "Non précisée")] + list(BeneficiaryPublic.choices),
    )
    needs = forms.MultipleChoiceField(
        label="Besoins",
        required=False,
        help_text="Ce que la personne veut apprendre ou faire : les lieux proposés offrent ces services.",
        widget=forms.CheckboxSelectMultiple,
    )
    consent_reminders = forms.BooleanField(
        label="La personne accepte de recevoir des rappels (chèques pas encore utilisés, fin de validité)",
        required=False,
    )

    def __init__(self, data=None, *args, program, **kwargs):
        self.candidates = []
        if data is not None:
            text = " ".join((data.get("commune") or "").split())
            self.candidates = communes_for_query(text=text) if text else []
            codes = {c.code for c in self.candidates}
            if data.get("commune_choice") and data.get("commune_choice") not in codes:
                data = data.copy()  # a commune chosen for what was typed before: forget it
                data.pop("commune_choice")
        super().__init__(data, *args, **kwargs)
        self.fields["needs"].choices = [
            (code, label) for code, label in Service.choices if code in program.eligible_services
        ]
        if len(self.candidates) > 1:
            self.fields["commune_choice"].choices = [(c.code, c.label) for c in self.candidates]
        else:
            del self.fields["commune_choice"]

    def clean_birth_year(self):
        return _year(self.cleaned_data["birth_year"])

    def clean(self):
        data = super().clean()
        text = " ".join((data.get("commune") or "").split())
        data["commune_code"] = ""
        if text and not self.has_error("commune"):
            if not self.candidates:
                unknown = (
                    f"Aucune commune ne correspond à « {text} » : vérifiez l’orthographe, ou indiquez le code postal."
                )
                self.add_error("commune", unknown)
            elif len(self.candidates) == 1:
                data["commune_code"] = self.candidates[0].code
            elif data.get("commune_choice"):
                data["commune_code"] = data["commune_choice"]
            else:
                self.add_error("commune_choice", f"Plusieurs communes correspondent à « {text} » : choisissez-la.")
        if not self.errors:
            # The domain's own checks (consent for the first name, plausible birth year…), without writing:
            # every refusal shows before places are proposed, and the hand-out checks again.
            try:
                person_clean(self.person())
            except DomainError as exc:
                self.add_error(exc.field if exc.field in self.fields else None, exc.message)
        return data

    def person(self) -> Person:
        data = self.cleaned_data
        return Person(
            first_name=data.get("first_name") or "",
            birth_year=data.get("birth_year"),
            commune_code=data.get("commune_code") or "",
            public=data.get("public") or "",
            needs=list(data.get("needs") or []),
            consent_first_name=bool(data.get("consent_first_name")),
            consent_reminders=bool(data.get("consent_reminders")),
        )


class OrientationForm(PassnumForm):
    """The place the person is oriented to (one of the suggestions, or none) and how the booklet is delivered."""

    site = forms.ChoiceField(
        label="Lieu conseillé",
        error_messages={
            "required": "Choisissez un lieu, ou « Sans orientation ».",
            "invalid_choice": "Ce lieu ne fait plus partie des propositions : choisissez parmi les lieux proposés.",
        },
        widget=forms.RadioSelect,
    )
    delivery = forms.ChoiceField(
        label="Comment la personne reçoit-elle ses chèques ?",
        choices=[
            (PAPER, "Sur papier : le carnet imprimé, ou son PDF à imprimer ensuite"),
            (DIGITAL, "Par SMS ou courriel : un lien vers les chèques, sur le téléphone de la personne"),
        ],
        error_messages={"required": "Choisissez comment la personne reçoit ses chèques."},
        widget=forms.RadioSelect,
    )
    phone = forms.CharField(
        label="Numéro de portable",
        max_length=30,
        required=False,
        help_text="Un portable français, par exemple 06 12 34 56 78.",
        widget=forms.TextInput(attrs={**NO_MEMORY, "type": "tel", "inputmode": "tel"}),
    )
    email = forms.CharField(
        label="Adresse électronique",
        max_length=254,
        required=False,
        help_text="Par exemple : prenom.nom@exemple.fr.",
        widget=forms.EmailInput(attrs=NO_MEMORY),
    )
    consent_digital = forms.BooleanField(
        label="La personne accepte de recevoir ce lien",
        widget=ConditionalCheckbox,
        template_name="dsfr/form_field_snippets/checkbox_snippet.html",  # as a CheckboxInput would get
        error_messages={"required": "Le lien ne peut être envoyé qu’avec l’accord de la personne."},
    )

    def __init__(self, *args, sites=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.sites = list(sites)
        self.fields["site"].choices = [(str(s.id), s.name) for s in self.sites] + [(NO_ORIENTATION, "Sans orientation")]

    def site_options(self):
        """(radio button, suggested place) pairs, in the finder's order; the place is None for "Sans orientation"."""
        return list(zip(self["site"], [*self.sites, None], strict=True))

    def clean_phone(self):
        """Checked here too, so that every mistake shows at once; the service checks again."""
        phone = self.cleaned_data["phone"].strip()
        try:
            return digital.normalise_phone(phone) if phone else ""
        except DomainError as exc:
            raise forms.ValidationError(exc.message, code=exc.code) from None

    def clean_email(self):
        email = self.cleaned_data["email"].strip()
        try:
            return digital.normalise_email(email) if email else ""
        except DomainError as exc:
            raise forms.ValidationError(exc.message, code=exc.code) from None

    def clean(self):
        data = super().clean()
        if data.get("delivery") != DIGITAL:  # typed, then paper chosen: not checked, not sent, not kept
            for name in ("phone", "email", "consent_digital"):
                self._errors.pop(name, None)
                data[name] = ""
            return data
        if not self.has_error("phone") and not self.has_error("email") and not (data.get("phone") or data.get("email")):
            self.add_error("phone", CONTACT_REQUIRED)
        return data

    @property
    def site_id(self) -> int | None:
        value = self.cleaned_data.get("site")
        return None if value in (None, "", NO_ORIENTATION) else int(value)
