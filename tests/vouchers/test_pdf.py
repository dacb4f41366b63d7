"""Paper booklets: every QR printed decodes (pdftoppm + zbarimg) to a signed payload of the right voucher, in
the right place of the layout; the command's errors; the range parser."""

import datetime as dt
import io
import os
import re
import shutil
import subprocess
import tracemalloc

import pytest
from django.core.management import CommandError, call_command

from passnum.common.errors import DomainError
from passnum.vouchers import signing
from passnum.vouchers.enums import VoucherStatus
from passnum.vouchers.management.commands.booklets import parse_booklet_range
from passnum.vouchers.models import Booklet, Voucher
from passnum.vouchers.pdf import (
    CHUNK,
    PER_SHEET,
    booklet_desk_pdf,
    french_date,
    page_count,
    pdf_text,
    public_url,
    render_booklets,
    validity_text,
)
from passnum.vouchers.services import booklets_issue, vouchers_cancel
from tests.factories import ProgramFactory

TOOLS = shutil.which("pdftoppm") and shutil.which("zbarimg")
needs_tools = pytest.mark.skipif(
    not TOOLS and os.environ.get("CI") != "true",
    reason="pdftoppm/zbarimg absents : apt-get install poppler-utils zbar-tools (obligatoires en CI)",
)


@pytest.fixture(autouse=True)
def keys_dir(tmp_path, settings):
    settings.PASSNUM_SIGNING_KEYS_DIR = tmp_path / "keys"
    signing.load_keys.cache_clear()
    yield
    signing.load_keys.cache_clear()


@pytest.fixture
def issued(program):
    """3 booklets of 10; voucher 3 of booklet 2 cancelled."""
    booklets_issue(program=program, count=3)
    cancelled = Voucher.objects.get(program=program, booklet__number=2, position=3)
    vouchers_cancel(vouchers=[cancelled], reason="Carnet abîmé")
    return program


def render(program, layout, **kwargs):
    buffer = io.BytesIO()
    result = render_booklets(program=program, layout=layout, out=buffer, **kwargs)
    return buffer.getvalue(), result


def pdf_pages(data: bytes) -> int:
    return len(re.findall(rb"/Type /Page\b(?!s)", data))


