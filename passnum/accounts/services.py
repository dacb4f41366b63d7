import hashlib
import secrets
from datetime import timedelta

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify

from passnum.accounts import validation
from passnum.accounts.enums import OrganisationKind, Role
from passnum.accounts.models import Invitation, Membership, Organisation, User
from passnum.common.errors import DomainError, PermissionRefused
from passnum.journal.services import journal_record


def _unique_slug(name: str) -> str:
    base = slugify(name)[:70] or "organisation"
    slug, n = base, 2
    while Organisation.objects.filter(slug=slug).exists():
        slug, n = f"{base}-{n}", n + 1
    return slug


def organisation_create(
    *,
    name: str,
    kind: str,
    siret: str = "",
    siren: str = "",
    rna: str = "",
    insee_code: str = "",
    slug: str = "",
    actor: User | None = None,
) -> Organisation:
    name = name.strip()
    if not name:
        raise DomainError("Le nom de l’organisation est obligatoire.", code="name_required", field="name")
    if kind not in OrganisationKind.values:
        raise DomainError("Type d’organisation inconnu.", code="invalid_kind", field="kind")
    siret = validation.clean_siret(siret) if siret.strip() else ""
    siren = validation.clean_siren(siren) if siren.strip() else ""
    if siret and siren and not siret.startswith(siren):
        raise DomainError("Le SIRET doit commencer par le SIREN.", code="siret_siren_mismatch", field="siret")
    if siret and not siren:
        siren = siret[:9]
    rna = validation.clean_rna(rna) if rna.strip() else ""
    if insee_code:
        from passnum.geo.selectors import commune_get

        if commune_get(code=insee_code) is None:
            raise DomainError(f"Code INSEE inconnu : {insee_code}.", code="unknown_insee_code", field="insee_code")
    with transaction.atomic():
        org = Organisation.objects.create(
            name=name,
            kind=kind,
            slug=slug or _unique_slug(name),
            siret=siret,
            siren=siren,
            rna=rna,
            insee_code=insee_code,
        )
        journal_record(action="organisation.create", actor=actor, organisation=org, obj=org, data={"kind": kind})
    return org


def membership_add(*, user: User, organisation: Organisation, role: str = Role.MEMBER, actor=None) -> Membership:
    if role not in Role.values:
        raise DomainError("Rôle inconnu.", code="invalid_role")
    with transaction.atomic():
        membership, created = Membership.objects.get_or_create(
            user=user, organisation=organisation, defaults={"role": role}
        )
        if not created and membership.role != role:
            membership.role = role
            membership.save(update_fields=["role"])
        journal_record(
            action="membership.add",
            actor=actor,
            organisation=organisation,
            obj=membership,
            data={"role": role},
        )
    return membership


def _hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def invitation_create(
    *, organisation: Organisation, email: str, role: str, invited_by: User, accept_url_builder
) -> Invitation:
    """Create an invitation and e-mail its link. `accept_url_builder(token)` returns the absolute URL."""
    email = User.objects.normalize_email(email.strip()).lower()
    if not email or "@" not in email:
        raise DomainError("Adresse électronique invalide.", code="invalid_email", field="email")
    if role not in Role.values:
        raise DomainError("Rôle inconnu.", code="invalid_role", field="role")
    if Membership.objects.filter(organisation=organisation, user__email=email).exists():
        raise DomainError("Cette personne fait déjà partie de l’organisation.", code="already_member", field="email")
    token = secrets.token_urlsafe(32)
    with transaction.atomic():
        invitation = Invitation.objects.create(
            organisation=organisation,
            email=email,
            role=role,
            token_hash=_hash_token(token),
            invited_by=invited_by,
            expires_at=timezone.now() + timedelta(days=settings.INVITATION_VALIDITY_DAYS),
        )
        journal_record(action="invitation.create", actor=invited_by, organisation=organisation, obj=invitation)
        url = accept_url_builder(token)
        transaction.on_commit(
            lambda: send_mail(
                subject=f"Invitation à rejoindre {organisation.name} sur le Pass numérique",
                message=(
                    f"Bonjour,\n\n{invited_by.get_full_name()} vous invite à rejoindre « {organisation.name} » "
                    f"sur la plateforme du Pass numérique.\n\nPour accepter, ouvrez ce lien (valable "
                    f"{settings.INVITATION_VALIDITY_DAYS} jours) :\n{url}\n"
                ),
                from_email=None,
                recipient_list=[email],
            )
        )
    return invitation


def invitation_get_valid(*, token: str) -> Invitation:
    invitation = Invitation.objects.select_related("organisation").filter(token_hash=_hash_token(token)).first()
    if invitation is None:
        raise DomainError("Cette invitation n’existe pas.", code="invitation_unknown")
    if invitation.accepted_at is not None:
        raise DomainError("Cette invitation a déjà été utilisée.", code="invitation_used")
    if invitation.expires_at < timezone.now():
        raise DomainError("Cette invitation a expiré. Demandez-en une nouvelle.", code="invitation_expired")
    return invitation


def invitation_accept(
    *, token: str, password: str = "", first_name: str = "", last_name: str = "", acting_user=None
) -> User:
    """Accept an invitation: creates the account if needed, then the membership. Exactly once.

    For an address that already has an account, the e-mailed link alone is not enough: the person must be
    logged in as that account (`acting_user`), so a leaked link cannot open someone's account."""
    from django.contrib.auth.password_validation import validate_password
    from django.core.exceptions import ValidationError

    with transaction.atomic():
        invitation = invitation_get_valid(token=token)
        invitation = Invitation.objects.select_for_update(of=("self",)).get(pk=invitation.pk)
        if invitation.accepted_at is not None:
            raise DomainError("Cette invitation a déjà été utilisée.", code="invitation_used")
        user = User.objects.filter(email=invitation.email).first()
        if user is not None and (acting_user is None or acting_user.pk != user.pk):
            raise PermissionRefused(
                "Un compte existe déjà pour cette adresse : connectez-vous avec ce compte pour accepter.",
                code="login_required",
            )
        if user is None:
            candidate = User(email=invitation.email, first_name=first_name, last_name=last_name)
            try:
                validate_password(password, user=candidate)
            except ValidationError as exc:
                raise DomainError(" ".join(exc.messages), code="weak_password", field="password") from exc
            user = User.objects.create_user(
                invitation.email, password, first_name=first_name.strip(), last_name=last_name.strip()
            )
        invitation.accepted_at = timezone.now()
        invitation.save(update_fields=["accepted_at"])
        membership_add(user=user, organisation=invitation.organisation, role=invitation.role, actor=user)
        journal_record(action="invitation.accept", actor=user, organisation=invitation.organisation, obj=invitation)
    return user
