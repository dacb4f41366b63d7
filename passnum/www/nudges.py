"""Nudges (issue 8, point 4): distributors see booklets handed out but unused; funders see stock sleeping at
distributors, and the lead funder's admins reallocate it. The person's opt-out lives on the wallet page
(passnum/www/wallet.py). The rules are in passnum/nudges/services.py."""

from django import forms
from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Count
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import path
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods

from passnum.accounts import perms
from passnum.accounts.enums import OrganisationKind
from passnum.accounts.models import Organisation
from passnum.common.errors import DomainError
from passnum.nudges import services
from passnum.programs.selectors import program_get_for
from passnum.vouchers.enums import VoucherStatus
from passnum.vouchers.models import Voucher
from passnum.www import wallet
from passnum.www.decorators import organisation_required
from passnum.www.forms import PassnumForm

UNUSED_PER_PAGE = 100
SLEEPING_PER_PAGE = 200


def _page_number(value) -> int:
    try:
        return max(1, int(value or 1))
    except (TypeError, ValueError):
        return 1


def _days_since(moment, today) -> int:
    return (today - timezone.localtime(moment, services.PARIS).date()).days


# --- distributors: booklets handed out, unused ---------------------------------------------------------------


class DaysForm(PassnumForm):
    jours = forms.IntegerField(
        label="Remis depuis au moins (jours)",
        min_value=1,
        max_value=services.MAX_DAYS,
        error_messages={
            "invalid": "Indiquez un nombre de jours.",
            "min_value": "Indiquez au moins 1 jour.",
            "max_value": f"Indiquez au plus {services.MAX_DAYS} jours.",
        },
    )


@organisation_required(OrganisationKind.DISTRIBUTOR)
@require_GET
def unused(request):
    """Members of a distributor: its booklets handed out at least N days ago (PASSNUM_NUDGE_AFTER_DAYS by
    default) of which no voucher has been used, by program. Only the booklet and the pseudonymous reference of
    the person; other organisations' booklets never appear (the query is scoped to the distributor)."""
    default = settings.PASSNUM_NUDGE_AFTER_DAYS
    form = DaysForm(request.GET or None, initial={"jours": default})
    days = form.cleaned_data["jours"] if form.is_bound and form.is_valid() else default
    today = services.local_today()
    booklets = services.unused_booklets(distributor=request.organisation, days=days, today=today)
    page = Paginator(booklets, UNUSED_PER_PAGE).get_page(_page_number(request.GET.get("page")))
    for booklet in page.object_list:
        booklet.days_since = _days_since(booklet.handed_out_at, today)
    return render(
        request,
        "www/nudges/unused.html",
        {
            "form": form,
            "days": days,
            "page": page,
            "query": f"jours={days}" if days != default else "",
        },
    )


# --- funders: sleeping stock, reallocation -------------------------------------------------------------------


@organisation_required(OrganisationKind.FUNDER)
@require_GET
def sleeping(request):
    """Members of a funder: for the programs it funds (lead or co-funder), booklets allocated to a distributor
    PASSNUM_SLEEPING_AFTER_DAYS days ago or more and never handed out, by distributor. Programs it does not fund
    never appear."""
    programs = services.sleeping_stock(user=request.user, funder=request.organisation)
    return render(
        request,
        "www/nudges/sleeping.html",
        {"programs": programs, "days": services.sleeping_after_days()},
    )


