"""A ready desk: a program in the Marne (60/40), a distributor with a handed-out booklet, a place with one
qualified site in Reims offering two services. Shared by the service, page, API and race tests of issue 6."""

import itertools
from dataclasses import dataclass

from passnum.common.standard import Service
from passnum.places.enums import QualificationStatus
from passnum.places.models import Site, SiteService
from passnum.vouchers import signing
from passnum.vouchers.models import Booklet, Voucher
from passnum.vouchers.services import booklet_allocate, booklet_hand_out, booklets_issue
from tests.factories import OrganisationFactory, ProgramFactory, member_of

_seq = itertools.count(1)


def make_site(place, *, commune="51454", name=None, status=QualificationStatus.QUALIFIED, services=None) -> Site:
    n = next(_seq)
    services = services or {Service.EVERYDAY_TOOLS: 2, Service.ADMIN_PROCEDURES: 1}
    site = Site.objects.create(
        organisation=place,
        name=name or f"Espace numérique {n}",
        address="1 place de l’Hôtel de Ville",
        postal_code="51100",
        commune_id=commune,
        commune_name="Reims",
        latitude=49.2535,
        longitude=4.0346,
        services=list(services),
        source_id=f"test-site-{n}",
        status=status,
    )
    for code, per_session in services.items():
        SiteService.objects.create(site=site, service=code, vouchers_per_session=per_session)
    return site


@dataclass
class Scenario:
    funder: object
    cofunder: object
    program: object
    distributor: object
    distributor_user: object
    place: object
    place_user: object
    site: object
    booklet: Booklet

    def vouchers(self, booklet=None) -> list[Voucher]:
        return list((booklet or self.booklet).vouchers.order_by("position"))

    def code(self, position=1, booklet=None) -> str:
        return self.vouchers(booklet)[position - 1].code

    def qr(self, position=1, booklet=None) -> str:
        return signing.sign_code(self.code(position, booklet))

    def new_booklet(self, *, hand_out=True) -> Booklet:
        booklet = booklets_issue(program=self.program, count=1)[0]
        booklet_allocate(booklet=booklet, distributor=self.distributor)
        if hand_out:
            booklet_hand_out(booklet=booklet, organisation=self.distributor)
        return Booklet.objects.get(pk=booklet.pk)


def build(**program_kwargs) -> Scenario:
    funder = OrganisationFactory(funder=True, name="Département de la Marne")
    cofunder = OrganisationFactory(funder=True, name="CU du Grand Reims")
    program = ProgramFactory(owner=funder, cofunder=cofunder, **program_kwargs)
    distributor = OrganisationFactory(distributor=True, name="CCAS de Reims")
    place = OrganisationFactory(place=True, name="Médiathèque Jean Falala")
    site = make_site(place, name="Médiathèque Jean Falala")
    scenario = Scenario(
        funder=funder,
        cofunder=cofunder,
        program=program,
        distributor=distributor,
        distributor_user=member_of(distributor, admin=False),
        place=place,
        place_user=member_of(place, admin=False),
        site=site,
        booklet=None,
    )
    scenario.booklet = scenario.new_booklet()
    return scenario
