"""A funder's settlement pages: the settlement runs and their claims, bulk approval, line rejection (which opens
a finance incident), incidents and their closing, payment files (generate, download), marking a claim paid by
hand and importing a bank statement.

Who: members of a funder read everything here; only its admins and finance users (perms.can_manage_finance)
act — anyone else gets 403 and nothing changes. Another organisation's claim, line, incident or payment file is
a 404. Every rule is the settlement services'; a refusal is shown in French and changes nothing."""

from urllib.parse import urlencode

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Count, Sum
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from passnum.accounts import perms
from passnum.accounts.enums import OrganisationKind
from passnum.common.errors import DomainError, NotFound
from passnum.common.money import format_euros
from passnum.places.enums import BankAccountStatus
from passnum.places.models import BankAccount as PlaceBankAccount
from passnum.places.selectors import bank_accounts_to_review
from passnum.settlement.enums import ClaimStatus, IncidentStatus, LineStatus
from passnum.settlement.models import BankAccount, Claim, ClaimLine, FinanceIncident, PaymentFile, SettlementRun
from passnum.settlement.payments import (
    OUTCOME_LABELS,
    Outcome,
    bank_statement_import,
    claims_missing_bank_details,
    payment_file_create,
)
from passnum.settlement.services import (
    claim_line_reject,
    claim_mark_paid,
    claims_approve,
    claims_for_funder,
    incident_close,
)
from passnum.vouchers import codes
from passnum.www.decorators import organisation_required
from passnum.www.desk_forms import service_label
from passnum.www.finance_forms import (
    ClaimFilterForm,
    IncidentCloseForm,
    LineRejectForm,
    MarkPaidForm,
    PaymentFileForm,
    StatementImportForm,
)

RUNS_PER_PAGE = 20
CLAIMS_PER_PAGE = 50
LINES_PER_PAGE = 50
INCIDENTS_PER_PAGE = 50
FILES_PER_PAGE = 20
MAX_BULK = 500

STATUS_ORDER = [
    ClaimStatus.SUBMITTED,
    ClaimStatus.APPROVED,
    ClaimStatus.IN_PAYMENT,
    ClaimStatus.PAID,
    ClaimStatus.REJECTED,
]
STATUS_SHORT = {
    ClaimStatus.SUBMITTED: "À valider",
    ClaimStatus.APPROVED: "Validées",
    ClaimStatus.IN_PAYMENT: "Virement préparé",
    ClaimStatus.PAID: "Payées",
    ClaimStatus.REJECTED: "Rejetées",
}
STATUS_BADGE = {
    ClaimStatus.SUBMITTED: "new",
    ClaimStatus.APPROVED: "info",
    ClaimStatus.IN_PAYMENT: "info",
    ClaimStatus.PAID: "success",
    ClaimStatus.REJECTED: "error",
}
INCIDENT_FILTERS = {"ouverts": "Ouverts", "clos": "Clos", "tous": "Tous"}

finance_page = organisation_required(OrganisationKind.FUNDER)


def _can_manage(request) -> bool:
    return perms.can_manage_finance(request.user, request.organisation)


def _require_manager(request) -> None:
    if not _can_manage(request):
        raise PermissionDenied


def _claim_or_404(request, pk) -> Claim:
    return get_object_or_404(claims_for_funder(request.organisation).select_related("payment_file"), pk=pk)


def _decorate_claim(claim: Claim) -> Claim:
    claim.badge = STATUS_BADGE.get(claim.status, "info")
    claim.claimed = format_euros(claim.claimed_cents)
    claim.rejected = format_euros(claim.rejected_cents)
    claim.payable = format_euros(claim.payable_cents)
    return claim


def _page_number(value) -> str:
    return value if isinstance(value, str) and value.isdigit() and len(value) < 7 else "1"


# --- overview -------------------------------------------------------------------------------------------


