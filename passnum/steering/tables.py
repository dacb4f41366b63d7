"""The dashboard's figures as tables: one definition serves the page (table and chart), the CSV and the XLSX, so
the three always agree."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from decimal import Decimal

from passnum.common.money import format_euros
from passnum.steering.funnel import Dashboard

# Column kinds: "text", "int", "eur" (integer cents), "rate" (0..1 or None), "days".
INT, EUR, RATE, TEXT = "int", "eur", "rate", "text"


@dataclass
class Column:
    key: str
    label: str
    kind: str = INT


@dataclass
class Chart:
    """A bar chart of one column of the table, by row label."""

    column: str
    unit: str  # for the bars' text, e.g. "chèques"
    skip: tuple[str, ...] = ()  # row labels left out of the chart (still in the table)


@dataclass
class Table:
    key: str
    title: str
    columns: list[Column]
    rows: list[list]
    chart: Chart | None = None
    note: str = ""
    limit: int | None = None  # rows shown on the page; the exports have them all
    keys: list[str] = field(default_factory=list)  # each row's key (an id or a code), for links
    filter_param: str = ""  # the page's filter that narrows to one row (e.g. "lieu")
    links: list[str] = field(default_factory=list)  # set by the page: the row's filtered view

    @property
    def shown_rows(self) -> list[list]:
        return self.rows if self.limit is None else self.rows[: self.limit]

    @property
    def display_rows(self) -> list[tuple[str, list[str]]]:
        """(link or "", cells as text) per row shown."""
        links = self.links or [""] * len(self.rows)
        return [
            (link, [display(v, c.kind) for v, c in zip(row, self.columns, strict=True)])
            for link, row in zip(links, self.shown_rows, strict=False)
        ]

    @property
    def hidden(self) -> int:
        return len(self.rows) - len(self.shown_rows)

    def bars(self) -> list[dict]:
        """The chart's bars: label, value, its text and its width in % of the largest."""
        if self.chart is None:
            return []
        i = [c.key for c in self.columns].index(self.chart.column)
        kind = self.columns[i].kind
        values = [(row[0], row[i] or 0) for row in self.shown_rows if row[0] not in self.chart.skip]
        top = max((v for _, v in values), default=0) or 1
        return [
            {"label": label, "value": v, "text": display(v, kind, unit=self.chart.unit), "width": 100 * v / top}
            for label, v in values
        ]


def display(value, kind: str, *, unit: str = "") -> str:
    """A value as a person reads it (French)."""
    if value is None:
        return "—"
    if kind == EUR:
        return format_euros(value)
    if kind == RATE:
        return f"{value * 100:.1f} %".replace(".", ",")
    if kind == INT:
        text = f"{value:,}".replace(",", "\u202f")
        return f"{text} {unit}".strip()
    if kind == "days":
        return f"{value:g} j".replace(".", ",")
    return str(value)


