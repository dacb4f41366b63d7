"""Booklets: the lead funder issues, allocates, cancels and prints; distributors manage their stock."""

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q
from django.http import Http404, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from passnum.accounts import perms
from passnum.accounts.enums import OrganisationKind
from passnum.common.errors import DomainError
from passnum.programs.selectors import program_get_for
from passnum.vouchers.enums import VoucherStatus
from passnum.vouchers.models import Booklet
from passnum.vouchers.services import booklets_issue
from passnum.vouchers.stock import (
    booklet_cancel,
    booklets_allocate,
    booklets_return,
    booklets_transfer,
    free_booklets,
    stock_of,
)
from passnum.www.decorators import organisation_required
from passnum.www.stock_forms import AllocateForm, CancelBookletForm, IssueForm, PdfForm, StockMoveForm

S = VoucherStatus


def _summary(program):
    booklets = Booklet.objects.filter(program=program)
    by_distributor = (
        booklets.filter(distributor__isnull=False)
        .values("distributor__name")
        .annotate(
            total=Count("id"),
            handed_out=Count("id", filter=Q(handed_out_at__isnull=False)),
        )
        .order_by("distributor__name")
    )
    return {
        "issued": booklets.count(),
        "free": free_booklets(program=program).count(),
        "by_distributor": list(by_distributor),
        "cancelled_vouchers": program.vouchers.filter(status=S.CANCELLED).count(),
    }


@organisation_required(OrganisationKind.FUNDER)
@require_http_methods(["GET", "POST"])
def program_booklets(request, slug):
    """Funders of the program see the booklets; only the lead funder's admins act. Outsiders get 404."""
    program = program_get_for(organisation=request.organisation, slug=slug)
    if program is None:
        raise Http404
    can_act = perms.can_edit_program(request.user, request.organisation, program)
    action = request.POST.get("action") if request.method == "POST" else None
    issue_form = IssueForm(request.POST if action == "issue" else None, prefix="emission")
    allocate_form = AllocateForm(request.POST if action == "allocate" else None, prefix="attribution")
    cancel_form = CancelBookletForm(request.POST if action == "cancel" else None, prefix="annulation")
    pdf_form = PdfForm(request.GET or None, prefix="pdf", initial={"layout": "print"})
    if action:
        if not can_act:
            raise PermissionDenied
        try:
            if action == "issue" and issue_form.is_valid():
                issued = booklets_issue(
                    program=program,
                    count=issue_form.cleaned_data["count"],
                    actor=request.user,
                    organisation=request.organisation,
                )
                first, last = issued.first(), issued.last()
                messages.success(request, f"Carnets n° {first.number} à {last.number} émis.")
                return redirect("www:program_booklets", slug=slug)
            if action == "allocate" and allocate_form.is_valid():
                d = allocate_form.cleaned_data
                done = booklets_allocate(
                    program=program,
                    distributor=d["distributor"],
                    quantity=d["quantity"],
                    first=d["first"],
                    last=d["last"],
                    actor=request.user,
                    organisation=request.organisation,
                )
                messages.success(request, f"{len(done)} carnet(s) attribué(s) à {d['distributor'].name}.")
                return redirect("www:program_booklets", slug=slug)
            if action == "cancel" and cancel_form.is_valid():
                d = cancel_form.cleaned_data
                booklet = Booklet.objects.filter(program=program, number=d["number"]).first()
                if booklet is None:
                    cancel_form.add_error("number", "Ce carnet n’existe pas dans ce dispositif.")
                else:
                    n = booklet_cancel(
                        booklet=booklet,
                        reason=d["reason"],
                        detail=d["detail"],
                        actor=request.user,
                        organisation=request.organisation,
                    )
                    messages.success(
                        request, f"Carnet n° {booklet.number} annulé ({n} chèque(s)) ; valeur rendue au budget."
                    )
                    return redirect("www:program_booklets", slug=slug)
        except DomainError as exc:
            form = {"issue": issue_form, "allocate": allocate_form, "cancel": cancel_form}[action]
            form.add_error(None, exc.message)
    return render(
        request,
        "www/stock/program_booklets.html",
        {
            "program": program,
            "can_act": can_act,
            "issue_form": issue_form,
            "allocate_form": allocate_form,
            "cancel_form": cancel_form,
            "pdf_form": pdf_form,
            "summary": _summary(program),
            "funders": program.funders.select_related("funder"),
        },
    )


