"""Bank details, SEPA payment files and bank statement import, through the real services and database."""

import datetime as dt
import hashlib
from types import SimpleNamespace

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from passnum.common.errors import DomainError
from passnum.common.standard import Service
from passnum.journal.models import JournalEntry
from passnum.settlement import sepa
from passnum.settlement.enums import ClaimStatus, PaymentFileStatus
from passnum.settlement.models import BankAccount, Claim, LedgerTransaction, PaymentFile
from passnum.settlement.payments import (
    Outcome,
    bank_account_set,
    bank_statement_import,
    claims_missing_bank_details,
    default_execution_date,
    parse_french_amount,
    payment_file_create,
)
from passnum.settlement.services import claims_approve, local_today
from passnum.settlement.verify import ledger_verify
from passnum.vouchers.enums import VoucherStatus
from passnum.vouchers.services import booklet_allocate, booklet_hand_out, booklets_issue, voucher_redeem
from tests.factories import OrganisationFactory
from tests.settlement.flow import settle_all, validate_place_bank_details

pytestmark = pytest.mark.django_db

FUNDER_IBAN = "FR7630004000000003123456702"  # BNP Paribas
CAFE_IBAN = "FR7630003000000005123456723"  # Société Générale
MEDIA_IBAN = "FR7620041000000001123456703"  # La Banque Postale
LATE_IBAN = "FR7630002000000004123456749"  # LCL


def make_world(program, funder, cofunder, *, funder_account=True, place_accounts=True):
    """Six vouchers (600 c to the funder, 400 c to the cofunder each) redeemed at three places, settled; the
    funder approved its three claims. The third place never gave its bank details."""
    distributor = OrganisationFactory(distributor=True)
    booklet = booklets_issue(program=program, count=1)[0]
    booklet_allocate(booklet=booklet, distributor=distributor)
    booklet_hand_out(booklet=booklet, organisation=distributor)
    cafe = OrganisationFactory(place=True, name="Café & Numérique d’Épernay")
    media = OrganisationFactory(place=True, name="Médiathèque Croix-Rouge")
    late = OrganisationFactory(place=True, name="Tiers-lieu sans RIB")
    vouchers = list(booklet.vouchers.order_by("position"))
    for voucher, place in zip(vouchers, [cafe, cafe, cafe, media, media, late], strict=False):
        voucher_redeem(voucher=voucher, place=place, service=Service.EVERYDAY_TOOLS)
    result = settle_all()
    mine = {c.place_id: c for c in result.claims if c.funder_id == funder.id}
    theirs = {c.place_id: c for c in result.claims if c.funder_id == cofunder.id}
    claims_approve(claims=list(mine.values()), funder=funder)
    if funder_account:
        bank_account_set(organisation=funder, holder_name="Département de la Marne", iban=FUNDER_IBAN, bic="BNPAFRPP")
    if place_accounts:
        bank_account_set(organisation=cafe, holder_name="Café & Numérique d’Épernay", iban=CAFE_IBAN, bic="SOGEFRPP")
        bank_account_set(organisation=media, holder_name="Médiathèque Croix-Rouge", iban=MEDIA_IBAN, bic="")
        validate_place_bank_details(cafe, media)
    return SimpleNamespace(
        run=result.run,
        funder=funder,
        cofunder=cofunder,
        cafe=cafe,
        media=media,
        late=late,
        claim_cafe=mine[cafe.id],
        claim_media=mine[media.id],
        claim_late=mine[late.id],
        cofunder_claim_cafe=theirs[cafe.id],
    )


@pytest.fixture
def world(program, funder, cofunder):
    return make_world(program, funder, cofunder)


def refresh(*objects):
    for obj in objects:
        obj.refresh_from_db()


def snapshot():
    """What a refused operation must leave untouched."""
    return (
        list(Claim.objects.order_by("pk").values_list("status", "payment_file_id", "paid_at", "paid_reference")),
        PaymentFile.objects.count(),
        LedgerTransaction.objects.count(),
        list(BankAccount.objects.order_by("pk").values_list("holder_name", "iban", "bic")),
    )


# --- bank details -------------------------------------------------------------------------------------------


