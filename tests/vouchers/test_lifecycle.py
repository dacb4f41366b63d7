import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from passnum.common.errors import DomainError
from passnum.common.standard import Service
from passnum.journal.models import JournalEntry
from passnum.settlement.history import voucher_history
from passnum.settlement.ledger import account_balances
from passnum.settlement.verify import ledger_verify
from passnum.vouchers import codes
from passnum.vouchers.enums import TRANSITIONS, VoucherStatus
from passnum.vouchers.models import Redemption, Voucher, VoucherStatusLog
from passnum.vouchers.services import (
    booklet_allocate,
    booklet_hand_out,
    booklets_issue,
    redemption_undo,
    voucher_redeem,
    vouchers_cancel,
    vouchers_expire,
)
from tests.factories import OrganisationFactory
from tests.settlement.flow import settle_all, settle_and_pay

pytestmark = pytest.mark.django_db
S = VoucherStatus


@pytest.fixture
def distributor():
    return OrganisationFactory(distributor=True)


@pytest.fixture
def place():
    return OrganisationFactory(place=True)


@pytest.fixture
def handed_out(program, distributor):
    booklet = booklets_issue(program=program, count=1)[0]
    booklet_allocate(booklet=booklet, distributor=distributor)
    booklet_hand_out(booklet=booklet, organisation=distributor)
    return booklet


def test_transitions_map_covers_every_status():
    assert set(TRANSITIONS) == set(S.values)
    for targets in TRANSITIONS.values():
        assert targets <= set(S.values)


def test_issue_creates_booklets_vouchers_and_moves_budget(program, funder, cofunder):
    booklets = booklets_issue(program=program, count=2)
    assert [b.number for b in booklets] == [1, 2]
    vouchers = Voucher.objects.filter(program=program)
    assert vouchers.count() == 20
    assert all(v.status == S.ISSUED for v in vouchers)
    for v in vouchers:
        assert codes.normalise(v.code) == v.code
    balances = account_balances()
    assert balances[f"outstanding:p{program.id}:f{funder.id}"] == 20 * 600
    assert balances[f"outstanding:p{program.id}:f{cofunder.id}"] == 20 * 400
    assert balances[f"budget:p{program.id}:f{funder.id}"] == 600_000 - 12_000
    assert booklets_issue(program=program, count=1)[0].number == 3
    assert ledger_verify() == []


def test_issue_refuses_over_budget_and_changes_nothing(program):
    before = Voucher.objects.count()
    with pytest.raises(DomainError) as exc:
        booklets_issue(program=program, count=101)  # 101 × 100 € > 1 000 000 cents
    assert exc.value.code == "budget_exceeded"
    assert "Budget insuffisant" in exc.value.message
    assert Voucher.objects.count() == before
    assert ledger_verify() == []


@pytest.mark.parametrize("count", [0, -1, 100_001])
def test_issue_refuses_absurd_counts(program, count):
    with pytest.raises(DomainError):
        booklets_issue(program=program, count=count)


def test_database_refuses_commitment_over_budget(program):
    from passnum.programs.models import ProgramFunder

    pf = ProgramFunder.objects.filter(program=program).first()
    with pytest.raises(IntegrityError), transaction.atomic():
        ProgramFunder.objects.filter(pk=pf.pk).update(committed_cents=pf.budget_cents + 1)


def test_vouchers_unusable_until_handed_out(program, place):
    booklet = booklets_issue(program=program, count=1)[0]
    voucher = booklet.vouchers.first()
    with pytest.raises(DomainError) as exc:
        voucher_redeem(voucher=voucher, place=place, service=Service.EVERYDAY_TOOLS)
    assert exc.value.code == "not_handed_out"


def test_hand_out_requires_allocation_to_this_distributor(program, distributor):
    booklet = booklets_issue(program=program, count=1)[0]
    with pytest.raises(DomainError) as exc:
        booklet_hand_out(booklet=booklet, organisation=distributor)
    assert exc.value.code == "booklet_not_allocated"
    booklet_allocate(booklet=booklet, distributor=distributor)
    other = OrganisationFactory(distributor=True)
    with pytest.raises(DomainError) as exc:
        booklet_hand_out(booklet=booklet, organisation=other)
    assert exc.value.code == "booklet_not_in_stock"
    booklet_hand_out(booklet=booklet, organisation=distributor)
    assert set(booklet.vouchers.values_list("status", flat=True)) == {S.DISTRIBUTED}
    with pytest.raises(DomainError):
        booklet_hand_out(booklet=booklet, organisation=distributor)


def test_allocate_refuses_non_distributor(program, place):
    booklet = booklets_issue(program=program, count=1)[0]
    with pytest.raises(DomainError):
        booklet_allocate(booklet=booklet, distributor=place)


