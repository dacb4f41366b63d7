"""The distributor's desk: hand a booklet to a person, in three pages.

1. `hand_out` (/prescripteur/remettre/): choose the booklet — its number, a voucher's code or QR payload, or a
   "Remettre" button in the stock list.
2. `hand_out_person` (/prescripteur/remettre/<pk>/): the person (least data, all optional), then "Proposer des
   lieux" re-renders the page with the nearest qualified places offering the needs; the distributor picks one (or
   none) and the delivery (paper, or a link by SMS/e-mail), and the booklet is handed out.
3. `hand_out_done` (/prescripteur/remis/<pk>/): the confirmation, with the pseudonymous reference to note.

No JavaScript. The person's data only travels in POST bodies, never in addresses, and is never logged. A hidden
token, made when the page is drawn, is the hand-out's idempotency key: a second submit of the same page (double
click, retry after a timeout) lands on the confirmation of the first instead of an error."""

import uuid

from django.contrib import messages
from django.db import transaction
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods

from passnum.accounts.enums import OrganisationKind
from passnum.common.errors import DomainError
from passnum.programs.models import Program
from passnum.vouchers.digital import digital_pass_current, digital_pass_send
from passnum.vouchers.enums import VoucherStatus
from passnum.vouchers.handout import booklet_find_in_stock, booklet_give, suggest_places
from passnum.vouchers.models import Booklet
from passnum.vouchers.stock import stock_of
from passnum.www.decorators import organisation_required
from passnum.www.handout_forms import DIGITAL, NO_ORIENTATION, OrientationForm, PersonForm, PickForm
from passnum.www.public import opening_week

S = VoucherStatus
STOCK_SHOWN = 20
SUGGESTIONS = 5


def _token(value) -> str:
    """The page's idempotency token if it is one of ours (a UUID), else ''."""
    try:
        return uuid.UUID(str(value or "")).hex
    except ValueError:
        return ""


def _own_booklet(request, pk) -> Booklet:
    """A booklet of the distributor the user acts for; any other is a 404 (outsiders learn nothing)."""
    booklet = (
        Booklet.objects.select_related("program", "beneficiary", "oriented_site")
        .filter(pk=pk, distributor=request.organisation)
        .first()
    )
    if booklet is None:
        raise Http404
    return booklet


def _in_stock(request, booklet) -> bool:
    return stock_of(distributor=request.organisation).filter(pk=booklet.pk).exists()


# --- 1. choose the booklet -------------------------------------------------------------------------------------


@organisation_required(OrganisationKind.DISTRIBUTOR)
@require_http_methods(["GET", "POST"])
def hand_out(request):
    """Members of a distributor: find the booklet to hand out in the stock."""
    org = request.organisation
    programs = list(Program.objects.filter(booklets__distributor=org).distinct().order_by("name"))
    form = PickForm(request.POST if request.method == "POST" else None, programs=programs)
    if form.is_bound and form.is_valid():
        try:
            booklet = booklet_find_in_stock(
                distributor=org, raw=form.cleaned_data["booklet"], program_id=form.cleaned_data.get("program") or None
            )
        except DomainError as exc:
            form.add_error(exc.field if exc.field in form.fields else "booklet", exc.message)
        else:
            if booklet.handed_out_at is not None:
                messages.info(request, f"Le carnet n° {booklet.number} a déjà été remis.")
                return redirect("www:hand_out_done", pk=booklet.pk)
            if not _in_stock(request, booklet):
                form.add_error("booklet", f"Le carnet n° {booklet.number} n’a plus de chèque utilisable.")
            else:
                return redirect("www:hand_out_person", pk=booklet.pk)
    stock = stock_of(distributor=org).order_by("program__name", "number")
    return render(
        request,
        "www/handout/pick.html",
        {
            "form": form,
            "forms": [form],
            "stock": list(stock[:STOCK_SHOWN]),
            "stock_count": stock.count(),
            "shown": STOCK_SHOWN,
        },
    )


# --- 2. the person, the place, the delivery --------------------------------------------------------------------


def _person_page(request, booklet, *, token, person_form, orientation_form=None):
    program = booklet.program
    giving = request.method == "POST" and request.POST.get("action") == "give"
    context = {
        "booklet": booklet,
        "program": program,
        "vouchers": booklet.vouchers.filter(status=S.ISSUED).count(),
        "token": token,
        "person_form": person_form,
        "orientation_form": orientation_form,
        "forms": [f for f in (person_form, orientation_form) if f is not None],
        "has_errors": bool(person_form.errors or (orientation_form is not None and orientation_form.errors)),
        "error_title": "Le carnet n’a pas été remis" if giving else "Aucun lieu proposé : corrigez la fiche",
    }
    return render(request, "www/handout/person.html", context)


