"""Race tests on PostgreSQL: threads, real concurrent transactions, `transaction=True`."""

import pytest

from passnum.common.errors import DomainError
from passnum.common.standard import Service
from passnum.programs.models import ProgramFunder
from passnum.settlement.verify import ledger_verify
from passnum.vouchers.enums import VoucherStatus
from passnum.vouchers.models import Redemption, Voucher
from passnum.vouchers.services import booklet_allocate, booklet_hand_out, booklets_issue, voucher_redeem
from tests.factories import OrganisationFactory, ProgramFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.xdist_group("races")]


def test_concurrent_issuance_cannot_exceed_any_funders_budget(run_concurrently):
    funder = OrganisationFactory(funder=True)
    cofunder = OrganisationFactory(funder=True)
    # 10 booklets of 10 × 10 € fit in the budget: 60 000 / 40 000 cents
    program = ProgramFactory(owner=funder, cofunder=cofunder, budget_cents=100_000)

    results, errors = run_concurrently(lambda i: booklets_issue(program=program, count=3), 8)

    succeeded = [r for r in results if r is not None]
    refused = [e for e in errors if e is not None]
    assert all(isinstance(e, DomainError) and e.code == "budget_exceeded" for e in refused), refused
    assert len(succeeded) == 3  # 3 × 3 booklets = 9 ≤ 10 < 12
    for pf in ProgramFunder.objects.filter(program=program):
        assert pf.committed_cents <= pf.budget_cents
    numbers = sorted(Voucher.objects.filter(program=program).values_list("booklet__number", flat=True).distinct())
    assert numbers == list(range(1, 10))  # gapless booklet numbers
    assert ledger_verify() == []


def test_concurrent_redemptions_of_one_voucher_leave_exactly_one(run_concurrently):
    program = ProgramFactory()
    distributor = OrganisationFactory(distributor=True)
    places = [OrganisationFactory(place=True) for _ in range(2)]
    booklet = booklets_issue(program=program, count=1)[0]
    booklet_allocate(booklet=booklet, distributor=distributor)
    booklet_hand_out(booklet=booklet, organisation=distributor)
    voucher = booklet.vouchers.first()

    results, errors = run_concurrently(
        lambda i: voucher_redeem(voucher=voucher, place=places[i % 2], service=Service.EVERYDAY_TOOLS), 10
    )

    assert len([r for r in results if r is not None]) == 1
    assert all(isinstance(e, DomainError) and e.code == "already_redeemed" for e in errors if e is not None)
    assert Redemption.objects.filter(voucher=voucher, undone_at__isnull=True).count() == 1
    voucher.refresh_from_db()
    assert voucher.status == VoucherStatus.REDEEMED
    assert ledger_verify() == []