@finance_page
@require_GET
def overview(request):
    """The settlement runs in which this funder has claims, newest first, with its claims by status."""
    funder = request.organisation
    runs = SettlementRun.objects.filter(claims__funder=funder).distinct().order_by("-cutoff")
    page = Paginator(runs, RUNS_PER_PAGE).get_page(_page_number(request.GET.get("page")))
    rows = (
        Claim.objects.filter(funder=funder, run__in=[r.pk for r in page.object_list])
        .values("run_id", "status")
        .annotate(n=Count("id"), claimed=Sum("claimed_cents"), rejected=Sum("rejected_cents"))
    )
    cells: dict[int, dict[str, dict]] = {}
    for row in rows:
        cells.setdefault(row["run_id"], {})[row["status"]] = row
    claims_url = reverse("www:finance_claims")
    table = []
    for run in page.object_list:
        by_status = cells.get(run.pk, {})
        table.append(
            {
                "run": run,
                "url": f"{claims_url}?{urlencode({'run': run.pk})}",
                "cells": [
                    {
                        "status": status,
                        "label": STATUS_SHORT[status],
                        "count": by_status.get(status, {}).get("n", 0),
                        "amount": format_euros(
                            (by_status.get(status, {}).get("claimed") or 0)
                            - (by_status.get(status, {}).get("rejected") or 0)
                        ),
                        "url": f"{claims_url}?{urlencode({'run': run.pk, 'status': status})}",
                    }
                    for status in STATUS_ORDER
                ],
                "total": format_euros(sum((c["claimed"] or 0) - (c["rejected"] or 0) for c in by_status.values())),
            }
        )
    to_approve = Claim.objects.filter(funder=funder, status=ClaimStatus.SUBMITTED).aggregate(
        n=Count("id"), claimed=Sum("claimed_cents"), rejected=Sum("rejected_cents")
    )
    return render(
        request,
        "www/finance/overview.html",
        {
            "page": page,
            "table": table,
            "statuses": [STATUS_SHORT[s] for s in STATUS_ORDER],
            "to_approve": {
                "count": to_approve["n"] or 0,
                "amount": format_euros((to_approve["claimed"] or 0) - (to_approve["rejected"] or 0)),
                "url": f"{claims_url}?{urlencode({'status': ClaimStatus.SUBMITTED})}",
            },
            "open_incidents": FinanceIncident.objects.filter(claim__funder=funder, status=IncidentStatus.OPEN).count(),
            "to_pay": Claim.objects.filter(
                funder=funder, status=ClaimStatus.APPROVED, payment_file__isnull=True
            ).count(),
            "can_manage": _can_manage(request),
        },
    )


# --- claims ---------------------------------------------------------------------------------------------


def _filters(request, funder):
    runs = list(SettlementRun.objects.filter(claims__funder=funder).distinct().order_by("-cutoff")[:200])
    form = ClaimFilterForm(request.GET or None, runs=runs)
    chosen = {"run": None, "status": ""}
    if form.is_bound:
        form.is_valid()
        chosen["run"] = form.cleaned_data.get("run")
        chosen["status"] = form.cleaned_data.get("status") or ""
    return form, chosen


def _list_query(chosen: dict, page=None) -> str:
    params = {k: v for k, v in (("run", chosen.get("run")), ("status", chosen.get("status"))) if v}
    if page and str(page) != "1":
        params["page"] = page
    return urlencode(params)


@finance_page
@require_http_methods(["GET", "POST"])
def claims(request):
    """GET: the funder's claims (filter by run and status, 50 a page). POST: approve the ticked claims (finance
    users and admins only); one refused claim refuses the whole batch."""
    funder = request.organisation
    if request.method == "POST":
        return _claims_approve(request, funder)
    form, chosen = _filters(request, funder)
    qs = claims_for_funder(funder).select_related("payment_file").order_by("-run__cutoff", "place__name", "pk")
    if chosen["run"]:
        qs = qs.filter(run_id=chosen["run"])
    if chosen["status"]:
        qs = qs.filter(status=chosen["status"])
    page = Paginator(qs, CLAIMS_PER_PAGE).get_page(_page_number(request.GET.get("page")))
    for claim in page.object_list:
        _decorate_claim(claim)
    can_manage = _can_manage(request)
    return render(
        request,
        "www/finance/claims.html",
        {
            "form": form,
            "page": page,
            "query": _list_query(chosen),
            "page_query": _list_query(chosen, page.number),
            "can_manage": can_manage,
            "approvable": can_manage and any(c.status == ClaimStatus.SUBMITTED for c in page.object_list),
            "filtered": bool(chosen["run"] or chosen["status"]),
        },
    )