def _give(request, booklet, person_form, orientation_form, token) -> Booklet:
    """Hand out, then send the digital pass if asked, in one transaction: a refused SMS undoes the hand-out."""
    with transaction.atomic():
        given = booklet_give(
            booklet=booklet,
            distributor=request.organisation,
            person=person_form.person(),
            oriented_site_id=orientation_form.site_id,
            actor=request.user,
            idempotency_key=token,
        )
        if not given.replayed and orientation_form.cleaned_data["delivery"] == DIGITAL:
            digital_pass_send(
                booklet=given,
                phone=orientation_form.cleaned_data["phone"],
                email=orientation_form.cleaned_data["email"],
                actor=request.user,
                organisation=request.organisation,
            )
    return given


@organisation_required(OrganisationKind.DISTRIBUTOR)
@require_http_methods(["GET", "POST"])
@never_cache
def hand_out_person(request, pk):
    """Members of the distributor holding the booklet in stock; a booklet already handed out: its confirmation."""
    booklet = _own_booklet(request, pk)
    token = _token(request.POST.get("token")) if request.method == "POST" else ""
    if booklet.handed_out_at is not None:
        if not (token and token == booklet.hand_out_key):  # not this page's second submit
            messages.info(request, f"Le carnet n° {booklet.number} a déjà été remis.")
        return redirect("www:hand_out_done", pk=booklet.pk)
    if not _in_stock(request, booklet):
        raise Http404
    program = booklet.program
    if request.method != "POST":
        return _person_page(request, booklet, token=uuid.uuid4().hex, person_form=PersonForm(program=program))

    token = token or uuid.uuid4().hex
    person_form = PersonForm(request.POST, program=program)
    if not person_form.is_valid():
        return _person_page(request, booklet, token=token, person_form=person_form)
    data = person_form.cleaned_data
    sites = suggest_places(program=program, commune_code=data["commune_code"], needs=data["needs"], limit=SUGGESTIONS)
    if request.POST.get("action") != "give":  # "Proposer des lieux": what was already chosen is kept
        kept = {name: request.POST.get(name, "") for name in ("delivery", "phone", "email")}
        kept["consent_digital"] = bool(request.POST.get("consent_digital"))
        chosen = request.POST.get("site", "")
        if chosen in {str(s.id) for s in sites} | {NO_ORIENTATION}:
            kept["site"] = chosen
        orientation_form = OrientationForm(sites=sites, initial=kept)
        return _person_page(request, booklet, token=token, person_form=person_form, orientation_form=orientation_form)

    orientation_form = OrientationForm(request.POST, sites=sites)
    if orientation_form.is_valid():
        try:
            _give(request, booklet, person_form, orientation_form, token)
        except DomainError as exc:
            if exc.code == "booklet_handed_out" and Booklet.objects.filter(pk=booklet.pk, hand_out_key=token).exists():
                return redirect("www:hand_out_done", pk=booklet.pk)  # the same page, submitted twice at once
            form = person_form if exc.field in person_form.fields else orientation_form
            form.add_error(exc.field if exc.field in form.fields else None, exc.message)
        else:
            return redirect("www:hand_out_done", pk=booklet.pk)
    return _person_page(request, booklet, token=token, person_form=person_form, orientation_form=orientation_form)


# --- 3. the confirmation ---------------------------------------------------------------------------------------


@organisation_required(OrganisationKind.DISTRIBUTOR)
@require_GET
@never_cache
def hand_out_done(request, pk):
    """Members of the distributor that handed the booklet out."""
    booklet = _own_booklet(request, pk)
    if booklet.handed_out_at is None:
        if _in_stock(request, booklet):
            return redirect("www:hand_out_person", pk=booklet.pk)
        raise Http404
    program = booklet.program
    counts = {s: 0 for s in S.values}
    for status in booklet.vouchers.values_list("status", flat=True):
        counts[status] += 1
    site = booklet.oriented_site
    context = {
        "booklet": booklet,
        "program": program,
        "beneficiary": booklet.beneficiary,
        "usable": counts[S.DISTRIBUTED],
        "total": sum(counts.values()),
        "usable_cents": counts[S.DISTRIBUTED] * program.face_value_cents,
        "site": site,
        "week": opening_week(site.opening_hours, start=timezone.localdate()) if site else None,
        "digital_pass": digital_pass_current(booklet=booklet),
    }
    return render(request, "www/handout/done.html", context)
