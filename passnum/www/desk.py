"""The redemption desk of a place: « Vérifier » a voucher (typed code or scanned QR code), « Encaisser » it for a
service, the receipts, and undoing one within the window. Every rule and every refusal is the domain's
(passnum.vouchers.redemption); these views only show them, in French, and change nothing when refused.

Voucher codes travel in POST bodies only (never in URLs) and are kept out of error reports."""

import datetime as dt

from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Count, Sum
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods, require_POST

from passnum.accounts.enums import OrganisationKind
from passnum.common.dates import french_date
from passnum.common.money import format_euros
from passnum.common.ratelimit import client_ip
from passnum.places.enums import QualificationStatus
from passnum.places.models import Site
from passnum.vouchers import codes
from passnum.vouchers.enums import VoucherStatus
from passnum.vouchers.redemption import (
    Desk,
    Refusal,
    can_undo,
    receipt_undo,
    receipts_of,
    redeem,
    undo_window,
    voucher_check,
)
from passnum.www.decorators import organisation_required
from passnum.www.desk_forms import (
    COUNT_REFUSALS,
    SERVICE_REFUSALS,
    CheckForm,
    RedeemForm,
    UndoForm,
    new_token,
    service_label,
)

RECEIPTS_PER_PAGE = 50
SITE_SESSION_KEY = "desk_site"


def _desk(request) -> Desk:
    return Desk(place=request.organisation, user=request.user, ip=client_ip(request))


def _qualified_sites(organisation) -> list[Site]:
    return list(
        Site.objects.filter(organisation=organisation, status=QualificationStatus.QUALIFIED).order_by("name", "pk")
    )


def _refusal_view(refusal: Refusal) -> dict:
    """What the page shows of a refusal: the domain's message, its stable code (for support) and, when the
    checks are blocked, the time from which to try again."""
    shown = {"code": refusal.code, "message": refusal.message}
    retry_after = refusal.context.get("retry_after")
    if retry_after:
        shown["retry_at"] = timezone.localtime() + dt.timedelta(seconds=int(retry_after))
    return shown


def _voucher_view(check) -> dict:
    program = check.program
    return {
        "code": check.display_code,
        "value": format_euros(check.voucher.face_value_cents),
        "program": program.name,
        "valid_from": french_date(program.valid_from),
        "valid_until": french_date(program.valid_until),
        "booklet": check.voucher.booklet.number,
        "left": check.left,
        "site": check.site.name,
    }


def _render_desk(request, *, check_form=None, check=None, redeem_form=None, refusal=None, stage="check"):
    if check is None and check_form is None:
        check_form = _check_form(request)
    return render(
        request,
        "www/desk/desk.html",
        {
            "check_form": check_form,
            "check": check,
            "voucher": _voucher_view(check) if check else None,
            "redeem_form": redeem_form,
            "refusal": _refusal_view(refusal) if refusal else None,
            "stage": stage,
        },
    )


def _check_form(request, data=None, initial=None) -> CheckForm:
    sites = _qualified_sites(request.organisation)
    initial = {"site": request.session.get(SITE_SESSION_KEY), **(initial or {})}
    return CheckForm(data, sites=sites, initial=initial)


@organisation_required(OrganisationKind.PLACE)
@sensitive_post_parameters("code")
@require_http_methods(["GET", "POST"])
def desk(request):
    """GET: the « Vérifier » form. POST action=check: the voucher and the « Encaisser » form, or the refusal.
    POST action=redeem: redeem, then the receipt (POST/redirect/GET); a resubmitted form (same token) lands on
    the same receipt."""
    if request.method == "POST" and request.POST.get("action") == "redeem":
        return _redeem(request)
    if request.method != "POST":
        return _render_desk(request)
    form = _check_form(request, request.POST)
    if not form.is_valid():
        return _render_desk(request, check_form=form)
    site_id = form.cleaned_data.get("site") or None
    try:
        check = voucher_check(raw_code=form.cleaned_data["code"], desk=_desk(request), site_id=site_id)
    except Refusal as refusal:
        form.refuse(refusal)
        return _render_desk(request, check_form=form, refusal=refusal)
    if site_id:
        request.session[SITE_SESSION_KEY] = str(site_id)
    return _render_desk(request, check=check, redeem_form=RedeemForm.for_check(check, site_id))


def _redeem(request):
    form = RedeemForm(request.POST)
    if not form.is_valid():
        # A missing service (or a damaged hidden field): show the voucher and the form again.
        return _recheck(request, form)
    data = form.cleaned_data
    try:
        receipt = redeem(
            raw_code=data["code"],
            desk=_desk(request),
            service=data["service"],
            count=form.chosen_count(),
            site_id=data["site"] or None,
            idempotency_key=data["token"],
        )
    except Refusal as refusal:
        if refusal.code in SERVICE_REFUSALS | COUNT_REFUSALS:
            return _recheck(request, form, refusal)
        return _render_desk(
            request,
            check_form=_check_form(request, initial={"code": _shown_code(data["code"])}),
            refusal=refusal,
            stage="redeem",
        )
    if receipt.replayed:
        messages.info(request, "Cet encaissement était déjà enregistré : voici son reçu.")
    else:
        messages.success(
            request,
            f"Encaissement enregistré : {receipt.count} chèque{'s' if receipt.count > 1 else ''}, "
            f"{format_euros(receipt.amount_cents)}.",
        )
    return redirect("www:desk_receipt", pk=receipt.pk)