def _claims_approve(request, funder):
    _require_manager(request)
    back = reverse("www:finance_claims")
    query = _list_query(
        {
            "run": request.GET.get("run") if (request.GET.get("run") or "").isdigit() else None,
            "status": request.GET.get("status") if request.GET.get("status") in ClaimStatus.values else "",
        },
        _page_number(request.GET.get("page")),
    )
    if query:
        back = f"{back}?{query}"
    raw = request.POST.getlist("claims")
    if not raw:
        messages.error(request, "Cochez au moins une demande à valider : aucune demande n’a été validée.")
        return redirect(back)
    if len(raw) > MAX_BULK or not all(v.isdigit() and len(v) < 12 for v in raw):
        messages.error(request, "Une des demandes cochées est introuvable : aucune demande n’a été validée.")
        return redirect(back)
    ids = {int(v) for v in raw}
    chosen = list(claims_for_funder(funder).filter(pk__in=ids))
    if len(chosen) != len(ids):
        messages.error(request, "Une des demandes cochées est introuvable : aucune demande n’a été validée.")
        return redirect(back)
    try:
        count = claims_approve(claims=chosen, funder=funder, actor=request.user)
    except DomainError as exc:
        messages.error(request, f"{exc.message} Aucune demande n’a été validée.")
        return redirect(back)
    total = sum(c.payable_cents for c in chosen)
    plural = "s" if count > 1 else ""
    messages.success(request, f"{count} demande{plural} validée{plural}, {format_euros(total)} à payer.")
    return redirect(back)


@finance_page
@require_GET
def claim_detail(request, pk):
    """One claim: its lines (50 a page) with « Rejeter » while it awaits approval, its incidents, and « Marquer
    payée » once approved."""
    claim = _decorate_claim(_claim_or_404(request, pk))
    return _render_claim(request, claim)


def _render_claim(request, claim, *, paid_form=None, status=200):
    lines = claim.lines.select_related("voucher__program", "incident").order_by("redeemed_at", "pk")
    page = Paginator(lines, LINES_PER_PAGE).get_page(_page_number(request.GET.get("page")))
    can_manage = _can_manage(request)
    rejectable = can_manage and claim.status == ClaimStatus.SUBMITTED
    for line in page.object_list:
        line.code = codes.display(line.voucher.code)
        line.service_label = service_label(line.service)
        line.amount = format_euros(line.amount_cents)
        line.rejectable = rejectable and line.status == LineStatus.CLAIMED
    incidents = list(claim.incidents.select_related("line__voucher").order_by("-opened_at", "-pk")[:100])
    for incident in incidents:
        incident.code = codes.display(incident.line.voucher.code)
        incident.amount = format_euros(incident.line.amount_cents)
    return render(
        request,
        "www/finance/claim_detail.html",
        {
            "claim": claim,
            "page": page,
            "incidents": incidents,
            "can_manage": can_manage,
            # A refused « Marquer payée » is shown with its form, whatever the claim's status.
            "can_mark_paid": can_manage
            and (
                claim.status in (ClaimStatus.APPROVED, ClaimStatus.IN_PAYMENT) or bool(paid_form and paid_form.errors)
            ),
            "paid_form": paid_form or MarkPaidForm(),
            "rejectable": rejectable,
        },
        status=status,
    )


