"""Statements of a claim (CSV and PDF), built from claims made through the real services."""

import csv
import datetime as dt
import io
import resource
import subprocess
import time

import pytest
from django.utils import timezone

from passnum.common.money import format_euros
from passnum.common.standard import Service
from passnum.places.models import SiteService
from passnum.settlement import statements
from passnum.settlement.enums import LineStatus
from passnum.settlement.models import Claim, ClaimLine
from passnum.settlement.services import claim_line_reject, claim_mark_paid, claims_approve
from passnum.settlement.statements import (
    PARIS,
    run_statement_rows,
    statement_csv,
    statement_filename,
    statement_page_count,
    statement_pdf,
    statement_rows,
)
from passnum.vouchers import codes
from passnum.vouchers.models import Booklet
from passnum.vouchers.redemption import Desk, redeem
from passnum.vouchers.services import booklet_allocate, booklet_hand_out, booklets_issue
from tests.desk.scenario import build, make_site
from tests.factories import OrganisationFactory
from tests.settlement.flow import settle_all

pytestmark = pytest.mark.django_db
T, A = Service.EVERYDAY_TOOLS, Service.ADMIN_PROCEDURES


def _plain(text: str) -> str:
    """Spaces of any kind as one plain space (format_euros uses no-break spaces; pdftotext keeps them)."""
    return " ".join(text.replace("\xa0", " ").replace("\u202f", " ").split())


def _pdf_text(data: bytes) -> str:
    result = subprocess.run(["pdftotext", "-layout", "-", "-"], input=data, capture_output=True, check=True)  # noqa: S607
    return _plain(result.stdout.decode("utf-8"))


def _parse_csv(chunks) -> tuple[dict[str, str], list[dict[str, str]]]:
    text = "".join(chunks)
    assert text.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(text[1:], newline=""), delimiter=";"))
    blank = rows.index([])
    header = dict(rows[:blank])
    columns = rows[blank + 1]
    return header, [dict(zip(columns, r, strict=True)) for r in rows[blank + 2 :]]


def _cents(text: str) -> int:
    euros, _, cents = text.partition(",")
    return int(euros) * 100 + int(cents)


@pytest.fixture
def sc():
    sc = build()
    sc.place.siret = "21510454200017"
    sc.place.save(update_fields=["siret"])
    sc.funder.siret = "22510001400019"
    sc.funder.save(update_fields=["siret"])
    return sc


@pytest.fixture
def claim(sc):
    """The Département's claim (60 % of 10 €) for 3 vouchers: 2 in one session of T, then 1 of A."""
    redeem(raw_code=sc.code(1), desk=Desk(place=sc.place), service=T, count=2)
    redeem(raw_code=sc.code(3), desk=Desk(place=sc.place), service=A, count=1)
    result = settle_all()
    return next(c for c in result.claims if c.funder_id == sc.funder.pk)


def test_rows_are_ordered_by_use_with_labels(sc, claim):
    rows = list(statement_rows(claim))
    # the first session took vouchers 1 and 2 at the same instant: ties go by code
    assert [r.voucher for r in rows[:2]] == sorted(codes.display(sc.code(p)) for p in (1, 2))
    assert rows[2].voucher == codes.display(sc.code(3))
    assert [r.redeemed_at for r in rows] == sorted(r.redeemed_at for r in rows)
    assert [r.service for r in rows] == [T.label, T.label, A.label]
    assert {r.amount_cents for r in rows} == {600}
    assert {r.funder for r in rows} == {"Département de la Marne"}
    assert {r.program for r in rows} == {sc.program.name}
    assert {r.status for r in rows} == {LineStatus.CLAIMED}
    assert str(rows[0].redeemed_at.tzinfo) == "Europe/Paris"


