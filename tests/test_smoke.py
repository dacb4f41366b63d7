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