@finance_page
@require_http_methods(["GET", "POST"])
def line_reject(request, pk, line_pk):
    """Finance users and admins: the reason (GET), then reject the line (POST). The claim must await approval."""
    claim = _claim_or_404(request, pk)
    line = get_object_or_404(ClaimLine.objects.select_related("voucher__program"), pk=line_pk, claim=claim)
    _require_manager(request)
    if claim.status != ClaimStatus.SUBMITTED or line.status != LineStatus.CLAIMED:
        messages.info(
            request,
            "Cette ligne ne peut plus être rejetée : la demande est déjà validée ou la ligne déjà rejetée.",
        )
        return redirect("www:finance_claim", pk=claim.pk)
    form = LineRejectForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            claim_line_reject(
                line=line, funder=request.organisation, reason=form.cleaned_data["reason"], actor=request.user
            )
        except DomainError as exc:
            form.add_error("reason" if exc.field == "reason" else None, exc.message)
        else:
            messages.success(
                request,
                f"Ligne rejetée : {format_euros(line.amount_cents)} retirés de la demande {claim.reference}. "
                f"Un incident est ouvert.",
            )
            return redirect("www:finance_claim", pk=claim.pk)
    return render(
        request,
        "www/finance/line_reject.html",
        {
            "claim": claim,
            "line": line,
            "code": codes.display(line.voucher.code),
            "service": service_label(line.service),
            "amount": format_euros(line.amount_cents),
            "form": form,
        },
    )


@finance_page
@require_POST
def claim_paid(request, pk):
    """Finance users and admins: record that the claim was paid (by a transfer made outside the platform)."""
    claim = _decorate_claim(_claim_or_404(request, pk))
    _require_manager(request)
    form = MarkPaidForm(request.POST)
    if not form.is_valid():
        return _render_claim(request, claim, paid_form=form)
    was_paid = claim.status == ClaimStatus.PAID
    try:
        claim = claim_mark_paid(
            claim=claim, funder=request.organisation, actor=request.user, reference=form.cleaned_data["reference"]
        )
    except NotFound as exc:
        raise Http404 from exc
    except DomainError as exc:
        form.add_error(None, exc.message)
        return _render_claim(request, claim, paid_form=form)
    if was_paid:
        messages.info(request, f"La demande {claim.reference} était déjà payée : rien n’a changé.")
    else:
        messages.success(
            request, f"Demande {claim.reference} marquée payée : {format_euros(claim.payable_cents)} au lieu."
        )
    return redirect("www:finance_claim", pk=claim.pk)


# --- incidents ------------------------------------------------------------------------------------------


@finance_page
@require_GET
def incidents(request):
    """The finance incidents of this funder's claims: open first by default."""
    state = request.GET.get("etat") if request.GET.get("etat") in INCIDENT_FILTERS else "ouverts"
    qs = FinanceIncident.objects.filter(claim__funder=request.organisation).select_related(
        "claim__place", "line__voucher"
    )
    if state == "ouverts":
        qs = qs.filter(status=IncidentStatus.OPEN)
    elif state == "clos":
        qs = qs.exclude(status=IncidentStatus.OPEN)
    page = Paginator(qs.order_by("-opened_at", "-pk"), INCIDENTS_PER_PAGE).get_page(
        _page_number(request.GET.get("page"))
    )
    for incident in page.object_list:
        incident.code = codes.display(incident.line.voucher.code)
        incident.amount = format_euros(incident.line.amount_cents)
    return render(
        request,
        "www/finance/incidents.html",
        {
            "page": page,
            "state": state,
            "filters": [
                {"key": key, "label": label, "url": f"?{urlencode({'etat': key})}", "current": key == state}
                for key, label in INCIDENT_FILTERS.items()
            ],
            "state_query": urlencode({"etat": state}),
        },
    )


