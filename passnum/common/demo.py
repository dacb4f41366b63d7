"""The demo territory: the Marne, co-funded by the département (60 %) and the CU du Grand Reims (40 %).

Everything goes through the real services, so the demo's ledger verifies like production's."""

import csv
import datetime as dt
from pathlib import Path

from django.db import transaction
from django.utils import timezone

from passnum.accounts.enums import OrganisationKind, Role
from passnum.accounts.models import User
from passnum.accounts.services import membership_add, organisation_create
from passnum.common.standard import STANDARD_PUBLICS, Public, Service
from passnum.geo.enums import TerritoryLevel
from passnum.programs.services import FunderShare, ProgramData, program_create
from passnum.vouchers.services import booklet_allocate, booklets_issue

DEMO_PASSWORD = "demo-pass-numerique"
PLACES_CSV = Path(__file__).parent / "demo" / "lieux-demo-v1.csv"
DEMO_LOGINS = [
    ("Financeur (pilote)", "financeur@demo.pass-numerique.fr", "Département de la Marne"),
    ("Financeur (cofinanceur)", "cofinanceur@demo.pass-numerique.fr", "CU du Grand Reims"),
    ("Prescripteur", "prescripteur@demo.pass-numerique.fr", "CCAS de Reims, France Services d’Épernay"),
    ("Lieu de médiation", "lieu@demo.pass-numerique.fr", "Médiathèque Jean Falala"),
    ("Opérateur (back-office)", "operateur@demo.pass-numerique.fr", "Opérateur du Pass numérique"),
]
SERVICE_BY_LABEL = {label: value for value, label in Service.choices}


