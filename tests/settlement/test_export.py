"""Continuity export: a realistic settlement history exported, then rebuilt without the platform's code."""

import csv
import hashlib
import json
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db.models import Sum
from django.utils import timezone

from passnum.accounts.apikeys import api_key_create
from passnum.accounts.models import ApiKey, Invitation, User
from passnum.common.standard import Service
from passnum.places.models import BankAccount as PlaceBankAccount
from passnum.programs.services import FunderShare
from passnum.settlement.enums import ClaimStatus
from passnum.settlement.export import (
    FORMAT_VERSION,
    TABLES,
    export_archive,
    render_readme,
    split_largest_remainder,
    verify_archive,
)
from passnum.settlement.ledger import account_balances
from passnum.settlement.models import BankAccount as SettlementBankAccount
from passnum.settlement.models import Claim, ClaimLine, LedgerTransaction, PaymentFile
from passnum.settlement.services import claim_line_reject, claim_mark_paid, claims_approve
from passnum.settlement.verify import ledger_verify
from passnum.vouchers.handout import Person, booklet_give
from passnum.vouchers.models import Beneficiary
from passnum.vouchers.services import booklet_allocate, booklets_issue, redemption_undo, voucher_redeem
from tests.factories import OrganisationFactory, ProgramFactory, member_of
from tests.settlement.flow import settle_all

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "rebuild_balances.py"
FIRST_NAME = "Bérénice"


def _handed_out(program, distributor, *, person=None):
    booklet = booklets_issue(program=program, count=1)[0]
    booklet_allocate(booklet=booklet, distributor=distributor)
    booklet_give(booklet=booklet, distributor=distributor, person=person or Person())
    return list(booklet.vouchers.order_by("position"))


def build_history():
    """Three funders, two co-funded programs (60/40 and 3334/3333/3333, whose split has remainders), three places,
    redemptions and an undo, a settlement, a rejected line, approvals, some claims paid, then new redemptions
    left unsettled."""
    marne = OrganisationFactory(funder=True, name="Département de la Marne", siret="22510001400017")
    reims = OrganisationFactory(funder=True, name="CU du Grand Reims", siren="200067213")
    caf = OrganisationFactory(funder=True, name="CAF de la Marne")
    p1 = ProgramFactory(owner=marne, cofunder=reims)
    p2 = ProgramFactory(
        owner=marne,
        funders=[
            FunderShare(funder=marne, share_bps=3334, budget_cents=500_000),
            FunderShare(funder=reims, share_bps=3333, budget_cents=500_000),
            FunderShare(funder=caf, share_bps=3333, budget_cents=500_000),
        ],
    )
    distributor = OrganisationFactory(distributor=True, name="CCAS de Reims")
    places = [OrganisationFactory(place=True, name=f"Lieu {n}", siret=f"1234567890001{n}") for n in range(1, 4)]
    # The Marne's debtor account; funder-validated details for the first place (what payment files pay), only
    # pending ones for the second (never paid until validated), none for the third.
    SettlementBankAccount.objects.create(
        organisation=marne, holder_name="Compte Marne", iban="FR7630001007941234567890185", bic="BDFEFRPP"
    )
    for org, iban, status in [
        (places[0], "FR7630006000011234567890189", "validated"),
        (places[1], "FR7610107001011234567890129", "pending"),
    ]:
        PlaceBankAccount.objects.create(
            organisation=org,
            holder_name=f"Compte {org.name}",
            iban=iban,
            bic="AGRIFRPP",
            status=status,
            reviewed_at=timezone.now() if status == "validated" else None,
        )
    # Personal data and secrets that must never reach the archive.
    staff = member_of(places[0], email="camille.secrete@exemple.fr")
    api_key_create(organisation=places[0], name="Logiciel d’accueil")
    Invitation.objects.create(
        organisation=places[0],
        email="invitee@exemple.fr",
        token_hash=hashlib.sha256(b"invitation").hexdigest(),
        invited_by=staff,
        expires_at=timezone.now(),
    )

    v1 = _handed_out(p1, distributor, person=Person(first_name=FIRST_NAME, consent_first_name=True, birth_year=1950))
    v2 = _handed_out(p2, distributor)
    redemptions = [
        voucher_redeem(voucher=v1[0], place=places[0], service=Service.EVERYDAY_TOOLS),
        voucher_redeem(voucher=v1[1], place=places[0], service=Service.EVERYDAY_TOOLS),
        voucher_redeem(voucher=v1[2], place=places[1], service=Service.EVERYDAY_TOOLS),
        voucher_redeem(voucher=v2[0], place=places[0], service=Service.EVERYDAY_TOOLS),
        voucher_redeem(voucher=v2[1], place=places[1], service=Service.EVERYDAY_TOOLS),
        voucher_redeem(voucher=v2[2], place=places[2], service=Service.EVERYDAY_TOOLS),
        voucher_redeem(voucher=v2[3], place=places[2], service=Service.EVERYDAY_TOOLS),
    ]
    redemption_undo(redemption=redemptions[-1], reason="Erreur de saisie")

    result = settle_all()
    assert len(result.claims) >= 6
    line = ClaimLine.objects.filter(claim__place=places[0], funder=marne, voucher__program=p2).get()
    claim_line_reject(line=line, funder=marne, reason="Séance non justifiée")
    for funder in (marne, reims, caf):
        submitted = list(Claim.objects.filter(funder=funder, status=ClaimStatus.SUBMITTED))
        claims_approve(claims=submitted, funder=funder)
    # A payment file for the Marne's claims; only some claims get paid.
    marne_claims = list(Claim.objects.filter(funder=marne, status=ClaimStatus.APPROVED).order_by("id"))
    xml = "<?xml version='1.0' encoding='UTF-8'?><Document><MsgId>PN-2026-0001</MsgId></Document>"
    payment_file = PaymentFile.objects.create(
        run=result.run,
        funder=marne,
        message_id="PN-2026-0001",
        transfers=len(marne_claims),
        total_cents=sum(c.payable_cents for c in marne_claims),
        sha256=hashlib.sha256(xml.encode()).hexdigest(),
        content=xml,
    )
    Claim.objects.filter(pk__in=[c.pk for c in marne_claims]).update(
        status=ClaimStatus.IN_PAYMENT, payment_file=payment_file
    )
    claim_mark_paid(claim=marne_claims[0], reference="VIR-001")
    reims_claim = Claim.objects.filter(funder=reims, status=ClaimStatus.APPROVED).order_by("id").first()
    claim_mark_paid(claim=reims_claim, reference="VIR-002")

    # Redeemed after the settlement: owed, not yet claimed.
    voucher_redeem(voucher=v1[3], place=places[2], service=Service.EVERYDAY_TOOLS)
    voucher_redeem(voucher=v2[4], place=places[1], service=Service.EVERYDAY_TOOLS)
    assert ledger_verify() == []
    return {"funders": [marne, reims, caf], "places": places, "staff": staff}


