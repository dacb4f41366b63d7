"""Settlement under concurrency, on PostgreSQL: parallel settlements claim each voucher once and number claims
without gap; an undo racing a settlement either lands before it or is refused; paying a claim twice at once
pays it once."""

import datetime as dt

import pytest

from passnum.common.standard import Service
from passnum.settlement.enums import ClaimStatus
from passnum.settlement.models import Claim, ClaimLine
from passnum.settlement.services import claim_mark_paid, claims_approve, local_today, settle
from passnum.settlement.verify import ledger_verify
from passnum.vouchers.enums import VoucherStatus
from passnum.vouchers.models import Voucher
from passnum.vouchers.redemption import Desk, Refusal, receipt_undo, redeem
from tests.desk.scenario import build

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.xdist_group("races")]
T = Service.EVERYDAY_TOOLS


def _tomorrow():
    return local_today() + dt.timedelta(days=1)


def test_parallel_settlements_claim_each_voucher_once_without_gap(run_concurrently):
    sc = build()
    for position in range(1, 11):
        redeem(raw_code=sc.code(position), desk=Desk(place=sc.place), service=T)
    day = _tomorrow()
    cutoffs = [day, day + dt.timedelta(days=1)]

    def run(i):
        cutoff = cutoffs[i % len(cutoffs)]
        return settle(cutoff=cutoff, today=cutoff)

    results, errors = run_concurrently(run, 12)
    assert [e for e in errors if e is not None] == []
    assert sum(r.vouchers for r in results) == 10
    assert ClaimLine.objects.count() == 20  # 10 vouchers × 2 funders
    assert Voucher.objects.filter(status=VoucherStatus.CLAIMED).count() == 10
    for funder in (sc.funder, sc.cofunder):
        numbers = sorted(Claim.objects.filter(funder=funder).values_list("number", flat=True))
        assert numbers == list(range(1, len(numbers) + 1))
    assert ledger_verify() == []


def test_undo_racing_settlement_lands_before_or_is_refused(run_concurrently):
    sc = build()
    receipts = [redeem(raw_code=sc.code(p), desk=Desk(place=sc.place), service=T) for p in range(1, 9)]
    day = _tomorrow()

    def run(i):
        if i == 0:
            return settle(cutoff=day, today=day)
        return receipt_undo(receipt=receipts[i - 1], reason="Erreur", desk=Desk(place=sc.place))

    results, errors = run_concurrently(run, len(receipts) + 1)
    assert errors[0] is None
    refused = [e for e in errors[1:] if e is not None]
    assert all(isinstance(e, Refusal) and e.code == "redemption_claimed" for e in refused), refused
    undone = sum(1 for r in results[1:] if r is not None)
    assert undone + len(refused) == len(receipts)
    assert results[0].vouchers == len(refused)
    assert Voucher.objects.filter(status=VoucherStatus.DISTRIBUTED).count() == 2 + undone
    assert ledger_verify() == []


def test_paying_one_claim_twice_at_once_pays_it_once(run_concurrently):
    sc = build()
    redeem(raw_code=sc.code(1), desk=Desk(place=sc.place), service=T, count=2)
    day = _tomorrow()
    settle(cutoff=day, today=day)
    claim = Claim.objects.get(funder=sc.funder)
    claims_approve(claims=[claim], funder=sc.funder)

    results, errors = run_concurrently(lambda i: claim_mark_paid(claim=claim, reference=f"VIR-{i}"), 10)
    assert [e for e in errors if e is not None] == []
    claim.refresh_from_db()
    assert claim.status == ClaimStatus.PAID
    assert ledger_verify() == []
