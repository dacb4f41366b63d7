"""Exactly once under fire (issue 6), on PostgreSQL with real concurrent transactions: the desk's `redeem`
through every check, lock and the partial unique index."""

import pytest
from django.core.management import call_command

from passnum.common.standard import Service
from passnum.settlement.ledger import account_balances
from passnum.settlement.verify import ledger_verify
from passnum.vouchers.enums import VoucherStatus
from passnum.vouchers.models import Receipt, Redemption
from passnum.vouchers.redemption import Desk, Refusal, receipt_undo, redeem
from tests.desk.scenario import build, make_site
from tests.factories import OrganisationFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.xdist_group("races")]
T = Service.EVERYDAY_TOOLS
THREADS = 50


def _desks(sc, n):
    """Half the threads at the scenario's place, half at a second qualified place: the same voucher presented
    at two desks at once, by 50 people from 50 addresses (no rate limit in the way)."""
    other = OrganisationFactory(place=True, name="Tiers-lieu de Reims")
    make_site(other, name="Tiers-lieu de Reims")
    return [Desk(place=(sc.place, other)[i % 2], ip=f"10.0.{i // 250}.{i % 250}") for i in range(n)]


def test_fifty_threads_redeeming_one_voucher_give_exactly_one_success(run_concurrently):
    sc = build()
    desks = _desks(sc, THREADS)
    code = sc.code(1)

    results, errors = run_concurrently(lambda i: redeem(raw_code=code, desk=desks[i], service=T), THREADS)

    succeeded = [r for r in results if r is not None]
    refused = [e for e in errors if e is not None]
    assert len(succeeded) == 1
    assert len(refused) == THREADS - 1
    assert all(isinstance(e, Refusal) and e.code == "already_redeemed" for e in refused), {repr(e) for e in refused}
    assert all("déjà été encaissé le" in e.message for e in refused)
    assert Redemption.objects.filter(undone_at__isnull=True).count() == 1
    assert Receipt.objects.count() == 1
    assert sc.vouchers()[0].status == VoucherStatus.REDEEMED
    place_id = succeeded[0].place_id
    balances = account_balances()
    assert balances[f"payable:l{place_id}:f{sc.funder.id}"] == 600
    assert balances[f"payable:l{place_id}:f{sc.cofunder.id}"] == 400
    assert ledger_verify() == []
    call_command("ledger", "verify")  # raises CommandError on any anomaly


def test_fifty_retries_with_one_idempotency_key_make_one_receipt(run_concurrently):
    sc = build()
    desk = Desk(place=sc.place, ip="10.1.0.1")
    code = sc.code(2)

    results, errors = run_concurrently(
        lambda i: redeem(raw_code=code, desk=desk, service=T, count=2, idempotency_key="retry-1"), THREADS
    )

    assert [e for e in errors if e is not None] == []
    assert len({r.pk for r in results}) == 1
    assert sum(1 for r in results if not r.replayed) == 1
    assert Receipt.objects.count() == 1 and Redemption.objects.count() == 2
    assert ledger_verify() == []


def test_concurrent_sessions_on_one_booklet_never_take_more_than_it_holds(run_concurrently):
    """Ten vouchers, 20 threads each taking 2 for different vouchers of the same booklet: at most 5 succeed, no
    voucher is taken twice, and the refusals say how many are left."""
    sc = build()
    desks = _desks(sc, 20)
    codes = [sc.code(p) for p in range(1, 11)]

    results, errors = run_concurrently(lambda i: redeem(raw_code=codes[i % 10], desk=desks[i], service=T, count=2), 20)

    succeeded = [r for r in results if r is not None]
    assert 1 <= len(succeeded) <= 5
    assert all(e.code in {"already_redeemed", "not_enough_vouchers"} for e in errors if e is not None)
    taken = list(Redemption.objects.values_list("voucher_id", flat=True))
    assert len(taken) == len(set(taken)) == 2 * len(succeeded)
    assert ledger_verify() == []


def test_undo_racing_redemptions_keeps_the_ledger_whole(run_concurrently):
    sc = build()
    desk = Desk(place=sc.place, ip="10.2.0.1")
    first = redeem(raw_code=sc.code(1), desk=desk, service=T)

    def work(i):
        if i == 0:
            return receipt_undo(receipt=first, reason="Erreur", desk=desk)
        return redeem(raw_code=sc.code(1), desk=Desk(place=sc.place, ip=f"10.2.1.{i}"), service=T)

    results, errors = run_concurrently(work, 10)

    assert Redemption.objects.filter(undone_at__isnull=True).count() <= 1
    assert all(isinstance(e, Refusal) for e in errors if e is not None)
    assert ledger_verify() == []
