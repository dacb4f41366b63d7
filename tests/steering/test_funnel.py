"""The funnel against a recount made object by object in Python: every step, conversion, people reached, time to
first use, services mix, public and age, weekly, and per program, distributor, département and place. And each
viewer sees only its own part."""

import statistics
from collections import Counter, defaultdict

import pytest

from passnum.steering.funnel import Filters, Viewer, dashboard
from passnum.vouchers.enums import BeneficiaryPublic as P
from passnum.vouchers.enums import VoucherStatus as S
from passnum.vouchers.models import Booklet, Redemption, Voucher
from tests.factories import OrganisationFactory

pytestmark = pytest.mark.django_db


def recount(vouchers, unit):
    """The funnel, voucher by voucher."""
    alive = [v for v in vouchers if v.status != S.CANCELLED]
    redemptions = {r.voucher_id: r for r in Redemption.objects.filter(undone_at__isnull=True)}
    booklets = defaultdict(list)
    for v in alive:
        booklets[v.booklet_id].append(v)
    handed = [Booklet.objects.get(pk=b) for b, vs in booklets.items() if vs[0].distributed_at is not None]
    used = [b for b in handed if any(v.redeemed_at for v in booklets[b.pk])]
    delays = []
    for b in used:
        first = min(redemptions[v.pk].redeemed_at for v in booklets[b.pk] if v.pk in redemptions)
        delays.append((first - b.handed_out_at).days)
    return {
        "issued": len(alive),
        "allocated": sum(1 for v in alive if v.booklet.distributor_id),
        "handed_out": sum(1 for v in alive if v.distributed_at),
        "redeemed": sum(1 for v in alive if v.redeemed_at),
        "claimed": sum(1 for v in alive if v.claimed_at),
        "paid": sum(1 for v in alive if v.paid_at),
        "expired": sum(1 for v in alive if v.status == S.EXPIRED),
        "booklets_handed": len(handed),
        "booklets_used": len(used),
        "people_reached": len({b.beneficiary_id for b in used}),
        "people_handed": len({b.beneficiary_id for b in handed}),
        "delays": delays,
        "unit": unit,
    }


def test_operator_funnel_matches_a_recount(world):
    operator = OrganisationFactory(operator=True)
    d = dashboard(Viewer.of(operator), today=world.today)
    expected = recount(list(Voucher.objects.select_related("booklet")), None)
    steps = {s.key: s for s in d.steps}
    for key in ("issued", "allocated", "handed_out", "redeemed", "claimed", "paid", "expired"):
        assert steps[key].vouchers == expected[key], key
    assert (steps["issued"].vouchers, steps["handed_out"].vouchers, steps["redeemed"].vouchers) == (78, 50, 8)
    assert steps["paid"].vouchers == 7  # settled and paid on 2 February; the last one after
    assert steps["handed_out"].booklets == expected["booklets_handed"] == 5
    assert steps["first_use"].booklets == expected["booklets_used"] == 4
    assert steps["first_use"].rate == pytest.approx(4 / 5)
    assert steps["redeemed"].rate == pytest.approx(8 / 50)
    assert steps["budget"].value_cents == 150_000
    assert steps["issued"].value_cents == 78_000
    assert (d.people_handed, d.people_reached) == (5, 4)
    assert sorted(expected["delays"]) == [0, 8, 16, 37]
    assert d.median_days == statistics.median(expected["delays"]) == 12
    assert [r.values["n"] for r in d.delays] == [1, 0, 2, 1, 0]
    # every Marne voucher neither cancelled nor redeemed expired
    assert steps["expired"].vouchers == expected["expired"] == 60 - 2 - 5
    services = {r.key: r.values["n"] for r in d.services}
    assert services == dict(
        Counter(r.service for r in Redemption.objects.filter(undone_at__isnull=True) for _ in range(1))
    )


