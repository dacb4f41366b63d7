"""Writes on places: sign-up, qualification decisions, catalogue, bank details, documents."""

from dataclasses import dataclass, field

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone

from passnum.accounts.enums import OrganisationKind, Role
from passnum.accounts.models import Membership, Organisation, User
from passnum.accounts.services import membership_add, organisation_create
from passnum.common.errors import DomainError, InvalidTransition, PermissionRefused
from passnum.common.standard import Public, Service, SpecificSupport
from passnum.geo.selectors import commune_get
from passnum.journal.services import journal_record
from passnum.places import validation
from passnum.places.enums import (
    MAX_VOUCHERS_PER_SESSION,
    TRANSITIONS,
    BankAccountStatus,
    DocumentKind,
    QualificationStatus,
)
from passnum.places.models import BankAccount, QualificationLog, Site, SiteService, SupportingDocument
from passnum.places.selectors import can_review_site, reviewers_for_site

Q = QualificationStatus


@dataclass
class SiteData:
    name: str
    address: str
    postal_code: str
    insee_code: str
    services: dict[str, int]  # service code → vouchers per session
    latitude: float | None = None
    longitude: float | None = None
    address_complement: str = ""
    opening_hours: str = ""
    publics: list[str] = field(default_factory=list)
    supports: list[str] = field(default_factory=list)
    phone: str = ""
    email: str = ""
    website: str = ""
    booking_url: str = ""
    summary: str = ""


@dataclass
class BankData:
    holder_name: str
    iban: str
    bic: str


@dataclass
class ApplicantData:
    email: str
    password: str
    first_name: str = ""
    last_name: str = ""


def _validate_site(data: SiteData) -> None:
    if not data.name.strip():
        raise DomainError("Le nom du lieu est obligatoire.", code="name_required", field="name")
    if not data.address.strip():
        raise DomainError("L’adresse est obligatoire.", code="address_required", field="address")
    commune = commune_get(code=data.insee_code)
    if commune is None:
        raise DomainError(f"Code INSEE inconnu : {data.insee_code}.", code="unknown_insee_code", field="insee_code")
    if not (len(data.postal_code) == 5 and data.postal_code.isdigit()):
        raise DomainError("Le code postal a 5 chiffres.", code="invalid_postal_code", field="postal_code")
    if (data.latitude is None) != (data.longitude is None):
        raise DomainError("Indiquez la latitude et la longitude, ou aucune.", code="coordinates_incomplete")
    if data.latitude is not None and not (-90 <= data.latitude <= 90 and -180 <= data.longitude <= 180):
        raise DomainError("Coordonnées hors limites.", code="invalid_coordinates", field="latitude")
    data.opening_hours = validation.clean_opening_hours(data.opening_hours)
    if not data.services:
        raise DomainError("Choisissez au moins un service.", code="services_required", field="services")
    for code, n in data.services.items():
        if code not in Service.values:
            raise DomainError("Service inconnu.", code="unknown_service", field="services")
        if not 1 <= n <= MAX_VOUCHERS_PER_SESSION:
            raise DomainError(
                f"Une séance coûte entre 1 et {MAX_VOUCHERS_PER_SESSION} chèques.",
                code="invalid_vouchers_per_session",
                field="services",
            )
    if set(data.publics) - set(Public.values):
        raise DomainError("Public inconnu.", code="unknown_public", field="publics")
    if set(data.supports) - set(SpecificSupport.values):
        raise DomainError("Prise en charge inconnue.", code="unknown_support", field="supports")


def _create_site(organisation: Organisation, data: SiteData, *, actor) -> Site:
    commune = commune_get(code=data.insee_code)
    now = timezone.now()
    site = Site.objects.create(
        organisation=organisation,
        name=data.name.strip(),
        pivot=organisation.siret or organisation.rna,
        address=data.address.strip(),
        address_complement=data.address_complement.strip(),
        postal_code=data.postal_code,
        commune=commune,
        commune_name=commune.name,
        latitude=data.latitude,
        longitude=data.longitude,
        opening_hours=data.opening_hours,
        services=[s for s in Service.values if s in data.services],
        publics=data.publics,
        supports=data.supports,
        phone=data.phone,
        email=data.email,
        website=data.website,
        booking_url=data.booking_url,
        summary=data.summary[:280],
        source_id=f"org{organisation.id}-{Site.objects.filter(organisation=organisation).count() + 1}",
        status=Q.PENDING,
        status_changed_at=now,
    )
    SiteService.objects.bulk_create(
        [SiteService(site=site, service=code, vouchers_per_session=n) for code, n in data.services.items()]
    )
    QualificationLog.objects.create(
        site=site, from_status=Q.LISTED, to_status=Q.PENDING, reason="Demande de qualification", actor=actor
    )
    return site


