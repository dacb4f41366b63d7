"""The desk's services: every refusal has its stable code and French message and changes nothing; k vouchers
are taken in one receipt; idempotency keys replay; the undo window; brute-force limits."""

import datetime as dt

import pytest
from django.utils import timezone

from passnum.common.standard import Service
from passnum.journal.models import JournalEntry
from passnum.places.enums import QualificationStatus
from passnum.settlement.ledger import account_balances
from passnum.settlement.verify import ledger_verify
from passnum.vouchers.enums import VoucherStatus as S
from passnum.vouchers.models import Receipt, Redemption
from passnum.vouchers.redemption import Desk, Refusal, parse_code, receipt_undo, redeem, voucher_check
from passnum.vouchers.services import vouchers_cancel
from tests.desk.scenario import build, make_site
from tests.factories import OrganisationFactory
from tests.settlement.flow import settle_all

T = Service.EVERYDAY_TOOLS
pytestmark = pytest.mark.django_db


@pytest.fixture
def sc():
    return build()


@pytest.fixture
def desk(sc):
    return Desk(place=sc.place, user=sc.place_user, ip="192.0.2.1")


def refused(code, fn, *args, **kwargs):
    with pytest.raises(Refusal) as exc:
        fn(*args, **kwargs)
    assert exc.value.code == code, exc.value.message
    assert exc.value.message
    return exc.value


def test_check_shows_value_program_and_what_is_left(sc, desk):
    check = voucher_check(raw_code=sc.code(1), desk=desk)
    assert check.program == sc.program and check.left == 10 and check.site == sc.site
    assert [s.code for s in check.services] == sorted([Service.ADMIN_PROCEDURES, T])
    assert check.service(T).max_vouchers == 2
    # a QR payload and a sloppy typed code work the same
    assert voucher_check(raw_code=sc.qr(2), desk=desk).voucher.position == 2
    sloppy = sc.code(3).lower().replace("0", "o").replace("1", "l")
    assert voucher_check(raw_code=f" {sloppy[:4]} - {sloppy[4:]} ", desk=desk).voucher.position == 3


def test_a_qr_prefix_in_lowercase_is_read_the_rest_stays_signed(sc, desk):
    payload = sc.qr(2)
    assert payload.startswith("PN1.")
    assert parse_code("pn1." + payload[4:]) == sc.code(2)
    assert parse_code(" Pn1." + payload[4:] + " ") == sc.code(2)
    assert voucher_check(raw_code="pn1." + payload[4:], desk=desk).voucher.position == 2
    # only the prefix is read in any case: the rest is signed as printed
    tampered = "pn1." + payload[4:-10] + ("A" if payload[-10] != "A" else "B") + payload[-9:]
    refused("qr_bad_signature", parse_code, tampered)
    refused("qr_malformed", parse_code, "pn1.abc")


def test_redeem_takes_k_vouchers_in_one_receipt_and_moves_the_ledger(sc, desk):
    receipt = redeem(raw_code=sc.code(3), desk=desk, service=T, count=2)
    assert (receipt.count, receipt.amount_cents, receipt.site) == (2, 2000, sc.site)
    taken = set(receipt.redemptions.values_list("voucher__position", flat=True))
    assert taken == {3, 1}  # the one presented, then the first left in order
    statuses = dict(sc.booklet.vouchers.values_list("position", "status"))
    assert [p for p, s in statuses.items() if s == S.REDEEMED] == sorted(taken)
    balances = account_balances()
    assert balances[f"payable:l{sc.place.id}:f{sc.funder.id}"] == 1200
    assert balances[f"payable:l{sc.place.id}:f{sc.cofunder.id}"] == 800
    assert ledger_verify() == []
    assert JournalEntry.objects.filter(action="receipt.create", object_id=str(receipt.pk)).exists()


def test_idempotency_key_replays_the_first_receipt(sc, desk):
    first = redeem(raw_code=sc.code(1), desk=desk, service=T, idempotency_key="k-1")
    again = redeem(raw_code=sc.code(1), desk=desk, service=T, idempotency_key="k-1")
    assert again.pk == first.pk and again.replayed and not first.replayed
    assert Receipt.objects.count() == 1
    refused("idempotency_key_reused", redeem, raw_code=sc.code(2), desk=desk, service=T, idempotency_key="k-1")
    refused("already_redeemed", redeem, raw_code=sc.code(1), desk=desk, service=T, idempotency_key="k-2")
    assert Receipt.objects.count() == 1


def test_every_voucher_refusal(sc, desk):
    code = sc.code(1)
    refused("code_malformed", voucher_check, raw_code="ABC", desk=desk)
    typo = code[:-1] + ("0" if code[-1] != "0" else "1")
    assert "mal recopié" in refused("code_typo", voucher_check, raw_code=typo, desk=desk).message
    refused("unknown_code", voucher_check, raw_code="0000000000000", desk=desk)
    tampered = sc.qr(1).replace(code, sc.code(2))
    refused("qr_bad_signature", voucher_check, raw_code=tampered, desk=desk)
    not_given = sc.new_booklet(hand_out=False)
    refused("not_handed_out", redeem, raw_code=sc.code(1, not_given), desk=desk, service=T)
    cancelled = sc.vouchers()[4]
    vouchers_cancel(vouchers=[cancelled], reason="Perdu")
    refused("cancelled", redeem, raw_code=cancelled.code, desk=desk, service=T)
    redeem(raw_code=code, desk=desk, service=T)
    err = refused("already_redeemed", redeem, raw_code=code, desk=desk, service=T)
    assert "Médiathèque Jean Falala" in err.message and err.context["redeemed_at"]
    refused("service_not_eligible", redeem, raw_code=sc.code(2), desk=desk, service=Service.LEISURE)
    refused("too_many_vouchers", redeem, raw_code=sc.code(2), desk=desk, service=Service.ADMIN_PROCEDURES, count=2)
    refused("invalid_count", redeem, raw_code=sc.code(2), desk=desk, service=T, count=0)
    assert Receipt.objects.count() == 1