@pytest.fixture
def history():
    return build_history()


@pytest.fixture
def archive(history, tmp_path):
    out = tmp_path / "archive"
    export_archive(out)
    return out


def read_csv(path):
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def write_csv(path, rows):
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]), lineterminator="\r\n")
        writer.writeheader()
        writer.writerows(rows)


def reseal(archive_dir):
    """A careful forger: rewrite the manifest's checksums (and the JSON Lines twin) after editing a CSV."""
    for name in ("ledger_entries", "ledger_transactions"):
        rows = read_csv(archive_dir / f"{name}.csv")
        table = next(t for t in TABLES if t.name == name)
        with (archive_dir / f"{name}.jsonl").open("w", encoding="utf-8") as f:
            for row in rows:
                record = {
                    c.name: (int(row[c.name]) if c.type in ("entier", "centimes") else row[c.name])
                    for c in table.columns
                }
                f.write(json.dumps(record, ensure_ascii=False) + "\n")
    manifest = json.loads((archive_dir / "manifest.json").read_text())
    for rel in manifest["files"]:
        data = (archive_dir / rel).read_bytes()
        manifest["files"][rel] = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
    for name in ("ledger_entries", "ledger_transactions"):
        manifest["tables"][name]["rows"] = len(read_csv(archive_dir / f"{name}.csv"))
    (archive_dir / "manifest.json").write_text(json.dumps(manifest))


# --- the archive ------------------------------------------------------------------------------------------


def test_archive_is_complete_documented_and_verifies(archive):
    manifest = json.loads((archive / "manifest.json").read_text())
    assert manifest["format_version"] == FORMAT_VERSION
    for table in TABLES:
        assert (archive / f"{table.name}.csv").is_file()
        assert (archive / f"{table.name}.jsonl").is_file()
        rows = read_csv(archive / f"{table.name}.csv")
        assert len(rows) == manifest["tables"][table.name]["rows"]
        assert list(rows[0]) if rows else True
        assert f"`{table.name}.csv`" in (archive / "README.md").read_text()
        for column in table.columns:
            assert f"`{column.name}`" in (archive / "README.md").read_text()
    assert manifest["tables"]["vouchers"]["rows"] == 20
    assert manifest["tables"]["claims"]["rows"] == Claim.objects.count()
    last = LedgerTransaction.objects.order_by("-seq").first()
    assert manifest["ledger"] == {"head_seq": last.seq, "head_hash": last.hash}
    for rel, meta in manifest["files"].items():
        assert hashlib.sha256((archive / rel).read_bytes()).hexdigest() == meta["sha256"]
    xml = read_csv(archive / "payment_files.csv")[0]
    assert (archive / xml["file"]).read_bytes().startswith(b"<?xml")
    assert hashlib.sha256((archive / xml["file"]).read_bytes()).hexdigest() == xml["sha256"]
    assert verify_archive(archive) == []