def dashboard_tables(d: Dashboard) -> list[Table]:
    value = d.value_label
    upstream = d.scope.viewer.sees_upstream
    is_place = d.scope.viewer.kind == "place"
    tables = [
        Table(
            key="entonnoir",
            title="Entonnoir",
            columns=[
                Column("step", "Étape", TEXT),
                Column("vouchers", "Chèques"),
                Column("booklets", "Carnets"),
                Column("value", value, EUR),
                Column("rate", "Taux", RATE),
                Column("rate_of", "Par rapport à", TEXT),
            ],
            rows=[[s.label, s.vouchers, s.booklets, s.value_cents, s.rate, s.rate_of] for s in d.steps],
            chart=Chart("vouchers", "chèques", skip=("Budget",)),  # its scale would flatten every other bar
            note=(
                "Taux : chaque étape rapportée à celle dont elle découle. La première utilisation compte les carnets "
                "(une personne par carnet) ; les chèques encaissés sont rapportés aux chèques remis ; les chèques "
                "expirés aux chèques émis."
            ),
        )
    ]
    program_cols = [Column("label", "Dispositif", TEXT)]
    if upstream:
        program_cols += [Column("issued", "Émis"), Column("allocated", "Confiés")]
    org_cols = [
        Column("handed_out", "Remis"),
        Column("booklets_handed", "Carnets remis"),
        Column("booklets_used", "Carnets utilisés"),
        Column("use_rate", "Taux d’utilisation", RATE),
        Column("people_reached", "Personnes aidées"),
        Column("redeemed", "Encaissés"),
        Column("redeemed_value", f"{value} encaissé(e)", EUR),
        Column("paid", "Payés"),
        Column("expired", "Expirés"),
    ]
    if not is_place:
        tables.append(_rows_table("dispositifs", "Par dispositif", program_cols + org_cols, d.by_program))
    if upstream:
        for key, title, label, rows, param in (
            ("prescripteurs", "Par prescripteur", "Prescripteur", d.by_distributor, "prescripteur"),
            ("territoires", "Par département (du prescripteur)", "Département", d.by_departement, "departement"),
        ):
            stock = [Column("label", label, TEXT), Column("allocated", "Confiés"), Column("sleeping", "En stock")]
            tables.append(_rows_table(key, title, stock + org_cols, rows, limit=25, filter_param=param))
    tables.append(
        _rows_table(
            "lieux",
            "Par lieu de médiation",
            [
                Column("label", "Lieu", TEXT),
                Column("redeemed", "Chèques encaissés"),
                Column("redeemed_value", value, EUR),
                Column("people_reached", "Personnes"),
                Column("claimed", "Demandés"),
                Column("paid", "Payés"),
            ],
            d.by_place,
            limit=25,
            chart=Chart("redeemed", "chèques"),
            filter_param="" if is_place else "lieu",
        )
    )
    if not is_place:
        tables.append(
            _rows_table(
                "delai",
                "Délai entre la remise et la première utilisation",
                [Column("label", "Délai", TEXT), Column("n", "Carnets"), Column("share", "Part", RATE)],
                d.delays,
                chart=Chart("n", "carnets"),
                note=(
                    "Médiane : " + (display(d.median_days, "days") if d.median_days is not None else "—")
                    + ", sur les carnets utilisés au moins une fois."
                ),
            )
        )  # fmt: skip
    tables.append(
        _rows_table(
            "services",
            "Services suivis",
            [
                Column("label", "Service", TEXT),
                Column("n", "Chèques encaissés"),
                Column("value", value, EUR),
                Column("share", "Part", RATE),
            ],
            d.services,
            chart=Chart("n", "chèques"),
        )
    )
    people = [Column("handed", "Personnes ayant reçu un carnet"), Column("reached", "Personnes aidées")]
    people.append(Column("rate", "Taux", RATE))
    if not is_place:
        tables.append(_rows_table("publics", "Par public", [Column("label", "Public", TEXT)] + people, d.publics))
        tables.append(_rows_table("ages", "Par âge", [Column("label", "Tranche d’âge", TEXT)] + people, d.ages))
    weekly_cols = [Column("label", "Semaine du", TEXT)]
    if not is_place:
        weekly_cols.append(Column("handed_out", "Chèques remis"))
    weekly_cols.append(Column("redeemed", "Chèques encaissés"))
    tables.append(_rows_table("semaines", "Semaine par semaine", weekly_cols, d.weekly, chart=Chart("redeemed", "")))
    return tables


def _rows_table(key, title, columns, rows, *, limit=None, chart=None, note="", filter_param="") -> Table:
    return Table(
        key=key,
        title=title,
        columns=columns,
        rows=[[r.label] + [r.values.get(c.key) for c in columns[1:]] for r in rows],
        keys=[r.key for r in rows],
        limit=limit,
        chart=chart,
        note=note,
        filter_param=filter_param,
    )


# --- exports ----------------------------------------------------------------------------------------------------


def _csv_cell(value, kind: str) -> str:
    if value is None:
        return ""
    if kind == EUR:
        return f"{Decimal(value) / 100:.2f}".replace(".", ",")
    if kind == RATE:
        return f"{value * 100:.1f}".replace(".", ",")
    return str(value)


def table_csv(table: Table, *, heading: list[str]) -> bytes:
    """As the statements' CSV: BOM, semicolons, decimal commas; amounts in euros, rates in %."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    for line in heading:
        writer.writerow([line])
    writer.writerow([])
    writer.writerow([c.label + (" (€)" if c.kind == EUR else " (%)" if c.kind == RATE else "") for c in table.columns])
    for row in table.rows:
        writer.writerow([_csv_cell(v, c.kind) for v, c in zip(row, table.columns, strict=True)])
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def tables_xlsx(tables: list[Table], *, heading: list[str]) -> bytes:
    """One sheet per table, numbers as numbers (euros with 2 decimals, rates as percentages)."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    book = Workbook()
    book.remove(book.active)
    for table in tables:
        sheet = book.create_sheet(title=table.title[:31].replace("/", "-"))
        for line in heading:
            sheet.append([line])
        sheet.append([])
        sheet.append([c.label for c in table.columns])
        header_row = sheet.max_row
        for cell in sheet[header_row]:
            cell.font = Font(bold=True)
        for row in table.rows:
            sheet.append([_xlsx_value(v, c.kind) for v, c in zip(row, table.columns, strict=True)])
            for cell, column in zip(sheet[sheet.max_row], table.columns, strict=True):
                if column.kind == EUR:
                    cell.number_format = '#,##0.00" €"'
                elif column.kind == RATE:
                    cell.number_format = "0.0%"
        sheet.column_dimensions["A"].width = 40
        if table.note:
            sheet.append([])
            sheet.append([table.note])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _xlsx_value(value, kind: str):
    if value is None:
        return None
    if kind == EUR:
        return Decimal(value) / 100
    return value
