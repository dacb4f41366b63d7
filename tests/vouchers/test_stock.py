import pytest

from passnum.common.errors import DomainError, PermissionRefused
from passnum.journal.models import JournalEntry
from passnum.settlement.ledger import account_balances
from passnum.settlement.verify import ledger_verify
from passnum.vouchers.models import Booklet
from passnum.vouchers.services import booklet_hand_out, booklets_issue
from passnum.vouchers.stock import (
    _numbers_text,
    booklet_cancel,
    booklets_allocate,
    booklets_return,
    booklets_transfer,
    free_booklets,
    stock_of,
)
from tests.factories import OrganisationFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def ccas():
    return OrganisationFactory(distributor=True, name="CCAS")


@pytest.fixture
def france_services():
    return OrganisationFactory(distributor=True, name="France Services")


@pytest.fixture
def issued(program):
    return list(booklets_issue(program=program, count=10))


def test_numbers_text():
    assert _numbers_text([1, 2, 3, 7, 9, 10]) == "1-3, 7, 9-10"
    assert _numbers_text([]) == ""


def test_allocate_by_quantity_takes_lowest_numbers(program, funder, ccas, issued):
    booklets = booklets_allocate(program=program, distributor=ccas, quantity=3, organisation=funder)
    assert [b.number for b in booklets] == [1, 2, 3]
    assert stock_of(distributor=ccas).count() == 3
    assert free_booklets(program=program).count() == 7
    entry = JournalEntry.objects.get(action="booklets.allocate")
    assert entry.data["numbers"] == "1-3"


def test_allocate_by_range(program, funder, ccas, france_services, issued):
    booklets_allocate(program=program, distributor=ccas, first=4, last=6, organisation=funder)
    assert sorted(stock_of(distributor=ccas).values_list("number", flat=True)) == [4, 5, 6]
    with pytest.raises(DomainError) as exc:
        booklets_allocate(program=program, distributor=france_services, first=5, last=12, organisation=funder)
    assert exc.value.code == "booklets_not_free"
    assert "5-6, 11-12" in exc.value.message
    assert stock_of(distributor=france_services).count() == 0  # nothing half done


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"quantity": 0}, "invalid_quantity"),
        ({"quantity": 11}, "not_enough_booklets"),
        ({"first": 5, "last": 2}, "invalid_range"),
        ({"first": 1}, "invalid_range"),
        ({"quantity": 1, "first": 1, "last": 1}, "quantity_or_range"),
        ({}, "quantity_or_range"),
    ],
)
def test_allocate_refusals(program, funder, ccas, issued, kwargs, code):
    with pytest.raises(DomainError) as exc:
        booklets_allocate(program=program, distributor=ccas, organisation=funder, **kwargs)
    assert exc.value.code == code


def test_only_lead_funder_allocates_and_only_to_distributors(program, funder, cofunder, ccas, issued):
    with pytest.raises(PermissionRefused):
        booklets_allocate(program=program, distributor=ccas, quantity=1, organisation=cofunder)
    with pytest.raises(DomainError):
        booklets_allocate(program=program, distributor=OrganisationFactory(place=True), quantity=1, organisation=funder)


def test_transfer_and_return(program, funder, ccas, france_services, issued):
    booklets = booklets_allocate(program=program, distributor=ccas, quantity=4, organisation=funder)
    ids = [b.pk for b in booklets]
    assert booklets_transfer(booklet_ids=ids[:2], from_distributor=ccas, to_distributor=france_services) == 2
    assert stock_of(distributor=france_services).count() == 2
    with pytest.raises(DomainError) as exc:
        booklets_transfer(booklet_ids=ids[:1], from_distributor=ccas, to_distributor=france_services)
    assert exc.value.code == "booklet_not_in_stock"
    booklet_hand_out(booklet=booklets[2], organisation=ccas)
    with pytest.raises(DomainError):
        booklets_return(booklet_ids=[ids[2]], distributor=ccas)  # handed out: not stock any more
    assert booklets_return(booklet_ids=[ids[3]], distributor=ccas) == 1
    assert Booklet.objects.get(pk=ids[3]).distributor is None
    assert free_booklets(program=program).filter(pk=ids[3]).exists()
    actions = set(JournalEntry.objects.values_list("action", flat=True))
    assert {"booklets.transfer", "booklets.return"} <= actions


def test_transfer_refusals(program, funder, ccas, issued):
    booklets = booklets_allocate(program=program, distributor=ccas, quantity=1, organisation=funder)
    with pytest.raises(DomainError):
        booklets_transfer(booklet_ids=[booklets[0].pk], from_distributor=ccas, to_distributor=ccas)
    with pytest.raises(DomainError):
        booklets_transfer(booklet_ids=[], from_distributor=ccas, to_distributor=OrganisationFactory(distributor=True))


def test_cancel_lost_booklet_returns_value_to_budget(program, funder, ccas, issued):
    budget_key = f"budget:p{program.id}:f{funder.id}"
    before = account_balances()[budget_key]
    booklet = booklets_allocate(program=program, distributor=ccas, quantity=1, organisation=funder)[0]
    assert booklet_cancel(booklet=booklet, reason="lost", detail="perdu au guichet", organisation=ccas) == 10
    assert account_balances()[budget_key] == before + 10 * 600
    assert set(booklet.vouchers.values_list("cancel_reason", flat=True)) == {"Perdu : perdu au guichet"}
    assert not stock_of(distributor=ccas).exists()  # a cancelled booklet leaves the stock
    with pytest.raises(DomainError):
        booklet_cancel(booklet=booklet, reason="lost", organisation=ccas)
    assert ledger_verify() == []


def test_cancel_refusals(program, funder, ccas, issued):
    booklet = issued[0]
    with pytest.raises(DomainError):
        booklet_cancel(booklet=booklet, reason="", organisation=funder)
    with pytest.raises(PermissionRefused):
        booklet_cancel(booklet=booklet, reason="stolen", organisation=ccas)  # not its booklet
