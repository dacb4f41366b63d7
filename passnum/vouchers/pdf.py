"""Paper booklets as PDF (reportlab + segno), streamed booklet by booklet so memory stays flat.

A booklet is made of cards of 95 × 55 mm: a **cover** card (program, booklet number, value, validity, funders,
a QR to the public finder), a **notice** card (how to use the vouchers, where to go, "Mon pass"), then one
**coupon** per voucher (signed QR, readable code, face value, validity, "Carnet n° 12 — chèque 3/10"). A coupon's
QR carries `signing.sign_code(code)`; vouchers that can no longer be used (cancelled, expired, used) get no QR
and a stamp instead ("ANNULÉ", "EXPIRÉ", "UTILISÉ").

Layouts — A4 portrait sheets; cells of 95 × 55 mm in a 2 × 5 grid of 190 × 275 mm, centred (10 mm side margins,
11 mm top and bottom), read left to right, then top to bottom:

``desk`` — one booklet, printed by a distributor on an office printer at hand-out:
    page 1   the cover card (top half) and the notice card (bottom half), both scaled × 2 (190 × 110 mm),
             with a dotted fold line across the middle: folded, it is an A5 folder for the coupons;
    page 2…  the coupons, 10 per page in the grid, with dashed cut lines (11 to 20 vouchers: 2 pages; …).

``print`` — many booklets for a print shop, imposed for *cut and stack*. The cards of all booklets are taken in
    booklet order (cover, notice, coupons 1…n, next booklet…): cards 0…T-1 on S = ⌈T / 10⌉ sheets. Card *i*
    goes to sheet *i mod S*, cell *i div S*. Cells abut (one cut between neighbours); crop marks sit in the
    margins, outside the trim, and a slug line names the program and the sheet. The print shop stacks the
    sheets in page order (page 1 on top), cuts the stack into its 10 piles, and puts pile 1 (top left) on
    pile 2 (top right), …, pile 10 (bottom right) last: the cards are then in booklet order, each booklet
    starting with its cover. Cells left over after the last card stay blank.

Streaming: reportlab's Canvas keeps every page in memory until `save()` and then builds the whole file in
memory. Here a Canvas subclass is used only as a drawing surface: on each `showPage()` its page content (the
operators reportlab generated) is compressed and written out at once by a minimal PDF writer (`_PdfWriter`),
and the page is forgotten. Fonts are reportlab's built-in Helvetica / Courier (not embedded, WinAnsi encoding,
which covers French: é è à ç ’ « » — € °); text goes through `pdf_text()`, which replaces what WinAnsi lacks
(the narrow no-break space of `format_euros`). The writer keeps only counters; cross-reference lines go to a
temporary file. Booklets are read in chunks (keyset pagination on the number), with their vouchers in one query
per chunk, as plain tuples; the print layout reads its 10 piles with 10 such readers side by side.

QR codes: segno encodes (level M, fixed mask, see QR_MASK); each symbol is drawn as an inline 1-bit image mask
(one bit per module, no interpolation), at least 25 mm wide with a 4-module quiet zone. Encoding is the hot
path (~1.5 ms per voucher in pure Python); drawing and writing a page cost less than reportlab's own Canvas."""

from __future__ import annotations

import html
import io
import re
import tempfile
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

import segno
from django.conf import settings
from django.db.models import QuerySet
from django.urls import reverse
from django.utils.html import strip_tags
from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.pdfgen.canvas import Canvas

from passnum.common.dates import french_date
from passnum.common.errors import DomainError
from passnum.common.money import format_euros
from passnum.vouchers import codes, signing
from passnum.vouchers.enums import VoucherStatus
from passnum.vouchers.models import Booklet, Voucher

S = VoucherStatus
LAYOUTS = ("desk", "print")
CHUNK = 100  # booklets per query (and their vouchers in one more query)

# Geometry (points). Cards are 95 × 55 mm, in a 2 × 5 grid centred on A4 portrait.
PAGE_W, PAGE_H = A4
CARD_W, CARD_H = 95 * mm, 55 * mm
COLS, ROWS = 2, 5
PER_SHEET = COLS * ROWS
GRID_X = (PAGE_W - COLS * CARD_W) / 2
GRID_Y = (PAGE_H - ROWS * CARD_H) / 2
PAD = 3.5 * mm  # inner margin of a card

# QR: error correction M, no boost (keeps the symbol at version 8 for a voucher payload: 49 modules).
# The mask is fixed: segno's search over the 8 masks costs ~6× the encoding itself, and any mask decodes;
# set QR_MASK = None to let segno choose.
QR_ERROR = "m"
QR_MASK: int | None = 2
QR_QUIET = 4  # modules of quiet zone, the minimum of ISO/IEC 18004
COUPON_QR_SYMBOL = 27.5 * mm  # the symbol itself, quiet zone excluded (≥ 25 mm so phones read it)
COVER_QR_SYMBOL = 25 * mm

# Colours (DSFR): bleu France, grey, rouge Marianne.
BLUE = (0, 0, 0x91 / 255)
GREY = (0.36, 0.36, 0.36)
RED = (0xE1 / 255, 0, 0x0F / 255)
BLACK = (0, 0, 0)

REGULAR, BOLD, MONO = "Helvetica", "Helvetica-Bold", "Courier-Bold"

