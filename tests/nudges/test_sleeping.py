"""Stock sleeping at distributors: what funders see (their programs only), and the reallocation by the lead
funder's admins (row locks, every refusal with its code and nothing changed, journal, e-mails to both sides)."""

import datetime as dt
import threading

import pytest
from django.core import mail
from django.db import connection, connections
from django.urls import reverse
from django.utils import timezone

from passnum.common.errors import DomainError, PermissionRefused
from passnum.journal.models import JournalEntry
from passnum.nudges.services import booklets_reallocate, sleeping_booklets, sleeping_booklets_count, sleeping_stock
from passnum.vouchers.enums import CancelReason
from passnum.vouchers.models import Booklet
from passnum.vouchers.services import booklet_hand_out, booklets_issue
from passnum.vouchers.stock import booklet_cancel, booklets_transfer
from tests.desk.scenario import build
from tests.factories import OrganisationFactory, ProgramFactory, member_of
from tests.nudges.world import allocated_days_ago, stock

pytestmark = pytest.mark.django_db
SLEEP = 60


@pytest.fixture(autouse=True)
def _settings(settings):
    settings.PASSNUM_SLEEPING_AFTER_DAYS = SLEEP
    settings.PASSNUM_PUBLIC_URL = "https://pass.exemple.fr"


@pytest.fixture
def world():
    """sc (60/40 program), 3 sleeping booklets at the CCAS de Reims, 1 recent one there, 1 sleeping at another
    distributor; a second distributor to receive; admins everywhere."""
    sc = build()
    sc.lead_admin = member_of(sc.funder)
    sc.lead_member = member_of(sc.funder, admin=False)
    sc.cofunder_admin = member_of(sc.cofunder)
    sc.distributor_admin = member_of(sc.distributor, email="admin.ccas@exemple.fr")
    sc.target = OrganisationFactory(distributor=True, name="France Services Épernay")
    sc.target_admin = member_of(sc.target, email="admin.fs@exemple.fr")
    sc.target_member = member_of(sc.target, admin=False, email="agent.fs@exemple.fr")
    sc.sleeping = stock(sc, 3)
    sc.recent = stock(sc, 1, days_ago=10)[0]
    sc.elsewhere = stock(sc, 1, distributor=sc.target)[0]
    return sc


_SAME = object()


def _move(sc, booklets=None, *, all_sleeping=False, actor=None, organisation=None, target=_SAME, source=None):
    return booklets_reallocate(
        program=sc.program,
        from_distributor=source or sc.distributor,
        to_distributor=sc.target if target is _SAME else target,
        booklet_ids=[b.pk for b in booklets or []],
        all_sleeping=all_sleeping,
        actor=actor or sc.lead_admin,
        organisation=organisation or sc.funder,
    )


def _holders(sc):
    return dict(Booklet.objects.filter(program=sc.program).values_list("number", "distributor_id"))


# --- what funders see ----------------------------------------------------------------------------------------


def test_sleeping_stock_grouped_by_distributor(world):
    sc = world
    [group] = sleeping_stock(user=sc.lead_admin, funder=sc.funder)
    assert group.program == sc.program and group.can_reallocate is True
    rows = {r.distributor_name: r for r in group.rows}
    assert set(rows) == {"CCAS de Reims", "France Services Épernay"}
    ccas = rows["CCAS de Reims"]
    assert (ccas.booklets, ccas.vouchers, ccas.value_cents) == (3, 30, 30_000)
    assert ccas.oldest <= timezone.now() - dt.timedelta(days=89)
    assert group.booklets == 4 and group.value_cents == 40_000
    assert sleeping_booklets_count(funder=sc.funder) == 4


def test_handed_out_cancelled_and_recent_booklets_do_not_sleep(world):
    sc = world
    booklet_hand_out(booklet=sc.sleeping[0], organisation=sc.distributor)
    booklet_cancel(booklet=sc.sleeping[1], reason=CancelReason.LOST, actor=None, organisation=sc.funder)
    assert [b.pk for b in sleeping_booklets(program=sc.program, distributor=sc.distributor)] == [sc.sleeping[2].pk]
    allocated_days_ago([sc.recent], SLEEP - 1)
    assert sc.recent not in sleeping_booklets(program=sc.program)
    allocated_days_ago([sc.recent], SLEEP)
    assert sc.recent in sleeping_booklets(program=sc.program)