def test_bank_account_is_normalised_and_journaled_with_a_masked_iban(funder):
    account = bank_account_set(
        organisation=funder,
        holder_name="  Département   de la Marne ",
        iban="fr76 3000 4000 0000 0312 3456 702",
        bic="bnpafrpp",
    )
    assert (account.holder_name, account.iban, account.bic) == ("Département de la Marne", FUNDER_IBAN, "BNPAFRPP")
    entry = JournalEntry.objects.get(action="bank_account.set")
    assert entry.data["iban"] == "FR76…6702"
    assert entry.data["created"] is True
    for e in JournalEntry.objects.all():
        assert FUNDER_IBAN not in str(e.data)
        assert "3000400000000031234567" not in str(e.data)


def test_bank_account_bic_is_taken_from_the_iban_when_the_bank_is_known(funder):
    assert bank_account_set(organisation=funder, holder_name="CD51", iban=FUNDER_IBAN, bic="").bic == "BNPAFRPP"


def test_bank_account_update_and_unchanged(funder):
    bank_account_set(organisation=funder, holder_name="CD51", iban=FUNDER_IBAN, bic="BNPAFRPP")
    again = bank_account_set(organisation=funder, holder_name="CD51", iban=FUNDER_IBAN, bic="BNPAFRPP")
    assert JournalEntry.objects.filter(action="bank_account.set").count() == 1
    changed = bank_account_set(organisation=funder, holder_name="CD51", iban=CAFE_IBAN, bic="SOGEFRPPXXX")
    assert changed.pk == again.pk and changed.iban == CAFE_IBAN and changed.bic == "SOGEFRPPXXX"
    entry = JournalEntry.objects.filter(action="bank_account.set").order_by("-pk").first()
    assert entry.data["previous_iban"] == "FR76…6702" and entry.data["iban"] == "FR76…6723"
    assert BankAccount.objects.count() == 1


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"iban": ""}, "iban_required"),
        ({"iban": "FR7630004000000003123456703"}, "iban_invalid"),  # checksum
        ({"iban": "FR76300040000000031234567"}, "iban_invalid"),  # length
        ({"iban": "BR1800360305000010009795493C1"}, "iban_not_sepa"),
        ({"bic": "BNPAFR"}, "bic_invalid"),
        ({"bic": "SOGEFRPP"}, "bic_mismatch"),  # a Société Générale BIC for a BNP IBAN
        ({"holder_name": "   "}, "holder_required"),
        ({"holder_name": "日本"}, "holder_required"),  # nothing left once transliterated
        ({"holder_name": "Œ" * 36}, "holder_too_long"),  # 36 chars, 72 once transliterated
        ({"holder_name": "A" * 71}, "holder_too_long"),
    ],
)
def test_bank_account_refusals_change_nothing(funder, kwargs, code):
    args = {"organisation": funder, "holder_name": "CD51", "iban": FUNDER_IBAN, "bic": "BNPAFRPP", **kwargs}
    with pytest.raises(DomainError) as exc:
        bank_account_set(**args)
    assert exc.value.code == code
    assert exc.value.message
    assert not BankAccount.objects.exists()
    assert not JournalEntry.objects.filter(action="bank_account.set").exists()


def test_bank_account_only_for_places_and_funders():
    distributor = OrganisationFactory(distributor=True)
    with pytest.raises(DomainError) as exc:
        bank_account_set(organisation=distributor, holder_name="X", iban=FUNDER_IBAN, bic="BNPAFRPP")
    assert exc.value.code == "bank_account_not_applicable"
    assert not BankAccount.objects.exists()


def test_bank_account_without_bic_for_an_unknown_bank_is_refused(funder):
    with pytest.raises(DomainError) as exc:
        bank_account_set(organisation=funder, holder_name="CD51", iban="GB82WEST12345698765432", bic="")
    assert exc.value.code == "bic_required"
    assert not BankAccount.objects.exists()
    # with a BIC, a bank schwifty cannot check is accepted as given
    assert (
        bank_account_set(organisation=funder, holder_name="CD51", iban="GB82WEST12345698765432", bic="WESTGB22").bic
        == "WESTGB22"
    )


