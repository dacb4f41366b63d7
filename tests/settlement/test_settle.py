"""Settlement core: settle → claims per (place, funder), approval, line rejection and incidents, paid."""

import datetime as dt

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from passnum.accounts.enums import Role
from passnum.accounts.perms import can_manage_finance
from passnum.common.errors import DomainError
from passnum.common.standard import Service
from passnum.journal.models import JournalEntry
from passnum.programs.models import ProgramFunder
from passnum.programs.services import FunderShare
from passnum.settlement.enums import ClaimStatus, IncidentStatus, LineStatus
from passnum.settlement.history import voucher_history
from passnum.settlement.ledger import account_balances
from passnum.settlement.models import Claim, ClaimLine, ClaimSequence, FinanceIncident, SettlementRun
from passnum.settlement.services import (
    Calendar,
    claim_get,
    claim_line_reject,
    claim_mark_paid,
    claims_approve,
    cutoff_instant,
    incident_close,
    local_today,
    settle,
)
from passnum.settlement.verify import ledger_verify
from passnum.vouchers.enums import VoucherStatus
from passnum.vouchers.models import Receipt, Redemption, Voucher, VoucherStatusLog
from passnum.vouchers.redemption import Desk, receipt_undo, redeem
from tests.desk.scenario import build, make_site
from tests.factories import MembershipFactory, OrganisationFactory, ProgramFactory, UserFactory, member_of
from tests.settlement.flow import settle_all

S = VoucherStatus
T = Service.EVERYDAY_TOOLS
pytestmark = pytest.mark.django_db


@pytest.fixture
def sc():
    return build()


def _redeem(sc, position=1, count=1, place=None, booklet=None):
    place = place or sc.place
    return redeem(raw_code=sc.code(position, booklet), desk=Desk(place=place), service=T, count=count)


def _backdate(receipt, when):
    Receipt.objects.filter(pk=receipt.pk).update(redeemed_at=when)
    Redemption.objects.filter(receipt=receipt).update(redeemed_at=when)


def test_settle_groups_redemptions_per_place_and_funder_with_cofunding_split(sc):
    other_place = OrganisationFactory(place=True, name="EPN de Tinqueux")
    make_site(other_place)
    _redeem(sc, 1, count=2)
    _redeem(sc, 3, place=other_place)
    result = settle_all()
    assert result.vouchers == 3
    claims = {(c.place_id, c.funder_id): c for c in Claim.objects.all()}
    assert set(claims) == {
        (sc.place.id, sc.funder.id),
        (sc.place.id, sc.cofunder.id),
        (other_place.id, sc.funder.id),
        (other_place.id, sc.cofunder.id),
    }
    assert claims[(sc.place.id, sc.funder.id)].claimed_cents == 2 * 600
    assert claims[(sc.place.id, sc.cofunder.id)].claimed_cents == 2 * 400
    assert claims[(other_place.id, sc.cofunder.id)].lines_count == 1
    # one line per voucher and funder; the funders' parts add up to the face value
    assert ClaimLine.objects.count() == 6
    for voucher in Voucher.objects.filter(status=S.CLAIMED):
        assert sum(voucher.claim_lines.values_list("amount_cents", flat=True)) == voucher.face_value_cents
    assert Voucher.objects.filter(status=S.CLAIMED).count() == 3
    # the claim lines, not a million status-log rows, record redeemed → claimed; the history reads them back
    assert not VoucherStatusLog.objects.filter(to_status=S.CLAIMED).exists()
    for voucher in Voucher.objects.filter(status=S.CLAIMED):
        last = voucher_history(voucher)[-1]
        lines = voucher.claim_lines.order_by("claim__reference").values_list("claim__reference", "funder__name")
        assert (last.from_status, last.to_status) == (S.REDEEMED, S.CLAIMED)
        assert last.reason == f"{result.run} : " + ", ".join(ref for ref, _ in lines)
        assert last.organisation == ", ".join(name for _, name in lines)
        assert {name for _, name in lines} == {sc.funder.name, sc.cofunder.name}
    assert JournalEntry.objects.filter(action="settlement.run").count() == 1
    assert ledger_verify() == []


