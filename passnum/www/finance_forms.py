"""Forms of the finance pages (passnum/www/finance.py, passnum/www/payments.py). They parse input only: every
rule (who may approve, what may be rejected, a valid IBAN…) is the settlement services'."""

from django import forms
from dsfr.forms import DsfrBaseForm

from passnum.settlement.enums import ClaimStatus, IncidentStatus
from passnum.settlement.payments import STATEMENT_MAX_BYTES

PAYMENT_FILE_VERSIONS = (
    ("pain.001.001.03", "pain.001.001.03 (format SEPA le plus répandu, recommandé)"),
    ("pain.001.001.09", "pain.001.001.09 (format ISO 20022 de 2019, si votre banque le demande)"),
)


class ClaimFilterForm(DsfrBaseForm):
    """Filters of the funder's claims list (GET). An invalid value is reported and ignored."""

    run = forms.TypedChoiceField(label="Arrêté", required=False, coerce=int, empty_value=None)
    status = forms.ChoiceField(label="Statut", required=False)

    def __init__(self, *args, runs=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["run"].choices = [("", "Tous les arrêtés")] + [
            (run.pk, f"Arrêté du {run.cutoff:%d/%m/%Y}") for run in runs
        ]
        self.fields["run"].error_messages["invalid_choice"] = (
            "Cet arrêté n’existe pas : tous les arrêtés sont affichés."
        )
        self.fields["status"].choices = [("", "Tous les statuts"), *ClaimStatus.choices]
        self.fields["status"].error_messages["invalid_choice"] = "Statut inconnu : tous les statuts sont affichés."


class LineRejectForm(DsfrBaseForm):
    reason = forms.CharField(
        label="Motif du rejet",
        max_length=500,
        help_text="Le lieu le lira sur son relevé. 500 caractères au plus.",
        widget=forms.Textarea(attrs={"rows": 3}),
        error_messages={
            "required": "Indiquez le motif du rejet.",
            "max_length": "Le motif tient en 500 caractères au plus.",
        },
    )


class IncidentCloseForm(DsfrBaseForm):
    outcome = forms.ChoiceField(
        label="Décision",
        choices=[
            (IncidentStatus.REINSTATED, "Rétablir la ligne : le chèque sera payé au lieu"),
            (IncidentStatus.WRITTEN_OFF, "Confirmer le rejet : la valeur revient au budget du dispositif"),
        ],
        widget=forms.RadioSelect,
        error_messages={
            "required": "Choisissez une décision.",
            "invalid_choice": "Choisissez une des deux décisions proposées.",
        },
    )
    resolution = forms.CharField(
        label="Conclusion",
        max_length=500,
        help_text="Pourquoi cette décision. 500 caractères au plus.",
        widget=forms.Textarea(attrs={"rows": 3}),
        error_messages={
            "required": "Indiquez la conclusion de l’incident.",
            "max_length": "La conclusion tient en 500 caractères au plus.",
        },
    )


class MarkPaidForm(DsfrBaseForm):
    reference = forms.CharField(
        label="Référence du virement (facultatif)",
        required=False,
        max_length=70,
        help_text="Telle qu’elle figure sur votre relevé bancaire.",
        error_messages={"max_length": "La référence tient en 70 caractères au plus."},
    )


class PaymentFileForm(DsfrBaseForm):
    version = forms.ChoiceField(
        label="Format du fichier",
        choices=PAYMENT_FILE_VERSIONS,
        initial=PAYMENT_FILE_VERSIONS[0][0],
        widget=forms.RadioSelect,
        error_messages={
            "required": "Choisissez le format du fichier.",
            "invalid_choice": "Choisissez un des formats proposés.",
        },
    )


class StatementImportForm(DsfrBaseForm):
    """The file only: its format (camt.054 or CSV) is recognised from its content by the service."""

    statement = forms.FileField(
        label="Relevé bancaire",
        help_text=(
            f"Fichier camt.054 (XML) ou CSV exporté de votre banque, {STATEMENT_MAX_BYTES // 1_000_000} Mo au plus."
        ),
        error_messages={
            "required": "Choisissez le fichier du relevé.",
            "empty": "Ce fichier est vide.",
            "invalid": "Choisissez un fichier.",
        },
    )

    def clean_statement(self):
        uploaded = self.cleaned_data["statement"]
        if uploaded.size > STATEMENT_MAX_BYTES:
            raise forms.ValidationError(
                f"Ce fichier dépasse {STATEMENT_MAX_BYTES // 1_000_000} Mo : importez un relevé plus court."
            )
        return uploaded


class BankAccountForm(DsfrBaseForm):
    holder_name = forms.CharField(
        label="Titulaire du compte",
        max_length=70,
        error_messages={
            "required": "Indiquez le titulaire du compte.",
            "max_length": "Le nom du titulaire tient en 70 caractères au plus.",
        },
    )
    iban = forms.CharField(
        label="IBAN",
        max_length=42,
        help_text="Par exemple FR76 3000 6000 0112 3456 7890 189. Les espaces sont permises.",
        error_messages={
            "required": "Indiquez l’IBAN.",
            "max_length": "Un IBAN compte 34 caractères au plus.",
        },
    )
    bic = forms.CharField(
        label="BIC",
        max_length=11,
        required=False,
        help_text="8 ou 11 caractères, par exemple AGRIFRPP. Laissé vide, il est déduit de l’IBAN si possible.",
        error_messages={"max_length": "Un BIC compte 8 ou 11 caractères."},
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in ("iban", "bic"):
            self.fields[name].widget.attrs.update({"autocomplete": "off", "spellcheck": "false"})
        self.fields["holder_name"].widget.attrs["autocomplete"] = "organization"