@organisation_required(OrganisationKind.DISTRIBUTOR)
@require_http_methods(["GET"])
def distributor_stock(request):
    """Members of a distributor: its stock of booklets, ready to hand out, transfer or return."""
    stock = list(stock_of(distributor=request.organisation).order_by("program__name", "number")[:500])
    form = StockMoveForm(stock=stock, distributor=request.organisation)
    handed_out = (
        Booklet.objects.filter(distributor=request.organisation, handed_out_at__isnull=False)
        .select_related("program")
        .order_by("-handed_out_at")[:50]
    )
    return render(
        request,
        "www/stock/distributor_stock.html",
        {
            "stock": stock,
            "form": form,
            "handed_out": handed_out,
            "is_admin": perms.is_admin(request.user, request.organisation),
        },
    )


@organisation_required(OrganisationKind.DISTRIBUTOR)
@require_POST
def distributor_stock_move(request):
    """Admins of a distributor transfer or return unused booklets."""
    if not perms.is_admin(request.user, request.organisation):
        raise PermissionDenied
    stock = list(stock_of(distributor=request.organisation)[:500])
    form = StockMoveForm(request.POST, stock=stock, distributor=request.organisation)
    action = request.POST.get("action")
    if form.is_valid():
        ids = [int(pk) for pk in form.cleaned_data["booklets"]]
        try:
            if action == "transfer":
                if form.cleaned_data["target"] is None:
                    raise DomainError("Choisissez le prescripteur destinataire.", code="target_required")
                n = booklets_transfer(
                    booklet_ids=ids,
                    from_distributor=request.organisation,
                    to_distributor=form.cleaned_data["target"],
                    actor=request.user,
                )
                messages.success(request, f"{n} carnet(s) transféré(s) à {form.cleaned_data['target'].name}.")
            elif action == "return":
                n = booklets_return(booklet_ids=ids, distributor=request.organisation, actor=request.user)
                messages.success(request, f"{n} carnet(s) rendu(s) au financeur.")
            else:
                raise DomainError("Action inconnue.", code="unknown_action")
        except DomainError as exc:
            messages.error(request, exc.message)
    else:
        messages.error(request, "Choisissez au moins un carnet de votre stock.")
    return redirect("www:distributor_stock")


@organisation_required(OrganisationKind.DISTRIBUTOR, OrganisationKind.FUNDER)
def booklet_pdf(request, pk):
    """The distributor holding the booklet, or the lead funder of its program: its desk PDF (one A4)."""
    from passnum.vouchers.pdf import booklet_desk_pdf

    booklet = Booklet.objects.select_related("program").filter(pk=pk).first()
    org = request.organisation
    if booklet is None or not (booklet.distributor_id == org.id or booklet.program.owner_id == org.id):
        raise Http404
    response = HttpResponse(booklet_desk_pdf(booklet), content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="carnet-{booklet.program.slug}-{booklet.number}.pdf"'
    response["Cache-Control"] = "private, no-store"
    return response


@organisation_required(OrganisationKind.FUNDER)
def program_booklets_pdf(request, slug):
    """Admins of the lead funder: booklets first…last, for a print shop or a desk. The PDF is streamed: pages are
    drawn as the response is sent, so memory stays flat whatever the range (the form still caps it, a long
    render holding a worker)."""
    from passnum.vouchers.pdf import stream_booklets

    program = program_get_for(organisation=request.organisation, slug=slug)
    if program is None:
        raise Http404
    if not perms.can_edit_program(request.user, request.organisation, program):
        raise PermissionDenied
    form = PdfForm(request.GET, prefix="pdf")
    if not form.is_valid():
        messages.error(request, " ".join(e for errors in form.errors.values() for e in errors))
        return redirect("www:program_booklets", slug=slug)
    d = form.cleaned_data
    booklets = Booklet.objects.filter(program=program, number__gte=d["first"], number__lte=d["last"])
    try:
        chunks = stream_booklets(program=program, booklets=booklets, layout=d["layout"])
    except DomainError as exc:
        messages.error(request, "Aucun carnet émis dans cette plage." if exc.code == "no_booklets" else exc.message)
        return redirect("www:program_booklets", slug=slug)
    response = StreamingHttpResponse(chunks, content_type="application/pdf")
    name = f"carnets-{program.slug}-{d['first']}-{d['last']}-{d['layout']}.pdf"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    response["Cache-Control"] = "private, no-store"
    return response
