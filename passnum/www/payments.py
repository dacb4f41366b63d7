"""A place's « Paiements » (its claims across funders, their status, amounts and remittance statements), the
statement downloads (PDF and CSV, for the claim's place and its funder), and a funder's own bank account (the
account it pays from; a place's bank details are on places.bank_details, validated by a funder).

Who: members of the place read its payments and download its statements; the claim's funder may download them
too; anyone else gets 404. Only a funder's admins change its bank account (perms.can_edit_bank_account); its other
members see it masked."""

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from passnum.accounts import perms
from passnum.accounts.enums import OrganisationKind
from passnum.common.errors import DomainError, NotFound
from passnum.common.money import format_euros
from passnum.places.enums import BankAccountStatus
from passnum.places.models import BankAccount as PlaceBankAccount
from passnum.places.selectors import validated_bank_account
from passnum.settlement.enums import ClaimStatus, IncidentStatus, LineStatus
from passnum.settlement.models import BankAccount
from passnum.settlement.payments import bank_account_set
from passnum.settlement.services import claim_get, claims_for_place
from passnum.settlement.statements import statement_csv as build_csv
from passnum.settlement.statements import statement_filename
from passnum.settlement.statements import statement_pdf as build_pdf
from passnum.vouchers import codes
from passnum.www.decorators import organisation_required
from passnum.www.desk_forms import service_label
from passnum.www.finance_forms import BankAccountForm

CLAIMS_PER_PAGE = 50
LINES_PER_PAGE = 50

PLACE_STATUS = {
    ClaimStatus.SUBMITTED: ("À valider", "new"),
    ClaimStatus.APPROVED: ("Validée", "info"),
    ClaimStatus.IN_PAYMENT: ("Virement préparé", "info"),
    ClaimStatus.PAID: ("Payée", "success"),
    ClaimStatus.REJECTED: ("Rejetée", "error"),
}


def _page_number(value) -> str:
    return value if isinstance(value, str) and value.isdigit() and len(value) < 7 else "1"


def _decorate(claim):
    claim.status_label, claim.badge = PLACE_STATUS.get(claim.status, (claim.get_status_display(), "info"))
    claim.claimed = format_euros(claim.claimed_cents)
    claim.rejected = format_euros(claim.rejected_cents)
    claim.payable = format_euros(claim.payable_cents)
    return claim


def _place_claim_or_404(request, pk):
    claim = claims_for_place(request.organisation).filter(pk=pk).first()
    if claim is None:
        raise Http404
    return claim


@organisation_required(OrganisationKind.PLACE)
@require_GET
def place_payments(request):
    """The place's claims, newest first, 50 a page: funder, status, amounts, statements."""
    place = request.organisation
    qs = claims_for_place(place).order_by("-run__cutoff", "funder__name", "pk")
    page = Paginator(qs, CLAIMS_PER_PAGE).get_page(_page_number(request.GET.get("page")))
    for claim in page.object_list:
        _decorate(claim)
    return render(
        request,
        "www/payments/list.html",
        {
            "page": page,
            "bank": validated_bank_account(organisation=place),
            "bank_pending": PlaceBankAccount.objects.filter(
                organisation=place, status=BankAccountStatus.PENDING
            ).first(),
            "can_edit_bank": perms.can_edit_bank_account(request.user, place),
        },
    )


@organisation_required(OrganisationKind.PLACE)
@require_GET
def place_payment_detail(request, pk):
    """One claim as the place sees it: its vouchers, and why any was rejected."""
    claim = _decorate(_place_claim_or_404(request, pk))
    lines = claim.lines.select_related("voucher__program", "incident").order_by("redeemed_at", "pk")
    page = Paginator(lines, LINES_PER_PAGE).get_page(_page_number(request.GET.get("page")))
    for line in page.object_list:
        line.code = codes.display(line.voucher.code)
        line.service_label = service_label(line.service)
        line.amount = format_euros(line.amount_cents)
        incident = getattr(line, "incident", None) if line.status == LineStatus.REJECTED else None
        line.reason = incident.reason if incident else ""
        line.incident_state = (
            incident.get_status_display() if incident and incident.status != IncidentStatus.OPEN else ""
        )
    return render(request, "www/payments/detail.html", {"claim": claim, "page": page})


# --- statements -----------------------------------------------------------------------------------------


def _statement_claim(request, pk):
    """The claim, for a member of its place or of its funder; anyone else gets 404."""
    org = request.organisation
    try:
        return claim_get(pk=pk, organisation=org)
    except NotFound as exc:
        raise Http404 from exc


def _attachment(response, claim, extension: str):
    response["Content-Disposition"] = f'attachment; filename="{statement_filename(claim, extension)}"'
    response["Cache-Control"] = "no-store"
    return response


@organisation_required(OrganisationKind.PLACE, OrganisationKind.FUNDER)
@require_GET
def statement_pdf(request, pk):
    """The remittance statement of one claim (PDF), for its place and its funder."""
    claim = _statement_claim(request, pk)
    return _attachment(HttpResponse(build_pdf(claim), content_type="application/pdf"), claim, "pdf")


@organisation_required(OrganisationKind.PLACE, OrganisationKind.FUNDER)
@require_GET
def statement_csv(request, pk):
    """The remittance statement of one claim (CSV, one row per voucher, streamed), for its place and its funder."""
    claim = _statement_claim(request, pk)
    response = StreamingHttpResponse(build_csv(claim), content_type="text/csv; charset=utf-8")
    return _attachment(response, claim, "csv")


# --- the organisation's own bank account ----------------------------------------------------------------


@organisation_required(OrganisationKind.PLACE, OrganisationKind.FUNDER)
@require_http_methods(["GET", "POST"])
def bank_account(request):
    """The account a funder pays from: its members see it (masked), its admins set it. IBAN and BIC are checked
    by the service; a refusal says why in French and changes nothing. A place's bank details have their own page
    (places.bank_details), since a funder must validate them before any payment: it is sent there."""
    org = request.organisation
    if org.kind == OrganisationKind.PLACE:
        return redirect("www:bank_details")
    can_edit = perms.can_edit_bank_account(request.user, org)
    current = BankAccount.objects.filter(organisation=org).first()
    form = BankAccountForm(request.POST or None)
    if request.method == "POST":
        if not can_edit:
            raise PermissionDenied
        if form.is_valid():
            try:
                bank_account_set(organisation=org, actor=request.user, **form.cleaned_data)
            except DomainError as exc:
                form.add_error(exc.field if exc.field in form.fields else None, exc.message)
            else:
                messages.success(request, "Coordonnées bancaires enregistrées.")
                return redirect("www:bank_account")
    return render(
        request,
        "www/payments/bank_account.html",
        {"form": form, "current": current, "can_edit": can_edit},
    )
