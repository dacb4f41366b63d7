from django import forms
from dsfr.forms import DsfrBaseForm

from passnum.accounts.enums import OrganisationKind
from passnum.accounts.models import Organisation
from passnum.vouchers.enums import CancelReason
from passnum.vouchers.services import MAX_BOOKLETS_PER_CALL


class IssueForm(DsfrBaseForm):
    count = forms.IntegerField(label="Nombre de carnets à émettre", min_value=1, max_value=MAX_BOOKLETS_PER_CALL)


def _distributors():
    return Organisation.objects.filter(kind=OrganisationKind.DISTRIBUTOR, is_active=True).order_by("name")


class AllocateForm(DsfrBaseForm):
    distributor = forms.ModelChoiceField(
        label="Prescripteur", queryset=Organisation.objects.none(), empty_label="Choisir le prescripteur"
    )
    quantity = forms.IntegerField(
        label="Quantité de carnets", required=False, min_value=1, help_text="Les plus petits numéros libres."
    )
    first = forms.IntegerField(label="Ou du carnet n°", required=False, min_value=1)
    last = forms.IntegerField(label="au carnet n°", required=False, min_value=1)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["distributor"].queryset = _distributors()

    def clean(self):
        data = super().clean()
        has_qty = data.get("quantity") is not None
        has_range = data.get("first") is not None or data.get("last") is not None
        if has_qty == has_range:
            raise forms.ValidationError("Indiquez soit une quantité, soit une plage de numéros.")
        return data


class CancelBookletForm(DsfrBaseForm):
    number = forms.IntegerField(label="Numéro du carnet", min_value=1)
    reason = forms.ChoiceField(label="Motif", choices=[("", "Choisir le motif"), *CancelReason.choices])
    detail = forms.CharField(label="Précision (sans donnée personnelle)", required=False, max_length=150)


class StockMoveForm(DsfrBaseForm):
    booklets = forms.MultipleChoiceField(label="Carnets", widget=forms.CheckboxSelectMultiple)
    target = forms.ModelChoiceField(
        label="Prescripteur destinataire (pour un transfert)",
        queryset=Organisation.objects.none(),
        required=False,
        empty_label="Choisir le prescripteur",
    )

    def __init__(self, *args, stock, distributor, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["booklets"].choices = [(str(b.pk), f"{b.program.name} — carnet n° {b.number}") for b in stock]
        self.fields["target"].queryset = _distributors().exclude(pk=distributor.pk)


class PdfForm(DsfrBaseForm):
    first = forms.IntegerField(label="Du carnet n°", min_value=1)
    last = forms.IntegerField(label="au carnet n°", min_value=1)
    layout = forms.ChoiceField(
        label="Mise en page",
        choices=[("print", "Imprimeur : plusieurs carnets par feuille A4"), ("desk", "Guichet : un carnet par A4")],
        widget=forms.RadioSelect,
        initial="print",
    )

    def clean(self):
        data = super().clean()
        if data.get("first") and data.get("last") and data["last"] < data["first"]:
            raise forms.ValidationError("La plage de numéros est à l’envers.")
        if data.get("first") and data.get("last") and data["last"] - data["first"] >= 5000:
            raise forms.ValidationError("Au plus 5 000 carnets par fichier ; pour plus, utilisez la commande.")
        return data