def test_cofunder_sees_read_only_and_other_funders_see_nothing(world):
    sc = world
    [group] = sleeping_stock(user=sc.cofunder_admin, funder=sc.cofunder)
    assert group.can_reallocate is False and group.booklets == 4
    [group] = sleeping_stock(user=sc.lead_member, funder=sc.funder)
    assert group.can_reallocate is False
    stranger = OrganisationFactory(funder=True)
    ProgramFactory(owner=stranger)
    assert sleeping_stock(user=member_of(stranger), funder=stranger) == []
    assert sleeping_booklets_count(funder=stranger) == 0


# --- reallocation --------------------------------------------------------------------------------------------


def test_reallocate_chosen_booklets(world, django_capture_on_commit_callbacks):
    sc = world
    before = timezone.now()
    with django_capture_on_commit_callbacks(execute=True):
        done = _move(sc, sc.sleeping[:2])
    assert [b.distributor_id for b in done] == [sc.target.pk, sc.target.pk]
    assert all(b.allocated_at >= before for b in done)  # a fresh start at the new distributor
    assert Booklet.objects.get(pk=sc.sleeping[2].pk).distributor_id == sc.distributor.pk
    entry = JournalEntry.objects.get(action="booklet.reallocate")
    n1, n2 = sc.sleeping[0].number, sc.sleeping[1].number
    assert entry.actor_id == sc.lead_admin.pk and entry.organisation_id == sc.funder.pk
    assert entry.object_type == "programs.program" and entry.object_id == str(sc.program.pk)
    assert entry.data == {
        "from": sc.distributor.pk,
        "to": sc.target.pk,
        "numbers": f"{n1}-{n2}",
        "count": 2,
        "all_sleeping": False,
    }
    # the admins of both distributors, one message each; members are not written to
    assert sorted(m.to[0] for m in mail.outbox) == ["admin.ccas@exemple.fr", "admin.fs@exemple.fr"]
    to_source = next(m for m in mail.outbox if m.to == ["admin.ccas@exemple.fr"])
    assert "réattribué à France Services Épernay 2 carnet(s)" in to_source.body.replace("\n", " ")
    to_target = next(m for m in mail.outbox if m.to == ["admin.fs@exemple.fr"])
    assert "https://pass.exemple.fr/prescripteur/stock/" in to_target.body
    assert f"n° {n1}-{n2}" in to_target.body


def test_reallocate_every_sleeping_booklet_of_a_distributor(world):
    sc = world
    done = _move(sc, all_sleeping=True)
    assert sorted(b.pk for b in done) == sorted(b.pk for b in sc.sleeping)
    assert Booklet.objects.get(pk=sc.recent.pk).distributor_id == sc.distributor.pk  # not sleeping: stays
    assert JournalEntry.objects.get(action="booklet.reallocate").data["all_sleeping"] is True
    with pytest.raises(DomainError) as exc:
        _move(sc, all_sleeping=True)
    assert exc.value.code == "no_sleeping_booklets"


@pytest.mark.parametrize(
    ("who", "code"),
    [("cofunder_admin", "reallocate_not_lead_admin"), ("lead_member", "reallocate_not_lead_admin")],
)
def test_only_the_lead_funders_admins_reallocate(world, who, code):
    sc = world
    before = _holders(sc)
    organisation = sc.cofunder if who == "cofunder_admin" else sc.funder
    with pytest.raises(PermissionRefused) as exc:
        _move(sc, sc.sleeping, actor=getattr(sc, who), organisation=organisation)
    assert exc.value.code == code and exc.value.status == 403
    assert _holders(sc) == before and not JournalEntry.objects.filter(action="booklet.reallocate").exists()


def _refused(sc, code, **kwargs):
    before = _holders(sc)
    mail.outbox.clear()
    with pytest.raises(DomainError) as exc:
        _move(sc, **kwargs)
    assert exc.value.code == code
    assert exc.value.message  # a French sentence for the page
    assert _holders(sc) == before
    assert not JournalEntry.objects.filter(action="booklet.reallocate").exists() and mail.outbox == []
    return exc.value


