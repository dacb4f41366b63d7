"""Issue 7, whole flow, with the clock stepped: program → issue → allocate → hand out → redeem → undo one →
settle → reject one line → approve → payment file (XSD-valid) → mark paid → expire the rest → ledger verify
clean and every balance where it should be."""

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core.management import call_command

from passnum.common.standard import Service
from passnum.programs.models import ProgramFunder
from passnum.programs.services import FunderShare
from passnum.settlement import sepa
from passnum.settlement.enums import ClaimStatus, IncidentStatus
from passnum.settlement.expiry import expire_due
from passnum.settlement.ledger import account_balances
from passnum.settlement.models import Claim
from passnum.settlement.payments import bank_account_set, bank_statement_import, payment_file_create
from passnum.settlement.services import claim_line_reject, claim_mark_paid, claims_approve, incident_close
from passnum.settlement.verify import ledger_verify
from passnum.vouchers.enums import VoucherStatus
from passnum.vouchers.models import Voucher
from passnum.vouchers.redemption import Desk, receipt_undo, redeem
from passnum.vouchers.services import booklet_allocate, booklet_hand_out, booklets_issue
from tests.desk.scenario import make_site
from tests.factories import OrganisationFactory, ProgramFactory, member_of
from tests.settlement.flow import validate_place_bank_details

pytestmark = pytest.mark.django_db
PARIS = ZoneInfo("Europe/Paris")
S = VoucherStatus


def at(day: str, hour: int = 10):
    return dt.datetime.combine(dt.date.fromisoformat(day), dt.time(hour), tzinfo=PARIS)