def test_largest_remainder_split_per_voucher_adds_up():
    a, b, c = (OrganisationFactory(funder=True) for _ in range(3))
    program = ProgramFactory(
        owner=a,
        face_value_cents=1000,
        funders=[
            FunderShare(funder=a, share_bps=3333, budget_cents=333_300),
            FunderShare(funder=b, share_bps=3333, budget_cents=333_300),
            FunderShare(funder=c, share_bps=3334, budget_cents=333_400),
        ],
    )
    sc = build()
    sc.program = program
    booklet = sc.new_booklet()
    _redeem(sc, 1, booklet=booklet)
    settle_all()
    parts = sorted(ClaimLine.objects.values_list("amount_cents", flat=True))
    assert sum(parts) == 1000 and parts == [333, 333, 334]
    assert ledger_verify() == []


def test_cutoff_boundary_is_midnight_paris_and_later_redemptions_wait(sc):
    cutoff = local_today()
    before = _redeem(sc, 1)
    after = _redeem(sc, 2)
    _backdate(before, cutoff_instant(cutoff) - dt.timedelta(microseconds=1))
    _backdate(after, cutoff_instant(cutoff))
    result = settle(cutoff=cutoff)
    assert result.vouchers == 1
    assert set(ClaimLine.objects.values_list("redemption__receipt", flat=True)) == {before.pk}
    Voucher.objects.get(redemptions__receipt=after)  # still redeemed, waiting for the next cut-off
    assert Voucher.objects.get(redemptions__receipt=after).status == S.REDEEMED


def test_rerun_makes_no_duplicate_and_no_gap(sc):
    _redeem(sc, 1)
    first = settle_all()
    assert len(first.claims) == 2
    again = settle_all()
    assert again.claims == [] and again.vouchers == 0
    assert "aucun nouvel encaissement" in again.summary()
    assert Claim.objects.count() == 2 and SettlementRun.objects.count() == 1
    # a later run continues each funder's series without a gap
    _redeem(sc, 2)
    settle_all(days_ahead=2)
    for funder in (sc.funder, sc.cofunder):
        numbers = sorted(Claim.objects.filter(funder=funder).values_list("number", flat=True))
        assert numbers == [1, 2]
        assert ClaimSequence.objects.get(series=f"F{funder.id}").last_number == 2
    ref = Claim.objects.filter(funder=sc.funder).order_by("number").first().reference
    assert ref == f"DR-{local_today().year}-F{sc.funder.id}-000001"


def test_failed_settlement_rolls_back_its_numbers(sc, monkeypatch):
    _redeem(sc, 1)
    from passnum.settlement import services

    def boom(**kwargs):
        raise RuntimeError("crash while journaling")

    monkeypatch.setattr(services, "journal_record", boom)
    with pytest.raises(RuntimeError):
        settle_all()
    assert Claim.objects.count() == 0 and ClaimLine.objects.count() == 0
    assert not ClaimSequence.objects.filter(last_number__gt=0).exists()
    assert Voucher.objects.filter(status=S.CLAIMED).count() == 0
    monkeypatch.undo()
    settle_all()
    assert sorted(Claim.objects.values_list("number", flat=True)) == [1, 1]


def test_future_cutoff_is_refused_and_changes_nothing(sc):
    _redeem(sc, 1)
    with pytest.raises(DomainError) as exc:
        settle(cutoff=local_today() + dt.timedelta(days=1))
    assert exc.value.code == "cutoff_in_future"
    assert not SettlementRun.objects.exists()


def test_undone_redemptions_are_not_claimed_and_claimed_ones_cannot_be_undone(sc):
    undone = _redeem(sc, 1)
    receipt_undo(receipt=undone, reason="Erreur", desk=Desk(place=sc.place))
    kept = _redeem(sc, 2)
    result = settle_all()
    assert result.vouchers == 1
    assert set(ClaimLine.objects.values_list("redemption__receipt", flat=True)) == {kept.pk}
    with pytest.raises(DomainError) as exc:
        receipt_undo(receipt=kept, reason="Trop tard", desk=Desk(place=sc.place))
    assert exc.value.code == "redemption_claimed"


def test_approve_in_bulk_only_own_submitted_claims(sc):
    _redeem(sc, 1)
    settle_all()
    mine = list(Claim.objects.filter(funder=sc.funder))
    theirs = list(Claim.objects.filter(funder=sc.cofunder))
    with pytest.raises(DomainError) as exc:
        claims_approve(claims=mine + theirs, funder=sc.funder)
    assert exc.value.code == "claim_not_found"
    assert not Claim.objects.filter(status=ClaimStatus.APPROVED).exists()
    assert claims_approve(claims=mine, funder=sc.funder) == 1
    with pytest.raises(DomainError) as exc:
        claims_approve(claims=mine, funder=sc.funder)
    assert exc.value.code == "claim_not_submitted"


