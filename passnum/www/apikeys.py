"""API keys of a distributor or a place (/cles-api/): members see the list; admins create a key, shown once, and
revoke keys after a confirmation. The key in clear appears only in the response to its creation (never stored,
never in a URL, a message or a log), and that response is not cached."""

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from passnum.accounts import apikeys, perms
from passnum.accounts.enums import OrganisationKind
from passnum.common.errors import DomainError
from passnum.www.decorators import organisation_required
from passnum.www.forms import PassnumForm


class ApiKeyForm(PassnumForm):
    name = forms.CharField(
        label="Nom de la clé",
        max_length=apikeys.NAME_MAX_LENGTH,
        help_text="Le logiciel ou le poste qui l’utilisera, par exemple : logiciel de caisse de l’accueil.",
        error_messages={"required": "Donnez un nom à la clé."},
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )


def _page(request, *, form, created=None):
    org = request.organisation
    context = {
        "keys": apikeys.api_keys_of(organisation=org),
        "form": form,
        "can_manage": perms.is_admin(request.user, org),
        "created": created,
    }
    response = render(request, "www/apikeys/list.html", context)
    if created is not None:
        response["Cache-Control"] = "no-store"
    return response


@organisation_required(OrganisationKind.DISTRIBUTOR, OrganisationKind.PLACE)
@require_http_methods(["GET", "POST"])
def api_keys(request):
    """Members: the organisation's keys. Admins: create one (POST)."""
    if request.method != "POST":
        return _page(request, form=ApiKeyForm())
    if not perms.is_admin(request.user, request.organisation):
        raise PermissionDenied
    form = ApiKeyForm(request.POST)
    if form.is_valid():
        try:
            api_key, raw = apikeys.api_key_create(
                organisation=request.organisation, name=form.cleaned_data["name"], actor=request.user
            )
        except DomainError as exc:
            form.add_error("name" if exc.field == "name" else None, exc.message)
        else:
            # Shown in this response only (no redirect: the key would have to be kept somewhere in between).
            return _page(request, form=ApiKeyForm(), created={"api_key": api_key, "key": raw})
    return _page(request, form=form)


@organisation_required(OrganisationKind.DISTRIBUTOR, OrganisationKind.PLACE)
@require_http_methods(["GET", "POST"])
def api_key_revoke(request, pk):
    """Admins: confirm (GET), then revoke (POST). Another organisation's key is a 404."""
    api_key = apikeys.api_key_get_for(organisation=request.organisation, pk=pk)
    if api_key is None:
        raise Http404
    if not perms.is_admin(request.user, request.organisation):
        raise PermissionDenied
    if api_key.revoked_at is not None:
        messages.info(request, f"La clé « {api_key.name} » est déjà révoquée.")
        return redirect("www:api_keys")
    if request.method != "POST":
        return render(request, "www/apikeys/revoke.html", {"api_key": api_key})
    try:
        apikeys.api_key_revoke(api_key=api_key, actor=request.user)
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(
            request, f"Clé « {api_key.name} » révoquée : les logiciels qui l’utilisent sont désormais refusés."
        )
    return redirect("www:api_keys")