def test_csv_parses_back_and_sums_to_the_cent_with_a_rejected_line(sc, claim):
    rejected_line = ClaimLine.objects.filter(claim=claim).order_by("redeemed_at", "id").last()
    claim_line_reject(line=rejected_line, funder=sc.funder, reason="Séance non réalisée")
    claim.refresh_from_db()

    header, rows = _parse_csv(statement_csv(claim))

    assert header["Relevé n°"] == claim.reference
    assert header["Lieu de médiation numérique"] == "Médiathèque Jean Falala"
    assert header["SIRET du lieu"] == "21510454200017"
    assert header["Financeur"] == "Département de la Marne"
    assert header["SIRET du financeur"] == "22510001400019"
    assert header["Arrêté du"] == f"{claim.run.cutoff:%d/%m/%Y}"
    assert header["Nombre de chèques"] == "3"
    assert header["dont rejetés"] == "1"
    assert header["Montant demandé (EUR)"] == "18,00"
    assert header["Montant rejeté (EUR)"] == "6,00"
    assert header["Montant à payer (EUR)"] == "12,00"
    assert header["Statut"] == "À valider par le financeur"

    assert len(rows) == 3
    assert {r["Code du chèque"] for r in rows} == {codes.display(sc.code(p)) for p in (1, 2, 3)}
    assert sum(_cents(r["Montant (EUR)"]) for r in rows) == claim.claimed_cents
    kept = [r for r in rows if r["Statut de la ligne"] != "Rejetée"]
    assert sum(_cents(r["Montant (EUR)"]) for r in kept) == claim.payable_cents == 1200
    rejected = [r for r in rows if r["Statut de la ligne"] == "Rejetée"]
    assert [r["Code du chèque"] for r in rejected] == [codes.display(rejected_line.voucher.code)]
    assert rows[0]["Service"] == T.label
    assert rows[0]["Dispositif"] == sc.program.name
    assert rows[0]["Date"].count("/") == 2 and len(rows[0]["Heure"]) == 5


def test_csv_uses_crlf_semicolons_and_no_formula(sc, claim):
    sc.place.name = '=HYPERLINK("http://x")'
    sc.place.save(update_fields=["name"])
    text = "".join(statement_csv(claim))
    assert "\r\n" in text and text.count("\n") == text.count("\r\n")
    header, _ = _parse_csv([text])
    assert header["Lieu de médiation numérique"].startswith("'=")
    assert statement_filename(claim, "csv") == f"releve-{claim.reference}.csv"


def test_paid_claim_says_when_and_reference(sc, claim):
    claims_approve(claims=[claim], funder=sc.funder)
    claim_mark_paid(claim=claim, funder=sc.funder, reference="VIR-2026-0042")
    claim.refresh_from_db()
    header, _ = _parse_csv(statement_csv(claim))
    assert header["Statut"] == "Payée"
    assert header["Payée le"] != ""
    assert header["Référence du virement"] == "VIR-2026-0042"
    text = _pdf_text(statement_pdf(claim))
    assert "Payée le" in text and "VIR-2026-0042" in text


def test_pdf_has_number_identities_totals_and_each_voucher(sc, claim):
    line = ClaimLine.objects.filter(claim=claim).order_by("redeemed_at", "id").first()
    claim_line_reject(line=line, funder=sc.funder, reason="Doublon")
    claim.refresh_from_db()

    data = statement_pdf(claim)

    assert data.startswith(b"%PDF-")
    text = _pdf_text(data)
    assert f"Relevé n° {claim.reference}" in text
    assert "Page 1/1" in text
    assert "Médiathèque Jean Falala" in text and "SIRET : 21510454200017" in text
    assert "Département de la Marne" in text and "SIRET : 22510001400019" in text
    assert _plain(f"Total demandé {format_euros(1800)}") in text
    assert _plain(f"Lignes rejetées {format_euros(600)}") in text
    assert _plain(f"Total à payer (hors lignes rejetées) {format_euros(1200)}") in text
    assert "À valider par le financeur" in text
    for position in (1, 2, 3):
        assert codes.display(sc.code(position)) in text
    assert text.count("REJETÉE") == 1
    assert "Aide aux démarches administratives" in text