@finance_page
@require_http_methods(["GET", "POST"])
def incident_detail(request, pk):
    """One incident; finance users and admins close an open one (reinstate the line or confirm the rejection)."""
    incident = get_object_or_404(
        FinanceIncident.objects.select_related("claim__place", "claim__run", "line__voucher__program"),
        pk=pk,
        claim__funder=request.organisation,
    )
    can_manage = _can_manage(request)
    form = IncidentCloseForm(request.POST or None)
    if request.method == "POST":
        _require_manager(request)
        if incident.status != IncidentStatus.OPEN:
            messages.info(request, "Cet incident est déjà clos : rien n’a changé.")
            return redirect("www:finance_incident", pk=incident.pk)
        if form.is_valid():
            try:
                incident_close(
                    incident=incident,
                    outcome=form.cleaned_data["outcome"],
                    resolution=form.cleaned_data["resolution"],
                    actor=request.user,
                )
            except DomainError as exc:
                form.add_error(exc.field if exc.field in form.fields else None, exc.message)
            else:
                incident.refresh_from_db()
                messages.success(request, f"Incident clos : {incident.get_status_display()}.")
                return redirect("www:finance_incident", pk=incident.pk)
    return render(
        request,
        "www/finance/incident_detail.html",
        {
            "incident": incident,
            "code": codes.display(incident.line.voucher.code),
            "amount": format_euros(incident.line.amount_cents),
            "service": service_label(incident.line.service),
            "form": form,
            "can_close": can_manage and incident.status == IncidentStatus.OPEN,
        },
    )


# --- payment files --------------------------------------------------------------------------------------


def _debtor_account(funder):
    return BankAccount.objects.filter(organisation=funder).first()


def _payment_context(request, *, forms=None):
    funder = request.organisation
    pending = (
        Claim.objects.filter(funder=funder, status=ClaimStatus.APPROVED, payment_file__isnull=True)
        .values("run_id", "run__cutoff")
        .annotate(n=Count("id"), claimed=Sum("claimed_cents"), rejected=Sum("rejected_cents"))
        .order_by("-run__cutoff")
    )
    forms = forms or {}
    runs = [
        {
            "pk": row["run_id"],
            "cutoff": row["run__cutoff"],
            "count": row["n"],
            "amount": format_euros((row["claimed"] or 0) - (row["rejected"] or 0)),
            "form": forms.get(row["run_id"]) or PaymentFileForm(prefix=f"arrete-{row['run_id']}"),
        }
        for row in pending[:50]
    ]
    files = PaymentFile.objects.filter(funder=funder).select_related("run").order_by("-created_at", "-pk")
    page = Paginator(files, FILES_PER_PAGE).get_page(_page_number(request.GET.get("page")))
    for f in page.object_list:
        f.total = format_euros(f.total_cents)
    return {
        "runs": runs,
        "page": page,
        "missing": _places_missing_bank_details(funder),
        "can_review_bank": perms.is_admin(request.user, funder),  # places.review_bank is for admins
        "debtor": _debtor_account(funder),
        "can_manage": _can_manage(request),
        "can_edit_bank": perms.can_edit_bank_account(request.user, funder),
    }


def _places_missing_bank_details(funder):
    """Places this funder owes (approved claims, no payment file yet) that have no bank details to pay to."""
    runs = SettlementRun.objects.filter(
        claims__funder=funder, claims__status=ClaimStatus.APPROVED, claims__payment_file__isnull=True
    ).distinct()
    places: dict[int, dict] = {}
    for run in runs[:50]:
        for claim in claims_missing_bank_details(run, funder):
            row = places.setdefault(claim.place_id, {"name": claim.place.name, "count": 0, "cents": 0})
            row["count"] += 1
            row["cents"] += claim.payable_cents
    pending = {
        a.organisation_id: a
        for a in PlaceBankAccount.objects.filter(organisation_id__in=list(places), status=BankAccountStatus.PENDING)
    }
    reviewable = set(
        bank_accounts_to_review(organisation=funder)
        .filter(organisation_id__in=list(places))
        .values_list("pk", flat=True)
    )
    rows = []
    for place_id, row in sorted(places.items(), key=lambda item: item[1]["name"]):
        account = pending.get(place_id)
        row["amount"] = format_euros(row.pop("cents"))
        row["pending"] = account is not None
        row["review_pk"] = account.pk if account is not None and account.pk in reviewable else None
        rows.append(row)
    return rows


@finance_page
@require_GET
def payment_files(request):
    """Runs with approved claims to pay (and « Générer le fichier de virements »), the files already made, and
    the places that cannot be paid yet for lack of bank details."""
    return render(request, "www/finance/payment_files.html", _payment_context(request))


