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