def test_breakdowns_by_program_distributor_departement_and_place(world):
    d = dashboard(Viewer.of(OrganisationFactory(operator=True)), today=world.today)
    programs = {r.label: r.values for r in d.by_program}
    assert programs["Pass Marne"]["redeemed"] == 5 and programs["Pass Ardennes"]["redeemed"] == 3
    assert programs["Pass Marne"]["people_reached"] == 3
    distributors = {r.label: r.values for r in d.by_distributor}
    assert distributors["CCAS de Reims"]["handed_out"] == 30
    assert distributors["CCAS de Reims"]["sleeping"] == 10  # allocated, never handed out (then expired)
    assert distributors["France Services Sedan"]["people_reached"] == 2
    deps = {r.key: r.values for r in d.by_departement}
    assert deps["51"]["redeemed"] == 4 and deps["08"]["redeemed"] == 4
    places = {r.label: r.values for r in d.by_place}
    assert places["Médiathèque Jean Falala"]["redeemed"] == 3
    assert places["Tiers-lieu Le Cèdre"]["redeemed"] == 5
    assert places["Tiers-lieu Le Cèdre"]["people_reached"] == 3
    assert sum(r.values["redeemed"] for r in d.by_place) == d.step("redeemed").vouchers


def test_public_and_age(world):
    d = dashboard(Viewer.of(OrganisationFactory(operator=True)), today=world.today)
    publics = {r.key: r.values for r in d.publics}
    assert publics[P.YOUTH] == {"handed": 2, "reached": 2, "rate": 1.0}
    assert publics[P.JOB_SEEKER]["reached"] == 1
    assert publics[""]["handed"] == 1 and publics[""]["reached"] == 0
    ages = {r.label: r.values for r in d.ages}
    assert ages["Moins de 25 ans"]["handed"] == 2
    assert ages["25 à 44 ans"]["reached"] == 1
    assert ages["75 ans et plus"]["reached"] == 1
    assert ages["Non renseigné"]["handed"] == 1


def test_weekly(world):
    d = dashboard(Viewer.of(OrganisationFactory(operator=True)), today=world.today)
    weeks = {r.key: r.values for r in d.weekly}
    assert weeks["2027-01-04"] == {"handed_out": 50, "redeemed": 2}
    assert weeks["2027-01-11"]["redeemed"] == 1
    assert weeks["2027-01-18"]["redeemed"] == 4
    assert weeks["2027-02-08"]["redeemed"] == 1
    assert sum(w["redeemed"] for w in weeks.values()) == 8


def test_a_funder_sees_its_programs_and_its_share(world):
    d = dashboard(Viewer.of(world.reims), today=world.today)
    assert [r.label for r in d.by_program] == ["Pass Marne"]
    steps = {s.key: s for s in d.steps}
    assert steps["redeemed"].vouchers == 5
    assert steps["redeemed"].value_cents == 5 * 400  # its 40 % of each 10 € voucher
    assert steps["budget"].value_cents == 40_000
    assert steps["budget"].vouchers == 100
    assert "France Services Sedan" in {r.label for r in d.by_distributor}  # it holds a Marne booklet
    assert d.value_label == "Votre part"
    ardennes = dashboard(Viewer.of(world.ardennes), today=world.today)
    assert [r.label for r in ardennes.by_program] == ["Pass Ardennes"]
    assert ardennes.people_reached == 1


def test_a_distributor_sees_its_booklets_only(world):
    d = dashboard(Viewer.of(world.ccas), today=world.today)
    keys = [s.key for s in d.steps]
    assert "budget" not in keys and "issued" not in keys
    assert d.step("handed_out").vouchers == 30
    assert d.step("redeemed").vouchers == 4
    assert [r.label for r in d.by_distributor] == ["CCAS de Reims"]
    assert d.people_reached == 2


def test_a_place_sees_what_was_redeemed_there(world):
    d = dashboard(Viewer.of(world.epn), today=world.today)
    assert [s.key for s in d.steps] == ["redeemed", "claimed", "paid", "expired"]
    assert d.step("redeemed").vouchers == 3
    assert [r.label for r in d.by_place] == ["Médiathèque Jean Falala"]
    assert d.people_reached == 2


def test_filters_narrow_and_never_widen(world):
    reims = Viewer.of(world.reims)
    only_other = dashboard(reims, Filters(program_ids=(world.other.pk,)), today=world.today)
    assert only_other.steps[0].value_cents == 0 and only_other.by_program == []
    by_dep = dashboard(reims, Filters(departement="08"), today=world.today)
    assert by_dep.step("handed_out").vouchers == 10
    by_place = dashboard(reims, Filters(place_id=world.epn.pk), today=world.today)
    assert by_place.step("redeemed").vouchers == 3
    # a distributor asking for another distributor's figures gets nothing
    other = dashboard(Viewer.of(world.ccas), Filters(distributor_id=world.fs.pk), today=world.today)
    assert other.step("handed_out").vouchers == 0