STAMPS = {
    S.CANCELLED: "ANNULÉ",
    S.EXPIRED: "EXPIRÉ",
    S.REDEEMED: "UTILISÉ",
    S.CLAIMED: "UTILISÉ",
    S.PAID: "UTILISÉ",
}
PRINTABLE = frozenset({S.ISSUED, S.DISTRIBUTED})


# --- text ------------------------------------------------------------------------------------------------

_WINANSI_FIXES = str.maketrans(
    {
        "\u202f": "\xa0",  # narrow no-break space (format_euros) → no-break space
        "\u2009": " ",
        "\u2011": "-",
        "\u2212": "-",
        "\u2192": "->",
    }
)


def pdf_text(text: str) -> str:
    """Text the built-in fonts can show: WinAnsi (cp1252) only; anything else becomes '?'."""
    return str(text).translate(_WINANSI_FIXES).encode("cp1252", "replace").decode("cp1252")


def validity_text(program) -> str:
    """'du 1er janvier 2026 au 31 décembre 2026'."""
    return f"du {french_date(program.valid_from)} au {french_date(program.valid_until)}"


_NO_BREAK = re.compile(r" (?=[:;!?»€])|(?<=[«°]) ")


def _wrap(text: str, font: str, size: float, width: float) -> list[str]:
    """Greedy wrap on ordinary spaces only: French no-break spaces (before : ; ! ? » €, after « and °) hold."""
    lines: list[str] = []
    current = ""
    for word in _NO_BREAK.sub("\xa0", text).split(" "):
        candidate = f"{current} {word}" if current else word
        if current and stringWidth(candidate, font, size) > width:
            lines.append(current)
            current = word
        else:
            current = candidate
    if current:
        lines.append(current)
    return lines


def _lines(text: str, font: str, size: float, width: float, max_lines: int) -> list[str]:
    """Wrap to `width`; the last kept line ends with '…' when text is cut."""
    lines = _wrap(pdf_text(text), font, size, width) or [""]
    if len(lines) <= max_lines:
        return lines
    kept = lines[:max_lines]
    kept[-1] = _fit(kept[-1] + " …", font, size, width)
    return kept


def _fit(text: str, font: str, size: float, width: float) -> str:
    text = pdf_text(text)
    if stringWidth(text, font, size) <= width:
        return text
    while text and stringWidth(text + "…", font, size) > width:
        text = text[:-1]
    return text.rstrip() + "…"


def public_url(name: str) -> str:
    base = getattr(settings, "PASSNUM_PUBLIC_URL", "http://127.0.0.1:8000").rstrip("/")
    return base + reverse(name)


def _short_url(url: str) -> str:
    return re.sub(r"^https?://", "", url)


# --- QR --------------------------------------------------------------------------------------------------

_BITS = bytes.maketrans(b"\x00\x01", b"01")


@dataclass(frozen=True)
class QrMatrix:
    """A QR symbol without its quiet zone, as the hexadecimal rows of a 1-bit image (dark = 1, top row first)."""

    size: int  # modules per side
    hex_rows: str


def qr_matrix(data: str) -> QrMatrix:
    qr = segno.make(data, error=QR_ERROR, boost_error=False, micro=False, mask=QR_MASK)
    size = len(qr.matrix)
    width = (size + 7) // 8
    pad = width * 8 - size
    rows = [(int(bytes(row).translate(_BITS), 2) << pad).to_bytes(width, "big").hex() for row in qr.matrix]
    return QrMatrix(size=size, hex_rows="\n".join(rows))


def draw_qr(c: Canvas, qr: QrMatrix, x: float, y: float, symbol: float) -> float:
    """Draw the symbol (quiet zone excluded) with its lower left corner at (x, y), `symbol` points wide, on a
    white square that includes the quiet zone. Returns the quiet zone's width.

    The symbol is an inline image mask, one bit per module, painted in black and scaled up without
    interpolation (the default): renderers and printers draw each module as a sharp square at their own
    resolution. It costs ~400 bytes and microseconds, where one rectangle per run of modules cost ~10 kB and
    as much time as encoding the QR itself."""
    module = symbol / qr.size
    quiet = QR_QUIET * module
    c.saveState()
    c.setFillColorRGB(1, 1, 1)
    c.rect(x - quiet, y - quiet, symbol + 2 * quiet, symbol + 2 * quiet, stroke=0, fill=1)
    c.restoreState()
    c.addLiteral(
        f"q 0 g {symbol:.3f} 0 0 {symbol:.3f} {x:.3f} {y:.3f} cm\n"
        f"BI /W {qr.size} /H {qr.size} /IM true /D [1 0] /F /AHx ID\n{qr.hex_rows}>\nEI Q"
    )
    return quiet


# --- what is drawn (plain data: no database) ---------------------------------------------------------------


@dataclass
class BookletStatic:
    """What every booklet of a render shares, wrapped once."""

    brand: list[str]
    site_title: str
    program_lines: list[str]  # cover card
    coupon_program_lines: list[str]
    funders_lines: list[str]
    value: str  # '10,00 €'
    count: int  # vouchers per booklet
    total: str  # '100,00 €'
    validity_lines: list[str]  # cover card
    coupon_validity_lines: list[str]
    finder_url: str
    my_pass_url: str
    finder_qr: QrMatrix
    notice: list[tuple[str, list[str]]] = field(default_factory=list)  # (number, lines)
    footer_lines: list[str] = field(default_factory=list)
    program_slug: str = ""