class ReallocateForm(PassnumForm):
    target = forms.ModelChoiceField(
        label="Prescripteur destinataire",
        queryset=Organisation.objects.none(),
        empty_label="Choisir le prescripteur",
        error_messages={
            "required": "Choisissez le prescripteur destinataire.",
            "invalid_choice": "Choisissez un prescripteur de la liste.",
        },
    )

    def __init__(self, *args, source, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["target"].queryset = services.distributor_choices(exclude=source)


def _booklet_ids(values) -> list[int] | None:
    """The ticked booklets' ids; None when one is not a number (a forged request)."""
    try:
        return [int(v) for v in values]
    except (TypeError, ValueError):
        return None


@organisation_required(OrganisationKind.FUNDER)
@require_http_methods(["GET", "POST"])
def sleeping_detail(request, slug, distributor_pk):
    """Members of a funder of the program see one distributor's sleeping booklets of it; only the lead funder's
    admins reallocate them (POST), co-funders see them read-only (a POST is 403). A program the funder does not
    fund, or an organisation that is not a distributor, is a 404."""
    program = program_get_for(organisation=request.organisation, slug=slug)
    source = Organisation.objects.filter(pk=distributor_pk, kind=OrganisationKind.DISTRIBUTOR).first()
    if program is None or source is None:
        raise Http404
    can_act = perms.can_edit_program(request.user, request.organisation, program)
    form = ReallocateForm(request.POST or None, source=source)
    booklets_error = ""
    if request.method == "POST":
        if not can_act:
            raise PermissionDenied
        all_sleeping = request.POST.get("action") == "all"
        ids = [] if all_sleeping else _booklet_ids(request.POST.getlist("booklets"))
        if ids is None:
            booklets_error = "Cochez les carnets dans la liste."
        elif not all_sleeping and not ids:
            booklets_error = "Cochez au moins un carnet, ou réattribuez tous les carnets dormants."
        if form.is_valid() and not booklets_error:
            target = form.cleaned_data["target"]
            try:
                done = services.booklets_reallocate(
                    program=program,
                    from_distributor=source,
                    to_distributor=target,
                    booklet_ids=ids,
                    all_sleeping=all_sleeping,
                    actor=request.user,
                    organisation=request.organisation,
                )
            except DomainError as exc:
                if exc.field == "target":
                    form.add_error("target", exc.message)
                else:
                    booklets_error = exc.message
            else:
                messages.success(
                    request,
                    f"{len(done)} carnet{'s' if len(done) > 1 else ''} réattribué{'s' if len(done) > 1 else ''} "
                    f"à {target.name}. Les deux prescripteurs sont prévenus par courriel.",
                )
                return redirect("www:nudges_sleeping")
    today = services.local_today()
    booklets = services.sleeping_booklets(program=program, distributor=source, today=today)
    page = Paginator(booklets, SLEEPING_PER_PAGE).get_page(_page_number(request.GET.get("page")))
    counts = dict(
        Voucher.objects.filter(booklet__in=[b.pk for b in page.object_list], status=VoucherStatus.ISSUED)
        .values("booklet_id")
        .annotate(n=Count("id"))
        .values_list("booklet_id", "n")
    )
    for booklet in page.object_list:
        booklet.vouchers_left = counts.get(booklet.pk, 0)
        booklet.value_cents = booklet.vouchers_left * program.face_value_cents
        booklet.days_since = _days_since(booklet.allocated_at, today)
    ticked = set(request.POST.getlist("booklets")) if request.method == "POST" else set()
    return render(
        request,
        "www/nudges/sleeping_detail.html",
        {
            "program": program,
            "source": source,
            "can_act": can_act,
            "form": form,
            "booklets_error": booklets_error,
            "page": page,
            "ticked": ticked,
            "days": services.sleeping_after_days(),
            "has_errors": bool(booklets_error or form.errors),
        },
    )


urlpatterns: list = [
    # the person's opt-out, from the wallet page (the view is with the wallet's, in passnum/www/wallet.py)
    path("pass/<str:token>/ne-plus-recevoir-de-rappels/", wallet.wallet_reminders_stop, name="nudges_wallet_opt_out"),
    path("prescripteur/carnets-non-utilises/", unused, name="nudges_unused"),
    path("financeur/stock-dormant/", sleeping, name="nudges_sleeping"),
    path(
        "financeur/stock-dormant/<slug:slug>/prescripteurs/<int:distributor_pk>/",
        sleeping_detail,
        name="nudges_sleeping_detail",
    ),
]
