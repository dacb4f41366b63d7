"""HTML views. Each states who may use it; views parse input, call one service or selector, and render."""

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.http import Http404, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse, reverse_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods

from passnum.accounts import perms
from passnum.accounts.enums import OrganisationKind
from passnum.accounts.middleware import SESSION_KEY
from passnum.accounts.models import Membership
from passnum.accounts.services import invitation_accept, invitation_create, invitation_get_valid
from passnum.common.errors import DomainError
from passnum.common.money import format_euros
from passnum.common.standard import Public, Service
from passnum.geo.enums import TerritoryLevel
from passnum.programs.selectors import program_get_for, program_list_for, program_territory_labels
from passnum.programs.services import FunderShare, ProgramData, program_create, program_update
from passnum.vouchers.models import Booklet
from passnum.www.decorators import organisation_required
from passnum.www.forms import (
    AcceptInvitationForm,
    FunderShareFormSet,
    InvitationForm,
    LoginForm,
    NewPasswordForm,
    PasswordResetRequestForm,
    ProgramForm,
    SwitchOrganisationForm,
)

# --- public -----------------------------------------------------------------------------------------------


@require_GET
@never_cache
def healthz(request):
    """Anyone (load balancers): 200 with the database's state, 503 when the database does not answer."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
        return JsonResponse({"status": "ok", "database": "ok", "vendor": connection.vendor})
    except Exception:  # noqa: BLE001 — any database failure means "down"
        return JsonResponse({"status": "error", "database": "unavailable"}, status=503)


@require_GET
def signing_keys(request):
    """Anyone: the public keys that verify the vouchers' signed QR codes, for offline checks."""
    from passnum.vouchers.signing import published_keys

    response = JsonResponse(published_keys())
    response["Access-Control-Allow-Origin"] = "*"
    response["Cache-Control"] = "public, max-age=3600"
    return response


class LoginView(auth_views.LoginView):
    """Anyone."""

    form_class = LoginForm
    template_name = "www/login.html"
    redirect_authenticated_user = True


class PasswordResetView(auth_views.PasswordResetView):
    """Anyone. Answers the same whether or not the address exists."""

    form_class = PasswordResetRequestForm
    template_name = "www/password_reset.html"
    email_template_name = "www/email/password_reset.txt"
    subject_template_name = "www/email/password_reset_subject.txt"
    success_url = reverse_lazy("www:password_reset_done")


class PasswordResetDoneView(auth_views.PasswordResetDoneView):
    template_name = "www/password_reset_done.html"


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    form_class = NewPasswordForm
    template_name = "www/password_reset_confirm.html"
    success_url = reverse_lazy("www:password_reset_complete")


class PasswordResetCompleteView(auth_views.PasswordResetCompleteView):
    template_name = "www/password_reset_complete.html"


@require_http_methods(["GET", "POST"])
def invitation_accept_view(request, token):
    """Anyone holding the e-mailed token."""
    try:
        invitation = invitation_get_valid(token=token)
    except DomainError as exc:
        return render(request, "www/invitation_invalid.html", {"error": exc.message}, status=404)
    from passnum.accounts.models import User

    has_account = User.objects.filter(email=invitation.email).exists()
    logged_in_as_invitee = request.user.is_authenticated and request.user.email == invitation.email
    form = AcceptInvitationForm(request.POST or None, new_account=not has_account)
    if request.method == "POST" and form.is_valid():
        try:
            user = invitation_accept(token=token, acting_user=request.user, **form.cleaned_data)
        except DomainError as exc:
            form.add_error("password" if exc.field == "password" else None, exc.message)
        else:
            if not has_account:
                login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            request.session[SESSION_KEY] = invitation.organisation_id
            messages.success(request, f"Bienvenue dans « {invitation.organisation.name} ».")
            return redirect("www:home")
    return render(
        request,
        "www/invitation_accept.html",
        {
            "form": form,
            "invitation": invitation,
            "has_account": has_account,
            "logged_in_as_invitee": logged_in_as_invitee,
            "login_url": f"{reverse('www:login')}?next={request.path}",
        },
    )