def _booklets_in_hand(sc, count: int) -> list[Booklet]:
    booklets = list(booklets_issue(program=sc.program, count=count))
    for booklet in booklets:
        booklet_allocate(booklet=booklet, distributor=sc.distributor)
        booklet_hand_out(booklet=booklet, organisation=sc.distributor)
    return booklets


def _redeem_whole_booklets(sc, booklets):
    """Sessions of 10 vouchers (the most a session may take; the site allows it for T) until each booklet is
    used up."""
    SiteService.objects.filter(site=sc.site, service=T).update(vouchers_per_session=10)
    for booklet in booklets:
        vouchers = list(booklet.vouchers.order_by("position").values_list("code", flat=True))
        for start in range(0, len(vouchers), 10):
            redeem(raw_code=vouchers[start], desk=Desk(place=sc.place), service=T, count=10)


def test_multi_page_statement_lists_every_voucher(sc):
    booklets = _booklets_in_hand(sc, 15)
    _redeem_whole_booklets(sc, booklets)
    claim = next(c for c in settle_all().claims if c.funder_id == sc.funder.pk)
    assert claim.lines_count == 150
    pages = statement_page_count(150)
    assert pages >= 3

    text = _pdf_text(statement_pdf(claim))

    for page in range(1, pages + 1):
        assert f"Page {page}/{pages}" in text
    assert f"Page {pages + 1}/" not in text
    for code in ClaimLine.objects.filter(claim=claim).values_list("voucher__code", flat=True):
        assert codes.display(code) in text
    assert _plain(f"Total à payer (hors lignes rejetées) {format_euros(150 * 600)}") in text
    header, rows = _parse_csv(statement_csv(claim))
    assert len(rows) == 150 and sum(_cents(r["Montant (EUR)"]) for r in rows) == 90_000


def test_page_count_puts_totals_on_a_new_page_when_the_last_one_is_full():
    assert statement_page_count(0) == statement_page_count(1) == 1
    counts = [statement_page_count(n) for n in range(0, 400)]
    assert counts == sorted(counts)  # never fewer pages for more lines
    assert max(b - a for a, b in zip(counts, counts[1:], strict=False)) == 1


def test_ten_thousand_lines_paginate_with_flat_memory():
    sc = build(budget_cents=20_000_000, vouchers_per_booklet=50)
    booklets = _booklets_in_hand(sc, 200)
    _redeem_whole_booklets(sc, booklets)
    claim = Claim.objects.get(pk=next(c.pk for c in settle_all().claims if c.funder_id == sc.funder.pk))
    assert claim.lines_count == 10_000

    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    started = time.monotonic()
    data = statement_pdf(claim)
    elapsed = time.monotonic() - started
    rss_growth_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before

    pages = statement_page_count(10_000)
    assert elapsed < 30
    assert rss_growth_kib < 64 * 1024  # pages are written as drawn (tracemalloc measured a 2 MB peak)
    text = _pdf_text(data)
    assert f"Page {pages}/{pages}" in text and f"Relevé n° {claim.reference}" in text
    for code in ClaimLine.objects.filter(claim=claim).values_list("voucher__code", flat=True)[::997]:
        assert codes.display(code) in text
    assert _plain(f"Total à payer (hors lignes rejetées) {format_euros(10_000 * 600)}") in text
    header, rows = _parse_csv(statement_csv(claim))
    assert len(rows) == 10_000
    assert sum(_cents(r["Montant (EUR)"]) for r in rows) == _cents(header["Montant à payer (EUR)"]) == 6_000_000


# --- reading the rows ---------------------------------------------------------------------------------------


