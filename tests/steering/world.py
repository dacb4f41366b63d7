"""A small world for the steering tests, built through the real services with the clock stepped: two programs,
three funders, two distributors in two départements, two places; hand-outs, redemptions (one undone), a cancelled
pair, a settlement paid, then the first program's expiry."""

import datetime as dt
from zoneinfo import ZoneInfo

import time_machine

from passnum.common.standard import Service
from passnum.programs.services import FunderShare
from passnum.settlement.expiry import expire_due
from passnum.vouchers.enums import BeneficiaryPublic
from passnum.vouchers.handout import Person, booklet_give
from passnum.vouchers.redemption import Desk, receipt_undo, redeem
from passnum.vouchers.services import booklet_allocate, booklets_issue, vouchers_cancel
from tests.desk.scenario import make_site
from tests.factories import OrganisationFactory, ProgramFactory
from tests.settlement.flow import settle_and_pay

PARIS = ZoneInfo("Europe/Paris")
P = BeneficiaryPublic


def at(day: str, hour: int = 10):
    return dt.datetime.combine(dt.date.fromisoformat(day), dt.time(hour), tzinfo=PARIS)


class World:
    """Two programs, two funders (60/40 on the first), two distributors in two départements, two places."""

    def __init__(self):
        self.marne = OrganisationFactory(funder=True, name="Département de la Marne")
        self.reims = OrganisationFactory(funder=True, name="CU du Grand Reims")
        self.ardennes = OrganisationFactory(funder=True, name="Département des Ardennes")
        self.program = ProgramFactory(
            owner=self.marne,
            name="Pass Marne",
            valid_from=dt.date(2027, 1, 1),
            valid_until=dt.date(2027, 3, 31),
            grace_days=10,
            territory=[("departement", "51"), ("departement", "08")],
            funders=[
                FunderShare(funder=self.marne, share_bps=6000, budget_cents=60_000),
                FunderShare(funder=self.reims, share_bps=4000, budget_cents=40_000),
            ],
        )
        self.other = ProgramFactory(
            owner=self.ardennes,
            name="Pass Ardennes",
            valid_from=dt.date(2027, 1, 1),
            valid_until=dt.date(2027, 12, 31),
            budget_cents=50_000,
            territory=[("departement", "08")],
        )
        self.ccas = OrganisationFactory(distributor=True, name="CCAS de Reims", insee_code="51454")
        self.fs = OrganisationFactory(distributor=True, name="France Services Sedan", insee_code="08409")
        self.epn = OrganisationFactory(place=True, name="Médiathèque Jean Falala")
        self.cedre = OrganisationFactory(place=True, name="Tiers-lieu Le Cèdre", insee_code="08105")
        make_site(self.epn)
        make_site(self.cedre, commune="08105")


def give(booklet, distributor, public="", birth_year=None):
    return booklet_give(booklet=booklet, distributor=distributor, person=Person(public=public, birth_year=birth_year))


def code(booklet, position=1):
    return booklet.vouchers.get(position=position).code


def build_world():
    with time_machine.travel(at("2027-01-04"), tick=False) as clock:
        w = World()
        marne = booklets_issue(program=w.program, count=6)  # 60 vouchers
        ardennes = booklets_issue(program=w.other, count=2)  # 20 vouchers
        for b in marne[:4]:
            booklet_allocate(booklet=b, distributor=w.ccas)
        booklet_allocate(booklet=marne[4], distributor=w.fs)
        for b in ardennes:
            booklet_allocate(booklet=b, distributor=w.fs)
        vouchers_cancel(vouchers=list(marne[5].vouchers.all()[:2]), reason="lost")
        give(marne[0], w.ccas, P.JOB_SEEKER, 1990)  # 37 in 2027
        give(marne[1], w.ccas, P.SENIOR, 1950)  # 77
        give(marne[2], w.ccas, "", None)
        give(marne[4], w.fs, P.YOUTH, 2005)  # 22
        give(ardennes[0], w.fs, P.YOUTH, 2006)

        clock.move_to(at("2027-01-04", 15))  # same day
        redeem(raw_code=code(marne[0]), desk=Desk(place=w.epn), service=Service.EVERYDAY_TOOLS, count=2)
        clock.move_to(at("2027-01-12"))  # 8 days after hand-out
        redeem(raw_code=code(marne[1]), desk=Desk(place=w.epn), service=Service.ADMIN_PROCEDURES, count=1)
        undone = redeem(raw_code=code(marne[4]), desk=Desk(place=w.cedre), service=Service.EVERYDAY_TOOLS)
        receipt_undo(receipt=undone, reason="Erreur de carnet", desk=Desk(place=w.cedre))
        clock.move_to(at("2027-01-20"))  # 16 days after
        redeem(raw_code=code(ardennes[0]), desk=Desk(place=w.cedre), service=Service.EVERYDAY_TOOLS, count=2)
        redeem(raw_code=code(ardennes[0], 3), desk=Desk(place=w.cedre), service=Service.EVERYDAY_TOOLS, count=1)
        redeem(raw_code=code(marne[0], 3), desk=Desk(place=w.cedre), service=Service.EVERYDAY_TOOLS, count=1)
        clock.move_to(at("2027-02-02"))
        settle_and_pay()
        clock.move_to(at("2027-02-10"))
        redeem(raw_code=code(marne[4], 2), desk=Desk(place=w.cedre), service=Service.ADMIN_PROCEDURES, count=1)
        clock.move_to(at("2027-04-20"))  # the Marne's program is past end + grace
        expire_due()
        w.marne_booklets, w.ardennes_booklets = marne, ardennes
        w.today = dt.date(2027, 4, 20)
    return w  # the clock runs again: figures are checked with `today=w.today`