def test_reject_line_opens_incident_with_reversing_entries(sc):
    _redeem(sc, 1, count=2)
    settle_all()
    claim = Claim.objects.get(funder=sc.funder)
    line = claim.lines.order_by("pk").first()
    payable_key = f"payable:l{sc.place.id}:f{sc.funder.id}"
    assert account_balances()[payable_key] == 1200
    for bad_reason, code in (("  ", "reason_required"), ("x" * 501, "reason_too_long")):
        with pytest.raises(DomainError) as exc:
            claim_line_reject(line=line, funder=sc.funder, reason=bad_reason)
        assert exc.value.code == code
    with pytest.raises(DomainError) as exc:
        claim_line_reject(line=line, funder=sc.cofunder, reason="Pas à nous")
    assert exc.value.code == "claim_not_found"
    incident = claim_line_reject(line=line, funder=sc.funder, reason="Séance non réalisée")
    claim.refresh_from_db()
    assert (claim.rejected_cents, claim.payable_cents, claim.status) == (600, 600, ClaimStatus.SUBMITTED)
    balances = account_balances()
    assert balances[payable_key] == 600
    assert balances[f"contested:l{sc.place.id}:f{sc.funder.id}"] == 600
    assert incident.status == IncidentStatus.OPEN
    assert ledger_verify() == []
    with pytest.raises(DomainError) as exc:
        claim_line_reject(line=line, funder=sc.funder, reason="Encore")
    assert exc.value.code == "line_already_rejected"
    # rejecting the last line rejects the whole claim
    claim_line_reject(line=claim.lines.exclude(pk=line.pk).get(), funder=sc.funder, reason="Idem")
    claim.refresh_from_db()
    assert claim.status == ClaimStatus.REJECTED and claim.payable_cents == 0
    assert ledger_verify() == []


def test_reject_is_refused_after_approval(sc):
    _redeem(sc, 1)
    settle_all()
    claim = Claim.objects.get(funder=sc.funder)
    claims_approve(claims=[claim], funder=sc.funder)
    with pytest.raises(DomainError) as exc:
        claim_line_reject(line=claim.lines.get(), funder=sc.funder, reason="Trop tard")
    assert exc.value.code == "claim_not_submitted"
    assert not FinanceIncident.objects.exists()


def test_incident_reinstated_makes_the_line_payable_again(sc):
    _redeem(sc, 1)
    settle_all()
    claim = Claim.objects.get(funder=sc.funder)
    incident = claim_line_reject(line=claim.lines.get(), funder=sc.funder, reason="Doute")
    with pytest.raises(DomainError) as exc:
        incident_close(incident=incident, outcome=IncidentStatus.REINSTATED, resolution=" ")
    assert exc.value.code == "reason_required"
    with pytest.raises(DomainError) as exc:
        incident_close(incident=incident, outcome="maybe", resolution="?")
    assert exc.value.code == "invalid_outcome"
    incident_close(incident=incident, outcome=IncidentStatus.REINSTATED, resolution="Feuille d’émargement reçue")
    claim.refresh_from_db()
    assert claim.status == ClaimStatus.SUBMITTED and claim.payable_cents == 600
    assert claim.lines.get().status == LineStatus.CLAIMED
    assert account_balances().get(f"contested:l{sc.place.id}:f{sc.funder.id}", 0) == 0
    assert ledger_verify() == []
    with pytest.raises(DomainError) as exc:
        incident_close(incident=incident, outcome=IncidentStatus.WRITTEN_OFF, resolution="Non")
    assert exc.value.code == "incident_closed"


def test_incident_written_off_returns_value_to_funder_budget(sc):
    _redeem(sc, 1)
    settle_all()
    claim = Claim.objects.get(funder=sc.funder)
    budget_key = f"budget:p{sc.program.id}:f{sc.funder.id}"
    budget_before = account_balances()[budget_key]
    committed_before = ProgramFunder.objects.get(program=sc.program, funder=sc.funder).committed_cents
    incident = claim_line_reject(line=claim.lines.get(), funder=sc.funder, reason="Fraude avérée")
    incident_close(incident=incident, outcome=IncidentStatus.WRITTEN_OFF, resolution="Rejet confirmé")
    assert account_balances()[budget_key] == budget_before + 600
    assert ProgramFunder.objects.get(program=sc.program, funder=sc.funder).committed_cents == committed_before - 600
    assert ledger_verify() == []