def _orm_rows(claim) -> list[tuple]:
    """The claim's rows read through the ORM, the plain way: what statement_rows must give, field for field."""
    lines = (
        ClaimLine.objects.filter(claim=claim)
        .order_by("redeemed_at", "voucher__code", "id")
        .values_list("redeemed_at", "voucher__code", "service", "voucher__program__name", "amount_cents", "status")
    )
    return [
        (
            timezone.localtime(at, PARIS).isoformat(),
            codes.display(code),
            Service(service).label,
            program,
            amount,
            claim.funder.name,
            status,
            LineStatus(status).label,
        )
        for at, code, service, program, amount, status in lines
    ]


def _plain_rows(rows) -> list[tuple]:
    # isoformat: two aware datetimes of one zone compare equal across a DST fold (02:30 CEST == 02:30 CET)
    return [(r.redeemed_at.isoformat(), *r[1:]) for r in rows]


def test_rows_equal_the_orm_across_the_autumn_dst_fold(sc, claim):
    """On 25 October 2026, 02:30 happens twice in Paris: 00:30 UTC (summer time) then 01:30 UTC (winter time)."""
    first, second, third = ClaimLine.objects.filter(claim=claim).order_by("id")
    summer = dt.datetime(2026, 10, 25, 0, 30, 0, 123456, tzinfo=dt.UTC)
    ClaimLine.objects.filter(pk=first.pk).update(redeemed_at=summer + dt.timedelta(hours=1))
    ClaimLine.objects.filter(pk__in=[second.pk, third.pk]).update(redeemed_at=summer)  # a tie: by code
    claim_line_reject(line=second, funder=sc.funder, reason="Doublon")

    rows = list(statement_rows(claim))

    assert _plain_rows(rows) == _orm_rows(claim)
    assert [(r.redeemed_at.isoformat(), r.redeemed_at.fold) for r in rows] == [
        ("2026-10-25T02:30:00.123456+02:00", 0),
        ("2026-10-25T02:30:00.123456+02:00", 0),
        ("2026-10-25T02:30:00.123456+01:00", 1),
    ]
    assert [r.voucher for r in rows[:2]] == sorted(codes.display(line.voucher.code) for line in (second, third))
    assert [r.is_rejected for r in rows] == [r.voucher == codes.display(second.voucher.code) for r in rows]


def test_a_claim_bigger_than_a_batch_is_read_in_batches(sc, claim, monkeypatch):
    whole = list(statement_rows(claim))
    monkeypatch.setattr(statements, "BATCH", 2)  # 3 lines: a server-side cursor on PostgreSQL

    segments = list(
        statements._segments(
            statements._lines_sql("l.claim_id = %s"), [claim.pk], lines=3, funders={claim.pk: claim.funder.name}
        )
    )

    assert [(claim_id, len(rows)) for claim_id, rows in segments] == [(claim.pk, 2), (claim.pk, 1)]
    assert list(statement_rows(claim)) == whole == segments[0][1] + segments[1][1]
    assert _plain_rows(whole) == _orm_rows(claim)


def test_run_rows_are_the_same_whatever_the_batch(sc, monkeypatch):
    """Two places and two funders: 4 claims of 2 and 1 lines, read with batches ending inside a claim, on a
    claim's edge, and holding the whole run."""
    other_place = OrganisationFactory(place=True, name="EPN de Tinqueux")
    make_site(other_place)
    redeem(raw_code=sc.code(1), desk=Desk(place=sc.place), service=T, count=2)
    redeem(raw_code=sc.code(3), desk=Desk(place=other_place), service=A, count=1)
    run = settle_all().run
    claims = list(Claim.objects.filter(run=run).order_by("pk"))
    assert sorted(c.lines_count for c in claims) == [1, 1, 2, 2]
    expected = [(claim, list(statement_rows(claim))) for claim in claims]
    for claim, rows in expected:
        assert _plain_rows(rows) == _orm_rows(claim)

    for batch in (1, 2, 3, 5, 6, 50_000):
        monkeypatch.setattr(statements, "BATCH", batch)
        assert list(run_statement_rows(run)) == expected, batch
