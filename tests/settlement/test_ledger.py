import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, connection, transaction

from passnum.settlement.enums import AccountKind, TransactionKind
from passnum.settlement.ledger import UnbalancedTransaction, account_balances, ledger_post, program_account
from passnum.settlement.models import LedgerEntry, LedgerTransaction
from passnum.settlement.verify import ledger_verify
from passnum.vouchers.services import booklets_issue

pytestmark = pytest.mark.django_db


def test_every_transaction_balances_and_accounts_sum_to_zero(program):
    booklets_issue(program=program, count=3)
    assert ledger_verify() == []
    assert sum(account_balances().values()) == 0
    for tx in LedgerTransaction.objects.all():
        assert sum(e.amount_cents for e in tx.entries.all()) == 0


def test_budget_set_commits_each_funder(program, funder, cofunder):
    balances = account_balances()
    assert balances[f"commitment:p{program.id}:f{funder.id}"] == -600_000
    assert balances[f"budget:p{program.id}:f{funder.id}"] == 600_000
    assert balances[f"budget:p{program.id}:f{cofunder.id}"] == 400_000


def test_unbalanced_posting_is_refused(program, funder):
    ref = program_account(AccountKind.BUDGET, program_id=program.id, funder_id=funder.id)
    with pytest.raises(UnbalancedTransaction), transaction.atomic():
        ledger_post(kind=TransactionKind.ISSUE, lines=[(ref, 100)])


def test_posting_outside_a_transaction_is_refused(program, funder):
    ref = program_account(AccountKind.BUDGET, program_id=program.id, funder_id=funder.id)
    # pytest-django wraps tests in a transaction; leave it to check the guard
    connection.in_atomic_block, saved = False, connection.in_atomic_block
    try:
        with pytest.raises(RuntimeError):
            ledger_post(kind=TransactionKind.ISSUE, lines=[(ref, 100), (ref, -100)])
    finally:
        connection.in_atomic_block = saved


def test_chain_links_each_transaction_to_the_previous(program):
    booklets_issue(program=program, count=1)
    txs = list(LedgerTransaction.objects.order_by("seq"))
    assert [t.seq for t in txs] == list(range(1, len(txs) + 1))
    for prev, tx in zip(txs, txs[1:], strict=False):
        assert tx.prev_hash == prev.hash


def test_orm_refuses_to_change_or_delete_entries(program):
    entry = LedgerEntry.objects.first()
    entry.amount_cents += 1
    with pytest.raises(TypeError):
        entry.save()
    with pytest.raises(TypeError):
        entry.delete()
    with pytest.raises(TypeError):
        LedgerEntry.objects.update(amount_cents=1)
    with pytest.raises(TypeError):
        LedgerTransaction.objects.all().delete()


def test_database_refuses_update_even_bypassing_the_orm(program):
    entry = LedgerEntry.objects.first()
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE settlement_ledgerentry SET amount_cents = amount_cents + 1 WHERE id = %s", [entry.id])


def _tamper(sql, params):
    """Simulate someone with database access: disable the append-only trigger, edit, re-enable."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # a superuser can skip ordinary triggers for the session; that is what this simulates
            cursor.execute("SET LOCAL session_replication_role = replica")
            cursor.execute(sql, params)
            cursor.execute("SET LOCAL session_replication_role = origin")
        else:
            cursor.execute('DROP TRIGGER IF EXISTS "settlement_ledgerentry_no_update"')
            cursor.execute(sql, params)


def test_tampered_entry_is_caught_by_verify(program, funder):
    booklets_issue(program=program, count=2)
    assert ledger_verify() == []
    entry = LedgerEntry.objects.filter(account__kind="outstanding", account__funder=funder).first()
    _tamper("UPDATE settlement_ledgerentry SET amount_cents = amount_cents + 100 WHERE id = %s", [entry.id])
    problems = ledger_verify()
    seq = entry.transaction.seq
    assert any(f"n° {seq}" in p and "déséquilibrée" in p for p in problems)
    assert any(f"n° {seq}" in p and "modifiée" in p for p in problems)
    assert any(p.startswith(f"Compte outstanding:p{program.id}:f{funder.id}") for p in problems)
    with pytest.raises(CommandError) as exc:
        call_command("ledger", "verify")
    assert exc.value.returncode == 1


def test_balanced_tampering_still_breaks_the_chain(program, funder, cofunder):
    """Moving value between two lines of one transaction keeps it balanced but changes its hash."""
    tx = LedgerTransaction.objects.get(kind="budget_set")
    a, b = tx.entries.order_by("id")[:2]
    _tamper("UPDATE settlement_ledgerentry SET amount_cents = amount_cents + 1 WHERE id = %s", [a.id])
    _tamper("UPDATE settlement_ledgerentry SET amount_cents = amount_cents - 1 WHERE id = %s", [b.id])
    problems = ledger_verify()
    assert any("modifiée" in p for p in problems)
    assert not any("déséquilibrée" in p for p in problems)


def test_domain_disagreement_is_reported(program, funder):
    from passnum.programs.models import ProgramFunder

    ProgramFunder.objects.filter(program=program, funder=funder).update(budget_cents=700_000)
    problems = ledger_verify()
    assert any(f"commitment:p{program.id}:f{funder.id}" in p for p in problems)


def test_verify_command_ok(program, capsys):
    call_command("ledger", "verify")
    assert "Grand livre vérifié" in capsys.readouterr().out