def test_bank_details_of_places_are_exported(archive, history):
    orgs = {int(r["id"]): r for r in read_csv(archive / "organisations.csv")}
    first, second, third = history["places"]
    assert orgs[first.id]["bank_iban"] == "FR7630006000011234567890189"
    assert orgs[first.id]["bank_holder_name"] == "Compte Lieu 1"
    assert orgs[first.id]["siret"] == first.siret
    assert orgs[second.id]["bank_iban"] == ""  # pending details are never paid
    assert orgs[third.id]["bank_iban"] == ""
    assert orgs[history["funders"][0].id]["bank_iban"] == "FR7630001007941234567890185"


def test_no_personal_data_or_secrets_in_the_archive(archive, history):
    text = "\n".join(p.read_text(encoding="utf-8") for p in archive.rglob("*") if p.is_file())
    beneficiary = Beneficiary.objects.get(first_name=FIRST_NAME)
    assert FIRST_NAME not in text
    assert beneficiary.reference in text  # the pseudonymous reference only
    for key_hash in ApiKey.objects.values_list("key_hash", flat=True):
        assert key_hash not in text
    for token_hash in Invitation.objects.values_list("token_hash", flat=True):
        assert token_hash not in text
    for user in User.objects.all():
        assert user.email not in text
        assert user.password not in text
        assert user.last_name not in text
    assert "invitee@exemple.fr" not in text


def test_readme_is_the_documented_format():
    assert (ROOT / "docs" / "export-format.md").read_text(encoding="utf-8") == render_readme()


def test_split_matches_the_platform():
    from passnum.common.money import split_largest_remainder as platform_split

    for total, weights in [(1000, [6000, 4000]), (1000, [3334, 3333, 3333]), (1, [5000, 5000]), (999, [1, 1, 1])]:
        assert split_largest_remainder(total, weights) == platform_split(total, weights)


# --- rebuilt without the platform ------------------------------------------------------------------------


def run_script(archive_dir, *extra):
    """The copy shipped inside the archive, run in isolated mode (no project on the path) from the archive."""
    return subprocess.run(
        [sys.executable, "-I", str(archive_dir / "rebuild_balances.py"), str(archive_dir), *extra],
        capture_output=True,
        text=True,
        cwd=archive_dir,
        check=False,
    )


def test_standalone_script_rebuilds_every_balance_to_the_cent(archive, history):
    done = run_script(archive, "--json", "--verify-chain")
    assert done.returncode == 0, done.stderr
    figures = json.loads(done.stdout)
    assert figures["chain"]["problems"] == []
    ledger = {k: v for k, v in account_balances().items() if v != 0}
    assert figures["accounts"] == ledger
    owed = {(r["funder_id"], r["place_id"]): r for r in figures["owed"]}
    for key, amount in ledger.items():
        if key.startswith("payable:"):
            _, place, funder = key.split(":")
            assert owed[(int(funder[1:]), int(place[1:]))]["owed_cents"] == amount
    paid = defaultdict(int)
    for claim in Claim.objects.filter(status=ClaimStatus.PAID):
        paid[(claim.funder_id, claim.place_id)] += claim.payable_cents
    assert paid  # the scenario paid some claims
    assert {pair: r["paid_cents"] for pair, r in owed.items() if r["paid_cents"]} == dict(paid)
    for funder in history["funders"]:
        assert sum(r["paid_cents"] for (f, _), r in owed.items() if f == funder.id) == ledger.get(
            f"paid:f{funder.id}", 0
        )
    # Still owed = claimed lines not paid or rejected, plus redemptions not yet settled.
    assert (
        sum(r["owed_cents"] for r in owed.values())
        > ClaimLine.objects.filter(status="claimed").aggregate(s=Sum("amount_cents"))["s"]
    )
    assert any(r["contested_cents"] for r in owed.values())

    text = run_script(archive)
    assert text.returncode == 0
    assert "Financeur → lieu" in text.stdout and "Département de la Marne" in text.stdout