def _notify_reviewers(site: Site) -> None:
    emails = list(
        Membership.objects.filter(organisation__in=reviewers_for_site(site=site), role=Role.ADMIN).values_list(
            "user__email", flat=True
        )
    )
    if emails:
        transaction.on_commit(
            lambda: send_mail(
                subject=f"Pass numérique : un lieu demande sa qualification ({site.commune_name})",
                message=(
                    f"« {site.name} » ({site.commune_name}) demande à accepter le pass numérique "
                    "sur votre territoire.\n"
                    "Connectez-vous pour vérifier la liste publique des critères et décider.\n"
                ),
                from_email=None,
                recipient_list=sorted(set(emails)),
            )
        )


def _notify_place(site: Site, subject: str, body: str) -> None:
    if site.organisation_id is None:
        return
    emails = list(
        Membership.objects.filter(organisation_id=site.organisation_id, role=Role.ADMIN).values_list(
            "user__email", flat=True
        )
    )
    if emails:
        transaction.on_commit(
            lambda: send_mail(subject=subject, message=body, from_email=None, recipient_list=sorted(emails))
        )


def place_signup(
    *,
    name: str,
    siret: str = "",
    rna: str = "",
    applicant: ApplicantData,
    sites: list[SiteData],
    bank: BankData,
    documents: list[tuple[str, object]] = (),
) -> Organisation:
    """Public sign-up: an organisation, its first admin, its sites (pending), its bank details (pending) and its
    documents, all or nothing. No fee, no quota, no score: the checklist is public."""
    if not (siret.strip() or rna.strip()):
        raise DomainError(
            "Indiquez le SIRET ou le numéro RNA de la structure.", code="identifier_required", field="siret"
        )
    if not sites:
        raise DomainError("Déclarez au moins un lieu.", code="sites_required")
    for data in sites:
        _validate_site(data)
    email = User.objects.normalize_email(applicant.email.strip()).lower()
    if User.objects.filter(email=email).exists():
        raise DomainError(
            "Un compte existe déjà avec cette adresse : connectez-vous, ou utilisez une autre adresse.",
            code="email_taken",
            field="email",
        )
    candidate = User(email=email, first_name=applicant.first_name, last_name=applicant.last_name)
    try:
        validate_password(applicant.password, user=candidate)
    except ValidationError as exc:
        raise DomainError(" ".join(exc.messages), code="weak_password", field="password") from exc
    iban = validation.clean_iban(bank.iban)
    bic = validation.clean_bic(bank.bic, iban=iban)
    if not bank.holder_name.strip():
        raise DomainError("Indiquez le titulaire du compte.", code="holder_required", field="holder_name")
    checked_docs = [(kind, f, validation.clean_document(f)) for kind, f in documents]
    for kind, _f, _t in checked_docs:
        if kind not in DocumentKind.values:
            raise DomainError("Type de pièce inconnu.", code="unknown_document_kind", field="documents")
    with transaction.atomic():
        organisation = organisation_create(
            name=name, kind=OrganisationKind.PLACE, siret=siret, rna=rna, insee_code=sites[0].insee_code
        )
        user = User.objects.create_user(
            email, applicant.password, first_name=applicant.first_name.strip(), last_name=applicant.last_name.strip()
        )
        membership_add(user=user, organisation=organisation, role=Role.ADMIN, actor=user)
        created = [_create_site(organisation, data, actor=user) for data in sites]
        account = BankAccount.objects.create(
            organisation=organisation, holder_name=bank.holder_name.strip()[:70], iban=iban, bic=bic, created_by=user
        )
        for kind, f, content_type in checked_docs:
            SupportingDocument.objects.create(
                organisation=organisation,
                kind=kind,
                file=f,
                content_type=content_type,
                size_bytes=f.size,
                uploaded_by=user,
            )
        journal_record(
            action="place.signup",
            actor=user,
            organisation=organisation,
            obj=organisation,
            data={"sites": [s.id for s in created]},
        )
        journal_record(action="bank.change", actor=user, organisation=organisation, obj=account)
        for site in created:
            _notify_reviewers(site)
    return organisation