def test_mark_paid_moves_payable_to_paid_and_vouchers_when_every_funder_paid(sc):
    _redeem(sc, 1, count=2)
    settle_all()
    lead = Claim.objects.get(funder=sc.funder)
    co = Claim.objects.get(funder=sc.cofunder)
    with pytest.raises(DomainError) as exc:
        claim_mark_paid(claim=lead)
    assert exc.value.code == "claim_not_approved"
    claims_approve(claims=[lead], funder=sc.funder)
    with pytest.raises(DomainError) as exc:
        claim_mark_paid(claim=lead, funder=sc.cofunder)
    assert exc.value.code == "claim_not_found"
    claim_mark_paid(claim=lead, funder=sc.funder, reference="VIR-42")
    lead.refresh_from_db()
    assert lead.status == ClaimStatus.PAID and lead.paid_reference == "VIR-42"
    # co-funded vouchers wait for the co-funder's payment
    assert Voucher.objects.filter(status=S.PAID).count() == 0
    balances = account_balances()
    assert balances[f"paid:f{sc.funder.id}"] == 1200
    assert balances[f"payable:l{sc.place.id}:f{sc.cofunder.id}"] == 800
    claims_approve(claims=[co], funder=sc.cofunder)
    claim_mark_paid(claim=co)
    assert Voucher.objects.filter(status=S.PAID).count() == 2
    assert not VoucherStatusLog.objects.filter(to_status=S.PAID).exists()
    for voucher in Voucher.objects.filter(status=S.PAID):
        history = voucher_history(voucher)
        assert [(e.from_status, e.to_status) for e in history][-3:] == [
            (S.DISTRIBUTED, S.REDEEMED),
            (S.REDEEMED, S.CLAIMED),
            (S.CLAIMED, S.PAID),
        ]
        assert history[-1].at == voucher.paid_at
        assert history[-1].reason == ", ".join(sorted([lead.reference, co.reference]))
    # idempotent: a bank statement imported twice changes nothing
    tx_before = JournalEntry.objects.count()
    claim_mark_paid(claim=co)
    assert JournalEntry.objects.count() == tx_before
    assert ledger_verify() == []


def test_voucher_with_a_rejected_line_stays_claimed_after_payment(sc):
    _redeem(sc, 1, count=2)
    settle_all()
    lead = Claim.objects.get(funder=sc.funder)
    co = Claim.objects.get(funder=sc.cofunder)
    rejected_voucher = lead.lines.order_by("pk").first().voucher
    claim_line_reject(line=lead.lines.order_by("pk").first(), funder=sc.funder, reason="Doublon")
    for claim, funder in ((lead, sc.funder), (co, sc.cofunder)):
        claims_approve(claims=[claim], funder=funder)
        claim_mark_paid(claim=claim)
    rejected_voucher.refresh_from_db()
    assert rejected_voucher.status == S.CLAIMED
    assert Voucher.objects.filter(status=S.PAID).count() == 1
    assert account_balances()[f"paid:f{sc.funder.id}"] == 600
    assert ledger_verify() == []


def test_claim_get_hides_claims_from_outsiders(sc):
    _redeem(sc, 1)
    settle_all()
    claim = Claim.objects.get(funder=sc.funder)
    assert claim_get(pk=claim.pk, organisation=sc.funder) == claim
    assert claim_get(pk=claim.pk, organisation=sc.place) == claim
    for outsider in (sc.cofunder, OrganisationFactory(place=True), sc.distributor):
        with pytest.raises(DomainError) as exc:
            claim_get(pk=claim.pk, organisation=outsider)
        assert exc.value.code == "claim_not_found"


def test_finance_role_may_manage_finance(sc):
    admin = member_of(sc.funder)
    member = member_of(sc.funder, admin=False)
    finance = UserFactory()
    MembershipFactory(user=finance, organisation=sc.funder, role=Role.FINANCE)
    assert can_manage_finance(admin, sc.funder) and can_manage_finance(finance, sc.funder)
    assert not can_manage_finance(member, sc.funder)
    assert not can_manage_finance(member_of(sc.place), sc.place)