@dataclass
class Coupon:
    position: int
    display_code: str
    qr: QrMatrix | None  # None: not usable any more, see `stamp`
    stamp: str = ""


# Text sizes (points) and columns of the cards, at scale 1.
COVER_TEXT_W = CARD_W - 2 * PAD - COVER_QR_SYMBOL - 6 * mm
COUPON_LEFT = 36 * mm  # the text column of a coupon starts here (the QR is on the left)
COUPON_TEXT_W = CARD_W - COUPON_LEFT - PAD
NOTICE_W = CARD_W - 2 * PAD - 5 * mm


def booklet_static(program, *, funders: list[str] | None = None) -> BookletStatic:
    """Everything the cards of `program` share. `funders` defaults to the program's funders in order."""
    if funders is None:
        funders = [pf.funder.name for pf in program.funders.select_related("funder").order_by("id")]
    brand_html = settings.PASSNUM_BRAND.get("header_brand_html", "République<br>française")
    brand = [
        pdf_text(html.unescape(strip_tags(line)).strip().upper())
        for line in re.split(r"<br\s*/?>", brand_html, flags=re.IGNORECASE)
        if strip_tags(line).strip()
    ]
    site_title = pdf_text(settings.PASSNUM_BRAND.get("site_title", "Pass numérique"))
    finder_url, my_pass_url = public_url("www:finder"), public_url("www:my_pass")
    value = format_euros(program.face_value_cents)
    n = program.vouchers_per_booklet
    notice_items = [
        f"Trouvez un lieu de médiation numérique près de chez vous : scannez le QR code du carnet ou allez sur "
        f"{_short_url(finder_url)}",
        "Présentez ce carnet au lieu choisi. Chaque séance coûte 1 chèque ou plus : le lieu vous le dit avant "
        "de commencer.",
        "Le lieu scanne le code des chèques utilisés et les garde.",
        f"Combien vous en reste-t-il ? Allez sur « Mon pass » : {_short_url(my_pass_url)} et saisissez le code "
        "d’un chèque.",
    ]
    validity = validity_text(program)
    return BookletStatic(
        brand=brand,
        site_title=site_title,
        program_lines=_lines(program.name, BOLD, 8.5, COVER_TEXT_W, 2),
        coupon_program_lines=_lines(program.name, BOLD, 7, COUPON_TEXT_W, 2),
        funders_lines=_lines("Financé par : " + ", ".join(funders), REGULAR, 6.5, CARD_W - 2 * PAD, 2),
        value=pdf_text(value),
        count=n,
        total=pdf_text(format_euros(program.face_value_cents * n)),
        validity_lines=_lines(f"Valables {validity}", REGULAR, 7, COVER_TEXT_W, 2),
        coupon_validity_lines=_lines(f"Valable {validity}", REGULAR, 6.5, COUPON_TEXT_W, 2),
        finder_url=finder_url,
        my_pass_url=my_pass_url,
        finder_qr=qr_matrix(finder_url),
        notice=[(f"{i}.", _lines(item, REGULAR, 7, NOTICE_W, 3)) for i, item in enumerate(notice_items, 1)],
        footer_lines=_lines(
            "Carnet gratuit et personnel. Les chèques ne peuvent être ni vendus ni échangés contre de l’argent.",
            REGULAR,
            6.5,
            CARD_W - 2 * PAD,
            2,
        ),
        program_slug=program.slug,
    )


def _text(c: Canvas, x, y, text, font=REGULAR, size=7, color=BLACK):
    c.setFillColorRGB(*color)
    c.setFont(font, size)
    c.drawString(x, y, text)


def _brand_header(c: Canvas, st: BookletStatic, y_top: float, *, right: float, title_size: float = 11) -> float:
    """'RÉPUBLIQUE / FRANÇAISE' block, a rule, the service name (shrunk, then cut, to end before `right`).
    Returns the y below it."""
    x = PAD
    y = y_top - 7
    width = 0
    for line in st.brand[:3]:
        _text(c, x, y, line, BOLD, 6.5)
        width = max(width, stringWidth(line, BOLD, 6.5))
        y -= 7.5
    rule_x = x + width + 2.5 * mm
    c.setStrokeColorRGB(*BLACK)
    c.setLineWidth(0.4)
    c.line(rule_x, y_top - 1, rule_x, y + 4)
    title_x = rule_x + 2.5 * mm
    room = right - title_x
    while title_size > 7 and stringWidth(st.site_title, BOLD, title_size) > room:
        title_size -= 0.5
    _text(c, title_x, y_top - 1 - title_size, _fit(st.site_title, BOLD, title_size, room), BOLD, title_size, BLUE)
    return min(y + 2, y_top - 17)