# --- any member --------------------------------------------------------------------------------------------


def home(request):
    """Anyone: the landing page; members: the home of the organisation they act for."""
    if not request.user.is_authenticated:
        return render(request, "www/landing.html")
    org = request.organisation
    context = {"organisation": org}
    if org is None:
        return render(request, "www/home_none.html", context)
    if org.kind == OrganisationKind.FUNDER:
        context["programs"] = list(program_list_for(organisation=org)[:10])
        context["can_create_program"] = perms.can_create_program(request.user, org)
        template = "www/home_funder.html"
    elif org.kind == OrganisationKind.DISTRIBUTOR:
        context["stock"] = Booklet.objects.filter(distributor=org, handed_out_at__isnull=True).count()
        context["handed_out"] = Booklet.objects.filter(distributor=org, handed_out_at__isnull=False).count()
        template = "www/home_distributor.html"
    elif org.kind == OrganisationKind.PLACE:
        template = "www/home_place.html"
    else:
        template = "www/home_operator.html"
    return render(request, template, context)


@login_required
@require_http_methods(["GET", "POST"])
def organisation_switch(request):
    """Any logged-in user, among their own organisations only."""
    form = SwitchOrganisationForm(
        request.POST or None,
        memberships=request.memberships,
        initial={"organisation": request.organisation.id if request.organisation else None},
    )
    if request.method == "POST" and form.is_valid():
        request.session[SESSION_KEY] = form.cleaned_data["organisation"]
        messages.success(request, "Organisation changée.")
        return redirect("www:home")
    return render(request, "www/organisation_switch.html", {"form": form})


@organisation_required()
@require_http_methods(["GET", "POST"])
def members(request):
    """Members of the current organisation see the team; its admins invite."""
    org = request.organisation
    can_invite = perms.can_invite(request.user, org)
    form = InvitationForm(request.POST or None)
    if request.method == "POST":
        if not can_invite:
            raise PermissionDenied
        if form.is_valid():
            try:
                invitation_create(
                    organisation=org,
                    email=form.cleaned_data["email"],
                    role=form.cleaned_data["role"],
                    invited_by=request.user,
                    accept_url_builder=lambda token: request.build_absolute_uri(
                        reverse("www:invitation_accept", args=[token])
                    ),
                )
            except DomainError as exc:
                form.add_error("email", exc.message)
            else:
                messages.success(request, "Invitation envoyée.")
                return redirect("www:members")
    team = Membership.objects.filter(organisation=org).select_related("user").order_by("user__email")
    return render(request, "www/members.html", {"team": team, "form": form, "can_invite": can_invite})


# --- funders -----------------------------------------------------------------------------------------------


@organisation_required(OrganisationKind.FUNDER)
def program_list(request):
    """Members of a funder: the programs it funds (lead or co-funder)."""
    programs = program_list_for(organisation=request.organisation).prefetch_related("funders__funder")
    can_create = perms.can_create_program(request.user, request.organisation)
    return render(request, "www/program_list.html", {"programs": programs, "can_create_program": can_create})


def _get_program_or_404(request, slug):
    program = program_get_for(organisation=request.organisation, slug=slug)
    if program is None:  # outsiders learn nothing, not even that it exists
        raise Http404
    return program


@organisation_required(OrganisationKind.FUNDER)
def program_detail(request, slug):
    """Members of a funder of this program (read-only for co-funders)."""
    program = _get_program_or_404(request, slug)
    return render(
        request,
        "www/program_detail.html",
        {
            "program": program,
            "funders": program.funders.select_related("funder"),
            "territory": program_territory_labels(program=program),
            "services": [Service(s).label for s in program.eligible_services],
            "publics": [Public(p).label for p in program.target_publics],
            "can_edit": perms.can_edit_program(request.user, request.organisation, program),
            "booklets": program.booklets.count(),
        },
    )