def site_add(*, organisation: Organisation, data: SiteData, actor) -> Site:
    """A place's admin declares one more site; it waits for qualification like the first."""
    from passnum.accounts import perms

    if organisation.kind != OrganisationKind.PLACE or not perms.is_admin(actor, organisation):
        raise PermissionRefused("Seuls les administrateurs du lieu déclarent un nouveau lieu.")
    _validate_site(data)
    with transaction.atomic():
        site = _create_site(organisation, data, actor=actor)
        journal_record(action="site.add", actor=actor, organisation=organisation, obj=site)
        _notify_reviewers(site)
    return site


def site_apply(*, site: Site, actor, organisation: Organisation) -> Site:
    """A place asks (again) for qualification of one of its sites."""
    if site.organisation_id != organisation.id:
        raise PermissionRefused("Ce lieu n’appartient pas à votre structure.")
    return _transition(
        site, Q.PENDING, reason="Nouvelle demande de qualification", actor=actor, organisation=organisation
    )


def _transition(site: Site, to_status: str, *, reason: str, actor, organisation) -> Site:
    with transaction.atomic():
        site = Site.objects.select_for_update(of=("self",)).get(pk=site.pk)
        if to_status not in TRANSITIONS[site.status]:
            raise InvalidTransition(
                f"Ce lieu est « {site.get_status_display()} » : il ne peut pas passer à « {Q(to_status).label} ».",
                code=f"site_{site.status}",
            )
        QualificationLog.objects.create(
            site=site,
            from_status=site.status,
            to_status=to_status,
            reason=reason,
            actor=actor,
            organisation=organisation,
        )
        site.status, site.status_changed_at = to_status, timezone.now()
        site.save(update_fields=["status", "status_changed_at", "updated_at"])
        journal_record(
            action=f"site.{to_status}", actor=actor, organisation=organisation, obj=site, data={"reason": reason}
        )
        if to_status == Q.PENDING:
            _notify_reviewers(site)
    return site


DECISIONS = {"qualify": Q.QUALIFIED, "refuse": Q.REFUSED, "suspend": Q.SUSPENDED}


def site_decide(*, site: Site, decision: str, reason: str, actor, organisation: Organisation) -> Site:
    """A funder covering the site (or the operator) qualifies, refuses or suspends it. A reason is required to
    refuse or suspend; the place is told by e-mail."""
    if decision not in DECISIONS:
        raise DomainError("Décision inconnue.", code="unknown_decision")
    if not can_review_site(organisation=organisation, site=site):
        raise PermissionRefused("Ce lieu n’est pas sur le territoire de vos dispositifs.")
    reason = reason.strip()
    if decision != "qualify" and not reason:
        raise DomainError("Indiquez le motif : il sera transmis au lieu.", code="reason_required", field="reason")
    if (
        decision == "qualify"
        and not BankAccount.objects.filter(
            organisation_id=site.organisation_id, status__in=[BankAccountStatus.VALIDATED, BankAccountStatus.PENDING]
        ).exists()
    ):
        raise DomainError("Ce lieu n’a pas de coordonnées bancaires.", code="bank_required")
    site = _transition(site, DECISIONS[decision], reason=reason, actor=actor, organisation=organisation)
    label = Q(site.status).label.lower()
    _notify_place(
        site,
        f"Pass numérique : votre lieu « {site.name} » est {label}",
        f"Décision de {organisation.name} : {Q(site.status).label}.\n" + (f"Motif : {reason}\n" if reason else ""),
    )
    # Qualifying a site of a place whose bank details are still pending validates them too: the reviewer saw them.
    if site.status == Q.QUALIFIED:
        pending = BankAccount.objects.filter(
            organisation_id=site.organisation_id, status=BankAccountStatus.PENDING
        ).first()
        if (
            pending
            and not BankAccount.objects.filter(
                organisation_id=site.organisation_id, status=BankAccountStatus.VALIDATED
            ).exists()
        ):
            bank_account_review(
                account=pending,
                approve=True,
                reason="Validé avec la qualification",
                actor=actor,
                organisation=organisation,
            )
    return site


def catalogue_set(*, site: Site, services: dict[str, int], actor, organisation: Organisation) -> Site:
    """Only the place's admins change its catalogue."""
    from passnum.accounts import perms

    if site.organisation_id != organisation.id or not perms.is_admin(actor, organisation):
        raise PermissionRefused("Seuls les administrateurs du lieu modifient son catalogue.")
    if not services:
        raise DomainError("Choisissez au moins un service.", code="services_required", field="services")
    for code, n in services.items():
        if code not in Service.values:
            raise DomainError("Service inconnu.", code="unknown_service", field="services")
        if not 1 <= n <= MAX_VOUCHERS_PER_SESSION:
            raise DomainError(
                f"Une séance coûte entre 1 et {MAX_VOUCHERS_PER_SESSION} chèques.",
                code="invalid_vouchers_per_session",
                field="services",
            )
    with transaction.atomic():
        SiteService.objects.filter(site=site).delete()
        SiteService.objects.bulk_create(
            [SiteService(site=site, service=code, vouchers_per_session=n) for code, n in services.items()]
        )
        site.services = [s for s in Service.values if s in services]
        site.save(update_fields=["services", "updated_at"])
        journal_record(action="site.catalogue", actor=actor, organisation=organisation, obj=site, data=services)
    return site