@finance_page
@require_POST
def payment_file_generate(request, run_pk):
    """Finance users and admins: write the SEPA credit-transfer file of this funder's approved claims of a run."""
    _require_manager(request)
    run = get_object_or_404(SettlementRun, pk=run_pk)
    if not Claim.objects.filter(run=run, funder=request.organisation).exists():
        raise Http404
    form = PaymentFileForm(request.POST, prefix=f"arrete-{run.pk}")
    if not form.is_valid():
        return render(
            request, "www/finance/payment_files.html", _payment_context(request, forms={run.pk: form}), status=200
        )
    try:
        payment_file = payment_file_create(
            run=run, funder=request.organisation, actor=request.user, version=form.cleaned_data["version"]
        )
    except DomainError as exc:
        messages.error(request, f"{exc.message} Aucun fichier n’a été généré.")
        return redirect("www:finance_payment_files")
    plural = "s" if payment_file.transfers > 1 else ""
    messages.success(
        request,
        f"Fichier de virements {payment_file.message_id} généré : {payment_file.transfers} virement{plural}, "
        f"{format_euros(payment_file.total_cents)}. Téléchargez-le ci-dessous et transmettez-le à votre banque.",
    )
    missing = getattr(payment_file, "missing_bank_details", None) or []
    if missing:
        names = ", ".join(sorted({c.place.name for c in missing}))
        messages.warning(
            request,
            f"{len(missing)} demande{'s' if len(missing) > 1 else ''} laissée{'s' if len(missing) > 1 else ''} "
            f"hors du fichier faute de coordonnées bancaires : {names}.",
        )
    return redirect("www:finance_payment_files")


@finance_page
@require_GET
def payment_file_download(request, pk):
    """Finance users and admins: the XML file, byte for byte as generated (it holds the places' IBANs)."""
    payment_file = get_object_or_404(PaymentFile, pk=pk, funder=request.organisation)
    _require_manager(request)
    content = payment_file.content
    response = HttpResponse(
        content.encode("utf-8") if isinstance(content, str) else content, content_type="application/xml"
    )
    response["Content-Disposition"] = f'attachment; filename="{_safe_filename(payment_file.message_id)}.xml"'
    response["Cache-Control"] = "no-store"
    return response


def _safe_filename(value: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "-" for ch in value) or "virements"


# --- bank statement import ------------------------------------------------------------------------------


@finance_page
@require_http_methods(["GET", "POST"])
def statement_import(request):
    """Finance users and admins: import a camt.054 or CSV bank statement; the claims it shows as paid are marked
    paid, and the report says what was matched, already paid or not recognised."""
    can_manage = _can_manage(request)
    report = None
    if request.method == "POST":
        _require_manager(request)
        form = StatementImportForm(request.POST, request.FILES)
        if form.is_valid():
            uploaded = form.cleaned_data["statement"]
            try:
                report = bank_statement_import(
                    funder=request.organisation, data=uploaded.read(), filename=uploaded.name, actor=request.user
                )
            except DomainError as exc:
                form.add_error("statement", exc.message)
            else:
                form = StatementImportForm()
    else:
        form = StatementImportForm()
    return render(
        request,
        "www/finance/statement_import.html",
        {"form": form, "report": _report_view(report) if report is not None else None, "can_manage": can_manage},
    )


OUTCOME_BADGE = {
    Outcome.PAID: "success",
    Outcome.ALREADY_PAID: "info",
    Outcome.UNKNOWN: "warning",
    Outcome.MISMATCH: "warning",
    Outcome.REFUSED: "error",
}


def _report_view(report) -> dict:
    lines = [
        {
            "where": line.where,
            "reference": line.reference or "—",
            "amount": format_euros(line.amount_cents),
            "outcome": OUTCOME_LABELS.get(line.outcome, line.outcome),
            "badge": OUTCOME_BADGE.get(line.outcome, "info"),
            "message": line.message,
        }
        for line in report.lines
    ]
    return {
        "summary": report.summary(),
        "lines": lines,
        "paid": report.count(Outcome.PAID),
        "problems": len(report.problems),
        "ignored": report.ignored,
    }
