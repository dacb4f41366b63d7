"""Places' sign-up and space, and funders' review of the places of their territory."""

from django.contrib import messages
from django.contrib.auth import login
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from passnum.accounts import perms
from passnum.accounts.enums import OrganisationKind
from passnum.accounts.middleware import SESSION_KEY
from passnum.common.errors import DomainError
from passnum.common.standard import Public, Service, SpecificSupport
from passnum.places.enums import DocumentKind, QualificationStatus
from passnum.places.models import BankAccount, Site, SupportingDocument
from passnum.places.selectors import (
    bank_accounts_to_review,
    can_review_site,
    site_get_for_reviewer,
    sites_in_territory_of,
)
from passnum.places.services import (
    ApplicantData,
    BankData,
    SiteData,
    bank_account_change,
    bank_account_review,
    catalogue_set,
    document_add,
    place_signup,
    site_add,
    site_apply,
    site_decide,
)
from passnum.www.decorators import organisation_required
from passnum.www.places_forms import (
    BankForm,
    BankReviewForm,
    CatalogueForm,
    DecisionForm,
    DocumentForm,
    SignupDocumentsForm,
    SiteForm,
    SiteFormSet,
    StructureForm,
)

# --- public ---------------------------------------------------------------------------------------------------


def checklist(request):
    """Anyone: exactly what is checked, no hidden score, no quota, no fee."""
    return render(request, "www/places/checklist.html", {"services": Service.choices})


def _site_data(cleaned: dict) -> SiteData:
    return SiteData(
        name=cleaned["name"],
        address=cleaned["address"],
        address_complement=cleaned["address_complement"],
        postal_code=cleaned["postal_code"],
        insee_code=cleaned["insee_code"].upper(),
        latitude=cleaned["latitude"],
        longitude=cleaned["longitude"],
        opening_hours=cleaned["opening_hours"],
        phone=cleaned["phone"],
        email=cleaned["email"],
        website=cleaned["website"],
        booking_url=cleaned["booking_url"],
        summary=cleaned["summary"],
        services={code: cleaned["vouchers_per_session"] for code in cleaned["services"]},
        publics=cleaned["publics"],
        supports=cleaned["supports"],
    )


@require_http_methods(["GET", "POST"])
def signup(request):
    """Anyone. Rate-limited per client to keep robots from filling the review queues."""
    if request.method == "POST":
        structure = StructureForm(request.POST, prefix="structure")
        sites = SiteFormSet(request.POST, prefix="lieux")
        bank = BankForm(request.POST, prefix="banque")
        docs = SignupDocumentsForm(request.POST, request.FILES, prefix="pieces")
        if all([structure.is_valid(), sites.is_valid(), bank.is_valid(), docs.is_valid()]):
            s = structure.cleaned_data
            documents = [(DocumentKind.REGISTRATION, docs.cleaned_data["registration"])]
            if docs.cleaned_data.get("bank_document"):
                documents.append((DocumentKind.BANK, docs.cleaned_data["bank_document"]))
            try:
                organisation = place_signup(
                    name=s["name"],
                    siret=s["siret"],
                    rna=s["rna"],
                    applicant=ApplicantData(
                        email=s["email"], password=s["password"], first_name=s["first_name"], last_name=s["last_name"]
                    ),
                    sites=[_site_data(f.cleaned_data) for f in sites.forms],
                    bank=BankData(**bank.cleaned_data),
                    documents=documents,
                )
            except DomainError as exc:
                target = {
                    "siret": structure,
                    "rna": structure,
                    "email": structure,
                    "password": structure,
                    "name": structure,
                    "iban": bank,
                    "bic": bank,
                    "holder_name": bank,
                }.get(exc.field)
                if target is not None and exc.field in target.fields:
                    target.add_error(exc.field, exc.message)
                elif exc.field == "documents":
                    docs.add_error("registration", exc.message)
                else:
                    structure.add_error(None, exc.message)
            else:
                user = organisation.memberships.get().user
                login(request, user, backend="django.contrib.auth.backends.ModelBackend")
                request.session[SESSION_KEY] = organisation.id
                return redirect("www:place_signup_done")
    else:
        structure = StructureForm(prefix="structure")
        sites = SiteFormSet(prefix="lieux")
        bank = BankForm(prefix="banque")
        docs = SignupDocumentsForm(prefix="pieces")
    errors = any(f.errors for f in (structure, bank, docs)) or any(sites.errors) or sites.non_form_errors()
    return render(
        request,
        "www/places/signup.html",
        {"structure": structure, "sites": sites, "bank": bank, "docs": docs, "has_errors": errors},
    )