def _shown_code(value: str) -> str:
    """The code carried by the form, as printed (to check it again), or nothing if it is not a code."""
    try:
        return codes.display(codes.normalise(value))
    except (codes.CodeFormatError, codes.CodeChecksumError):
        return ""


def _recheck(request, form: RedeemForm, refusal: Refusal | None = None):
    """The « Encaisser » form again, for the same voucher, with what was chosen and what is wrong with it, and a
    new token (nothing was redeemed). If the voucher itself is now refused, that refusal is shown instead."""
    raw_code = form.data.get("code", "")
    site_id = form.data.get("site") or None
    try:
        check = voucher_check(raw_code=raw_code, desk=_desk(request), site_id=site_id)
    except Refusal as check_refusal:
        return _render_desk(request, refusal=check_refusal, stage="redeem")
    data = form.data.copy()
    data["token"] = new_token()
    data["maxima"] = RedeemForm.encode_maxima(check.services)
    again = RedeemForm(data)
    again.is_valid()
    if refusal is not None:
        again.refuse(refusal)
    again.restrict(check)
    return _render_desk(request, check=check, redeem_form=again, refusal=refusal, stage="redeem")


def _receipt_or_404(request, pk):
    return get_object_or_404(
        receipts_of(place=request.organisation).select_related("redeemed_by", "undone_by"),
        pk=pk,
    )


def _render_receipt(request, receipt, *, undo_form=None, refusal=None):
    redemptions = list(receipt.redemptions.select_related("voucher").order_by("voucher__position", "pk"))
    undoable = can_undo(receipt) and all(
        r.voucher.status == VoucherStatus.REDEEMED for r in redemptions if r.undone_at is None
    )
    return render(
        request,
        "www/desk/receipt.html",
        {
            "receipt": receipt,
            "program": receipt.booklet.program,
            "service_label": service_label(receipt.service),
            "amount": format_euros(receipt.amount_cents),
            "vouchers": [
                {"code": codes.display(r.voucher.code), "amount": format_euros(r.amount_cents)} for r in redemptions
            ],
            "undoable": undoable,
            "undo_until": receipt.redeemed_at + undo_window(),
            "undo_form": undo_form or UndoForm(),
            "refusal": _refusal_view(refusal) if refusal else None,
        },
    )


@organisation_required(OrganisationKind.PLACE)
@require_http_methods(["GET"])
def receipt_detail(request, pk):
    return _render_receipt(request, _receipt_or_404(request, pk))


@organisation_required(OrganisationKind.PLACE)
@require_POST
def receipt_undo_view(request, pk):
    """Undo within the window: the vouchers are usable again. Refusals are shown on the receipt page."""
    receipt = _receipt_or_404(request, pk)
    form = UndoForm(request.POST)
    try:
        receipt = receipt_undo(receipt=receipt, reason=form.data.get("reason", ""), desk=_desk(request))
    except Refusal as refusal:
        form.refuse(refusal)
        return _render_receipt(request, _receipt_or_404(request, pk), undo_form=form, refusal=refusal)
    messages.success(
        request,
        f"Encaissement annulé : {receipt.count} chèque{'s' if receipt.count > 1 else ''} "
        f"de nouveau utilisable{'s' if receipt.count > 1 else ''}.",
    )
    return redirect("www:desk_receipt", pk=receipt.pk)


@organisation_required(OrganisationKind.PLACE)
@require_http_methods(["GET"])
def receipts(request):
    """The organisation's receipts, newest first, 50 a page, and the totals of the day."""
    mine = receipts_of(place=request.organisation).order_by("-redeemed_at", "-pk")
    page = Paginator(mine, RECEIPTS_PER_PAGE).get_page(request.GET.get("page"))
    for receipt in page.object_list:
        receipt.service_label = service_label(receipt.service)
        receipt.amount = format_euros(receipt.amount_cents)
    midnight = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
    today = mine.filter(redeemed_at__gte=midnight)
    totals = today.filter(undone_at__isnull=True).aggregate(
        receipts=Count("id"), vouchers=Sum("count"), amount=Sum("amount_cents")
    )
    return render(
        request,
        "www/desk/receipts.html",
        {
            "page": page,
            "today": {
                "receipts": totals["receipts"] or 0,
                "vouchers": totals["vouchers"] or 0,
                "amount": format_euros(totals["amount"] or 0),
                "undone": today.filter(undone_at__isnull=False).count(),
                "date": midnight.date(),
            },
        },
    )
