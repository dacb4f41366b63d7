from django.db.models import Exists, OuterRef, Q, QuerySet

from passnum.accounts.enums import OrganisationKind
from passnum.accounts.models import Organisation
from passnum.geo.models import Commune
from passnum.places.enums import QualificationStatus
from passnum.places.models import BankAccount, Site
from passnum.programs.models import Program, ProgramFunder, ProgramTerritory


def _territory_items_covering(commune: Commune) -> Q:
    return (
        Q(level="commune", code__in=[c for c in (commune.code, commune.parent_id) if c])
        | Q(level="epci", code=commune.epci_id or "")
        | Q(level="departement", code=commune.departement_id)
        | Q(level="region", code=commune.region_id)
    )


def programs_covering(*, commune: Commune | None) -> QuerySet[Program]:
    if commune is None:
        return Program.objects.none()
    items = ProgramTerritory.objects.filter(_territory_items_covering(commune), program=OuterRef("pk"))
    return Program.objects.filter(Exists(items))


def reviewers_for_site(*, site: Site) -> QuerySet[Organisation]:
    """Funders of a program whose territory covers the site: they validate it."""
    programs = programs_covering(commune=site.commune)
    return Organisation.objects.filter(
        kind=OrganisationKind.FUNDER,
        is_active=True,
        program_shares__program__in=programs,
    ).distinct()


def can_review_site(*, organisation: Organisation | None, site: Site) -> bool:
    if organisation is None:
        return False
    if organisation.kind == OrganisationKind.OPERATOR:
        return True  # the fallback where no program covers the site yet
    return (
        organisation.kind == OrganisationKind.FUNDER
        and reviewers_for_site(site=site).filter(pk=organisation.pk).exists()
    )


def sites_in_territory_of(*, organisation: Organisation) -> QuerySet[Site]:
    """Sites a funder may review: in the territory of a program it funds. The operator sees every site."""
    qs = Site.objects.exclude(status=QualificationStatus.LISTED).select_related("organisation", "commune")
    if organisation.kind == OrganisationKind.OPERATOR:
        return qs
    if organisation.kind != OrganisationKind.FUNDER:
        return Site.objects.none()
    territory = ProgramTerritory.objects.filter(
        Exists(ProgramFunder.objects.filter(program=OuterRef("program"), funder=organisation))
    )
    commune_match = (
        Q(Exists(territory.filter(level="commune", code=OuterRef("commune_id"))))
        | Q(Exists(territory.filter(level="commune", code=OuterRef("commune__parent_id"))))
        | Q(Exists(territory.filter(level="epci", code=OuterRef("commune__epci_id"))))
        | Q(Exists(territory.filter(level="departement", code=OuterRef("commune__departement_id"))))
        | Q(Exists(territory.filter(level="region", code=OuterRef("commune__region_id"))))
    )
    return qs.filter(commune_match)


def site_get_for_reviewer(*, organisation: Organisation, pk: int) -> Site | None:
    return sites_in_territory_of(organisation=organisation).filter(pk=pk).first()


def bank_accounts_to_review(*, organisation: Organisation) -> QuerySet[BankAccount]:
    """Pending bank changes of places having a site this funder may review."""
    orgs = sites_in_territory_of(organisation=organisation).values("organisation_id")
    return BankAccount.objects.filter(status="pending", organisation_id__in=orgs).select_related("organisation")


def validated_bank_account(*, organisation: Organisation) -> BankAccount | None:
    return BankAccount.objects.filter(organisation=organisation, status="validated").first()