def test_full_lifecycle_with_ledger(program, handed_out, place, funder, cofunder):
    v1, v2, v3, v4 = list(handed_out.vouchers.order_by("position"))[:4]
    r1 = voucher_redeem(voucher=v1, place=place, service=Service.EVERYDAY_TOOLS)
    voucher_redeem(voucher=v2, place=place, service=Service.SAFE_USE)
    balances = account_balances()
    assert balances[f"payable:l{place.id}:f{funder.id}"] == 1200
    assert balances[f"payable:l{place.id}:f{cofunder.id}"] == 800
    assert ledger_verify() == []

    # undo returns the voucher to distributed and reverses the ledger
    redemption_undo(redemption=r1, reason="Erreur de saisie")
    v1.refresh_from_db()
    assert v1.status == S.DISTRIBUTED and v1.redeemed_at is None
    assert account_balances()[f"payable:l{place.id}:f{funder.id}"] == 600
    # the voucher can be redeemed again (a new active redemption)
    voucher_redeem(voucher=v1, place=place, service=Service.EVERYDAY_TOOLS)
    assert Redemption.objects.filter(voucher=v1).count() == 2
    assert ledger_verify() == []

    settle_and_pay()
    balances = account_balances()
    assert balances.get(f"payable:l{place.id}:f{funder.id}", 0) == 0
    assert balances[f"paid:f{funder.id}"] == 1200
    assert balances[f"paid:f{cofunder.id}"] == 800

    budget_before = account_balances()[f"budget:p{program.id}:f{funder.id}"]
    vouchers_cancel(vouchers=[v3], reason="Carnet perdu")
    vouchers_expire(vouchers=[v4])
    v3.refresh_from_db()
    v4.refresh_from_db()
    assert (v3.status, v3.cancel_reason) == (S.CANCELLED, "Carnet perdu")
    assert v4.status == S.EXPIRED
    # expired and cancelled value both return to the budget: 2 vouchers × 600 for the lead funder
    assert account_balances()[f"budget:p{program.id}:f{funder.id}"] == budget_before + 1200
    assert ledger_verify() == []

    # the status log holds the moves made voucher by voucher; the settlement's are its claim lines
    moves = [
        (S.ISSUED, S.DISTRIBUTED),
        (S.DISTRIBUTED, S.REDEEMED),
        (S.REDEEMED, S.DISTRIBUTED),
        (S.DISTRIBUTED, S.REDEEMED),
    ]
    log = list(VoucherStatusLog.objects.filter(voucher=v1).values_list("from_status", "to_status"))
    assert log == moves
    history = [(e.from_status, e.to_status) for e in voucher_history(v1)]
    assert history == [*moves, (S.REDEEMED, S.CLAIMED), (S.CLAIMED, S.PAID)]
    assert JournalEntry.objects.filter(action="receipt.create").count() == 3


def test_redeem_twice_is_refused(handed_out, place):
    v = handed_out.vouchers.first()
    voucher_redeem(voucher=v, place=place, service=Service.EVERYDAY_TOOLS)
    with pytest.raises(DomainError) as exc:
        voucher_redeem(voucher=v, place=place, service=Service.EVERYDAY_TOOLS)
    assert exc.value.code == "already_redeemed"


def test_partial_unique_index_refuses_second_active_redemption(handed_out, place):
    v = handed_out.vouchers.first()
    voucher_redeem(voucher=v, place=place, service=Service.EVERYDAY_TOOLS)
    with pytest.raises(IntegrityError), transaction.atomic():
        Redemption.objects.create(voucher=v, place=place, service="x", amount_cents=1000)


def test_redeem_refuses_ineligible_service_and_non_place(program, handed_out, place, distributor):
    program.eligible_services = [Service.EVERYDAY_TOOLS]
    program.save()
    v = handed_out.vouchers.first()
    with pytest.raises(DomainError) as exc:
        voucher_redeem(voucher=v, place=place, service=Service.LEISURE)
    assert exc.value.code == "service_not_eligible"
    with pytest.raises(DomainError) as exc:
        voucher_redeem(voucher=v, place=distributor, service=Service.EVERYDAY_TOOLS)
    assert exc.value.code == "not_a_place"
    v.refresh_from_db()
    assert v.status == S.DISTRIBUTED


def test_undo_needs_reason_and_only_once(handed_out, place):
    r = voucher_redeem(voucher=handed_out.vouchers.first(), place=place, service=Service.EVERYDAY_TOOLS)
    with pytest.raises(DomainError):
        redemption_undo(redemption=r, reason="  ")
    redemption_undo(redemption=r, reason="Doublon")
    with pytest.raises(DomainError):
        redemption_undo(redemption=r, reason="Doublon")


def test_undo_refused_once_claimed(handed_out, place):
    v = handed_out.vouchers.first()
    r = voucher_redeem(voucher=v, place=place, service=Service.EVERYDAY_TOOLS)
    settle_all()
    with pytest.raises(DomainError) as exc:
        redemption_undo(redemption=r, reason="Trop tard")
    assert exc.value.code == "redemption_claimed"