def decode_pages(data: bytes, tmp_path) -> list[list[str]]:
    """The payloads of the QR codes of each page, rendered at 150 dpi."""
    pdf = tmp_path / "out.pdf"
    pdf.write_bytes(data)
    run = subprocess.run(
        ["pdftoppm", "-r", "150", "-png", str(pdf), str(tmp_path / "page")], check=True, capture_output=True, text=True
    )
    assert run.stderr == ""  # poppler reports a broken cross-reference table or stream here
    pages = []
    for png in sorted(tmp_path.glob("page-*.png")):
        run = subprocess.run(
            ["zbarimg", "--raw", "-q", str(png)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        )
        assert run.returncode in (0, 4), f"zbarimg failed on {png.name}"  # 4: no symbol on the page
        pages.append([line for line in run.stdout.splitlines() if line])
    return pages


def voucher_codes(program) -> tuple[dict[str, tuple[int, int]], set[str]]:
    """code → (booklet number, position); the codes that must carry a QR (issued or distributed)."""
    rows = Voucher.objects.filter(program=program).values_list("code", "booklet__number", "position", "status")
    printable = {code for code, _n, _p, status in rows if status in (VoucherStatus.ISSUED, VoucherStatus.DISTRIBUTED)}
    return {code: (n, p) for code, n, p, _s in rows}, printable


def verified_codes(payloads: list[str]) -> list[str]:
    return [signing.verify_payload(p) for p in payloads if p.startswith("PN1.")]


# --- QR codes, decoded from the rendered pages -------------------------------------------------------------


@needs_tools
@pytest.mark.django_db
def test_desk_every_qr_decodes_to_its_voucher(issued, tmp_path):
    data, result = render(issued, "desk", booklets_qs_or_iter=Booklet.objects.filter(program=issued))
    assert (result.booklets, result.vouchers, result.pages) == (3, 30, 6)
    assert result.stamped == {"ANNULÉ": 1}
    by_code, printable = voucher_codes(issued)
    pages = decode_pages(data, tmp_path)
    assert len(pages) == 6
    finder = public_url("www:finder")
    seen = []
    for i, payloads in enumerate(pages):
        number = i // 2 + 1
        if i % 2 == 0:  # the cover page: the finder's QR only
            assert payloads == [finder]
            continue
        codes_ = verified_codes(payloads)
        assert len(codes_) == len(payloads)
        assert {by_code[c][0] for c in codes_} == {number}  # each coupon page holds its own booklet's vouchers
        seen += codes_
    assert sorted(seen) == sorted(printable)  # every usable voucher once; the cancelled one has no QR
    assert len(printable) == 29


@needs_tools
@pytest.mark.django_db
def test_print_every_qr_decodes_in_its_cut_and_stack_place(issued, tmp_path):
    data, result = render(issued, "print")
    cards = []  # booklet order: cover, notice, coupons 1…10
    for number in (1, 2, 3):
        cards += [("cover", number), ("notice", number)]
        for v in Voucher.objects.filter(program=issued, booklet__number=number).order_by("position"):
            cards.append(("coupon", v.code, v.status))
    sheets = -(-len(cards) // PER_SHEET)
    assert result.pages == sheets == page_count(3, 10, "print") == 4
    pages = decode_pages(data, tmp_path)
    finder = public_url("www:finder")
    seen = []
    for s, payloads in enumerate(pages):
        on_sheet = [cards[i] for i in range(s, len(cards), sheets)]  # card i: sheet i mod S, cell i div S
        expected = sorted(c[1] for c in on_sheet if c[0] == "coupon" and c[2] == VoucherStatus.ISSUED)
        assert sorted(verified_codes(payloads)) == expected
        assert payloads.count(finder) == sum(1 for c in on_sheet if c[0] == "cover")
        seen += expected
    assert len(seen) == 29


@needs_tools
@pytest.mark.django_db
def test_booklet_desk_pdf_for_a_download(issued, tmp_path):
    booklet = Booklet.objects.get(program=issued, number=2)
    data = booklet_desk_pdf(booklet)
    assert data.startswith(b"%PDF-1.4") and data.rstrip().endswith(b"%%EOF")
    pages = decode_pages(data, tmp_path)
    codes_ = verified_codes(pages[1])
    expected = set(Voucher.objects.filter(booklet=booklet, status=VoucherStatus.ISSUED).values_list("code", flat=True))
    assert len(codes_) == 9 and set(codes_) == expected


# --- rendering, without the external tools ---------------------------------------------------------------


@pytest.mark.django_db
def test_render_structure_and_alias(issued):
    data, result = render(issued, "desk", booklets=Booklet.objects.filter(program=issued, number__in=[1, 3]))
    assert result.booklets == 2 and result.pages == pdf_pages(data) == 4
    assert b"/BaseFont /Helvetica /Encoding /WinAnsiEncoding" in data
    # The cross-reference table: every entry points at its object.
    xref = int(re.search(rb"startxref\n(\d+)\n%%EOF\n$", data).group(1))
    lines = data[xref:].split(b"\n")
    assert lines[0] == b"xref"
    size = int(lines[1].split()[1])
    assert re.search(rb"/Size %d /Root 1 0 R" % size, data)
    for number in range(1, size):
        offset = int(lines[2 + number][:10])
        assert data[offset:].startswith(b"%d 0 obj" % number)


@pytest.mark.django_db
def test_render_refuses_bad_input(issued, funder):
    with pytest.raises(DomainError) as exc:
        render(issued, "poster")
    assert exc.value.code == "invalid_layout"
    other = ProgramFactory(owner=funder)
    booklets_issue(program=other, count=1)
    with pytest.raises(DomainError) as exc:
        render(issued, "desk", booklets_qs_or_iter=list(Booklet.objects.filter(program=other)))
    assert exc.value.code == "booklet_other_program"
    with pytest.raises(DomainError) as exc:
        render(issued, "print", booklets_qs_or_iter=Booklet.objects.none())
    assert exc.value.code == "no_booklets"


@pytest.mark.django_db
def test_memory_does_not_grow_with_booklets(funder):
    program = ProgramFactory(owner=funder, vouchers_per_booklet=1)
    booklets_issue(program=program, count=2 * CHUNK)

    class Sink:  # keeps nothing, like /dev/null
        def write(self, data):
            return len(data)

    def peak(count):
        tracemalloc.start()
        try:
            render_booklets(
                program=program,
                booklets_qs_or_iter=Booklet.objects.filter(program=program, number__lte=count),
                layout="desk",
                out=Sink(),
            )
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    peak(1)  # warm-up: first-use caches (fonts, URL resolver, keys)
    small, large = peak(CHUNK), peak(2 * CHUNK)
    # Pages are written and forgotten, rows are read CHUNK booklets at a time: ×2 booklets adds nothing, where
    # keeping the pages (reportlab’s own Canvas) adds about 1 MB here.
    assert large < small + 200_000


def test_french_text():
    assert french_date(dt.date(2026, 1, 1)) == "1er janvier 2026"
    assert french_date(dt.date(2026, 12, 31)) == "31 décembre 2026"
    program = type("P", (), {"valid_from": dt.date(2026, 1, 1), "valid_until": dt.date(2026, 8, 15)})
    assert validity_text(program) == "du 1er janvier 2026 au 15 août 2026"
    # WinAnsi (Helvetica) has é è à ç ’ « » — € °; the narrow no-break space of format_euros becomes a no-break one.
    assert pdf_text("« l’été » — 10,00\u202f€ n°") == "« l’été » — 10,00\xa0€ n°"
    assert pdf_text("✓") == "?"


# --- the range parser --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "ranges"),
    [
        ("1-50", [(1, 50)]),
        ("7", [(7, 7)]),
        ("3,5,7-9", [(3, 3), (5, 5), (7, 9)]),
        (" 9-10 , 1 ,2-3, 4 ", [(1, 4), (9, 10)]),
        ("5-8,1-6", [(1, 8)]),
        ("2–4", [(2, 4)]),
    ],
)
def test_parse_booklet_range(text, ranges):
    assert parse_booklet_range(text) == ranges


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "Indiquez"),
        ("a-b", "ni un numéro"),
        ("1,,3", "(vide)"),
        ("9-7", "à l’envers : écrivez 7-9"),
        ("0-3", "commencent à 1"),
        ("1-", "ni un numéro"),
        ("-3", "ni un numéro"),
    ],
)
def test_parse_booklet_range_errors(text, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_booklet_range(text)


# --- the command -------------------------------------------------------------------------------------------


def run_pdf(*args):
    out = io.StringIO()
    call_command("booklets", "pdf", *args, stdout=out)
    return out.getvalue()


@pytest.mark.django_db
def test_command_writes_the_selected_booklets(issued, tmp_path):
    target = tmp_path / "carnets.pdf"
    output = run_pdf("--program", issued.slug, "--booklets", "1,2", "--layout", "desk", "--out", str(target))
    data = target.read_bytes()
    assert data.startswith(b"%PDF") and pdf_pages(data) == 4
    assert not (tmp_path / "carnets.pdf.part").exists()
    assert "2 carnet(s), 20 chèque(s), 4 page(s)" in output
    assert "1 chèque(s) inutilisable(s) imprimé(s) sans QR code, marqué(s) « ANNULÉ »" in output
    run_pdf("--program", issued.slug, "--layout", "print", "--out", str(target))  # all booklets
    assert pdf_pages(target.read_bytes()) == 4


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--program", "inconnu", "--layout", "desk"], "Dispositif inconnu : inconnu."),
        (["--layout", "desk"], "Indiquez le dispositif"),
        (["--program", "{slug}"], "Indiquez la mise en page"),
        (["--program", "{slug}", "--layout", "a3"], "Mise en page inconnue : a3"),
        (["--program", "{slug}", "--layout", "desk", "--booklets", "2-x"], "--booklets : « 2-x »"),
        (["--program", "{slug}", "--layout", "desk", "--booklets", "2,4-6,9"], "Carnets non émis : 4-6, 9 (le dernier"),
    ],
)
def test_command_errors(issued, tmp_path, args, message):
    args = [a.format(slug=issued.slug) for a in args] + ["--out", str(tmp_path / "x.pdf")]
    with pytest.raises(CommandError, match=re.escape(message)):
        run_pdf(*args)
    assert not list(tmp_path.glob("x.pdf*"))


@pytest.mark.django_db
def test_command_errors_without_booklets_or_folder(program, tmp_path):
    with pytest.raises(CommandError, match="Aucun carnet n’a encore été émis"):
        run_pdf("--program", program.slug, "--layout", "desk", "--out", str(tmp_path / "x.pdf"))
    booklets_issue(program=program, count=1)
    with pytest.raises(CommandError, match="Dossier introuvable"):
        run_pdf("--program", program.slug, "--layout", "desk", "--out", str(tmp_path / "absent" / "x.pdf"))
    with pytest.raises(CommandError, match="Indiquez le fichier"):
        run_pdf("--program", program.slug, "--layout", "desk")
