"""Statements (relevés) of a claim: what one funder owes one place for one settlement run, voucher by voucher.

- `statement_rows(claim)`: the lines as plain rows, by time of use, read BATCH lines at a time (flat memory).
- `run_statement_rows(run)`: every claim of a run with its rows, from one query streamed BATCH lines at a time.
- `statement_csv(claim)`: an iterator of text chunks for a `StreamingHttpResponse` (charset UTF-8): a byte order
  mark, `;` separators, CRLF line ends, decimal comma, no thousands separator, so a French spreadsheet or a
  public accountant's (régie's) import reads it as is. A header block (one `label;value` pair per line: claim
  number, place and funder with their SIRET, settlement date, period, totals, payment), an empty line, then one
  row per voucher. Rejected lines are listed, marked « Rejetée », and excluded from the amount to pay.
- `statement_pdf(claim)`: the same as an A4 PDF, « Relevé n° <référence> », page x/y on every page. Pages are
  drawn and compressed one at a time by vouchers.pdf's streaming canvas, so a claim of 10 000 vouchers (about
  190 pages) never holds more than one page of drawing in memory; only the finished file (a few hundred kB) is.

Nothing here names a person: a statement holds organisations, voucher codes, services and amounts."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterator
from typing import NamedTuple
from zoneinfo import ZoneInfo

from django.db import connection
from django.utils import timezone
from reportlab.lib.units import mm
from reportlab.pdfbase.pdfmetrics import stringWidth

from passnum.common.dates import french_date
from passnum.common.money import format_euros
from passnum.common.standard import Service
from passnum.settlement.enums import ClaimStatus, LineStatus
from passnum.settlement.models import Claim, ClaimLine
from passnum.vouchers import codes
from passnum.vouchers.models import Voucher
from passnum.vouchers.pdf import BLACK, BLUE, BOLD, GREY, MONO, PAGE_H, PAGE_W, RED, REGULAR, StreamingCanvas, pdf_text

PARIS = ZoneInfo("Europe/Paris")
BATCH = 50_000  # claim lines fetched at a time: about 40 MB with their rows
CSV_ROWS_PER_CHUNK = 500  # rows per yielded text chunk

SERVICE_LABELS = dict(Service.choices)
LINE_LABELS = dict(LineStatus.choices)


class StatementRow(NamedTuple):
    """A tuple: a million of them are built for a settlement date."""

    redeemed_at: dt.datetime  # aware, Europe/Paris
    voucher: str  # display form, 7KQ4-M2XD-9FTB-P
    service: str  # the national standard's label
    program: str
    amount_cents: int
    funder: str
    status: str  # LineStatus value
    status_label: str

    @property
    def is_rejected(self) -> bool:
        return self.status == LineStatus.REJECTED


def _utc_to_local(value: dt.datetime, tz: dt.tzinfo) -> dt.datetime:
    """SQLite: Django stores the UTC time without offset (read back as a naive datetime)."""
    return (value if value.tzinfo else value.replace(tzinfo=dt.UTC)).astimezone(tz)


def _lines_sql(where: str, *, order: str = "") -> str:
    """The lines' columns (claim, instant, code, service, program, amount, status) by time of use, ties by code
    then id. Raw SQL: on PostgreSQL the instant comes as seconds since 1970, a float8 exact to the microsecond
    (`datetime.fromtimestamp` gives the same datetime and DST fold as `localtime`), which psycopg loads in C;
    Django's timestamptz loader is Python code, about 4 µs a line."""
    quote = connection.ops.quote_name
    instant = "date_part('epoch', l.redeemed_at)" if connection.vendor == "postgresql" else "l.redeemed_at"
    # The program is the voucher's: the line keeps no copy.
    return (
        f"SELECT l.claim_id, {instant}, v.code, l.service, v.program_id, l.amount_cents, l.status"  # noqa: S608
        f" FROM {quote(ClaimLine._meta.db_table)} l JOIN {quote(Voucher._meta.db_table)} v ON v.id = l.voucher_id"
        f" WHERE {where} ORDER BY {order}l.redeemed_at, v.code, l.id"
    )


def _cursor(lines: int):
    """A plain cursor for a read of at most BATCH lines; a server-side one (PostgreSQL) for a bigger one, so it
    comes BATCH lines at a time (unless the settings turn server-side cursors off, as Django's iterator does)."""
    if lines <= BATCH or connection.settings_dict.get("DISABLE_SERVER_SIDE_CURSORS"):
        return connection.cursor()
    return connection.chunked_cursor()


