"""Forms of the redemption desk (passnum/www/desk.py). They only carry what was typed or chosen: every rule
(code format, site, service, number of vouchers, reason) is the domain's (passnum.vouchers.redemption), whose
refusals are shown on the fields they concern."""

import uuid

from django import forms
from django.forms.utils import ErrorDict
from dsfr.forms import DsfrBaseForm

from passnum.common.money import format_euros
from passnum.common.standard import Service

# Refusals shown on a field of the form, rather than only in the summary at the top of the page.
CODE_REFUSALS = frozenset(
    {"code_malformed", "code_typo", "qr_malformed", "qr_unknown_key", "qr_bad_signature", "unknown_code"}
)
SITE_REFUSALS = frozenset({"site_required", "unknown_site"})
SERVICE_REFUSALS = frozenset({"service_not_eligible"})
COUNT_REFUSALS = frozenset({"invalid_count", "too_many_vouchers", "not_enough_vouchers"})

# A QR payload is PN1.<code>.<key id>.<signature>: about 130 characters.
MAX_RAW_CODE = 300


def service_label(code: str) -> str:
    return Service(code).label if code in Service.values else code


def new_token() -> str:
    return uuid.uuid4().hex


class CheckForm(DsfrBaseForm):
    """« Vérifier » : the code (typed, or the QR payload put there by the scanner) and, for an organisation with
    several qualified sites, the site where the session takes place."""

    code = forms.CharField(
        label="Code du chèque",
        max_length=MAX_RAW_CODE,
        help_text="Les 13 caractères imprimés sous le QR code. Les tirets et les espaces sont facultatifs.",
        error_messages={"required": "Saisissez le code du chèque, ou scannez son QR code."},
        widget=forms.TextInput(
            attrs={"autocomplete": "off", "autocapitalize": "characters", "spellcheck": "false", "autocorrect": "off"}
        ),
    )

    def __init__(self, *args, sites=(), **kwargs):
        super().__init__(*args, **kwargs)
        if len(sites) > 1:
            # Not required here: the domain refuses a missing site (site_required) with its own message.
            self.fields["site"] = forms.ChoiceField(
                label="Lieu de la séance",
                required=False,
                choices=[("", "Choisir le lieu")] + [(str(s.pk), s.name) for s in sites],
            )

    def refuse(self, refusal) -> None:
        if refusal.code in CODE_REFUSALS:
            self.add_error("code", refusal.message)
        elif refusal.code in SITE_REFUSALS and "site" in self.fields:
            self.add_error("site", refusal.message)


def _count_label(n: int, face_value_cents: int | None) -> str:
    label = f"{n} chèque{'s' if n > 1 else ''}"
    return f"{label} ({format_euros(n * face_value_cents)})" if face_value_cents else label


def _radio_select() -> forms.RadioSelect:
    """DSFR radio buttons (django-dsfr's option template is shadowed by django.forms' in INSTALLED_APPS). Set on
    the instance: a subclass would change the widget type that django-dsfr's field templates rely on."""
    widget = forms.RadioSelect()
    widget.option_template_name = "www/desk/_radio_option.html"
    return widget


class RedeemForm(DsfrBaseForm):
    """« Encaisser » : the service and the number of vouchers, with the code, the site and the idempotency token
    carried from « Vérifier » in hidden fields. `maxima` ("service=max;…") gives the default number of vouchers
    (the chosen service's maximum) without JavaScript; it is only a default: the domain enforces the maximum."""

    service = forms.ChoiceField(
        label="Service rendu pendant la séance",
        choices=Service.choices,
        widget=_radio_select(),
        error_messages={"required": "Choisissez le service rendu pendant la séance."},
    )
    count = forms.IntegerField(
        label="Nombre de chèques pour cette séance",
        required=False,
        help_text="Par défaut, le maximum prévu pour le service choisi.",
        widget=forms.Select,
        error_messages={"invalid": "Choisissez un nombre de chèques."},
    )
    code = forms.CharField(widget=forms.HiddenInput, max_length=MAX_RAW_CODE)
    site = forms.CharField(widget=forms.HiddenInput, required=False, max_length=20)
    token = forms.CharField(widget=forms.HiddenInput, max_length=64)
    maxima = forms.CharField(widget=forms.HiddenInput, required=False, max_length=500)

    @classmethod
    def for_check(cls, check, site_id=None):
        """A fresh form for a checked voucher: a new idempotency token; the only service preselected."""
        initial = {
            "code": check.voucher.code,
            "site": str(site_id or check.site.pk),
            "token": new_token(),
            "maxima": cls.encode_maxima(check.services),
        }
        if len(check.services) == 1:
            initial["service"] = check.services[0].code
            initial["count"] = check.services[0].max_vouchers
        form = cls(initial=initial)
        form.restrict(check)
        return form

    @staticmethod
    def encode_maxima(services) -> str:
        return ";".join(f"{s.code}={s.max_vouchers}" for s in services)

    def restrict(self, check) -> None:
        """Offer only what this voucher allows at this site: its eligible services, 1…max vouchers."""
        self.fields["service"].choices = [
            (s.code, f"{s.label} — {s.max_vouchers} chèque{'s' if s.max_vouchers > 1 else ''} au plus par séance")
            for s in check.services
        ]
        top = max((s.max_vouchers for s in check.services), default=1)
        face = check.voucher.face_value_cents
        self.fields["count"].widget.choices = [("", "Le maximum prévu pour le service choisi")] + [
            (str(n), _count_label(n, face)) for n in range(1, top + 1)
        ]
        self.fields["count"].widget.attrs["data-desk-count"] = "1"

    def chosen_count(self) -> int:
        """The number asked for, or the maximum of the chosen service (1 when unknown)."""
        count = self.cleaned_data.get("count")
        if count is not None:
            return count
        maxima = {}
        for part in (self.cleaned_data.get("maxima") or "").split(";"):
            name, _, value = part.partition("=")
            if value.isdigit():
                maxima[name] = int(value)
        return maxima.get(self.cleaned_data.get("service"), 1)

    def refuse(self, refusal) -> None:
        if refusal.code in SERVICE_REFUSALS:
            self.add_error("service", refusal.message)
        elif refusal.code in COUNT_REFUSALS:
            self.add_error("count", refusal.message)


class UndoForm(DsfrBaseForm):
    """« Annuler cet encaissement » : the reason, required by the domain (reason_required)."""

    reason = forms.CharField(
        label="Motif de l’annulation",
        max_length=200,
        help_text="Par exemple : erreur de service, séance non tenue. Sans donnée personnelle.",
        widget=forms.Textarea(attrs={"rows": 3}),
    )

    def refuse(self, refusal) -> None:
        """Show the domain's refusal instead of the form's own checks (the domain decides)."""
        self._errors = ErrorDict()
        self.cleaned_data = {}
        if refusal.code == "reason_required":
            self.add_error("reason", refusal.message)