def test_whole_flow_from_program_to_expiry():
    with time_machine.travel(at("2027-01-04"), tick=False) as clock:
        marne = OrganisationFactory(funder=True, name="Département de la Marne")
        reims = OrganisationFactory(funder=True, name="CU du Grand Reims")
        finance = member_of(marne)
        program = ProgramFactory(
            owner=marne,
            valid_from=dt.date(2027, 1, 1),
            valid_until=dt.date(2027, 3, 31),
            grace_days=30,
            funders=[
                FunderShare(funder=marne, share_bps=6000, budget_cents=60_000),
                FunderShare(funder=reims, share_bps=4000, budget_cents=40_000),
            ],
        )
        ccas = OrganisationFactory(distributor=True, name="CCAS de Reims")
        epn = OrganisationFactory(place=True, name="Médiathèque Jean Falala")
        tiers_lieu = OrganisationFactory(place=True, name="Tiers-lieu « Le Cèdre » & Cie")
        for place in (epn, tiers_lieu):
            make_site(place)
        for org, iban, bic in (
            (marne, "FR7630001007941234567890185", "BDFEFRPPXXX"),
            (reims, "FR7610107001011234567890129", "BREDFRPPXXX"),
            (epn, "FR7630004000031234567890143", "BNPAFRPPXXX"),
            (tiers_lieu, "FR7630006000011234567890189", "AGRIFRPPXXX"),
        ):
            bank_account_set(organisation=org, holder_name=org.name, iban=iban, bic=bic)
        validate_place_bank_details(epn, tiers_lieu)

        booklets = booklets_issue(program=program, count=3)  # 30 vouchers, 300 €
        for booklet in booklets:
            booklet_allocate(booklet=booklet, distributor=ccas)
        for booklet in booklets[:2]:
            booklet_hand_out(booklet=booklet, organisation=ccas)
        assert ledger_verify() == []

        # January: sessions at both places, one undone
        clock.move_to(at("2027-01-12"))
        t = Service.EVERYDAY_TOOLS
        first_code = booklets[0].vouchers.get(position=1).code
        r1 = redeem(raw_code=first_code, desk=Desk(place=epn), service=t, count=2)
        r2 = redeem(raw_code=booklets[1].vouchers.get(position=1).code, desk=Desk(place=tiers_lieu), service=t)
        r3 = redeem(raw_code=booklets[1].vouchers.get(position=2).code, desk=Desk(place=tiers_lieu), service=t)
        receipt_undo(receipt=r3, reason="Personne absente", desk=Desk(place=tiers_lieu))
        assert [r1.count, r2.count] == [2, 1]

        # 16 January, 00:30: the cut-off job
        clock.move_to(at("2027-01-16", 0) + dt.timedelta(minutes=30))
        call_command("settle")
        claims = {(c.place_id, c.funder_id): c for c in Claim.objects.all()}
        assert len(claims) == 4
        assert claims[(epn.pk, marne.pk)].claimed_cents == 1200
        assert claims[(tiers_lieu.pk, reims.pk)].claimed_cents == 400

        # The Marne rejects one line of the EPN's claim, then approves everything; Reims approves its own
        clock.move_to(at("2027-01-18"))
        epn_marne = claims[(epn.pk, marne.pk)]
        incident = claim_line_reject(
            line=epn_marne.lines.order_by("pk").first(), funder=marne, reason="Séance en double", actor=finance
        )
        claims_approve(claims=[c for c in claims.values() if c.funder_id == marne.pk], funder=marne, actor=finance)
        claims_approve(claims=[c for c in claims.values() if c.funder_id == reims.pk], funder=reims)
        run = epn_marne.run

        # Payment files: XSD-valid, SEPA rules, one transfer per place
        files = {}
        for funder in (marne, reims):
            pf = payment_file_create(run=run, funder=funder, actor=finance if funder == marne else None)
            assert sepa.validate(pf.content.encode(), pf.version) == []
            assert pf.transfers == 2
            files[funder.pk] = pf
        assert files[marne.pk].total_cents == 600 + 600  # EPN 1 200 − rejected 600, tiers-lieu 600
        assert "Le Cedre" in files[marne.pk].content  # transliterated, SEPA character set
        assert set(Claim.objects.values_list("status", flat=True)) == {ClaimStatus.IN_PAYMENT}

        # Paid: the Marne by a bank statement (CSV), Reims by hand
        clock.move_to(at("2027-01-22"))
        csv_lines = ["reference;montant;date"] + [
            f"{c.reference};{c.payable_cents // 100},{c.payable_cents % 100:02d};22/01/2027"
            for c in Claim.objects.filter(funder=marne)
        ]
        report = bank_statement_import(funder=marne, data="\n".join(csv_lines).encode(), filename="releve.csv")
        assert len(report.paid) == 2
        for claim in Claim.objects.filter(funder=reims):
            claim_mark_paid(claim=claim, funder=reims, reference="VIR-REIMS-0122")
        assert not Claim.objects.exclude(status=ClaimStatus.PAID).exists()
        incident_close(incident=incident, outcome=IncidentStatus.WRITTEN_OFF, resolution="Doublon confirmé")
        assert ledger_verify() == []

        # After 31 March + 30 days of grace, everything unused expires
        clock.move_to(at("2027-05-01", 1))
        reports = expire_due()
        assert [r.program_id for r in reports] == [program.pk]
        assert reports[0].expired == 27 and reports[0].returned_total_cents == 27 * 1000
        assert not Voucher.objects.filter(status__in=[S.ISSUED, S.DISTRIBUTED]).exists()

        # Every balance where it should be
        assert ledger_verify() == []
        call_command("ledger", "verify")
        balances = {k: v for k, v in account_balances().items() if v}
        paid_marne, paid_reims = 3 * 600 - 600, 3 * 400  # 3 vouchers used; one Marne line written off
        assert balances[f"paid:f{marne.pk}"] == paid_marne
        assert balances[f"paid:f{reims.pk}"] == paid_reims
        for key in balances:
            assert not key.startswith(("payable:", "contested:", "outstanding:", "handed_out:")), key
        for funder, paid in ((marne, paid_marne), (reims, paid_reims)):
            pf = ProgramFunder.objects.get(program=program, funder=funder)
            assert pf.committed_cents == paid
            assert balances[f"budget:p{program.pk}:f{funder.pk}"] == pf.budget_cents - paid
            assert balances[f"commitment:p{program.pk}:f{funder.pk}"] == -pf.budget_cents
        assert Voucher.objects.filter(status=S.PAID).count() == 2  # the third has a rejected (written-off) line
        assert Voucher.objects.filter(status=S.CLAIMED).count() == 1
        assert Voucher.objects.filter(status=S.EXPIRED).count() == 27