# --- payment files -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", ["pain.001.001.03", "pain.001.001.09"])
def test_payment_file_pays_approved_claims_of_places_with_bank_details(world, version):
    pf = payment_file_create(run=world.run, funder=world.funder, version=version)
    assert pf.version == version
    assert pf.status == PaymentFileStatus.READY
    assert (pf.transfers, pf.total_cents) == (2, 3 * 600 + 2 * 600)
    assert len(pf.message_id) <= 35 and pf.message_id.startswith("PASSNUM-")
    xml = pf.content.encode()
    assert pf.sha256 == hashlib.sha256(xml).hexdigest()
    assert sepa.xsd_problems(xml, version) == []
    assert sepa.validate(xml, version) == []
    assert "<Nm>Cafe + Numerique d'Epernay</Nm>" in pf.content
    assert f"<EndToEndId>{world.claim_cafe.reference}</EndToEndId>" in pf.content
    assert f"<Ustrd>{world.claim_cafe.reference} Pass numerique arrete du" in pf.content
    assert '<InstdAmt Ccy="EUR">18.00</InstdAmt>' in pf.content
    assert world.claim_late.reference not in pf.content
    refresh(world.claim_cafe, world.claim_media, world.claim_late)
    assert world.claim_cafe.status == world.claim_media.status == ClaimStatus.IN_PAYMENT
    assert world.claim_cafe.payment_file_id == world.claim_media.payment_file_id == pf.pk
    assert (world.claim_late.status, world.claim_late.payment_file_id) == (ClaimStatus.APPROVED, None)
    assert [c.pk for c in pf.missing_bank_details] == [world.claim_late.pk]
    assert [c.pk for c in claims_missing_bank_details(world.run, world.funder)] == [world.claim_late.pk]
    entry = JournalEntry.objects.get(action="payment_file.create")
    assert entry.data["claims"] == sorted([world.claim_cafe.reference, world.claim_media.reference])
    assert entry.data["missing_bank_details"] == [world.claim_late.reference]
    assert CAFE_IBAN not in str(entry.data)
    assert ledger_verify() == []


def test_place_bank_details_are_paid_only_once_validated_by_a_funder(world):
    from passnum.places.enums import BankAccountStatus

    pending = bank_account_set(organisation=world.late, holder_name="Tiers-lieu", iban=LATE_IBAN, bic="CRLYFRPP")
    assert pending.status == BankAccountStatus.PENDING
    pf = payment_file_create(run=world.run, funder=world.funder)
    assert world.claim_late.reference not in pf.content
    assert [c.reference for c in pf.missing_bank_details] == [world.claim_late.reference]
    # a changed IBAN waits too: the validated one keeps being paid until a funder validates the new one
    changed = bank_account_set(organisation=world.cafe, holder_name="Café", iban=LATE_IBAN, bic="CRLYFRPP")
    assert changed.status == BankAccountStatus.PENDING
    from passnum.settlement.payments import place_payee_accounts

    assert place_payee_accounts([world.cafe.pk])[world.cafe.pk].iban == CAFE_IBAN


def test_second_call_never_pays_twice_and_late_bank_details_get_their_own_file(world):
    first = payment_file_create(run=world.run, funder=world.funder)
    before = snapshot()
    with pytest.raises(DomainError) as exc:
        payment_file_create(run=world.run, funder=world.funder)
    assert exc.value.code == "nothing_to_pay"
    assert snapshot() == before
    bank_account_set(organisation=world.late, holder_name="Tiers-lieu", iban=LATE_IBAN, bic="CRLYFRPP")
    validate_place_bank_details(world.late)
    second = payment_file_create(run=world.run, funder=world.funder)
    assert second.message_id != first.message_id
    assert (second.transfers, second.total_cents) == (1, 600)
    assert world.claim_late.reference in second.content
    assert world.claim_cafe.reference not in second.content
    assert second.missing_bank_details == []


def test_missing_debtor_account_is_refused(program, funder, cofunder):
    w = make_world(program, funder, cofunder, funder_account=False)
    before = snapshot()
    with pytest.raises(DomainError) as exc:
        payment_file_create(run=w.run, funder=w.funder)
    assert exc.value.code == "no_debtor_account"
    assert "Département de la Marne" in exc.value.message
    assert snapshot() == before