def draw_cover_card(c: Canvas, st: BookletStatic, number: int) -> None:
    """The cover, in card coordinates (0, 0)–(CARD_W, CARD_H)."""
    top = CARD_H - PAD
    qx = CARD_W - PAD - COVER_QR_SYMBOL - 1 * mm
    y = _brand_header(c, st, top, right=qx - (QR_QUIET + 1) * COVER_QR_SYMBOL / st.finder_qr.size) - 4 * mm
    for line in st.program_lines:
        _text(c, PAD, y, line, BOLD, 8.5)
        y -= 10
    y -= 10
    _text(c, PAD, y, f"Carnet n° {number}", BOLD, 15, BLUE)
    y -= 13
    _text(c, PAD, y, pdf_text(f"{st.count} chèques de {st.value}, soit {st.total}"), REGULAR, 7.5)
    y -= 9.5
    for line in st.validity_lines:
        _text(c, PAD, y, line, REGULAR, 7)
        y -= 8.5
    y = PAD + 2
    for line in reversed(st.funders_lines):
        _text(c, PAD, y, line, REGULAR, 6.5, GREY)
        y += 8
    # Where to go: the finder's QR, top right.
    qy = CARD_H - PAD - COVER_QR_SYMBOL - 3 * mm
    draw_qr(c, st.finder_qr, qx, qy, COVER_QR_SYMBOL)
    cx = qx + COVER_QR_SYMBOL / 2
    c.setFont(BOLD, 7)
    c.setFillColorRGB(*BLUE)
    c.drawCentredString(cx, qy - 4.2 * mm, "Où aller ?")
    c.setFont(REGULAR, 6.5)
    c.setFillColorRGB(*BLACK)
    c.drawCentredString(cx, qy - 7.2 * mm, "Scannez ce code : la carte")
    c.drawCentredString(cx, qy - 9.8 * mm, "des lieux qualifiés")


def draw_notice_card(c: Canvas, st: BookletStatic, number: int) -> None:
    """How to use, where to go, "Mon pass"."""
    y = CARD_H - PAD - 9
    _text(c, PAD, y, "Mode d’emploi", BOLD, 9, BLUE)
    c.setFont(REGULAR, 6.5)
    c.setFillColorRGB(*GREY)
    c.drawRightString(CARD_W - PAD, y, pdf_text(f"Carnet n° {number}"))
    y -= 11
    for num, lines in st.notice:
        _text(c, PAD, y, num, BOLD, 7, BLUE)
        c.setFillColorRGB(*BLACK)
        c.setFont(REGULAR, 7)
        for line in lines:
            c.drawString(PAD + 5 * mm, y, line)
            y -= 8.3
        y -= 2.2
    y = PAD + 2
    for line in reversed(st.footer_lines):
        _text(c, PAD, y, line, REGULAR, 6.5, GREY)
        y += 8


def draw_coupon_card(c: Canvas, st: BookletStatic, number: int, coupon: Coupon) -> None:
    """One voucher: QR on the left with the readable code under it, value and validity on the right."""
    top = CARD_H - PAD
    where = pdf_text(f"Carnet n° {number} — chèque {coupon.position}/{st.count}")
    room = CARD_W - 2 * PAD - stringWidth(where, REGULAR, 7) - 3 * mm
    _text(c, PAD, top - 7, _fit(st.site_title.upper(), BOLD, 7, room), BOLD, 7, BLUE)
    c.setFont(REGULAR, 7)
    c.setFillColorRGB(*BLACK)
    c.drawRightString(CARD_W - PAD, top - 7, where)
    c.setStrokeColorRGB(*BLUE)
    c.setLineWidth(0.5)
    c.line(PAD, top - 10, CARD_W - PAD, top - 10)
    qr_x, qr_y = PAD + 1 * mm, PAD + 6 * mm
    if coupon.qr is not None:
        draw_qr(c, coupon.qr, qr_x, qr_y, COUPON_QR_SYMBOL)
    else:
        c.setStrokeColorRGB(*RED)
        c.setLineWidth(1)
        c.rect(qr_x, qr_y, COUPON_QR_SYMBOL, COUPON_QR_SYMBOL, stroke=1, fill=0)
        c.line(qr_x, qr_y, qr_x + COUPON_QR_SYMBOL, qr_y + COUPON_QR_SYMBOL)
        c.line(qr_x, qr_y + COUPON_QR_SYMBOL, qr_x + COUPON_QR_SYMBOL, qr_y)
    c.setFont(MONO, 8.5)
    c.setFillColorRGB(*BLACK)
    c.drawCentredString(qr_x + COUPON_QR_SYMBOL / 2, PAD + 1.2 * mm, coupon.display_code)
    x = COUPON_LEFT
    y = top - 10 - 4 * mm
    for line in st.coupon_program_lines:
        _text(c, x, y, line, BOLD, 7)
        y -= 8.5
    y = PAD + 27 * mm
    _text(c, x, y, "Chèque d’une valeur de", REGULAR, 6.5, GREY)
    _text(c, x, y - 21, st.value, BOLD, 22, BLUE)
    y -= 31
    for line in st.coupon_validity_lines:
        _text(c, x, y, line, REGULAR, 6.5)
        y -= 7.8
    _text(c, x, PAD + 1.2 * mm + 7.5, "À présenter dans un lieu qualifié.", REGULAR, 6, GREY)
    _text(c, x, PAD + 1.2 * mm, "Ne peut être échangé contre de l’argent.", REGULAR, 6, GREY)
    if coupon.stamp:
        c.saveState()
        c.translate(CARD_W / 2, CARD_H / 2)
        c.rotate(18)
        c.setFillColorRGB(*RED)
        c.setStrokeColorRGB(*RED)
        c.setFont(BOLD, 26)
        w = stringWidth(coupon.stamp, BOLD, 26)
        c.setLineWidth(2)
        c.setFillColorRGB(1, 1, 1)
        c.rect(-w / 2 - 3 * mm, -5 * mm, w + 6 * mm, 14 * mm, stroke=1, fill=1)
        c.setFillColorRGB(*RED)
        c.drawCentredString(0, -1 * mm, coupon.stamp)
        c.restoreState()