def bank_account_change(*, organisation: Organisation, holder_name: str, iban: str, bic: str, actor) -> BankAccount:
    """New bank details wait for a funder's validation; until then payments use the validated ones (or none).
    Journaled: changing where money goes is a classic fraud path."""
    from passnum.accounts import perms

    if not perms.is_admin(actor, organisation):
        raise PermissionRefused("Seuls les administrateurs du lieu modifient les coordonnées bancaires.")
    iban = validation.clean_iban(iban)
    bic = validation.clean_bic(bic, iban=iban)
    holder_name = " ".join(holder_name.split())
    if not holder_name:
        raise DomainError("Indiquez le titulaire du compte.", code="holder_required", field="holder_name")
    from passnum.settlement.sepa import NAME_MAX, sepa_text

    if len(holder_name) > NAME_MAX or len(sepa_text(holder_name)) > NAME_MAX:
        raise DomainError(
            f"Le nom du titulaire tient en {NAME_MAX} caractères au plus (limite des virements SEPA).",
            code="holder_too_long",
            field="holder_name",
        )
    with transaction.atomic():
        BankAccount.objects.select_for_update(of=("self",)).filter(
            organisation=organisation, status=BankAccountStatus.PENDING
        ).update(status=BankAccountStatus.REPLACED)
        account = BankAccount.objects.create(
            organisation=organisation, holder_name=holder_name, iban=iban, bic=bic, created_by=actor
        )
        journal_record(
            action="bank.change",
            actor=actor,
            organisation=organisation,
            obj=account,
            data={"iban_end": iban[-4:]},
        )
        sites = list(Site.objects.filter(organisation=organisation).exclude(status=Q.LISTED)[:1])
        if sites:
            _notify_reviewers(sites[0])
    return account


def bank_account_review(
    *, account: BankAccount, approve: bool, reason: str, actor, organisation: Organisation
) -> BankAccount:
    site = Site.objects.filter(organisation_id=account.organisation_id).exclude(status=Q.LISTED).first()
    if site is None or not can_review_site(organisation=organisation, site=site):
        raise PermissionRefused("Ce lieu n’est pas sur le territoire de vos dispositifs.")
    if not approve and not reason.strip():
        raise DomainError("Indiquez le motif du refus.", code="reason_required", field="reason")
    with transaction.atomic():
        account = BankAccount.objects.select_for_update(of=("self",)).get(pk=account.pk)
        if account.status != BankAccountStatus.PENDING:
            raise DomainError("Ces coordonnées ont déjà été examinées.", code="bank_already_reviewed")
        now = timezone.now()
        if approve:
            BankAccount.objects.filter(
                organisation_id=account.organisation_id, status=BankAccountStatus.VALIDATED
            ).update(status=BankAccountStatus.REPLACED)
        account.status = BankAccountStatus.VALIDATED if approve else BankAccountStatus.REJECTED
        account.reviewed_by, account.reviewed_at, account.review_reason = actor, now, reason.strip()
        account.save(update_fields=["status", "reviewed_by", "reviewed_at", "review_reason"])
        journal_record(
            action="bank.validate" if approve else "bank.reject",
            actor=actor,
            organisation=organisation,
            obj=account,
            data={"reason": reason.strip()},
        )
    return account


def document_add(*, organisation: Organisation, kind: str, uploaded, actor) -> SupportingDocument:
    from passnum.accounts import perms

    if not perms.is_admin(actor, organisation):
        raise PermissionRefused("Seuls les administrateurs du lieu ajoutent des pièces.")
    if kind not in DocumentKind.values:
        raise DomainError("Type de pièce inconnu.", code="unknown_document_kind", field="kind")
    content_type = validation.clean_document(uploaded)
    with transaction.atomic():
        doc = SupportingDocument.objects.create(
            organisation=organisation,
            kind=kind,
            file=uploaded,
            content_type=content_type,
            size_bytes=uploaded.size,
            uploaded_by=actor,
        )
        journal_record(action="document.add", actor=actor, organisation=organisation, obj=doc, data={"kind": kind})
    return doc