def test_no_place_with_bank_details_is_refused_and_listed(program, funder, cofunder):
    w = make_world(program, funder, cofunder, place_accounts=False)
    before = snapshot()
    with pytest.raises(DomainError) as exc:
        payment_file_create(run=w.run, funder=w.funder)
    assert exc.value.code == "nothing_to_pay"
    assert "coordonnées bancaires" in exc.value.message and "Tiers-lieu sans RIB" in exc.value.message
    assert exc.value.context["missing_bank_details"] == sorted(
        c.reference for c in (w.claim_cafe, w.claim_media, w.claim_late)
    )
    assert snapshot() == before


def test_claims_not_approved_are_not_paid(world):
    bank_account_set(organisation=world.cofunder, holder_name="CU du Grand Reims", iban=LATE_IBAN, bic="CRLYFRPP")
    with pytest.raises(DomainError) as exc:
        payment_file_create(run=world.run, funder=world.cofunder)  # its claims are still submitted
    assert exc.value.code == "nothing_to_pay"
    assert not PaymentFile.objects.exists()


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"version": "pain.001.001.12"}, "sepa_version_unknown"),
        ({"execution_date": dt.date(2020, 1, 1)}, "execution_date_past"),
    ],
)
def test_payment_file_argument_refusals(world, kwargs, code):
    before = snapshot()
    with pytest.raises(DomainError) as exc:
        payment_file_create(run=world.run, funder=world.funder, **kwargs)
    assert exc.value.code == code
    assert snapshot() == before


def test_invalid_stored_bank_details_make_the_file_refused_whole(world):
    # bank details written around the service (an old import): the checker catches them
    from passnum.places.models import BankAccount as PlaceBankAccount

    PlaceBankAccount.objects.filter(organisation=world.media, status="validated").update(
        iban="FR7620041000000001123456704"
    )
    before = snapshot()
    with pytest.raises(DomainError) as exc:
        payment_file_create(run=world.run, funder=world.funder)
    assert exc.value.code == "sepa_invalid"
    assert any("IBAN créancier" in p for p in exc.value.context["problems"])
    assert snapshot() == before


def test_execution_date_defaults_to_next_working_day():
    assert default_execution_date(dt.date(2026, 6, 12)) == dt.date(2026, 6, 15)  # Friday → Monday
    assert default_execution_date(dt.date(2026, 6, 15)) == dt.date(2026, 6, 16)


def test_execution_date_today_is_accepted(world):
    pf = payment_file_create(run=world.run, funder=world.funder, execution_date=local_today())
    assert f"<ReqdExctnDt>{local_today():%Y-%m-%d}</ReqdExctnDt>" in pf.content


# --- bank statements: camt.054 -----------------------------------------------------------------------------


def camt054(entries, *, version="001.02"):
    """A camt.054 debit notification as a bank sends it. Each entry: dict(amount, e2e, ustrd, ref, ind, sts,
    booked, details=[...]) where details, when given, are per-transaction dicts (amount, e2e, ustrd, ref)."""
    new = version != "001.02"

    def amount(cents, tag="Amt"):
        return f'<{tag} Ccy="EUR">{cents // 100}.{cents % 100:02d}</{tag}>'

    def tx(d):
        amt = amount(d["amount"]) if new else f"<AmtDtls><TxAmt>{amount(d['amount'])}</TxAmt></AmtDtls>"
        refs = f"<AcctSvcrRef>{d.get('ref', 'TX-REF')}</AcctSvcrRef>" if d.get("ref") else ""
        refs += f"<EndToEndId>{d['e2e']}</EndToEndId>" if d.get("e2e") else "<EndToEndId>NOTPROVIDED</EndToEndId>"
        if new:
            amount_part, trailing = amt, ""
        else:
            amount_part, trailing = "", amt
        ustrd = f"<RmtInf><Ustrd>{d['ustrd']}</Ustrd></RmtInf>" if d.get("ustrd") else ""
        return f"<TxDtls><Refs>{refs}</Refs>{amount_part}{trailing}<CdtDbtInd>DBIT</CdtDbtInd>{ustrd}</TxDtls>"

    body = []
    for e in entries:
        sts = e.get("sts", "BOOK")
        status = f"<Sts><Cd>{sts}</Cd></Sts>" if new else f"<Sts>{sts}</Sts>"
        details = e.get("details") or [{k: e[k] for k in ("amount", "e2e", "ustrd", "ref") if k in e}]
        total = e.get("amount", sum(d["amount"] for d in details))
        body.append(
            f"<Ntry><NtryRef>{len(body) + 1}</NtryRef>{amount(total)}<CdtDbtInd>{e.get('ind', 'DBIT')}</CdtDbtInd>"
            f"{status}<BookgDt><Dt>{e.get('booked', '2026-06-17')}</Dt></BookgDt><ValDt><Dt>2026-06-17</Dt></ValDt>"
            f"<AcctSvcrRef>{e.get('entry_ref', 'ENTRY-' + str(len(body) + 1))}</AcctSvcrRef>"
            f"<BkTxCd><Domn><Cd>PMNT</Cd><Fmly><Cd>ICDT</Cd><SubFmlyCd>ESCT</SubFmlyCd></Fmly></Domn></BkTxCd>"
            f"<NtryDtls>{''.join(tx(d) for d in details)}</NtryDtls></Ntry>"
        )
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.054.{version}" '
        f'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><BkToCstmrDbtCdtNtfctn>'
        f"<GrpHdr><MsgId>CAMT-1</MsgId><CreDtTm>2026-06-17T08:00:00</CreDtTm></GrpHdr>"
        f"<Ntfctn><Id>N1</Id><CreDtTm>2026-06-17T08:00:00</CreDtTm>"
        f"<Acct><Id><IBAN>{FUNDER_IBAN}</IBAN></Id></Acct>{''.join(body)}</Ntfctn>"
        f"</BkToCstmrDbtCdtNtfctn></Document>"
    ).encode()