def test_dates_refused_with_the_date(sc, desk):
    sc.program.valid_from = timezone.localdate() + dt.timedelta(days=3)
    sc.program.valid_until = timezone.localdate() + dt.timedelta(days=30)
    sc.program.save()
    err = refused("not_yet_valid", redeem, raw_code=sc.code(1), desk=desk, service=T)
    assert err.context["valid_from"] == sc.program.valid_from.isoformat()
    sc.program.valid_from = timezone.localdate() - dt.timedelta(days=30)
    sc.program.valid_until = timezone.localdate() - dt.timedelta(days=1)
    sc.program.save()
    err = refused("expired", redeem, raw_code=sc.code(1), desk=desk, service=T)
    assert err.context["valid_until"] == sc.program.valid_until.isoformat()


def test_place_refusals(sc, desk):
    sc.site.status = QualificationStatus.SUSPENDED
    sc.site.save()
    refused("place_suspended", redeem, raw_code=sc.code(1), desk=desk, service=T)
    sc.site.status = QualificationStatus.PENDING
    sc.site.save()
    refused("place_not_qualified", redeem, raw_code=sc.code(1), desk=desk, service=T)
    far = OrganisationFactory(place=True)
    make_site(far, commune="75056")  # Paris: outside the Marne
    refused("outside_territory", redeem, raw_code=sc.code(1), desk=Desk(place=far, ip="x"), service=T)
    two = OrganisationFactory(place=True)
    make_site(two)
    other = make_site(two)
    refused("site_required", redeem, raw_code=sc.code(1), desk=Desk(place=two, ip="x"), service=T)
    refused("unknown_site", redeem, raw_code=sc.code(1), desk=Desk(place=two, ip="x"), service=T, site_id=sc.site.pk)
    assert redeem(raw_code=sc.code(1), desk=Desk(place=two, ip="x"), service=T, site_id=other.pk).site == other
    refused("not_a_place", redeem, raw_code=sc.code(2), desk=Desk(place=sc.distributor), service=T)


def test_not_enough_vouchers_left(sc, desk):
    for position in range(1, 10):
        redeem(raw_code=sc.code(position), desk=desk, service=Service.ADMIN_PROCEDURES)
    err = refused("not_enough_vouchers", redeem, raw_code=sc.code(10), desk=desk, service=T, count=2)
    assert err.context["left"] == 1


def test_program_caps_vouchers_per_session(sc, desk):
    sc.program.session_vouchers = {T: 1}
    sc.program.save()
    refused("too_many_vouchers", redeem, raw_code=sc.code(1), desk=desk, service=T, count=2)
    assert voucher_check(raw_code=sc.code(1), desk=desk).service(T).max_vouchers == 1


def test_undo_within_window_reverses_everything(sc, desk, settings):
    before = account_balances()
    receipt = redeem(raw_code=sc.code(1), desk=desk, service=T, count=2)
    refused("reason_required", receipt_undo, receipt=receipt, reason=" ", desk=desk)
    refused("not_a_place", receipt_undo, receipt=receipt, reason="x", desk=Desk(place=OrganisationFactory(place=True)))
    receipt_undo(receipt=receipt, reason="Erreur de service", desk=desk)
    assert set(sc.booklet.vouchers.values_list("status", flat=True)) == {S.DISTRIBUTED}
    assert not Redemption.objects.filter(undone_at__isnull=True).exists()
    after = account_balances()
    assert {k: v for k, v in after.items() if v} == {k: v for k, v in before.items() if v}
    refused("redemption_already_undone", receipt_undo, receipt=receipt, reason="x", desk=desk)
    late = redeem(raw_code=sc.code(1), desk=desk, service=T)
    Receipt.objects.filter(pk=late.pk).update(redeemed_at=timezone.now() - dt.timedelta(hours=25))
    refused("undo_window_closed", receipt_undo, receipt=Receipt.objects.get(pk=late.pk), reason="x", desk=desk)
    settings.PASSNUM_UNDO_WINDOW_HOURS = 48
    claimed = Receipt.objects.get(pk=late.pk)
    settle_all()
    refused("redemption_claimed", receipt_undo, receipt=claimed, reason="x", desk=desk)
    assert ledger_verify() == []


def test_brute_force_blocks_and_says_when(sc, desk, settings):
    settings.PASSNUM_CODE_CHECK_LIMITS = {"who": (3, 900), "org": (100, 900), "ip": (100, 900)}
    for _ in range(3):
        refused("unknown_code", voucher_check, raw_code="0000000000000", desk=desk)
    err = refused("rate_limited", voucher_check, raw_code=sc.code(1), desk=desk)  # even a good code
    assert 0 < err.context["retry_after"] <= 900 and "Réessayez dans" in err.message
    assert JournalEntry.objects.filter(action="voucher.check_failed").count() == 3
    assert sc.code(1) not in str(list(JournalEntry.objects.values_list("data", flat=True)))
    # another person of another organisation, elsewhere, is not blocked
    other = Desk(place=OrganisationFactory(place=True), user=None, ip="198.51.100.7")
    make_site(other.place)
    assert voucher_check(raw_code=sc.code(1), desk=other).left == 10