def test_refused_without_booklets(world):
    _refused(world, "booklets_required", booklets=[])


def test_refused_to_a_non_distributor(world):
    assert _refused(world, "not_a_distributor", booklets=world.sleeping, target=world.cofunder).field == "target"


def test_refused_from_a_non_distributor(world):
    _refused(world, "not_a_distributor", booklets=world.sleeping, source=world.place)


def test_refused_to_the_same_distributor(world):
    _refused(world, "same_distributor", booklets=world.sleeping, target=world.distributor)


def test_refused_to_an_inactive_distributor(world):
    world.target.is_active = False
    world.target.save(update_fields=["is_active"])
    _refused(world, "not_a_distributor", booklets=world.sleeping)


def test_refused_for_a_booklet_of_another_program(world):
    sc = world
    other = ProgramFactory(owner=sc.funder)
    foreign = booklets_issue(program=other, count=1)[0]
    _refused(sc, "booklet_unknown", booklets=[*sc.sleeping, foreign])


def test_refused_when_one_booklet_was_handed_out_meanwhile(world):
    sc = world
    booklet_hand_out(booklet=sc.sleeping[1], organisation=sc.distributor)
    error = _refused(sc, "booklet_handed_out", booklets=sc.sleeping)
    assert f"{sc.sleeping[1].number}" in error.message and "Rien n’a été réattribué" in error.message


def test_refused_when_one_booklet_left_the_distributor_meanwhile(world):
    sc = world
    booklets_transfer(booklet_ids=[sc.sleeping[0].pk], from_distributor=sc.distributor, to_distributor=sc.target)
    _refused(sc, "booklet_not_in_stock", booklets=sc.sleeping)


def test_refused_for_a_booklet_that_is_not_sleeping(world):
    _refused(world, "booklet_not_sleeping", booklets=[world.sleeping[0], world.recent])


def test_refused_for_a_cancelled_booklet(world):
    sc = world
    booklet_cancel(booklet=sc.sleeping[2], reason=CancelReason.LOST, actor=None, organisation=sc.funder)
    _refused(sc, "booklet_empty", booklets=sc.sleeping)


def test_refused_without_target(world):
    assert _refused(world, "target_required", booklets=world.sleeping, target=None).field == "target"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_hand_out_racing_the_reallocation_one_wins_whole():
    """A distributor hands a booklet out while the funder reallocates it: the row lock orders them; either the
    hand-out goes first and the whole reallocation is refused, or the booklet moves and the hand-out is refused."""
    if connection.vendor != "postgresql":
        pytest.skip("race tests need PostgreSQL (DATABASE_URL=postgres://…)")
    sc = build()
    admin = member_of(sc.funder)
    target = OrganisationFactory(distributor=True)
    booklets = stock(sc, 2)
    barrier = threading.Barrier(2)
    errors: list = [None, None]

    def hand_out():
        booklet_hand_out(booklet=booklets[0], organisation=sc.distributor)

    def reallocate():
        booklets_reallocate(
            program=sc.program,
            from_distributor=sc.distributor,
            to_distributor=target,
            booklet_ids=[b.pk for b in booklets],
            actor=admin,
            organisation=sc.funder,
        )

    def run(i, fn):
        try:
            barrier.wait()
            fn()
        except DomainError as exc:
            errors[i] = exc.code
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(0, hand_out)), threading.Thread(target=run, args=(1, reallocate))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    first = Booklet.objects.get(pk=booklets[0].pk)
    second = Booklet.objects.get(pk=booklets[1].pk)
    if errors[1] == "booklet_handed_out":  # the hand-out won: nothing moved
        assert errors[0] is None and first.handed_out_at is not None
        assert first.distributor_id == second.distributor_id == sc.distributor.pk
    else:  # the reallocation won: the hand-out finds the booklet gone from its stock
        assert errors == ["booklet_not_in_stock", None]
        assert first.handed_out_at is None and first.distributor_id == second.distributor_id == target.pk


def test_home_pages_show_the_counts_and_links(client, world):
    sc = world
    client.force_login(sc.lead_admin)
    page = client.get(reverse("www:home")).content.decode()
    assert reverse("www:nudges_sleeping") in page and "Stock dormant (4 carnets)" in page