def test_camt054_v02_marks_paid_and_ledger_agrees(world):
    pf = payment_file_create(run=world.run, funder=world.funder)
    data = camt054(
        [
            {"amount": 1800, "e2e": world.claim_cafe.reference, "ustrd": "Pass numerique", "ref": "BNP-0001"},
            {"amount": 1200, "e2e": "NOTPROVIDED", "ustrd": f"{world.claim_media.reference} Pass numerique"},
        ]
    )
    report = bank_statement_import(funder=world.funder, data=data, filename="releve.xml")
    assert report.format == "camt.054.001.02"
    assert [line.outcome for line in report.lines] == [Outcome.PAID, Outcome.PAID]
    refresh(world.claim_cafe, world.claim_media, pf)
    assert world.claim_cafe.status == world.claim_media.status == ClaimStatus.PAID
    assert world.claim_cafe.paid_reference == "BNP-0001"
    assert world.claim_media.paid_reference == "ENTRY-2"
    assert world.claim_cafe.paid_at.astimezone(sepa.PARIS).date() == dt.date(2026, 6, 17)
    assert pf.status == PaymentFileStatus.PAID
    assert ledger_verify() == []
    assert "2 demande(s) payée(s) (30,00\xa0€)" in report.summary()
    # the vouchers of a co-funded program wait for the cofunder's share
    assert world.claim_cafe.lines.first().voucher.status == VoucherStatus.CLAIMED

    before = snapshot()
    again = bank_statement_import(funder=world.funder, data=data, filename="releve.xml")
    assert [line.outcome for line in again.lines] == [Outcome.ALREADY_PAID, Outcome.ALREADY_PAID]
    assert snapshot() == before
    assert ledger_verify() == []


def test_camt054_v08_batch_booking_with_transaction_details(world):
    bank_account_set(organisation=world.late, holder_name="Tiers-lieu", iban=LATE_IBAN, bic="CRLYFRPP")
    validate_place_bank_details(world.late)
    payment_file_create(run=world.run, funder=world.funder, version="09")
    data = camt054(
        [
            {
                "details": [
                    {"amount": 1800, "e2e": world.claim_cafe.reference, "ref": "T1"},
                    {"amount": 1200, "e2e": world.claim_media.reference, "ref": "T2"},
                    {"amount": 600, "e2e": world.claim_late.reference, "ref": "T3"},
                ]
            },
            {"amount": 999, "ind": "CRDT", "e2e": "SOMETHING"},  # a credit: not ours to read
            {"amount": 600, "sts": "PDNG", "e2e": world.claim_late.reference},  # not booked yet
        ],
        version="001.08",
    )
    report = bank_statement_import(funder=world.funder, data=data, filename="camt054.xml")
    assert report.format == "camt.054.001.08"
    assert [line.outcome for line in report.lines] == [Outcome.PAID] * 3
    assert report.ignored == 2
    assert set(Claim.objects.filter(funder=world.funder).values_list("status", flat=True)) == {ClaimStatus.PAID}
    assert Claim.objects.get(pk=world.claim_media.pk).paid_reference == "T2"
    assert ledger_verify() == []


