import pytest
from django.core.management import call_command

from passnum.settlement.verify import ledger_verify


@pytest.mark.django_db
def test_program_factory_balances(program):
    assert program.funders.count() == 2
    assert ledger_verify() == []


@pytest.mark.django_db
def test_seed_demo_then_verify(capsys):
    call_command("seed_demo")
    assert ledger_verify() == []
    out = capsys.readouterr().out
    assert "financeur@demo.pass-numerique.fr" in out


@pytest.mark.django_db
def test_demo_has_a_settled_batch_with_a_payment_file_and_statements():
    from passnum.settlement import sepa
    from passnum.settlement.enums import ClaimStatus
    from passnum.settlement.models import Claim, PaymentFile
    from passnum.settlement.statements import statement_csv, statement_pdf

    call_command("seed_demo")
    statuses = set(Claim.objects.values_list("status", flat=True))
    assert {ClaimStatus.SUBMITTED, ClaimStatus.PAID} <= statuses
    payment_file = PaymentFile.objects.get()
    assert sepa.validate(payment_file.content.encode(), payment_file.version) == []
    claim = Claim.objects.filter(status=ClaimStatus.PAID).first()
    csv_text = "".join(chunk if isinstance(chunk, str) else chunk.decode() for chunk in statement_csv(claim))
    assert claim.reference in csv_text
    assert statement_pdf(claim)[:4] == b"%PDF"
    assert ledger_verify() == []


@pytest.mark.django_db
def test_demo_shows_a_living_funnel():
    from passnum.accounts.models import Organisation
    from passnum.steering.funnel import Viewer, dashboard

    call_command("seed_demo")
    d = dashboard(Viewer.of(Organisation.objects.get(slug="departement-marne")))
    steps = {s.key: s for s in d.steps}
    assert steps["handed_out"].booklets >= 50
    assert steps["first_use"].booklets >= 20 and steps["redeemed"].vouchers > steps["claimed"].vouchers > 0
    assert steps["paid"].vouchers > 0
    assert d.people_reached >= 20 and d.median_days is not None
    assert len([w for w in d.weekly if w.values["redeemed"]]) >= 6  # weeks of activity
    assert len(d.publics) >= 5 and len(d.ages) >= 4 and len(d.by_distributor) == 3
    assert d.sleeping_vouchers >= 40  # the association's booklets, untouched for three months
    # the Marne paid one claim; the CU du Grand Reims has paid nothing yet: each funder sees its own payments
    reims = dashboard(Viewer.of(Organisation.objects.get(slug="cu-grand-reims")))
    assert reims.step("paid").vouchers == 0 and reims.step("claimed").vouchers == steps["claimed"].vouchers
    assert steps["paid"].value_cents == steps["paid"].vouchers * 600  # its 60 % of each 10 € voucher