def _in_cell(c: Canvas, index: int, draw, *args) -> None:
    """Draw a card in cell `index` (0…9, left to right, top to bottom)."""
    row, col = divmod(index, COLS)
    c.saveState()
    c.translate(GRID_X + col * CARD_W, GRID_Y + (ROWS - 1 - row) * CARD_H)
    draw(c, *args)
    c.restoreState()


def draw_cut_lines(c: Canvas) -> None:
    """Desk: dashed lines on every cell edge, to cut with scissors."""
    c.saveState()
    c.setStrokeColorRGB(0.55, 0.55, 0.55)
    c.setLineWidth(0.4)
    c.setDash(3, 2)
    for i in range(COLS + 1):
        x = GRID_X + i * CARD_W
        c.line(x, GRID_Y, x, GRID_Y + ROWS * CARD_H)
    for j in range(ROWS + 1):
        y = GRID_Y + j * CARD_H
        c.line(GRID_X, y, GRID_X + COLS * CARD_W, y)
    c.restoreState()


def draw_crop_marks(c: Canvas, slug: str) -> None:
    """Print: crop marks outside the trim at every cut, and a slug line in the bottom margin."""
    gap, length = 2 * mm, 6 * mm
    c.saveState()
    c.setStrokeColorRGB(0, 0, 0)
    c.setLineWidth(0.25)
    left, right = GRID_X, GRID_X + COLS * CARD_W
    bottom, top = GRID_Y, GRID_Y + ROWS * CARD_H
    for i in range(COLS + 1):
        x = GRID_X + i * CARD_W
        c.line(x, bottom - gap, x, bottom - gap - length)
        c.line(x, top + gap, x, top + gap + length)
    for j in range(ROWS + 1):
        y = GRID_Y + j * CARD_H
        c.line(left - gap, y, left - gap - length, y)
        c.line(right + gap, y, right + gap + length, y)
    c.setFont(REGULAR, 6)
    c.setFillColorRGB(*GREY)
    c.drawString(left + 4 * mm, 4 * mm, slug)
    c.drawString(left + CARD_W + 4 * mm, 4 * mm, "Massicot : empiler, couper, poser la pile 1 (en haut")
    c.drawString(left + CARD_W + 4 * mm, 1.8 * mm, "à gauche) sur la 2, …, la pile 10 en dessous.")
    c.restoreState()


def draw_desk_cover_page(c: Canvas, st: BookletStatic, number: int) -> None:
    """Desk page 1: cover (top half) and notice (bottom half), × 2, with a fold line."""
    scale = 2
    w, h = CARD_W * scale, CARD_H * scale
    x = (PAGE_W - w) / 2
    half = PAGE_H / 2
    for draw, y in ((draw_cover_card, half + (half - h) / 2), (draw_notice_card, (half - h) / 2)):
        c.saveState()
        c.translate(x, y)
        c.setStrokeColorRGB(0.75, 0.75, 0.75)
        c.setLineWidth(0.5)
        c.rect(0, 0, w, h, stroke=1, fill=0)
        c.scale(scale, scale)
        draw(c, st, number)
        c.restoreState()
    c.saveState()
    c.setStrokeColorRGB(0.55, 0.55, 0.55)
    c.setLineWidth(0.4)
    c.setDash(1, 2)
    c.line(10 * mm, half, PAGE_W - 10 * mm, half)
    c.setFont(REGULAR, 6.5)
    c.setFillColorRGB(*GREY)
    c.drawRightString(PAGE_W - 10 * mm, half + 1.5 * mm, "plier ici")
    c.restoreState()


def draw_desk_coupon_page(c: Canvas, st: BookletStatic, number: int, coupons: list[Coupon]) -> None:
    for i, coupon in enumerate(coupons):
        _in_cell(c, i, draw_coupon_card, st, number, coupon)
    draw_cut_lines(c)


# --- streaming PDF writer ----------------------------------------------------------------------------------

_CATALOG, _PAGES, _RESOURCES, _INFO = 1, 2, 3, 4
_FIRST_PAGE_OBJECT = 5  # then, for each page: its content stream, then the page object
_SYMBOLIC = {"Symbol", "ZapfDingbats"}