def _segments(sql: str, params: list, *, lines: int, funders: dict[int, str]) -> Iterator[tuple[int, list]]:
    """The rows `sql` reads, as (claim id, consecutive rows of that claim) read BATCH lines at a time: a claim
    bigger than a batch comes in several segments. `lines`: about how many lines (picks the cursor)."""
    from passnum.programs.models import Program

    to_local = dt.datetime.fromtimestamp if connection.vendor == "postgresql" else _utc_to_local
    programs: dict[int, str] = {}  # names looked up once (a run spans few programs)
    service_label, line_label, display = SERVICE_LABELS.get, LINE_LABELS.get, codes.display
    new_row = tuple.__new__  # StatementRow(...) would go through a Python-level __new__ for every line
    with _cursor(lines) as cursor:
        cursor.execute(sql, params)
        while chunk := cursor.fetchmany(BATCH):
            if missing := {row[4] for row in chunk}.difference(programs):
                programs.update(Program.objects.filter(pk__in=missing).values_list("pk", "name"))
            current, segment = None, []
            for claim_id, instant, code, service, program_id, amount, status in chunk:
                if claim_id != current:
                    if segment:
                        yield current, segment
                    current, segment, funder = claim_id, [], funders[claim_id]
                    append = segment.append
                append(
                    new_row(
                        StatementRow,
                        (
                            to_local(instant, PARIS),
                            display(code),
                            service_label(service, service),
                            programs[program_id],
                            amount,
                            funder,
                            status,
                            line_label(status, status),
                        ),
                    )
                )
            if segment:
                yield current, segment


def statement_rows(claim: Claim) -> Iterator[StatementRow]:
    """The claim's lines, oldest use first (ties by voucher code), read BATCH lines at a time."""
    sql = _lines_sql("l.claim_id = %s")
    for _claim_id, segment in _segments(
        sql, [claim.pk], lines=claim.lines_count, funders={claim.pk: claim.funder.name}
    ):
        yield from segment


def run_statement_rows(run) -> Iterator[tuple[Claim, list[StatementRow]]]:
    """Every claim of a settlement run with its statement rows, in claim order (what a settlement date needs to
    send every place its statement). One query for the whole run, read BATCH lines at a time through a
    server-side cursor, so the caller may query in between: batches of claims would each scan the vouchers again
    (a hash join) or look them up one by one, a third slower over a run of 1.45 M lines."""
    claims = {c.pk: c for c in Claim.objects.filter(run=run).select_related("funder", "place")}
    funders = {pk: claim.funder.name for pk, claim in claims.items()}
    # Sorted by `claim_id + 0`, which no index yields: a server-side cursor would otherwise pick the plan that
    # returns its first rows soonest (the claim index, then each voucher by key), twice as slow over a whole run.
    claim_table = connection.ops.quote_name(Claim._meta.db_table)
    in_run = f"l.claim_id IN (SELECT id FROM {claim_table} WHERE run_id = %s)"  # noqa: S608
    sql = _lines_sql(in_run, order="l.claim_id + 0, ")
    lines = sum(claim.lines_count for claim in claims.values())
    current, rows = None, []
    for claim_id, segment in _segments(sql, [run.pk], lines=lines, funders=funders):
        if claim_id == current:
            rows.extend(segment)
            continue
        if current is not None:
            yield claims[current], rows
        current, rows = claim_id, segment
    if current is not None:
        yield claims[current], rows


def statement_filename(claim: Claim, extension: str) -> str:
    """'releve-DR-2026-F3-000001.csv' (no personal data, safe in a Content-Disposition header)."""
    return f"releve-{claim.reference}.{extension}"


# --- shared facts -------------------------------------------------------------------------------------------


def _day(value: dt.datetime | None) -> dt.date | None:
    return timezone.localtime(value, PARIS).date() if value else None


def _fr(day: dt.date | None) -> str:
    return f"{day:%d/%m/%Y}" if day else ""


def _payment_text(claim: Claim) -> str:
    """'Payée le 20/03/2026 (virement VIR-123)' or the status label."""
    if claim.status == ClaimStatus.PAID:
        text = f"Payée le {_fr(_day(claim.paid_at))}"
        return f"{text} (référence {claim.paid_reference})" if claim.paid_reference else text
    return claim.get_status_display()