def test_calendar_defaults_and_weekly():
    cal = Calendar.parse("1,16")
    assert cal.latest(dt.date(2026, 11, 25)) == dt.date(2026, 11, 16)
    assert cal.latest(dt.date(2026, 12, 1)) == dt.date(2026, 12, 1)
    assert cal.following(dt.date(2026, 11, 16)) == dt.date(2026, 12, 1)
    assert "1er et le 16" in cal.describe()
    weekly = Calendar.parse("weekly:0")
    assert weekly.latest(dt.date(2026, 11, 25)) == dt.date(2026, 11, 23)  # a Monday
    assert "lundi" in weekly.describe()
    for bad in ("", "0", "31", "weekly:9", "abc"):
        with pytest.raises(ValueError):
            Calendar.parse(bad)


def test_settle_command(sc, capsys, settings):
    _redeem(sc, 1)
    tomorrow = local_today() + dt.timedelta(days=1)
    with pytest.raises(CommandError, match="cutoff_in_future"):
        call_command("settle", "--cutoff", tomorrow.isoformat())
    with pytest.raises(CommandError, match="AAAA-MM-JJ"):
        call_command("settle", "--cutoff", "25/11/2026")
    # The calendar's latest cut-off is today at the latest: today's redemption waits for the next one.
    settings.PASSNUM_SETTLEMENT_CALENDAR = "weekly:" + str(local_today().weekday())
    call_command("settle")
    out = capsys.readouterr().out
    assert "aucun nouvel encaissement" in out and "Calendrier" in out
    Receipt.objects.update(redeemed_at=timezone.now() - dt.timedelta(days=2))
    Redemption.objects.update(redeemed_at=timezone.now() - dt.timedelta(days=2))
    call_command("settle", "--cutoff", local_today().isoformat())
    out = capsys.readouterr().out
    assert "2 demande(s) de remboursement" in out and "DR-" in out


def test_run_statement_rows_equal_each_claims_statement(sc):
    from passnum.settlement.statements import run_statement_rows, statement_rows

    other_place = OrganisationFactory(place=True, name="EPN de Tinqueux")
    make_site(other_place)
    _redeem(sc, 1, count=2)
    _redeem(sc, 3, place=other_place)
    result = settle_all()
    batch = dict(run_statement_rows(result.run))
    assert set(batch) == set(Claim.objects.filter(run=result.run))
    for claim, rows in batch.items():
        assert rows == list(statement_rows(claim))
        assert sum(r.amount_cents for r in rows) == claim.claimed_cents


def _write_line(**changes):
    """Replace the first line by a copy with `changes`, and check the deferred keys now (they wait for the commit)."""
    from django.db import connection

    line = ClaimLine.objects.order_by("pk").first()
    values = {f: getattr(line, f) for f in ("claim_id", "funder_id", "voucher_id", "redemption_id", "redeemed_at")}
    values.update(service=line.service, amount_cents=line.amount_cents, status=LineStatus.CLAIMED, **changes)
    ClaimLine.objects.filter(pk=line.pk).delete()  # make room under the unique (voucher, funder)
    ClaimLine.objects.create(**values)
    connection.check_constraints()


def _forged_line(**changes):
    from django.db import IntegrityError, transaction

    with pytest.raises(IntegrityError), transaction.atomic():
        _write_line(**changes)


def test_the_database_accepts_a_true_copy_of_a_line(sc):
    _redeem(sc, 1)
    settle_all()
    _write_line()  # the control for the two refusals below: an unchanged copy passes every key


def test_the_database_refuses_a_line_whose_funder_is_not_its_claims(sc):
    _redeem(sc, 1)
    _redeem(sc, 2)
    settle_all()
    _forged_line(funder_id=sc.cofunder.pk, claim_id=Claim.objects.get(funder=sc.funder).pk)
    assert ClaimLine.objects.count() == 4


def test_the_database_refuses_a_line_whose_redemption_is_another_vouchers(sc):
    _redeem(sc, 1)
    _redeem(sc, 2)
    settle_all()
    line = ClaimLine.objects.order_by("pk").first()
    other = Redemption.objects.exclude(voucher_id=line.voucher_id).first()
    _forged_line(redemption_id=other.pk)
    _forged_line(redemption_id=10**9)
    assert ClaimLine.objects.count() == 4