def signup_done(request):
    """Anyone (after sign-up)."""
    return render(request, "www/places/signup_done.html")


# --- a place's own space -----------------------------------------------------------------------------------------


def _own_site(request, pk) -> Site:
    site = Site.objects.filter(pk=pk, organisation=request.organisation).first()
    if site is None:
        raise Http404
    return site


@organisation_required(OrganisationKind.PLACE)
def my_sites(request):
    """Members of a place: its sites, their status and the reasons given; admins edit."""
    org = request.organisation
    sites = list(Site.objects.filter(organisation=org).prefetch_related("catalogue", "qualification_log"))
    for site in sites:
        site.last_decision = site.qualification_log.all().order_by("-at", "-id").first()
    return render(
        request,
        "www/places/my_sites.html",
        {
            "sites": sites,
            "is_admin": perms.is_admin(request.user, org),
            "bank_validated": BankAccount.objects.filter(organisation=org, status="validated").first(),
            "bank_pending": BankAccount.objects.filter(organisation=org, status="pending").first(),
            "service_labels": dict(Service.choices),
        },
    )


@organisation_required(OrganisationKind.PLACE)
@require_http_methods(["GET", "POST"])
def my_site_add(request):
    """Admins of the place: declare one more site, which waits for qualification."""
    if not perms.is_admin(request.user, request.organisation):
        raise PermissionDenied
    form = SiteForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            site_add(organisation=request.organisation, data=_site_data(form.cleaned_data), actor=request.user)
        except DomainError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, exc.message)
        else:
            messages.success(request, "Lieu déclaré : il attend la validation du financeur de son territoire.")
            return redirect("www:my_sites")
    return render(request, "www/places/site_add.html", {"form": form})


@organisation_required(OrganisationKind.PLACE)
@require_http_methods(["GET", "POST"])
def my_site_catalogue(request, pk):
    """Admins of the place."""
    site = _own_site(request, pk)
    if not perms.is_admin(request.user, request.organisation):
        raise PermissionDenied
    current = {s.service: s.vouchers_per_session for s in site.catalogue.all()}
    form = CatalogueForm(request.POST or None, current=current)
    if request.method == "POST" and form.is_valid():
        try:
            catalogue_set(site=site, services=form.services(), actor=request.user, organisation=request.organisation)
        except DomainError as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(request, "Catalogue enregistré.")
            return redirect("www:my_sites")
    return render(request, "www/places/catalogue.html", {"site": site, "form": form})


@organisation_required(OrganisationKind.PLACE)
@require_POST
def my_site_apply(request, pk):
    """Admins of the place: apply again after a refusal or a suspension."""
    site = _own_site(request, pk)
    if not perms.is_admin(request.user, request.organisation):
        raise PermissionDenied
    try:
        site_apply(site=site, actor=request.user, organisation=request.organisation)
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, "Demande de qualification envoyée.")
    return redirect("www:my_sites")


@organisation_required(OrganisationKind.PLACE)
@require_http_methods(["GET", "POST"])
def bank_details(request):
    """Members of a place see the (masked) details; admins change them, which needs a funder's validation."""
    org = request.organisation
    is_admin = perms.is_admin(request.user, org)
    form = BankForm(request.POST or None)
    if request.method == "POST":
        if not is_admin:
            raise PermissionDenied
        if form.is_valid():
            try:
                bank_account_change(organisation=org, actor=request.user, **form.cleaned_data)
            except DomainError as exc:
                form.add_error(exc.field if exc.field in form.fields else None, exc.message)
            else:
                messages.success(
                    request, "Nouvelles coordonnées enregistrées : elles seront utilisées après validation."
                )
                return redirect("www:bank_details")
    accounts = BankAccount.objects.filter(organisation=org).order_by("-created_at")[:10]
    return render(request, "www/places/bank.html", {"form": form, "accounts": accounts, "is_admin": is_admin})


@organisation_required(OrganisationKind.PLACE)
@require_http_methods(["GET", "POST"])
def documents(request):
    """Members of a place see its documents; admins add them."""
    org = request.organisation
    is_admin = perms.is_admin(request.user, org)
    form = DocumentForm(request.POST or None, request.FILES or None)
    if request.method == "POST":
        if not is_admin:
            raise PermissionDenied
        if form.is_valid():
            try:
                document_add(
                    organisation=org,
                    kind=form.cleaned_data["kind"],
                    uploaded=form.cleaned_data["file"],
                    actor=request.user,
                )
            except DomainError as exc:
                form.add_error("file", exc.message)
            else:
                messages.success(request, "Pièce ajoutée.")
                return redirect("www:documents")
    docs = SupportingDocument.objects.filter(organisation=org).order_by("-uploaded_at")
    return render(request, "www/places/documents.html", {"form": form, "docs": docs, "is_admin": is_admin})