def test_statement_problems_are_reported_and_change_nothing(world):
    payment_file_create(run=world.run, funder=world.funder)
    other_place_claim = world.cofunder_claim_cafe  # another funder's claim: unknown to this funder
    data = camt054(
        [
            {"amount": 1799, "e2e": world.claim_cafe.reference},
            {"amount": 1200, "e2e": "DR-2026-F999-000001"},
            {"amount": other_place_claim.payable_cents, "e2e": other_place_claim.reference},
            {"amount": 1200, "ustrd": "virement sans reference"},
        ]
    )
    before = snapshot()
    report = bank_statement_import(funder=world.funder, data=data, filename="releve.xml")
    assert [line.outcome for line in report.lines] == [
        Outcome.MISMATCH,
        Outcome.UNKNOWN,
        Outcome.UNKNOWN,
        Outcome.UNKNOWN,
    ]
    assert "relevé 17,99\xa0€, demande 18,00\xa0€" in report.lines[0].message
    assert snapshot() == before
    assert len(report.problems) == 4


def test_claim_not_yet_approved_is_refused_line_by_line(world):
    claim = world.cofunder_claim_cafe  # still submitted
    amount = f"{claim.payable_cents // 100},{claim.payable_cents % 100:02d}"
    data = f"reference;montant;date\n{claim.reference};{amount};17/06/2026\n"
    before = snapshot()
    report = bank_statement_import(funder=world.cofunder, data=data.encode(), filename="r.csv")
    assert [line.outcome for line in report.lines] == [Outcome.REFUSED]
    assert "validée" in report.lines[0].message
    assert snapshot() == before


@pytest.mark.parametrize(
    "payload",
    [
        b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        b"<Document><BkToCstmrDbtCdtNtfctn>&x;</BkToCstmrDbtCdtNtfctn></Document>",
        b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;">]>'
        b"<Document>&lol2;</Document>",
    ],
)
def test_xml_with_dtd_or_entities_is_refused(world, payload):
    before = snapshot()
    with pytest.raises(DomainError) as exc:
        bank_statement_import(funder=world.funder, data=payload, filename="xxe.xml")
    assert exc.value.code == "statement_unsafe"
    assert snapshot() == before


@pytest.mark.parametrize(
    "payload",
    [
        b"<Document><BkToCstmrDbtCdtNtfctn>",  # truncated
        b'<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02"><BkToCstmrStmt/></Document>',
        b"<Document><BkToCstmrDbtCdtNtfctn><Ntfctn/></BkToCstmrDbtCdtNtfctn></Document>",
        b"",
        b"reference;montant\nDR-2026-F1-000001;12,00\n",
        b"reference;montant;date\nDR-2026-F1-000001;douze;2026-06-17\n",
        b"reference;montant;date\nDR-2026-F1-000001;12,00;demain\n",
    ],
)
def test_malformed_statement_is_refused_whole(world, payload):
    before = snapshot()
    with pytest.raises(DomainError) as exc:
        bank_statement_import(funder=world.funder, data=payload, filename="bad")
    assert exc.value.code in ("statement_malformed", "statement_empty")
    assert exc.value.message
    assert snapshot() == before


def test_malformed_camt_amount_refuses_the_whole_file(world):
    payment_file_create(run=world.run, funder=world.funder)
    data = camt054([{"amount": 1800, "e2e": world.claim_cafe.reference}, {"amount": 1200, "e2e": "X"}])
    data = data.replace(b">12.00<", b">12,00<")
    before = snapshot()
    with pytest.raises(DomainError) as exc:
        bank_statement_import(funder=world.funder, data=data, filename="bad.xml")
    assert exc.value.code == "statement_malformed"
    assert snapshot() == before  # the good first line was not applied either


# --- bank statements: CSV -------------------------------------------------------------------------------------