def _program_data(form: ProgramForm, formset) -> ProgramData:
    d = form.cleaned_data
    return ProgramData(
        name=d["name"],
        description=d["description"],
        face_value_cents=d["face_value"],
        vouchers_per_booklet=d["vouchers_per_booklet"],
        valid_from=d["valid_from"],
        valid_until=d["valid_until"],
        grace_days=d["grace_days"],
        eligible_services=d["eligible_services"],
        target_publics=d["target_publics"],
        territory=form.territory(),
        funders=[
            FunderShare(funder=f["funder"], share_bps=f["share"], budget_cents=f["budget"])
            for f in formset.cleaned_data
            if f.get("funder")
        ],
    )


def _apply_domain_error(form, formset, exc: DomainError):
    field = exc.field
    if field == "funders":
        formset._non_form_errors = formset.error_class([exc.message])
    elif field == "territory":
        form.add_error(None, exc.message)
    elif field == "face_value" or (field and field in form.fields):
        form.add_error(field, exc.message)
    else:
        form.add_error(None, exc.message)


def _program_form_page(request, *, program=None):
    if request.method == "POST":
        form = ProgramForm(request.POST)
        formset = FunderShareFormSet(request.POST, prefix="funders")
        if form.is_valid() and formset.is_valid():
            data = _program_data(form, formset)
            try:
                if program is None:
                    program = program_create(owner=request.organisation, actor=request.user, data=data)
                    messages.success(request, f"Dispositif « {program.name} » créé.")
                else:
                    program = program_update(
                        program=program, organisation=request.organisation, actor=request.user, data=data
                    )
                    messages.success(request, "Dispositif enregistré.")
            except DomainError as exc:
                _apply_domain_error(form, formset, exc)
            else:
                return redirect("www:program_detail", slug=program.slug)
    elif program is None:
        form = ProgramForm()
        formset = FunderShareFormSet(prefix="funders", initial=[{"funder": request.organisation, "share": "100"}, {}])
    else:
        codes = {level: [] for level in TerritoryLevel.values}
        for t in program.territory.order_by("code"):
            codes[t.level].append(t.code)
        form = ProgramForm(
            initial={
                "name": program.name,
                "description": program.description,
                "face_value": format_euros(program.face_value_cents).replace("\xa0€", ""),
                "vouchers_per_booklet": program.vouchers_per_booklet,
                "valid_from": program.valid_from,
                "valid_until": program.valid_until,
                "grace_days": program.grace_days,
                "eligible_services": program.eligible_services,
                "target_publics": program.target_publics,
                "territory_regions": ", ".join(codes["region"]),
                "territory_departements": ", ".join(codes["departement"]),
                "territory_epci": ", ".join(codes["epci"]),
                "territory_communes": ", ".join(codes["commune"]),
            }
        )
        formset = FunderShareFormSet(
            prefix="funders",
            initial=[
                {
                    "funder": pf.funder,
                    "share": f"{pf.share_bps / 100:g}".replace(".", ","),
                    "budget": format_euros(pf.budget_cents).replace("\xa0€", ""),
                }
                for pf in program.funders.select_related("funder")
            ]
            + [{}],
        )
    return render(request, "www/program_form.html", {"form": form, "formset": formset, "program": program})


@organisation_required(OrganisationKind.FUNDER)
@require_http_methods(["GET", "POST"])
def program_create_view(request):
    """Admins of a funder."""
    if not perms.can_create_program(request.user, request.organisation):
        raise PermissionDenied
    return _program_form_page(request)


@organisation_required(OrganisationKind.FUNDER)
@require_http_methods(["GET", "POST"])
def program_edit_view(request, slug):
    """Admins of the lead funder only; co-funders get 403, outsiders 404."""
    program = _get_program_or_404(request, slug)
    if not perms.can_edit_program(request.user, request.organisation, program):
        raise PermissionDenied
    return _program_form_page(request, program=program)