@organisation_required(OrganisationKind.PLACE, OrganisationKind.FUNDER, OrganisationKind.OPERATOR)
def document_download(request, pk):
    """The place's members, and reviewers of its sites. Served as an attachment, never cached."""
    doc = SupportingDocument.objects.filter(pk=pk).select_related("organisation").first()
    if doc is None:
        raise Http404
    org = request.organisation
    allowed = doc.organisation_id == org.id or any(
        can_review_site(organisation=org, site=site) for site in Site.objects.filter(organisation=doc.organisation)
    )
    if not allowed:
        raise Http404
    ext = doc.file.name.rsplit(".", 1)[-1] if "." in doc.file.name else "bin"
    response = FileResponse(
        doc.file.open("rb"), as_attachment=True, filename=f"{doc.kind}-{doc.pk}.{ext}", content_type=doc.content_type
    )
    response["Cache-Control"] = "private, no-store"
    return response


# --- funders: review ---------------------------------------------------------------------------------------------


@organisation_required(OrganisationKind.FUNDER, OrganisationKind.OPERATOR)
def review_list(request):
    """Members of a funder: sites in the territory of its programs (the operator sees all)."""
    status = request.GET.get("statut", QualificationStatus.PENDING)
    if status not in QualificationStatus.values:
        status = QualificationStatus.PENDING
    sites = (
        sites_in_territory_of(organisation=request.organisation)
        .filter(status=status)
        .order_by("status_changed_at", "name")[:200]
    )
    return render(
        request,
        "www/places/review_list.html",
        {
            "sites": sites,
            "status": status,
            "statuses": [c for c in QualificationStatus.choices if c[0] != QualificationStatus.LISTED],
            "banks": bank_accounts_to_review(organisation=request.organisation)[:100],
        },
    )


@organisation_required(OrganisationKind.FUNDER, OrganisationKind.OPERATOR)
@require_http_methods(["GET", "POST"])
def review_detail(request, pk):
    """Members of a funder covering the site see it; its admins decide. Outsiders get 404."""
    site = site_get_for_reviewer(organisation=request.organisation, pk=pk)
    if site is None:
        raise Http404
    can_decide = perms.is_admin(request.user, request.organisation)
    form = DecisionForm(request.POST or None)
    if request.method == "POST":
        if not can_decide:
            raise PermissionDenied
        if form.is_valid():
            try:
                site_decide(
                    site=site,
                    decision=form.cleaned_data["decision"],
                    reason=form.cleaned_data["reason"],
                    actor=request.user,
                    organisation=request.organisation,
                )
            except DomainError as exc:
                form.add_error("reason" if exc.field == "reason" else None, exc.message)
            else:
                messages.success(request, "Décision enregistrée ; le lieu est prévenu par courriel.")
                return redirect("www:review_list")
    return render(
        request,
        "www/places/review_detail.html",
        {
            "site": site,
            "form": form,
            "can_decide": can_decide,
            "catalogue": site.catalogue.all(),
            "log": site.qualification_log.select_related("organisation").order_by("at", "id"),
            "documents": SupportingDocument.objects.filter(organisation=site.organisation),
            "bank": BankAccount.objects.filter(organisation=site.organisation, status__in=["pending", "validated"]),
            "service_labels": dict(Service.choices),
            "public_labels": dict(Public.choices),
            "support_labels": dict(SpecificSupport.choices),
        },
    )


@organisation_required(OrganisationKind.FUNDER, OrganisationKind.OPERATOR)
@require_http_methods(["GET", "POST"])
def review_bank(request, pk):
    """Admins of a funder covering one of the place's sites validate a change of bank details."""
    account = bank_accounts_to_review(organisation=request.organisation).filter(pk=pk).first()
    if account is None:
        raise Http404
    if not perms.is_admin(request.user, request.organisation):
        raise PermissionDenied
    form = BankReviewForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            bank_account_review(
                account=account,
                approve=form.cleaned_data["decision"] == "approve",
                reason=form.cleaned_data["reason"],
                actor=request.user,
                organisation=request.organisation,
            )
        except DomainError as exc:
            form.add_error("reason" if exc.field == "reason" else None, exc.message)
        else:
            messages.success(request, "Décision enregistrée.")
            return redirect("www:review_list")
    previous = BankAccount.objects.filter(organisation=account.organisation, status="validated").first()
    return render(request, "www/places/review_bank.html", {"account": account, "form": form, "previous": previous})