def _counts(claim: Claim) -> tuple[int, int]:
    """(lines, rejected lines)."""
    lines = ClaimLine.objects.filter(claim_id=claim.pk)
    return lines.count(), lines.filter(status=LineStatus.REJECTED).count()


# --- CSV ---------------------------------------------------------------------------------------------------


def csv_amount(cents: int) -> str:
    """1234567 → '12345,67' (decimal comma, no thousands separator, no currency: a number for a spreadsheet)."""
    sign = "-" if cents < 0 else ""
    euros, rest = divmod(abs(int(cents)), 100)
    return f"{sign}{euros},{rest:02d}"


def _cell(text: str) -> str:
    """A text cell a spreadsheet will not run as a formula (names are typed by people)."""
    text = str(text)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def statement_header(claim: Claim) -> list[tuple[str, str]]:
    """The header block as (label, value) pairs, in French."""
    place, funder = claim.place, claim.funder
    lines, rejected = _counts(claim)
    return [
        ("Relevé n°", claim.reference),
        ("Lieu de médiation numérique", _cell(place.name)),
        ("SIRET du lieu", place.siret),
        ("Financeur", _cell(funder.name)),
        ("SIRET du financeur", funder.siret),
        ("Arrêté du", _fr(claim.run.cutoff)),
        ("Encaissements du", _fr(_day(claim.period_start))),
        ("Encaissements au", _fr(_day(claim.period_end))),
        ("Nombre de chèques", str(lines)),
        ("dont rejetés", str(rejected)),
        ("Montant demandé (EUR)", csv_amount(claim.claimed_cents)),
        ("Montant rejeté (EUR)", csv_amount(claim.rejected_cents)),
        ("Montant à payer (EUR)", csv_amount(claim.payable_cents)),
        ("Statut", claim.get_status_display()),
        ("Payée le", _fr(_day(claim.paid_at))),
        ("Référence du virement", _cell(claim.paid_reference)),
    ]


CSV_COLUMNS = [
    "Date",
    "Heure",
    "Code du chèque",
    "Service",
    "Dispositif",
    "Montant (EUR)",
    "Financeur",
    "Statut de la ligne",
]


def statement_csv(claim: Claim) -> Iterator[str]:
    """The statement as CSV text chunks (see the module's docstring); the first chunk starts with the BOM."""
    claim = Claim.objects.select_related("place", "funder", "run").get(pk=claim.pk)
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=";", lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)

    def take() -> str:
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return text

    buffer.write("\ufeff")
    writer.writerows(statement_header(claim))
    writer.writerow([])
    writer.writerow(CSV_COLUMNS)
    yield take()
    pending = 0
    for row in statement_rows(claim):
        writer.writerow(
            [
                f"{row.redeemed_at:%d/%m/%Y}",
                f"{row.redeemed_at:%H:%M}",
                row.voucher,
                row.service,
                _cell(row.program),
                csv_amount(row.amount_cents),
                _cell(row.funder),
                row.status_label,
            ]
        )
        pending += 1
        if pending >= CSV_ROWS_PER_CHUNK:
            yield take()
            pending = 0
    if pending:
        yield take()


# --- PDF ---------------------------------------------------------------------------------------------------

MARGIN = 15 * mm
LEFT, RIGHT = MARGIN, PAGE_W - MARGIN
TOP, BOTTOM = PAGE_H - MARGIN, MARGIN + 8 * mm  # the footer sits below BOTTOM
ROW_H = 11.5
HEADER_H = 34  # title and rule, every page
IDENTITY_H = 178  # first page: place, funder, period, totals
TABLE_HEAD_H = 16
TOTALS_H = 64  # after the last line
FONT_SIZE = 7.5

# (title, width, align); widths sum to the 510 pt between the margins
COLUMNS = [
    ("N°", 26, "right"),
    ("Date", 62, "left"),
    ("Code du chèque", 76, "left"),
    ("Service", 176, "left"),
    ("Dispositif", 68, "left"),
    ("Montant", 50, "right"),
    ("Statut", 52, "left"),
]