def test_csv_semicolon_french_comma_and_header(world):
    payment_file_create(run=world.run, funder=world.funder)
    data = (
        "Référence;Montant;Date;Référence bancaire\n"
        f"{world.claim_cafe.reference};18,00;17/06/2026;VIR-1\n"
        f"{world.claim_media.reference};-12,00;2026-06-18\n"
        "\n"
    ).encode("cp1252")
    report = bank_statement_import(funder=world.funder, data=data, filename="releve.csv")
    assert report.format == "CSV"
    assert [line.outcome for line in report.lines] == [Outcome.PAID, Outcome.PAID]
    refresh(world.claim_cafe, world.claim_media)
    assert world.claim_cafe.paid_reference == "VIR-1"
    assert world.claim_media.paid_at.astimezone(sepa.PARIS).date() == dt.date(2026, 6, 18)
    assert ledger_verify() == []


def test_csv_with_any_header_row(world):
    data = f"ref_demande;montant_eur;date_operation\n{world.claim_late.reference};6;17/06/2026\n".encode()
    report = bank_statement_import(funder=world.funder, data=data, filename="r.csv")
    assert [(line.where, line.outcome) for line in report.lines] == [("ligne 2", Outcome.PAID)]


def test_oversized_statement_is_refused(world):
    with pytest.raises(DomainError) as exc:
        bank_statement_import(funder=world.funder, data=b"x" * 20_000_001, filename="big.csv")
    assert exc.value.code == "statement_too_large"


def test_csv_comma_separator_and_unpaid_claim_without_payment_file(world):
    # a claim approved and paid by other means (no payment file) can still be marked paid from a statement
    data = f'reference,montant,date\n{world.claim_late.reference},"6,00",2026-06-17\n'.encode()
    report = bank_statement_import(funder=world.funder, data=data, filename="r.csv")
    assert [line.outcome for line in report.lines] == [Outcome.PAID]
    data = f"{world.claim_late.reference},6.00,2026-06-17\n{world.claim_cafe.reference},1 800.00,2026-06-17\n".encode()
    report = bank_statement_import(funder=world.funder, data=data, filename="r.csv")
    assert [line.outcome for line in report.lines] == [Outcome.ALREADY_PAID, Outcome.MISMATCH]
    assert ledger_verify() == []


@pytest.mark.parametrize(
    ("text", "cents"),
    [("18,00", 1800), ("18", 1800), ("1 234,5", 123450), ("1\u202f234,56 €", 123456), ("-12.00", 1200), ("0,07", 7)],
)
def test_parse_french_amount(text, cents):
    assert parse_french_amount(text) == cents


@pytest.mark.parametrize("text", ["", "douze", "12,345", "12,00,00", "1.234,56"])
def test_parse_french_amount_refuses(text):
    assert parse_french_amount(text) is None


# --- commands ---------------------------------------------------------------------------------------------------


def test_command_file_writes_the_file_and_rewrites_it_when_nothing_is_new(world, tmp_path, capsys):
    out = tmp_path / "virements.xml"
    call_command("payments", "file", "--funder", world.funder.slug, "--batch", str(world.run.pk), "--out", str(out))
    printed = capsys.readouterr().out
    assert "2 virement(s), total 30,00\xa0€" in printed
    assert str(out) in printed
    assert "Tiers-lieu sans RIB n’a pas de coordonnées bancaires" in printed
    pf = PaymentFile.objects.get()
    assert out.read_text(encoding="utf-8") == pf.content
    out.unlink()
    call_command(
        "payments",
        "file",
        "--funder",
        world.funder.slug,
        "--batch",
        str(world.run.pk),
        "--out",
        str(out),
        "--version",
        "09",
    )
    printed = capsys.readouterr().out
    assert "fichier existant" in printed and pf.message_id in printed
    assert out.read_text(encoding="utf-8") == pf.content
    assert PaymentFile.objects.count() == 1