def demo_places() -> list[dict]:
    with PLACES_CSV.open(encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _demo_sites(places, *, reviewer, reviewer_org) -> None:
    """Each demo place declares its site, its bank details, and is qualified by the lead funder."""
    from schwifty import IBAN

    from passnum.common.standard import AccessMode, SpecificSupport
    from passnum.places.services import SiteData, bank_account_change, site_add, site_decide

    publics = {label: code for code, label in STANDARD_PUBLICS.items()}
    for i, (org, row) in enumerate(zip(places, demo_places(), strict=True)):
        admin = User.objects.create_user(f"admin-{row['id']}@demo.pass-numerique.fr", DEMO_PASSWORD)
        membership_add(user=admin, organisation=org, role=Role.ADMIN)
        site = site_add(
            organisation=org,
            actor=admin,
            data=SiteData(
                name=row["nom"],
                address=row["adresse"],
                postal_code=row["code_postal"],
                insee_code=row["code_insee"],
                latitude=float(row["latitude"]),
                longitude=float(row["longitude"]),
                opening_hours=row["horaires"],
                phone=row["telephone"],
                email=row["courriels"].split("|")[0],
                website=row["site_web"],
                summary=row["presentation_resume"],
                services={SERVICE_BY_LABEL[label]: 1 for label in row["services"].split("|")},
                publics=[publics[p] for p in row["publics_specifiquement_adresses"].split("|") if p],
                supports=[SpecificSupport.MOTOR] + ([SpecificSupport.DEAFNESS] if i % 3 == 0 else []),
            ),
        )
        site.access_modes = [AccessMode.WALK_IN, AccessMode.PHONE]
        site.save(update_fields=["access_modes"])
        iban = IBAN.generate("FR", bank_code="30006", account_code=f"{i + 1:011d}")
        bank_account_change(
            organisation=org, holder_name=row["nom"][:70], iban=iban.compact, bic="AGRIFRPP", actor=admin
        )
        site_decide(site=site, decision="qualify", reason="", actor=reviewer, organisation=reviewer_org)


def _demo_hand_outs_and_redemptions(program, booklets, *, ccas, distributor, places, place_user) -> list:
    """Six booklets handed out by the CCAS to people (pseudonymous, oriented to a place), then used at the
    places through the desk's own checks: sessions of one or two vouchers, and one redemption undone."""
    from passnum.vouchers.enums import BeneficiaryPublic
    from passnum.vouchers.handout import Person, booklet_give, suggest_places
    from passnum.vouchers.redemption import Desk, receipt_undo, redeem

    people = [
        Person(birth_year=1951, commune_code="51454", public=BeneficiaryPublic.SENIOR, needs=[Service.EVERYDAY_TOOLS]),
        Person(
            first_name="Nadia",
            consent_first_name=True,
            birth_year=1988,
            commune_code="51454",
            public=BeneficiaryPublic.JOB_SEEKER,
            needs=[Service.EMPLOYMENT, Service.ADMIN_PROCEDURES],
            consent_reminders=True,
        ),
        Person(birth_year=2004, commune_code="51108", public=BeneficiaryPublic.YOUTH, needs=[Service.ADMIN_PROCEDURES]),
        Person(birth_year=1960, commune_code="51230", public=BeneficiaryPublic.MINIMUM_INCOME, needs=[]),
        Person(birth_year=1979, commune_code="51454", public=BeneficiaryPublic.FAMILY, needs=[Service.PARENTING]),
        Person(),
    ]
    handed = []
    for booklet, person in zip(booklets, people, strict=True):
        suggested = suggest_places(program=program, commune_code=person.commune_code, needs=person.needs, limit=1)
        handed.append(
            booklet_give(
                booklet=booklet,
                distributor=ccas,
                person=person,
                oriented_site_id=suggested[0].pk if suggested else None,
                actor=distributor,
            )
        )
    # Sessions at the places: the person's first voucher (then the next ones), for a service of the site.
    receipts = []
    for i, booklet in enumerate(handed[:4]):
        place = places[i % len(places)]
        site = place.sites.get()
        service = site.catalogue.order_by("service").first().service
        for position in (1, 2, 3)[: 3 - i % 2]:
            voucher = booklet.vouchers.get(position=position)
            if voucher.status != "distributed":
                continue
            receipts.append(
                redeem(
                    raw_code=voucher.code,
                    desk=Desk(place=place, user=place_user if place == places[0] else None),
                    service=service,
                )
            )
    receipt_undo(
        receipt=receipts[-1], reason="Séance annulée : la personne n’est pas venue", desk=Desk(place=receipts[-1].place)
    )
    return handed


def _demo_living_funnel(program, booklets, *, distributors, places, actor) -> None:
    """Eight weeks of life for the steering page: booklets handed out week after week by the three distributors
    to people of every public and age, about two in three used after a few days (some the same day, some after a
    month), at the places of the department; and stock sleeping at the association since long before. Made through
    the services, then dated back (demo only). Deterministic."""
    import random

    from passnum.vouchers.enums import BeneficiaryPublic
    from passnum.vouchers.handout import Person, booklet_give
    from passnum.vouchers.models import Beneficiary, Booklet, Receipt, Redemption, Voucher
    from passnum.vouchers.redemption import Desk, redeem

    rng = random.Random(2026)
    now = timezone.now()
    publics = [p for p in BeneficiaryPublic.values if p != BeneficiaryPublic.OTHER] + [""]
    communes = {"ccas-reims": "51454", "france-services-epernay": "51230", "numerique-pour-tous-51": "51108"}
    for i, booklet in enumerate(booklets):
        distributor = distributors[i % len(distributors)]
        booklet_allocate(booklet=booklet, distributor=distributor, actor=actor, organisation=program.owner)
        handed_at = now - dt.timedelta(days=58 - i, hours=rng.randint(0, 6))
        person = Person(
            birth_year=rng.choice([None, *range(1940, 2008)]),
            commune_code=communes.get(distributor.slug, ""),
            public=rng.choice(publics),
        )
        booklet_give(booklet=booklet, distributor=distributor, person=person)
        Booklet.objects.filter(pk=booklet.pk).update(handed_out_at=handed_at, allocated_at=handed_at)
        Voucher.objects.filter(booklet=booklet).update(distributed_at=handed_at)
        Beneficiary.objects.filter(booklets=booklet).update(created_at=handed_at)
        if rng.random() > 0.65:
            continue  # not used (yet): the steering page shows these as booklets handed out but unused
        when = handed_at + dt.timedelta(days=rng.choice([0, 1, 2, 4, 6, 9, 13, 20, 34]), hours=2)
        position = 1
        while when < now - dt.timedelta(hours=1) and position <= 6:
            place = places[rng.randrange(len(places))]
            site = place.sites.get()
            service = rng.choice(list(site.catalogue.values_list("service", flat=True)))
            code = booklet.vouchers.get(position=position).code
            receipt = redeem(raw_code=code, desk=Desk(place=place), service=service)
            Receipt.objects.filter(pk=receipt.pk).update(redeemed_at=when)
            Redemption.objects.filter(receipt=receipt).update(redeemed_at=when)
            Voucher.objects.filter(redemptions__receipt=receipt).update(redeemed_at=when)
            position += receipt.count
            when += dt.timedelta(days=rng.choice([3, 7, 7, 14]))


def _demo_settlement(*, funders, places, handed, finance_user) -> None:
    """The funders' debtor accounts, then history: the desk's sessions spread over the last weeks, a settlement
    at the latest cut-off, the Marne's claims approved with a payment file and one claim paid. The CU du Grand
    Reims' claims wait for its approval, so the demo shows both sides."""
    from schwifty import IBAN

    from passnum.settlement.models import Claim
    from passnum.settlement.payments import bank_account_set, payment_file_create
    from passnum.settlement.services import claim_mark_paid, claims_approve, local_today, settle, settlement_calendar
    from passnum.vouchers.models import Booklet, Receipt, Redemption, Voucher

    for i, org in enumerate(funders, start=1):
        iban = IBAN.generate("FR", bank_code="30001", account_code=f"{i:011d}")
        bank_account_set(organisation=org, holder_name=org.name, iban=str(iban), bic="")
    # Places gave their bank details with their qualification file; the Marne validated them then.
    today = local_today()
    cutoff = settlement_calendar().latest(today)
    start = timezone.now() - dt.timedelta(days=(today - cutoff).days + 12)
    # Demo history only: the sessions happened over the twelve days before the last cut-off.
    Booklet.objects.filter(pk__in=[b.pk for b in handed]).update(handed_out_at=start - dt.timedelta(days=2))
    Voucher.objects.filter(booklet__in=handed).exclude(distributed_at=None).update(
        distributed_at=start - dt.timedelta(days=2)
    )
    active = list(Receipt.objects.filter(undone_at=None, booklet__in=handed).order_by("pk"))
    for n, receipt in enumerate(active[:-2]):  # the last two sessions come after the cut-off
        when = start + dt.timedelta(days=n, hours=10)
        Receipt.objects.filter(pk=receipt.pk).update(redeemed_at=when)
        Redemption.objects.filter(receipt=receipt).update(redeemed_at=when)
        Voucher.objects.filter(redemptions__receipt=receipt).update(redeemed_at=when)
    result = settle(cutoff=cutoff, today=today)
    marne = funders[0]
    mine = [c for c in result.claims if c.funder_id == marne.pk]
    claims_approve(claims=mine, funder=marne, actor=finance_user)
    payment_file_create(run=result.run, funder=marne, actor=finance_user)
    first = Claim.objects.filter(funder=marne).order_by("number").first()
    claim_mark_paid(claim=first, funder=marne, actor=finance_user, reference="VIR-DEMO-0001")


def _user(email: str, first: str, last: str, **extra) -> User:
    return User.objects.create_user(email, DEMO_PASSWORD, first_name=first, last_name=last, **extra)


@transaction.atomic
def seed_demo() -> None:
    """Create the demo data (the logins are DEMO_LOGINS)."""
    org = organisation_create
    operator = org(name="Opérateur du Pass numérique", kind=OrganisationKind.OPERATOR, slug="operateur")
    marne = org(
        name="Département de la Marne",
        kind=OrganisationKind.FUNDER,
        siren="225100015",
        slug="departement-marne",
    )
    reims = org(name="CU du Grand Reims", kind=OrganisationKind.FUNDER, siren="200067213", slug="cu-grand-reims")
    ccas = org(
        name="CCAS de Reims",
        kind=OrganisationKind.DISTRIBUTOR,
        siret="30112233900015",
        slug="ccas-reims",
        insee_code="51454",
    )
    france_services = org(
        name="France Services d’Épernay",
        kind=OrganisationKind.DISTRIBUTOR,
        siret="31223344800017",
        slug="france-services-epernay",
        insee_code="51230",
    )
    asso = org(
        name="Association Numérique pour tous 51",
        kind=OrganisationKind.DISTRIBUTOR,
        rna="W512000123",
        slug="numerique-pour-tous-51",
        insee_code="51108",
    )
    places = [
        org(
            name=row["nom"],
            kind=OrganisationKind.PLACE,
            siret=row["pivot"],
            insee_code=row["code_insee"],
            slug=row["id"],
        )
        for row in demo_places()
    ]

    def person(email, first, last, organisation, role=Role.ADMIN, **extra):
        user = _user(email, first, last, **extra)
        membership_add(user=user, organisation=organisation, role=role)
        return user

    funder_admin = person("financeur@demo.pass-numerique.fr", "Camille", "Durand", marne)
    person("cofinanceur@demo.pass-numerique.fr", "Dominique", "Martin", reims)
    distributor = person("prescripteur@demo.pass-numerique.fr", "Sacha", "Bernard", ccas, Role.MEMBER)
    membership_add(user=distributor, organisation=france_services, role=Role.MEMBER)
    place_user = person("lieu@demo.pass-numerique.fr", "Alex", "Petit", places[0])
    person("operateur@demo.pass-numerique.fr", "Claude", "Moreau", operator, is_staff=True, is_superuser=True)

    today = timezone.localdate()
    program = program_create(
        owner=marne,
        actor=funder_admin,
        data=ProgramData(
            name="Pass numérique Marne 2026",
            slug="marne-2026",
            description="Dix chèques de 10 € pour se former au numérique dans les lieux qualifiés de la Marne.",
            valid_from=today - dt.timedelta(days=60),
            valid_until=today + dt.timedelta(days=300),
            grace_days=30,
            funders=[
                FunderShare(funder=marne, share_bps=6000, budget_cents=6_000_000),
                FunderShare(funder=reims, share_bps=4000, budget_cents=4_000_000),
            ],
            territory=[(TerritoryLevel.DEPARTEMENT, "51")],
            eligible_services=list(Service.values),
            target_publics=[Public.SENIORS, Public.YOUTH, Public.FAMILIES],
        ),
    )
    booklets = booklets_issue(program=program, count=80, actor=funder_admin, organisation=marne)
    for b in booklets[:12]:
        booklet_allocate(booklet=b, distributor=ccas, actor=funder_admin, organisation=marne)
    for b in booklets[12:20]:
        booklet_allocate(booklet=b, distributor=france_services, actor=funder_admin, organisation=marne)
    for b in booklets[20:24]:
        booklet_allocate(booklet=b, distributor=asso, actor=funder_admin, organisation=marne)
    _demo_sites(places, reviewer=funder_admin, reviewer_org=marne)
    handed = _demo_hand_outs_and_redemptions(
        program, booklets[:6], ccas=ccas, distributor=distributor, places=places, place_user=place_user
    )
    from passnum.vouchers.models import Booklet

    # The association has not handed out its four booklets since it received them, three months ago.
    Booklet.objects.filter(pk__in=[b.pk for b in booklets[20:24]]).update(
        allocated_at=timezone.now() - dt.timedelta(days=90)
    )
    _demo_living_funnel(
        program,
        booklets[30:80],
        distributors=[ccas, france_services, asso],
        places=[p for p in places if p.sites.exists()],
        actor=funder_admin,
    )
    _demo_settlement(funders=[marne, reims], places=places, handed=handed, finance_user=funder_admin)