def _rows_per_page(first: bool) -> int:
    room = TOP - BOTTOM - HEADER_H - TABLE_HEAD_H - (IDENTITY_H if first else 0)
    return int(room // ROW_H)


def statement_page_count(lines: int) -> int:
    """Pages for a statement of `lines` lines: the first page holds fewer (identity block), and the totals go
    after the last line, on a page of their own if they do not fit."""
    first, other = _rows_per_page(True), _rows_per_page(False)
    lines = max(lines, 1)  # an empty statement says so on one line
    if lines <= first:
        pages, on_last, capacity = 1, lines, first
    else:
        rest = lines - first
        pages = 1 + -(-rest // other)
        on_last = rest - (pages - 2) * other
        capacity = other
    if (capacity - on_last) * ROW_H < TOTALS_H:
        pages += 1
    return pages


def _fit(text: str, font: str, size: float, width: float) -> str:
    text = pdf_text(text)
    if stringWidth(text, font, size) <= width:
        return text
    while text and stringWidth(text + "…", font, size) > width:
        text = text[:-1]
    return text.rstrip() + "…"


class _StatementPdf:
    def __init__(self, claim: Claim, out, pages: int):
        self.claim = claim
        self.pages = pages
        self.page = 0
        self.c = StreamingCanvas(out, title=f"Relevé n° {claim.reference}")
        self.printed = french_date(timezone.localdate())
        self.cells: dict[tuple[int, str], tuple[str, float]] = {}

    def text(self, x, y, text, font=REGULAR, size=FONT_SIZE, color=BLACK, align="left"):
        c = self.c
        c.setFillColorRGB(*color)
        c.setFont(font, size)
        text = pdf_text(text)
        if align == "right":
            c.drawRightString(x, y, text)
        else:
            c.drawString(x, y, text)

    def start_page(self) -> float:
        """Page header and footer; returns the y where content starts."""
        self.page += 1
        claim = self.claim
        self.text(LEFT, TOP - 14, f"Relevé n° {claim.reference}", BOLD, 14, BLUE)
        self.text(RIGHT, TOP - 14, f"Page {self.page}/{self.pages}", REGULAR, 9, GREY, "right")
        self.text(LEFT, TOP - 26, f"{claim.place.name} — {claim.funder.name}", REGULAR, 8, GREY)
        self.c.setStrokeColorRGB(*BLUE)
        self.c.setLineWidth(0.8)
        self.c.line(LEFT, TOP - HEADER_H + 4, RIGHT, TOP - HEADER_H + 4)
        self.text(
            LEFT,
            MARGIN,
            f"Pass numérique — relevé de la demande de remboursement {claim.reference}, édité le {self.printed}.",
            REGULAR,
            6.5,
            GREY,
        )
        self.text(RIGHT, MARGIN, f"Page {self.page}/{self.pages}", REGULAR, 6.5, GREY, "right")
        return TOP - HEADER_H

    def end_page(self) -> None:
        self.c.showPage()

    def identity(self, y: float, lines: int, rejected: int) -> float:
        claim, place, funder = self.claim, self.claim.place, self.claim.funder
        y -= 14
        self.text(LEFT, y, "Demande de remboursement de chèques Pass numérique", BOLD, 10)
        col2 = LEFT + 255
        y -= 18
        self.text(LEFT, y, "Lieu de médiation numérique (bénéficiaire du paiement)", BOLD, 8, GREY)
        self.text(col2, y, "Financeur (payeur)", BOLD, 8, GREY)
        y -= 12
        self.text(LEFT, y, _fit(place.name, BOLD, 9, 245), BOLD, 9)
        self.text(col2, y, _fit(funder.name, BOLD, 9, 245), BOLD, 9)
        y -= 11
        self.text(LEFT, y, f"SIRET : {place.siret or 'non renseigné'}", REGULAR, 8)
        self.text(col2, y, f"SIRET : {funder.siret or 'non renseigné'}", REGULAR, 8)
        y -= 18
        start, end = _day(claim.period_start), _day(claim.period_end)
        facts = [
            ("Arrêté du", french_date(claim.run.cutoff)),
            ("Encaissements", f"du {french_date(start)} au {french_date(end)}" if start and end else "—"),
            ("Chèques", f"{lines}" + (f", dont {rejected} rejeté(s)" if rejected else "")),
            ("Statut du paiement", _payment_text(claim)),
        ]
        for label, value in facts:
            self.text(LEFT, y, label, REGULAR, 8, GREY)
            self.text(LEFT + 90, y, value, REGULAR, 8)
            y -= 11
        y -= 6
        y = self.totals(y)
        return y - 8

    def totals(self, y: float) -> float:
        claim = self.claim
        x_value = LEFT + 250
        for label, cents, font, color in (
            ("Total demandé", claim.claimed_cents, REGULAR, BLACK),
            ("Lignes rejetées", claim.rejected_cents, REGULAR, RED if claim.rejected_cents else BLACK),
            ("Total à payer (hors lignes rejetées)", claim.payable_cents, BOLD, BLUE),
        ):
            self.text(LEFT, y, label, font, 9, color)
            self.text(x_value, y, format_euros(cents), font, 9, color, "right")
            y -= 13
        return y

    def table_head(self, y: float) -> float:
        y -= 11
        x = LEFT
        for title, width, align in COLUMNS:
            self.text(x + width - 3 if align == "right" else x, y, title, BOLD, FONT_SIZE, BLACK, align)
            x += width
        self.c.setStrokeColorRGB(*GREY)
        self.c.setLineWidth(0.4)
        self.c.line(LEFT, y - 3, RIGHT, y - 3)
        return y - (TABLE_HEAD_H - 11)

    def fitted(self, column: int, value: str) -> tuple[str, float]:
        """A cell's text (WinAnsi) and font size: shrunk a little, then cut, to fit its column. Services and
        programs repeat on every row: computed once each."""
        key = (column, value)
        if key not in self.cells:
            width = COLUMNS[column][1] - 4
            size = FONT_SIZE
            while size > 6 and stringWidth(pdf_text(value), REGULAR, size) > width:
                size -= 0.5
            self.cells[key] = (_fit(value, REGULAR, size, width), size)
        return self.cells[key]

    def row(self, y: float, number: int, row: StatementRow) -> float:
        """One voucher. The cells are drawn straight with the canvas (no per-cell font or colour change unless
        needed): this is the hot loop of a 10 000-line statement."""
        y -= ROW_H
        c = self.c
        c.setFillColorRGB(*(RED if row.is_rejected else BLACK))
        x = [LEFT]
        for _, width, _ in COLUMNS:
            x.append(x[-1] + width)
        c.setFont(REGULAR, FONT_SIZE)
        c.drawRightString(x[1] - 3, y, str(number))
        c.drawString(x[1], y, f"{row.redeemed_at:%d/%m/%Y %H:%M}")
        c.drawRightString(x[6] - 3, y, pdf_text(format_euros(row.amount_cents)))
        c.drawString(x[6], y, pdf_text("REJETÉE" if row.is_rejected else row.status_label))
        for column in (3, 4):
            text, size = self.fitted(column, row.service if column == 3 else row.program)
            c.setFont(REGULAR, size)
            c.drawString(x[column], y, text)
        c.setFont(MONO, 7)
        c.drawString(x[2], y, row.voucher)
        if row.is_rejected:
            self.c.setStrokeColorRGB(*RED)
            self.c.setLineWidth(0.5)
            amount_x = LEFT + sum(w for _, w, _ in COLUMNS[:5])
            self.c.line(amount_x + 4, y + 2.5, amount_x + COLUMNS[5][1] - 3, y + 2.5)
        return y

    def final_totals(self, y: float) -> None:
        self.c.setStrokeColorRGB(*GREY)
        self.c.setLineWidth(0.4)
        self.c.line(LEFT, y - 4, RIGHT, y - 4)
        self.totals(y - 18)


def statement_pdf(claim: Claim) -> bytes:
    """The statement as a PDF file (see the module's docstring)."""
    out = io.BytesIO()
    render_statement_pdf(claim, out)
    return out.getvalue()


def render_statement_pdf(claim: Claim, out) -> int:
    """Write the statement's PDF to the binary file `out`; returns the number of pages."""
    claim = Claim.objects.select_related("place", "funder", "run").get(pk=claim.pk)
    lines, rejected = _counts(claim)
    pages = statement_page_count(lines)
    doc = _StatementPdf(claim, out, pages)
    try:
        y = doc.start_page()
        y = doc.identity(y, lines, rejected)
        y = doc.table_head(y)
        left = _rows_per_page(True)
        for number, row in enumerate(statement_rows(claim), start=1):
            if left == 0:
                doc.end_page()
                y = doc.table_head(doc.start_page())
                left = _rows_per_page(False)
            y = doc.row(y, number, row)
            left -= 1
        if not lines:
            y -= ROW_H
            left -= 1
            doc.text(LEFT, y, "Aucune ligne.", REGULAR, FONT_SIZE, GREY)
        if left * ROW_H < TOTALS_H:  # the same rule as statement_page_count
            doc.end_page()
            y = doc.start_page()
        doc.final_totals(y)
        doc.c.save()
    finally:
        doc.c.discard()
    return doc.page