def test_script_imports_nothing_from_the_project(archive):
    assert (archive / "rebuild_balances.py").read_bytes() == SCRIPT.read_bytes()
    source = SCRIPT.read_text()
    assert "passnum" not in source.split('"""', 2)[2]
    assert "django" not in source.lower().split('"""', 2)[2]


# --- tampering -------------------------------------------------------------------------------------------


def test_changed_amount_is_reported_even_with_a_resealed_manifest(archive):
    entries = read_csv(archive / "ledger_entries.csv")
    target = next(e for e in entries if e["account_key"].startswith("payable:") and int(e["amount_cents"]) > 0)
    target["amount_cents"] = str(int(target["amount_cents"]) + 100)
    write_csv(archive / "ledger_entries.csv", entries)
    problems = verify_archive(archive)
    assert any("ledger_entries.csv modifié" in p for p in problems)
    reseal(archive)
    problems = verify_archive(archive)
    assert not any("modifié : son empreinte SHA-256" in p for p in problems)
    assert any(f"Écriture n° {target['seq']}" in p and "empreinte ne correspond plus" in p for p in problems)
    assert any(f"Écriture n° {target['seq']}" in p and "déséquilibrée" in p for p in problems)
    assert run_script(archive, "--verify-chain").returncode == 1


def test_deleted_transaction_breaks_the_chain(archive):
    txs = read_csv(archive / "ledger_transactions.csv")
    gone = txs.pop(len(txs) // 2)
    write_csv(archive / "ledger_transactions.csv", txs)
    write_csv(
        archive / "ledger_entries.csv", [e for e in read_csv(archive / "ledger_entries.csv") if e["seq"] != gone["seq"]]
    )
    reseal(archive)
    problems = verify_archive(archive)
    assert any("Chaîne rompue" in p and f"n° {gone['seq']} manquante" in p for p in problems), problems
    # its value no longer reaches the accounts
    assert any(p.startswith("Compte ") for p in problems)
    done = run_script(archive, "--verify-chain")
    assert done.returncode == 1 and "chaîne rompue" in done.stderr


def test_modified_or_added_file_is_reported(archive):
    orgs = archive / "organisations.csv"
    orgs.write_text(orgs.read_text(encoding="utf-8").replace("FR76", "FR77", 1), encoding="utf-8")
    (archive / "payment_files" / "extra.xml").write_text("<Document/>")
    problems = verify_archive(archive)
    assert "Fichier organisations.csv modifié : son empreinte SHA-256 ne correspond pas au manifeste." in problems
    assert any("payment_files/extra.xml absent du manifeste" in p for p in problems)
    assert any("organisations" in p and "diffèrent" in p for p in problems)


def test_missing_manifest_means_incomplete(archive):
    (archive / "manifest.json").unlink()
    assert "incomplète" in verify_archive(archive)[0]


# --- commands --------------------------------------------------------------------------------------------


def test_export_command_refuses_a_non_empty_directory_unless_forced(history, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("à garder")
    with pytest.raises(CommandError, match="n’est pas vide"):
        call_command("export", "--out", str(out))
    empty = tmp_path / "fresh"
    call_command("export", "--out", str(empty))
    printed = capsys.readouterr().out
    assert "vouchers" in printed and str(empty.resolve()) in printed
    call_command("export", "--out", str(empty), "--force")  # replaces its own archive
    call_command("ledger", "verify", "--archive", str(empty))
    assert "Archive vérifiée" in capsys.readouterr().out


def test_ledger_verify_archive_exits_1_on_problems(archive, capsys):
    entries = read_csv(archive / "ledger_entries.csv")
    entries[0]["amount_cents"] = str(int(entries[0]["amount_cents"]) - 1)
    write_csv(archive / "ledger_entries.csv", entries)
    with pytest.raises(CommandError) as exc:
        call_command("ledger", "verify", "--archive", str(archive))
    assert exc.value.returncode == 1
    assert "✗" in capsys.readouterr().err


def test_owed_amounts_are_checked_against_claims_and_redemptions(archive):
    lines = read_csv(archive / "claim_lines.csv")
    claimed = next(line for line in lines if line["status"] == "claimed")
    claimed["status"] = "paid"
    write_csv(archive / "claim_lines.csv", lines)
    problems = verify_archive(archive)
    key = f"payable:l{claimed['place_id']}:f{claimed['funder_id']}"
    assert any(p.startswith(f"Compte {key} : le grand livre dit") for p in problems), problems
    assert any(p.startswith(f"Compte paid:f{claimed['funder_id']} :") for p in problems)