class _PdfWriter:
    """Writes a PDF 1.4 file as pages come. Objects 1–4 are the catalog, the page tree, the shared resources
    and the document information; page k (from 0) is objects 5 + 2k (content) and 6 + 2k (page); the fonts
    come last. Nothing grows with the page count but the temporary cross-reference file."""

    def __init__(self, out: BinaryIO, *, title: str = ""):
        self.out = out
        self.pos = 0
        self.pages = 0
        self.title = title
        self.offsets: dict[int, int] = {}
        self.xref = tempfile.TemporaryFile()  # noqa: SIM115 — closed by close() or discard(); 20 bytes per object
        self._write(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
        self._object(_CATALOG, b"<< /Type /Catalog /Pages 2 0 R >>")

    def _write(self, data: bytes) -> None:
        self.out.write(data)
        self.pos += len(data)

    def _object(self, number: int, body: bytes) -> None:
        self.offsets[number] = self.pos
        self._write(b"%d 0 obj\n%s\nendobj\n" % (number, body))

    def _page_object(self, body: bytes) -> None:
        self.xref.write(b"%010d 00000 n \n" % self.pos)
        number = _FIRST_PAGE_OBJECT + self.xref.tell() // 20 - 1
        self._write(b"%d 0 obj\n%s\nendobj\n" % (number, body))

    def add_page(self, content: bytes, width: float, height: float) -> None:
        data = zlib.compress(content)
        self._page_object(b"<< /Length %d /Filter /FlateDecode >>\nstream\n%s\nendstream" % (len(data), data))
        content_number = _FIRST_PAGE_OBJECT + 2 * self.pages
        self._page_object(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 %s %s] /Resources 3 0 R /Contents %d 0 R >>"
            % (_num(width), _num(height), content_number)
        )
        self.pages += 1

    def discard(self) -> None:
        self.xref.close()

    def close(self, fonts: dict[str, str]) -> None:
        """`fonts`: PostScript name → resource name ('Helvetica' → '/F1'), as reportlab assigned them."""
        first_font = _FIRST_PAGE_OBJECT + 2 * self.pages
        font_refs = []
        font_offsets = []
        for i, (ps_name, resource) in enumerate(sorted(fonts.items(), key=lambda kv: kv[1])):
            encoding = b"" if ps_name in _SYMBOLIC else b" /Encoding /WinAnsiEncoding"
            font_offsets.append(self.pos)
            self._write(
                b"%d 0 obj\n<< /Type /Font /Subtype /Type1 /BaseFont /%s%s >>\nendobj\n"
                % (first_font + i, ps_name.encode("ascii"), encoding)
            )
            font_refs.append(b"%s %d 0 R" % (resource.encode("ascii"), first_font + i))
        self._object(_RESOURCES, b"<< /ProcSet [/PDF /Text] /Font << %s >> >>" % b" ".join(font_refs))
        self.offsets[_PAGES] = self.pos
        self._write(b"%d 0 obj\n<< /Type /Pages /Count %d /Kids [" % (_PAGES, self.pages))
        for start in range(0, self.pages, 1000):
            end = min(start + 1000, self.pages)
            self._write(b" ".join(b"%d 0 R" % (_FIRST_PAGE_OBJECT + 2 * k + 1) for k in range(start, end)) + b"\n")
        self._write(b"] >>\nendobj\n")
        self._object(_INFO, b"<< /Producer (passnum + ReportLab) /Title %s >>" % _pdf_text_string(self.title))
        xref_at = self.pos
        count = first_font + len(font_offsets)
        self._write(b"xref\n0 %d\n0000000000 65535 f \n" % count)
        for number in (_CATALOG, _PAGES, _RESOURCES, _INFO):
            self._write(b"%010d 00000 n \n" % self.offsets[number])
        self.xref.seek(0)
        while block := self.xref.read(20 * 4096):
            self._write(block)
        self.xref.close()
        for offset in font_offsets:
            self._write(b"%010d 00000 n \n" % offset)
        self._write(b"trailer\n<< /Size %d /Root 1 0 R /Info 4 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (count, xref_at))


def _num(value: float) -> bytes:
    return (b"%.2f" % value).rstrip(b"0").rstrip(b".")


def _pdf_text_string(text: str) -> bytes:
    """A PDF text string (document information): UTF-16BE with its byte order mark, in hexadecimal."""
    return b"<FEFF%s>" % text.encode("utf-16-be").hex().upper().encode("ascii")


class StreamingCanvas(Canvas):
    """A reportlab Canvas whose pages go straight to a `_PdfWriter` instead of piling up in memory.

    Relies on reportlab internals stable across versions (pinned in pyproject.toml): `_code` (the page's
    operators), `_preamble`, `_pagesize`, `_startPage()` and `_doc.fontMapping` (fonts used, by resource name)."""

    def __init__(self, out: BinaryIO, *, title: str = ""):
        super().__init__(io.BytesIO(), pagesize=A4, invariant=1, pageCompression=0)
        self._writer = _PdfWriter(out, title=title)
        self.on_page: Callable[[int], None] | None = None

    def showPage(self):  # noqa: N802 — reportlab's name
        content = "\n".join([self._preamble, *self._code, ""]).encode("latin-1")
        width, height = self._pagesize
        self._writer.add_page(content, width, height)
        self._startPage()
        if self.on_page is not None:
            self.on_page(self._writer.pages)

    def save(self):
        if self._code:
            self.showPage()
        self._writer.close(dict(self._doc.fontMapping))

    def discard(self) -> None:
        """Release the writer's temporary file (after save(), or when rendering failed)."""
        self._writer.discard()

    @property
    def page_count(self) -> int:
        return self._writer.pages


# --- reading booklets ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _BookletRow:
    """A booklet as plain data: no model instances, so no reference cycles (booklet ↔ voucher caches) left for
    the garbage collector to find; memory is released as soon as a chunk is drawn."""

    number: int
    program_id: int
    vouchers: list[tuple[int, str, str]]  # (position, code, status), by position


def _with_vouchers(booklets: list[tuple[int, int, int]]) -> list[_BookletRow]:
    """(id, number, program_id) of a chunk of booklets → rows with their vouchers, in one query."""
    by_booklet: dict[int, list[tuple[int, str, str]]] = {}
    rows = (
        Voucher.objects.filter(booklet_id__in=[b[0] for b in booklets])
        .order_by("booklet_id", "position")
        .values_list("booklet_id", "position", "code", "status")
    )
    for booklet_id, position, code, status in rows:
        by_booklet.setdefault(booklet_id, []).append((position, code, status))
    return [_BookletRow(number, program_id, by_booklet.get(pk, [])) for pk, number, program_id in booklets]


def _read_booklets(source, start: int, stop: int) -> Iterator[_BookletRow]:
    """Booklets `start`…`stop - 1` of `source` (a queryset ordered by number, or a list of booklets) with their
    vouchers, CHUNK booklets per query (keyset pagination: no cursor stays open while the PDF is written)."""
    if isinstance(source, QuerySet):
        ids = source.values_list("id", "number", "program_id")
        last = None
        pos = start
        while pos < stop:
            size = min(CHUNK, stop - pos)
            batch = list(ids[pos : pos + size] if last is None else ids.filter(number__gt=last)[:size])
            if not batch:
                return
            yield from _with_vouchers(batch)
            pos += len(batch)
            last = batch[-1][1]
    else:
        for i in range(start, stop, CHUNK):
            yield from _with_vouchers([(b.pk, b.number, b.program_id) for b in source[i : min(i + CHUNK, stop)]])


@dataclass
class RenderResult:
    booklets: int = 0
    pages: int = 0
    vouchers: int = 0
    stamped: Counter = field(default_factory=Counter)  # stamp → count (vouchers printed without a QR)


class _Cards:
    """Turns booklets into cards: ('cover', number), ('notice', number), ('coupon', number, Coupon)."""

    def __init__(self, program, result: RenderResult):
        self.program = program
        self.result = result

    def vouchers(self, booklet: _BookletRow) -> list[tuple[int, str, str]]:
        if booklet.program_id != self.program.pk:
            raise DomainError(
                f"Le carnet n° {booklet.number} n’appartient pas au dispositif « {self.program} ».",
                code="booklet_other_program",
            )
        if len(booklet.vouchers) != self.program.vouchers_per_booklet:
            raise DomainError(
                f"Le carnet n° {booklet.number} a {len(booklet.vouchers)} chèques au lieu de "
                f"{self.program.vouchers_per_booklet}.",
                code="booklet_incomplete",
            )
        return booklet.vouchers

    def coupon(self, position: int, code: str, status: str) -> Coupon:
        """Signs and encodes a usable voucher; stamps one that is not."""
        self.result.vouchers += 1
        if status in PRINTABLE:
            return Coupon(position, codes.display(code), qr_matrix(signing.sign_code(code)))
        stamp = STAMPS.get(status, "INVALIDE")
        self.result.stamped[stamp] += 1
        return Coupon(position, codes.display(code), None, stamp)

    def of(self, booklet: _BookletRow, skip: int = 0) -> Iterator[tuple]:
        """The cards of `booklet`, lazily, from its `skip`-th (cover = 0, notice = 1, coupon k = k + 1)."""
        vouchers = self.vouchers(booklet)
        if skip == 0:
            self.result.booklets += 1
            yield ("cover", booklet.number)
        if skip <= 1:
            yield ("notice", booklet.number)
        for voucher in vouchers[max(skip - 2, 0) :]:
            yield ("coupon", booklet.number, self.coupon(*voucher))


def _draw_card(c: Canvas, st: BookletStatic, card: tuple) -> None:
    if card[0] == "cover":
        draw_cover_card(c, st, card[1])
    elif card[0] == "notice":
        draw_notice_card(c, st, card[1])
    else:
        draw_coupon_card(c, st, card[1], card[2])


def _render_desk(
    c: StreamingCanvas, st: BookletStatic, booklets: Iterable[_BookletRow], cards: _Cards
) -> Iterator[None]:
    """Draws the pages one by one, yielding after each (see `_render`)."""
    for booklet in booklets:
        cards.result.booklets += 1
        coupons = [cards.coupon(*v) for v in cards.vouchers(booklet)]
        draw_desk_cover_page(c, st, booklet.number)
        c.showPage()
        yield
        for i in range(0, len(coupons), PER_SHEET):
            draw_desk_coupon_page(c, st, booklet.number, coupons[i : i + PER_SHEET])
            c.showPage()
            yield


def _render_print(c: StreamingCanvas, st: BookletStatic, source, total_booklets: int, cards: _Cards) -> Iterator[None]:
    """Draws the sheets one by one, yielding after each (see `_render`)."""
    per_booklet = st.count + 2
    total = total_booklets * per_booklet
    sheets = -(-total // PER_SHEET)

    def pile(p: int) -> Iterator[tuple]:
        """Cards p·S … (p+1)·S − 1, in order."""
        first, stop = p * sheets, min((p + 1) * sheets, total)
        if first >= stop:
            return
        b0, skip = divmod(first, per_booklet)
        b1 = -(-stop // per_booklet)
        produced = 0
        for booklet in _read_booklets(source, b0, b1):
            for card in cards.of(booklet, skip):
                yield card
                produced += 1
                if produced == stop - first:
                    return
            skip = 0

    piles = [pile(p) for p in range(PER_SHEET)]
    for s in range(sheets):
        for p, it in enumerate(piles):
            card = next(it, None)
            if card is not None:
                _in_cell(c, p, _draw_card, st, card)
        draw_crop_marks(
            c,
            pdf_text(f"{st.site_title} — {st.program_slug} — feuille {s + 1}/{sheets}"),
        )
        c.showPage()
        yield


def _prepare(program, source, layout: str) -> tuple[QuerySet[Booklet] | list[Booklet], int]:
    """Checks the layout and returns the booklets to print (ordered by number) and how many there are."""
    if layout not in LAYOUTS:
        raise DomainError(f"Mise en page inconnue : {layout} (desk ou print).", code="invalid_layout")
    if source is None:
        source = Booklet.objects.filter(program=program)
    if isinstance(source, QuerySet):
        source = source.order_by("number")
        count = source.count()
    else:
        source = list(source)
        count = len(source)
    if count == 0:
        raise DomainError("Aucun carnet à imprimer.", code="no_booklets")
    return source, count


def _render(
    *,
    program,
    st: BookletStatic,
    source,
    count: int,
    layout: str,
    out: BinaryIO,
    result: RenderResult,
    on_page: Callable[[int], None] | None = None,
) -> Iterator[None]:
    """Writes the PDF to `out` as it is iterated: yields after each page (what that page wrote is in `out`), and
    the file is complete when the iteration ends. Closing the iterator early releases the writer's temporary
    file; `out` then holds a truncated PDF."""
    cards = _Cards(program, result)
    c = StreamingCanvas(out, title=f"{program.name} — carnets ({layout})")
    c.on_page = on_page
    try:
        if layout == "desk":
            yield from _render_desk(c, st, _read_booklets(source, 0, count), cards)
        else:
            yield from _render_print(c, st, source, count, cards)
        c.save()
        result.pages = c.page_count
    finally:
        c.discard()


def render_booklets(
    *,
    program,
    booklets_qs_or_iter: QuerySet[Booklet] | Iterable[Booklet] | None = None,
    layout: str,
    out: BinaryIO,
    booklets: QuerySet[Booklet] | Iterable[Booklet] | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> RenderResult:
    """Write the PDF of `booklets_qs_or_iter` (all of `program`'s booklets when None) to `out`, booklet by
    booklet (see the module's docstring for the layouts). `booklets` is an alias of `booklets_qs_or_iter`.
    `on_progress(pages_written, pages_total)` is called after each page. Raises DomainError for an unknown
    layout, a booklet of another program or with missing vouchers, or nothing to print."""
    source, count = _prepare(program, booklets_qs_or_iter if booklets_qs_or_iter is not None else booklets, layout)
    st = booklet_static(program)
    result = RenderResult()
    on_page = None
    if on_progress is not None:
        total_pages = page_count(count, program.vouchers_per_booklet, layout)

        def on_page(done: int) -> None:
            on_progress(done, total_pages)

    for _ in _render(
        program=program, st=st, source=source, count=count, layout=layout, out=out, result=result, on_page=on_page
    ):
        pass
    return result


class _Chunks:
    """A write-only file that keeps what is written until `take()` hands it over."""

    def __init__(self):
        self.parts: list[bytes] = []
        self.size = 0

    def write(self, data: bytes) -> int:
        self.parts.append(bytes(data))
        self.size += len(data)
        return len(data)

    def take(self) -> bytes:
        data = b"".join(self.parts)
        self.parts.clear()
        self.size = 0
        return data


STREAM_CHUNK_BYTES = 64 * 1024


def stream_booklets(
    *,
    program,
    booklets: QuerySet[Booklet] | Iterable[Booklet] | None = None,
    layout: str,
    chunk_bytes: int = STREAM_CHUNK_BYTES,
) -> Iterator[bytes]:
    """The PDF of `booklets` (all of `program`'s booklets when None) as an iterator of byte strings, for a
    `StreamingHttpResponse`: pages are drawn as the iterator is consumed and handed over in chunks of about
    `chunk_bytes` (a page at least), so memory stays flat whatever the number of booklets.

    An unknown layout or nothing to print raises DomainError here, before any byte; a booklet that cannot be
    printed (another program's, missing vouchers) raises DomainError while iterating."""
    source, count = _prepare(program, booklets, layout)
    st = booklet_static(program)
    return _stream(program=program, st=st, source=source, count=count, layout=layout, chunk_bytes=chunk_bytes)


def _stream(*, program, st, source, count: int, layout: str, chunk_bytes: int) -> Iterator[bytes]:
    sink = _Chunks()
    pages = _render(program=program, st=st, source=source, count=count, layout=layout, out=sink, result=RenderResult())
    try:
        for _ in pages:
            if sink.size >= chunk_bytes:
                yield sink.take()
        if sink.size:
            yield sink.take()
    finally:
        pages.close()


def page_count(booklets: int, vouchers_per_booklet: int, layout: str) -> int:
    """Pages of a render: desk, a cover page and ⌈n / 10⌉ coupon pages per booklet; print, ⌈cards / 10⌉."""
    if layout == "desk":
        return booklets * (1 + -(-vouchers_per_booklet // PER_SHEET))
    return -(-booklets * (vouchers_per_booklet + 2) // PER_SHEET)


def booklet_desk_pdf(booklet: Booklet) -> bytes:
    """One booklet's desk PDF (cover page + coupon pages), for a download from the web."""
    buffer = io.BytesIO()
    render_booklets(program=booklet.program, booklets_qs_or_iter=[booklet], layout="desk", out=buffer)
    return buffer.getvalue()
