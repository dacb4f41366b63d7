"""The digital pass: the person's wallet page, and the distributor's pages to send and revoke its link.

The wallet (`/pass/<token>/`) needs no login: the token in the link is the credential. It shows the program, its
validity, what is left, and every voucher with its code and signed QR code; nothing about the person or the
distributor. Its responses are never cached, send no Referer (the token is in the address) and are not indexed.
Lookups of unknown or revoked tokens are limited per client address; past the limit, every lookup from that
address is refused until the window ends, so that guessing cannot go on (a hit would otherwise stand out)."""

import datetime as dt
import math
import time
from dataclasses import dataclass

import segno
from django import forms
from django.contrib import messages
from django.core.cache import cache
from django.db.models import Count, Q
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.crypto import salted_hmac
from django.utils.html import escape
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from passnum.accounts.enums import OrganisationKind
from passnum.common.dates import french_date
from passnum.common.errors import DomainError
from passnum.common.ratelimit import client_ip, hit
from passnum.common.standard import Service
from passnum.nudges.services import reminders_opt_out
from passnum.vouchers import codes, digital, signing
from passnum.vouchers.enums import VoucherStatus
from passnum.vouchers.models import Booklet, Voucher
from passnum.www.decorators import organisation_required
from passnum.www.forms import PassnumForm

S = VoucherStatus
WALLET_RATE = (10, 5 * 60)  # unknown or revoked links per client address, per window of seconds
WALLET_HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer", "X-Robots-Tag": "noindex, nofollow"}
QR_SCALE = 4  # pixels per module: a version 8 code (the usual payload) is 228 px wide, quiet zone included


# --- the wallet ----------------------------------------------------------------------------------------------


@dataclass
class WalletVoucher:
    position: int
    code: str  # as displayed: 7KQ4-M2XD-9FTB-P
    status: str
    state: str  # "usable", "used", "over" (expired, cancelled), "pending" (not handed out)
    label: str
    qr_svg: str = ""


def qr_svg(code: str) -> str:
    """The voucher's signed payload as an inline SVG QR code, named for screen readers."""
    svg = segno.make(signing.sign_code(code), error="m").svg_inline(scale=QR_SCALE, dark="#000", light="#fff")
    label = escape(f"QR code du chèque {codes.display(code)}")
    return mark_safe(svg.replace("<svg ", f'<svg role="img" aria-label="{label}" focusable="false" ', 1))  # noqa: S308


def _voucher_row(voucher: Voucher) -> WalletVoucher:
    display = codes.display(voucher.code)
    if voucher.status == S.DISTRIBUTED:
        return WalletVoucher(voucher.position, display, voucher.status, "usable", "Utilisable", qr_svg(voucher.code))
    if voucher.status in (S.REDEEMED, S.CLAIMED, S.PAID):
        when = timezone.localtime(voucher.redeemed_at).date() if voucher.redeemed_at else None
        label = f"Utilisé le {french_date(when)}" if when else "Utilisé"
        return WalletVoucher(voucher.position, display, voucher.status, "used", label)
    if voucher.status == S.EXPIRED:
        return WalletVoucher(voucher.position, display, voucher.status, "over", "Expiré")
    if voucher.status == S.CANCELLED:
        return WalletVoucher(voucher.position, display, voucher.status, "over", "Annulé")
    return WalletVoucher(voucher.position, display, voucher.status, "pending", "Pas encore utilisable")


def _period(program, today: dt.date) -> tuple[str, dt.date]:
    grace_until = program.valid_until + dt.timedelta(days=program.grace_days)
    if today < program.valid_from:
        return "upcoming", grace_until
    if today <= program.valid_until:
        return "valid", grace_until
    if today <= grace_until:
        return "grace", grace_until
    return "over", grace_until


def _blocked_key(ip: str) -> str:
    return "wallet-blocked:" + salted_hmac("passnum.www.wallet", ip, algorithm="sha256").hexdigest()[:32]


def _wallet_response(request, template, context, status):
    response = render(request, template, context, status=status)
    for header, value in WALLET_HEADERS.items():
        response[header] = value
    return response