def test_command_file_version_09_and_execution_date(world, tmp_path):
    out = tmp_path / "v09.xml"
    day = default_execution_date()
    call_command(
        "payments", "file", "--funder", world.funder.slug, "--batch", str(world.run.pk), "--out", str(out),
        "--version", "09", "--execution-date", day.isoformat(),
    )  # fmt: skip
    content = out.read_bytes()
    assert sepa.validate(content, "pain.001.001.09") == []
    assert f"<Dt>{day:%Y-%m-%d}</Dt>".encode() in content


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--funder", "inconnu", "--batch", "1"], "Financeur inconnu(e) : inconnu."),
        (["--batch", "999999"], "Arrêté inconnu : 999999."),
        (["--execution-date", "17/06/2026"], "Date d’exécution invalide"),
        (["--version", "12"], "[sepa_version_unknown]"),
    ],
)
def test_command_file_errors(world, tmp_path, args, message):
    base = {"--funder": world.funder.slug, "--batch": str(world.run.pk), "--out": str(tmp_path / "x.xml")}
    base.update(zip(args[::2], args[1::2], strict=True))
    argv = [item for pair in base.items() for item in pair]
    with pytest.raises(CommandError) as exc:
        call_command("payments", "file", *argv)
    assert message in str(exc.value)
    assert not (tmp_path / "x.xml").exists()


def test_command_file_refusal_carries_the_code(program, funder, cofunder, tmp_path):
    w = make_world(program, funder, cofunder, funder_account=False)
    with pytest.raises(CommandError) as exc:
        call_command(
            "payments", "file", "--funder", w.funder.slug, "--batch", str(w.run.pk), "--out", str(tmp_path / "x")
        )
    assert "[no_debtor_account]" in str(exc.value)


def test_command_import_prints_the_report(world, tmp_path, capsys):
    payment_file_create(run=world.run, funder=world.funder)
    path = tmp_path / "releve.csv"
    path.write_text(f"{world.claim_cafe.reference};18,00;2026-06-17\nDR-2026-F9-000009;1,00;2026-06-17\n")
    call_command("payments", "import", "--funder", world.funder.slug, str(path))
    printed = capsys.readouterr().out
    assert "1 demande(s) payée(s) (18,00\xa0€), 0 déjà payée(s), 1 référence(s) inconnue(s)" in printed
    assert f"ligne 1 : {world.claim_cafe.reference} 18,00\xa0€ → payée" in printed
    assert "ligne 2 : DR-2026-F9-000009 1,00\xa0€ → référence inconnue" in printed
    with pytest.raises(CommandError) as exc:
        call_command("payments", "import", "--funder", world.funder.slug, str(tmp_path / "absent.csv"))
    assert "Fichier illisible" in str(exc.value)
    path.write_bytes(b"<Document><!DOCTYPE x></Document>")
    with pytest.raises(CommandError) as exc:
        call_command("payments", "import", "--funder", world.funder.slug, str(path))
    assert "[statement_unsafe]" in str(exc.value)


def test_command_mark_paid(world, capsys):
    call_command("payments", "mark-paid", "--claim", world.claim_late.reference.lower(), "--reference", "CHQ-12")
    assert f"{world.claim_late.reference} payée : 6,00\xa0€." in capsys.readouterr().out
    refresh(world.claim_late)
    assert (world.claim_late.status, world.claim_late.paid_reference) == (ClaimStatus.PAID, "CHQ-12")
    call_command("payments", "mark-paid", "--claim", world.claim_late.reference)
    assert "était déjà payée" in capsys.readouterr().out
    with pytest.raises(CommandError) as exc:
        call_command("payments", "mark-paid", "--claim", "DR-2000-F1-000001")
    assert "[claim_not_found]" in str(exc.value)
    with pytest.raises(CommandError) as exc:
        call_command("payments", "mark-paid", "--claim", world.cofunder_claim_cafe.reference)
    assert "[claim_not_approved]" in str(exc.value)
    assert ledger_verify() == []


def test_command_bank_account(capsys):
    place = OrganisationFactory(place=True)
    call_command(
        "payments", "bank-account", "--organisation", place.slug, "--iban", CAFE_IBAN, "--holder", "Café Numérique"
    )
    printed = capsys.readouterr().out
    assert "IBAN FR76…6723, BIC SOGEFRPP" in printed
    assert CAFE_IBAN not in printed
    with pytest.raises(CommandError) as exc:
        call_command(
            "payments", "bank-account", "--organisation", place.slug, "--iban", "FR00", "--holder", "Café Numérique"
        )
    assert "[iban_invalid]" in str(exc.value)
    with pytest.raises(CommandError) as exc:
        call_command("payments", "bank-account", "--organisation", "nope", "--iban", CAFE_IBAN, "--holder", "X")
    assert "Organisation inconnu(e) : nope." in str(exc.value)