@pytest.mark.parametrize(
    ("setup", "action"),
    [
        ("paid", "cancel"),
        ("expired", "redeem"),
        ("cancelled", "expire"),
    ],
)
def test_forbidden_transitions_are_refused(handed_out, place, setup, action):
    v = handed_out.vouchers.first()
    if setup == "paid":
        voucher_redeem(voucher=v, place=place, service=Service.EVERYDAY_TOOLS)
        settle_and_pay()
    elif setup == "expired":
        vouchers_expire(vouchers=[v])
    elif setup == "cancelled":
        vouchers_cancel(vouchers=[v], reason="Volé")
    v.refresh_from_db()
    status_before = v.status
    with pytest.raises(DomainError):
        {
            "cancel": lambda: vouchers_cancel(vouchers=[v], reason="x"),
            "redeem": lambda: voucher_redeem(voucher=v, place=place, service=Service.EVERYDAY_TOOLS),
            "expire": lambda: vouchers_expire(vouchers=[v]),
        }[action]()
    v.refresh_from_db()
    assert v.status == status_before
    assert ledger_verify() == []


def test_cancel_requires_reason(handed_out):
    with pytest.raises(DomainError):
        vouchers_cancel(vouchers=[handed_out.vouchers.first()], reason="")


def test_cancel_returns_value_to_budget(program, funder):
    booklet = booklets_issue(program=program, count=1)[0]
    vouchers_cancel(vouchers=list(booklet.vouchers.all()), reason="Erreur d’émission")
    assert account_balances()[f"budget:p{program.id}:f{funder.id}"] == 600_000
    assert ledger_verify() == []


@pytest.mark.parametrize(
    "fields",
    [
        {"status": S.REDEEMED},  # redeemed without redeemed_at
        {"status": S.PAID},
        {"status": S.EXPIRED},
        {"status": S.CANCELLED, "cancelled_at": "now"},  # no reason
        {"status": S.DISTRIBUTED, "distributed_at": None},
        {"status": "bogus"},
        {"expired_at": "now"},  # issued with an expiry date
    ],
)
def test_check_constraints_tie_status_to_fields(handed_out, fields):
    v = handed_out.vouchers.first()
    values = {k: (timezone.now() if val == "now" else val) for k, val in fields.items()}
    with pytest.raises(IntegrityError), transaction.atomic():
        Voucher.objects.filter(pk=v.pk).update(**values)


def test_code_collision_is_retried_with_new_codes(program, monkeypatch):
    """Force the random source to repeat an existing code: the chunk retries and every code stays unique."""
    import itertools
    import secrets as real_secrets

    first = booklets_issue(program=program, count=1)[0]
    taken = first.vouchers.first().code
    value = 0
    for ch in taken[:-1]:
        value = value * 32 + codes.ALPHABET.index(ch)
    randbits = real_secrets.randbits
    fresh = (randbits(60) for _ in itertools.count())
    sequence = itertools.chain([value], fresh)
    monkeypatch.setattr(codes.secrets, "randbits", lambda bits: next(sequence))
    second = booklets_issue(program=program, count=1)[0]
    assert second.vouchers.count() == 10
    assert Voucher.objects.filter(code=taken).count() == 1
    assert ledger_verify() == []


def test_issue_command(program, capsys):
    from django.core.management import call_command
    from django.core.management.base import CommandError

    call_command("issue", "--program", program.slug, "--booklets", "3")
    assert "3 carnet(s) émis (n° 1 à 3), 30 chèques" in capsys.readouterr().out
    with pytest.raises(CommandError, match="Budget insuffisant"):
        call_command("issue", "--program", program.slug, "--booklets", "1000")
    with pytest.raises(CommandError, match="Dispositif inconnu"):
        call_command("issue", "--program", "nope", "--booklets", "1")
    with pytest.raises(CommandError, match="ne finance pas"):
        call_command("issue", "--program", program.slug, "--booklets", "1", "--funder", "inconnu")
    assert ledger_verify() == []


def test_hand_out_moves_value_from_stock_to_the_persons_hands(program, funder, cofunder, distributor):
    booklet = booklets_issue(program=program, count=1)[0]
    booklet_allocate(booklet=booklet, distributor=distributor)
    stock = f"outstanding:p{program.id}:f{funder.id}"
    hands = f"handed_out:p{program.id}:f{cofunder.id}"
    assert account_balances()[stock] == 6000 and account_balances().get(hands, 0) == 0
    booklet_hand_out(booklet=booklet, organisation=distributor)
    balances = account_balances()
    assert balances.get(stock, 0) == 0
    assert balances[hands] == 4000 and balances[f"handed_out:p{program.id}:f{funder.id}"] == 6000
    assert ledger_verify() == []