def _refused(request, until: float):
    retry_after = max(1, math.ceil(until - time.time()))
    response = _wallet_response(
        request,
        "www/wallet/blocked.html",
        {"blocked_minutes": -(-retry_after // 60), "rate_limit": WALLET_RATE[0], "window": WALLET_RATE[1] // 60},
        429,
    )
    response["Retry-After"] = str(retry_after)
    return response


def _pass_or_refusal(request, token):
    """(the active pass, None), or (None, the 404 or 429 response): unknown or revoked links count against the
    client address, whatever the method."""
    ip = client_ip(request)
    blocked_until = cache.get(_blocked_key(ip))
    if blocked_until and blocked_until > time.time():
        return None, _refused(request, blocked_until)
    digital_pass = digital.digital_pass_get(token=token)
    if digital_pass is None:
        limit, window = WALLET_RATE
        verdict = hit("wallet", ip, limit=limit, window=window)
        if not verdict.allowed:
            until = time.time() + verdict.retry_after
            cache.set(_blocked_key(ip), until, timeout=verdict.retry_after + 1)
            return None, _refused(request, until)
        return None, _wallet_response(request, "www/wallet/invalid.html", {}, 404)
    return digital_pass, None


@require_GET
def wallet(request, token):
    """Anyone holding the link. Unknown or revoked link: 404; too many of those from one address: 429."""
    digital_pass, refusal = _pass_or_refusal(request, token)
    if refusal is not None:
        return refusal

    booklet = digital_pass.booklet
    program = booklet.program
    vouchers = [
        _voucher_row(v)
        for v in Voucher.objects.filter(booklet=booklet)
        .only("code", "status", "position", "redeemed_at", "booklet_id")
        .order_by("position")
    ]
    left = sum(1 for v in vouchers if v.state == "usable")
    period, grace_until = _period(program, timezone.localdate())
    services = [Service(s) for s in program.eligible_services if s in Service.values]
    context = {
        "program": program,
        "vouchers": vouchers,
        "left": left,
        "total": len(vouchers),
        "value_left_cents": left * program.face_value_cents,
        "period": period,
        "grace_until": grace_until,
        "services": services,
        "reminders_on": bool(digital_pass.reminder_contact),
        "opt_out_url": reverse("www:nudges_wallet_opt_out", args=[token]),
    }
    return _wallet_response(request, "www/wallet/wallet.html", context, 200)


# The confirmation page posts its form to our own site: it must send its Origin, which a "no-referrer" page does
# not (browsers send "Origin: null", and the CSRF check refuses it). "same-origin" still sends nothing elsewhere.
OPT_OUT_HEADERS = {**WALLET_HEADERS, "Referrer-Policy": "same-origin"}


@require_http_methods(["GET", "POST"])
def wallet_reminders_stop(request, token):
    """Anyone holding the link: GET asks to confirm, POST (CSRF-protected) stops every reminder, nudge or expiry.
    The contact is erased at once (passnum.nudges.services.reminders_opt_out); doing it twice is harmless.
    Unknown or revoked link: 404, counted like the wallet's."""
    digital_pass, refusal = _pass_or_refusal(request, token)
    if refusal is not None:
        return refusal
    if request.method == "POST":
        reminders_opt_out(digital_pass=digital_pass)
        messages.success(request, "C’est noté : vous ne recevrez plus de rappels.")
        response = redirect("www:wallet", token=token)
        for header, value in WALLET_HEADERS.items():
            response[header] = value
        return response
    context = {
        "program": digital_pass.booklet.program,
        "reminders_on": bool(digital_pass.reminder_contact),
        "wallet_url": reverse("www:wallet", args=[token]),
    }
    response = render(request, "www/wallet/reminders_stop.html", context)
    for header, value in OPT_OUT_HEADERS.items():
        response[header] = value
    return response


# --- the distributor's pages ---------------------------------------------------------------------------------


class SendForm(PassnumForm):
    phone = forms.CharField(
        label="Numéro de portable",
        max_length=30,
        required=False,
        help_text="Un portable français, par exemple 06 12 34 56 78. Il n’est pas conservé.",
        widget=forms.TextInput(attrs={"type": "tel", "inputmode": "tel", "autocomplete": "off"}),
    )
    email = forms.CharField(
        label="Adresse électronique",
        max_length=254,
        required=False,
        help_text="Par exemple : prenom.nom@exemple.fr. Elle n’est pas conservée.",
        widget=forms.EmailInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )
    consent = forms.BooleanField(
        label="La personne accepte de recevoir ce lien",
        error_messages={"required": "Le lien ne peut être envoyé qu’avec l’accord de la personne."},
    )
    reminders = forms.BooleanField(
        label="La personne accepte un rappel avant la fin de validité (30 et 15 jours avant)",
        help_text="Son numéro ou son adresse est alors conservé chiffré jusqu’au rappel, puis effacé.",
        required=False,
    )

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
        if self.has_error("phone") or self.has_error("email"):
            return data
        if not (data.get("phone") or "").strip() and not (data.get("email") or "").strip():
            raise forms.ValidationError("Indiquez un numéro de portable, une adresse électronique, ou les deux.")
        return data


class RevokeForm(PassnumForm):
    reason = forms.CharField(
        label="Motif de la révocation",
        max_length=200,
        help_text="Par exemple : téléphone perdu. N’écrivez ni nom ni information sur la personne.",
        error_messages={"required": "Indiquez le motif de la révocation."},
    )


def _booklet_or_404(request, pk) -> Booklet:
    """A booklet of the distributor the user acts for; any other is a 404 (outsiders learn nothing)."""
    booklet = Booklet.objects.select_related("program").filter(pk=pk, distributor=request.organisation).first()
    if booklet is None:
        raise Http404
    return booklet


def _digital_pass_page(request, booklet, *, send_form=None, revoke_form=None, status=200):
    current = digital.digital_pass_current(booklet=booklet)
    counts = Voucher.objects.filter(booklet=booklet).aggregate(
        total=Count("id"), left=Count("id", filter=Q(status=S.DISTRIBUTED))
    )
    context = {
        "booklet": booklet,
        "program": booklet.program,
        "current": current,
        "history": [p for p in digital.digital_pass_history(booklet=booklet) if p.revoked_at is not None],
        "send_form": send_form or SendForm(),
        "revoke_form": revoke_form or RevokeForm(),
        "counts": counts,
    }
    return render(request, "www/wallet/send.html", context, status=status)


@organisation_required(OrganisationKind.DISTRIBUTOR)
@require_http_methods(["GET", "POST"])
def digital_pass_send(request, pk):
    """Members of the booklet's distributor: send the booklet's link (handing it out if still in stock)."""
    booklet = _booklet_or_404(request, pk)
    if request.method != "POST":
        return _digital_pass_page(request, booklet)
    form = SendForm(request.POST)
    if form.is_valid():
        try:
            digital_pass = digital.digital_pass_send(
                booklet=booklet,
                phone=form.cleaned_data["phone"],
                email=form.cleaned_data["email"],
                actor=request.user,
                organisation=request.organisation,
                consent_reminders=form.cleaned_data["reminders"],
            )
        except DomainError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, exc.message)
        else:
            how = {"sms": "par SMS", "email": "par courriel", "both": "par SMS et par courriel"}[digital_pass.channel]
            messages.success(request, f"Lien du pass numérique envoyé {how} à {digital_pass.recipient_hint}.")
            return redirect("www:digital_pass_send", pk=booklet.pk)
    return _digital_pass_page(request, booklet, send_form=form)


@organisation_required(OrganisationKind.DISTRIBUTOR)
@require_POST
def digital_pass_revoke(request, pk):
    """Members of the booklet's distributor: revoke the active link (lost phone, wrong number…)."""
    booklet = _booklet_or_404(request, pk)
    form = RevokeForm(request.POST)
    if form.is_valid():
        try:
            digital.digital_pass_revoke(
                booklet=booklet,
                reason=form.cleaned_data["reason"],
                actor=request.user,
                organisation=request.organisation,
            )
        except DomainError as exc:
            form.add_error("reason" if exc.field == "reason" else None, exc.message)
        else:
            messages.success(request, "Lien révoqué : il ne fonctionne plus. Vous pouvez en envoyer un nouveau.")
            return redirect("www:digital_pass_send", pk=booklet.pk)
    return _digital_pass_page(request, booklet, revoke_form=form)
