"""SEPA file building and checking: pure functions, no database."""

import datetime as dt
import random
import re
from pathlib import Path

import pytest

from passnum.settlement import sepa

EXAMPLES = Path(__file__).resolve().parents[3] / "shared" / "reference" / "sepa" / "examples"
SAMPLE_03 = EXAMPLES / "pain001-0.0.74_pain.001.001.03.xml"
SAMPLE_09 = EXAMPLES / "pain001-0.0.74_pain.001.001.09.xml"
needs_samples = pytest.mark.skipif(not SAMPLE_03.exists(), reason="shared/reference not mounted")

DEBTOR = sepa.Account(name="Département de la Marne", iban="FR76 3000 4000 0312 3456 7890 143", bic="BNPAFRPP")
PLACE_IBAN = "FR7630003000001234567890180"  # Société Générale


def transfers(n=2):
    return [
        sepa.Transfer(
            name="Café & Numérique d’Épernay — Œuvre « Ça ira »",
            iban=PLACE_IBAN,
            bic="SOGEFRPPXXX",
            amount_cents=12_345,
            end_to_end_id="DR-2026-F3-000001",
            remittance="DR-2026-F3-000001 Pass numérique arrêté du 15/06/2026",
        ),
        sepa.Transfer(
            name="Médiathèque",
            iban="DE89370400440532013000",
            bic="",
            amount_cents=5,
            end_to_end_id="DR-2026-F3-000002",
            remittance="DR-2026-F3-000002",
        ),
    ][:n]


def build(version="pain.001.001.03", **kwargs):
    args = {
        "debtor": DEBTOR,
        "transfers": transfers(),
        "message_id": "PASSNUM-20260615-F3-01",
        "execution_date": dt.date(2026, 6, 16),
        "version": version,
    }
    args.update(kwargs)
    return sepa.build_credit_transfer(**args)


def edit(xml: bytes, old: str, new: str, count=1) -> bytes:
    text = xml.decode()
    assert old in text, old
    return text.replace(old, new, count).encode()


# --- building ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", ["pain.001.001.03", "pain.001.001.09", "03", "09"])
def test_built_file_is_xsd_valid_and_sepa_compliant(version):
    xml = build(version)
    full = sepa.normalise_version(version)
    assert f"urn:iso:std:iso:20022:tech:xsd:{full}".encode() in xml
    assert sepa.xsd_problems(xml, full) == []
    assert sepa.validate(xml) == []
    assert sepa.validate(xml, full) == []


def test_built_file_content():
    root = sepa.parse_xml_safely(build())
    init = sepa.child(root, "CstmrCdtTrfInitn")
    assert sepa.text_of(init, "GrpHdr", "MsgId") == "PASSNUM-20260615-F3-01"
    assert sepa.text_of(init, "GrpHdr", "NbOfTxs") == "2"
    assert sepa.text_of(init, "GrpHdr", "CtrlSum") == "123.50"
    infos = sepa.children(init, "PmtInf")
    assert len(infos) == 1  # one payment-information block
    info = infos[0]
    assert sepa.text_of(info, "PmtInfId") == "PASSNUM-20260615-F3-01"
    assert sepa.text_of(info, "ChrgBr") == "SLEV"
    assert sepa.text_of(info, "PmtTpInf", "SvcLvl", "Cd") == "SEPA"
    assert sepa.text_of(info, "ReqdExctnDt") == "2026-06-16"
    assert sepa.text_of(info, "Dbtr", "Nm") == "Departement de la Marne"
    assert sepa.text_of(info, "DbtrAcct", "Id", "IBAN") == "FR7630004000031234567890143"
    first, second = sepa.children(info, "CdtTrfTxInf")
    assert sepa.text_of(first, "PmtId", "EndToEndId") == "DR-2026-F3-000001"
    assert sepa.child(first, "Amt", "InstdAmt").get("Ccy") == "EUR"
    assert sepa.text_of(first, "Amt", "InstdAmt") == "123.45"
    assert sepa.text_of(first, "Cdtr", "Nm") == "Cafe + Numerique d'Epernay - OEuvre ' Ca ira '"
    assert sepa.text_of(first, "RmtInf", "Ustrd") == "DR-2026-F3-000001 Pass numerique arrete du 15/06/2026"
    assert sepa.text_of(first, "CdtrAgt", "FinInstnId", "BIC") == "SOGEFRPPXXX"
    assert sepa.text_of(second, "Amt", "InstdAmt") == "0.05"
    assert sepa.child(second, "CdtrAgt") is None  # no BIC given: IBAN only


def test_09_uses_bicfi_and_dated_execution():
    info = sepa.child(sepa.parse_xml_safely(build("09")), "CstmrCdtTrfInitn", "PmtInf")
    assert sepa.text_of(info, "ReqdExctnDt", "Dt") == "2026-06-16"
    assert sepa.text_of(info, "DbtrAgt", "FinInstnId", "BICFI") == "BNPAFRPP"


def test_long_names_and_remittance_are_cut_to_sepa_limits():
    long = sepa.Transfer(
        name="Association " + "é" * 100,
        iban=PLACE_IBAN,
        bic="",
        amount_cents=100,
        end_to_end_id="DR-2026-F3-000009",
        remittance="x" * 300,
    )
    xml = build(transfers=[long])
    assert sepa.validate(xml) == []
    tx = sepa.descendants(sepa.parse_xml_safely(xml), "CdtTrfTxInf")[0]
    assert len(sepa.text_of(tx, "Cdtr", "Nm")) == 70
    assert len(sepa.text_of(tx, "RmtInf", "Ustrd")) == 140


@pytest.mark.parametrize("amount", [0, -1, 12.5, True])
def test_build_refuses_non_positive_or_non_integer_amounts(amount):
    bad = sepa.Transfer(name="A", iban=PLACE_IBAN, bic="", amount_cents=amount, end_to_end_id="X", remittance="X")
    with pytest.raises(ValueError):
        build(transfers=[bad])


def test_build_refuses_empty_batch_and_unknown_version():
    with pytest.raises(ValueError):
        build(transfers=[])
    with pytest.raises(ValueError):
        build(version="pain.001.001.12")


# --- sepa_text ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Épernay", "Epernay"),
        ("Cœur de Reims", "Coeur de Reims"),
        ("ŒUVRE", "OEUVRE"),
        ("Straße", "Strasse"),
        ("Ça & là", "Ca + la"),
        ("L’Atelier", "L'Atelier"),
        ("« Quoi ? »", "' Quoi ? '"),
        ("Saint-Jean–d’Angély", "Saint-Jean-d'Angely"),
        ("Ærø", "AEro"),
        ("Łódź", "Lodz"),
        ("a_b@c;d", "a-b c d"),
        ("  trop   d’espaces  ", "trop d'espaces"),
        ("Prix 10 €", "Prix 10 EUR"),
        ("日本語", ""),
    ],
)
def test_sepa_text_transliterates(raw, expected):
    assert sepa.sepa_text(raw) == expected


def test_sepa_text_always_in_charset_and_within_length():
    rng = random.Random(20260615)
    alphabet = "aàâäeéèêëiîïoôöuùûüyÿcçœæßAÀÉÈÇŒÆ &@_;!\"«»’‘–—€$%*#<>{}[]|\\~^°\t\n日本ŁłØøÞþ0123456789/-?:().,'+"
    for _ in range(500):
        raw = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 120)))
        text = sepa.sepa_text(raw, 70)
        assert sepa.is_sepa_text(text), (raw, text)
        assert len(text) <= 70
        assert text == text.strip()
        assert "  " not in text


def test_sepa_text_keeps_sepa_text_unchanged():
    rng = random.Random(7)
    chars = sorted(sepa.SEPA_CHARS - {" "})
    for _ in range(200):
        raw = "".join(rng.choice(chars) for _ in range(rng.randint(1, 50)))
        assert sepa.sepa_text(raw) == raw


def test_names_with_accents_always_produce_valid_files():
    rng = random.Random(42)
    pieces = ["Café", "Numérique", "&", "d’Épernay", "Cœur", "Straße", "«Ça»", "Ørsted", "Łódź", "—", "l'Œuvre"]
    for _ in range(15):
        name = " ".join(rng.choice(pieces) for _ in range(rng.randint(1, 20)))
        t = sepa.Transfer(
            name=name, iban=PLACE_IBAN, bic="", amount_cents=rng.randint(1, 10**7), end_to_end_id="E2E", remittance=name
        )
        assert sepa.validate(build(rng.choice(sepa.VERSIONS), transfers=[t], debtor=DEBTOR)) == [], name


def test_identifiers_are_cleaned():
    assert sepa.sepa_identifier("//DR 2026//x/") == "DR-2026/x"
    assert len(sepa.sepa_identifier("A" * 50)) == 35


# --- validate: samples ------------------------------------------------------------------------------------


@needs_samples
def test_sample_03_is_xsd_valid_but_mixes_structured_and_unstructured_remittance():
    data = SAMPLE_03.read_bytes()
    assert sepa.xsd_problems(data, "pain.001.001.03") == []
    problems = sepa.validate(data)
    assert len(problems) == 4
    assert all("motif structuré et non structuré" in p for p in problems)


@needs_samples
def test_sample_09_is_xsd_valid_but_refused_for_debt_charges():
    data = SAMPLE_09.read_bytes()
    assert sepa.xsd_problems(data, "09") == []
    assert sepa.validate(data, "pain.001.001.09") == [
        "Frais « DEBT » : un virement SEPA partage les frais (ChrgBr = SLEV)."
    ]


@needs_samples
def test_sample_refused_against_the_other_version():
    problems = sepa.validate(SAMPLE_03.read_bytes(), "09")
    assert len(problems) == 1
    assert "pain.001.001.09 était attendu" in problems[0]


# --- validate: each SEPA rule ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ('Ccy="EUR">123.45', 'Ccy="USD">123.45', "seul l’euro (EUR) est admis"),
        ("<ChrgBr>SLEV</ChrgBr>", "<ChrgBr>SHAR</ChrgBr>", "ChrgBr = SLEV"),
        ("<Cd>SEPA</Cd>", "<Cd>NURG</Cd>", "Niveau de service « NURG »"),
        ("<PmtMtd>TRF</PmtMtd>", "<PmtMtd>CHK</PmtMtd>", "de type TRF"),
        ("<IBAN>FR7630003000001234567890180</IBAN>", "<IBAN>FR7630003000001234567890181</IBAN>", "IBAN créancier"),
        ("<IBAN>FR7630004000031234567890143</IBAN>", "<IBAN>FR7630004000031234567890144</IBAN>", "IBAN débiteur"),
        ("<IBAN>DE89370400440532013000</IBAN>", "<IBAN>BR1800360305000010009795493C1</IBAN>", "hors de la zone SEPA"),
        ("<BIC>SOGEFRPPXXX</BIC>", "<BIC>SOGEXXPPXXX</BIC>", "BIC créancier « SOGEXXPPXXX » invalide"),
        ('Ccy="EUR">0.05', 'Ccy="EUR">0.00', "supérieur à zéro"),
        ("<Nm>Medi", "<Nm>Médi", "caractères hors du jeu SEPA ('é')"),
        ("<Nm>Medi", "<Nm>" + "M" * 60 + "Medi", "71 caractères, 70 au plus"),
        (
            "<Ustrd>DR-2026-F3-000002</Ustrd>",
            "<Ustrd>DR-2026-F3-000002</Ustrd><Ustrd>bis</Ustrd>",
            "un seul motif non structuré",
        ),
        (
            "<EndToEndId>DR-2026-F3-000002</EndToEndId>",
            "<EndToEndId>/DR-2026-F3-000002</EndToEndId>",
            "ne doit ni commencer ni finir par « / »",
        ),
        ("<NbOfTxs>2</NbOfTxs>", "<NbOfTxs>3</NbOfTxs>", "En-tête : 3 virement(s) annoncé(s), 2 présent(s)"),
        ("<CtrlSum>123.50</CtrlSum>", "<CtrlSum>123.51</CtrlSum>", "En-tête : somme de contrôle 123.51"),
    ],
)
def test_each_sepa_rule_is_checked(old, new, expected):
    xml = edit(build(), old, new)
    problems = sepa.validate(xml)
    assert any(expected in p for p in problems), problems


def test_batch_totals_are_checked_too():
    xml = build()
    text = xml.decode()
    # the second NbOfTxs / CtrlSum belong to the payment-information block
    head, _, tail = text.partition("<PmtInf>")
    tail = tail.replace("<NbOfTxs>2</NbOfTxs>", "<NbOfTxs>1</NbOfTxs>").replace(
        "<CtrlSum>123.50</CtrlSum>", "<CtrlSum>1.00</CtrlSum>"
    )
    problems = sepa.validate((head + "<PmtInf>" + tail).encode())
    assert any(re.match(r"Lot PASSNUM-20260615-F3-01 : 1 virement", p) for p in problems), problems
    assert any("Lot PASSNUM-20260615-F3-01 : somme de contrôle 1.00" in p for p in problems), problems


def test_remittance_over_140_is_refused_by_schema_and_rule():
    xml = edit(build(), "<Ustrd>DR-2026-F3-000002</Ustrd>", "<Ustrd>" + "A" * 141 + "</Ustrd>")
    problems = sepa.validate(xml)
    assert any("motif de plus de 140 caractères" in p for p in problems)
    assert any(p.startswith("Schéma pain.001.001.03") for p in problems)


def test_xsd_errors_are_reported_in_french_with_a_path():
    xml = edit(build(), "<PmtMtd>TRF</PmtMtd>", "<PmtMtd>VIR</PmtMtd>")
    problems = sepa.xsd_problems(xml, "03")
    assert problems and problems[0].startswith("Schéma pain.001.001.03 :")
    assert "PmtMtd" in problems[0]


def test_malformed_foreign_and_unsafe_documents():
    assert sepa.validate(b"<Document><oops></Document>")[0].startswith("XML mal formé")
    assert "Espace de noms inattendu" in sepa.validate(b'<Document xmlns="urn:x"/>')[0]
    xxe = b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY e SYSTEM "file:///etc/passwd">]><Document>&e;</Document>'
    assert sepa.validate(xxe) == ["Le fichier contient une déclaration DTD ou d’entité : refusé."]
    with pytest.raises(sepa.UnsafeXML):
        sepa.parse_xml_safely(xxe)
    utf16 = '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE d [<!ENTITY a "b">]><d>&a;</d>'.encode("utf-16")
    with pytest.raises(sepa.UnsafeXML):
        sepa.parse_xml_safely(utf16)


def test_shipped_schemas_are_the_reference_ones():
    here = Path(sepa.__file__).parent / "schemas"
    assert (here / "SOURCE.md").exists()
    for version in sepa.VERSIONS:
        shipped = (here / f"{version}.xsd").read_bytes()
        reference = EXAMPLES.parent / f"{version}.xsd"
        if reference.exists():
            assert shipped == reference.read_bytes()


# --- the XSD validator against an independent one ----------------------------------------------------------

# Files are validated with libxml2 (lxml): fast enough for a national settlement date. xmlschema, a separate
# pure-Python implementation of XSD 1.0, serves as the oracle: both must accept and refuse the same documents.
XSD_MUTATIONS = [
    ("<PmtMtd>TRF</PmtMtd>", "<PmtMtd>VIR</PmtMtd>"),  # enumeration
    ("<Ustrd>DR-2026-F3-000002</Ustrd>", "<Ustrd>" + "A" * 141 + "</Ustrd>"),  # maxLength
    ("<NbOfTxs>2</NbOfTxs>", "<NbOfTxs>deux</NbOfTxs>"),  # pattern
    ("<BtchBookg>true</BtchBookg>", "<BtchBookg>oui</BtchBookg>"),  # boolean
    ("<ChrgBr>SLEV</ChrgBr>", ""),  # a required element's absence is allowed here (minOccurs 0)
    ('Ccy="EUR"', 'Ccy="euro"'),  # attribute pattern
    ('Ccy="EUR">123.45<', 'Ccy="EUR">123.456789<'),  # fractionDigits (5 at most)
    ("<CtrlSum>123.50</CtrlSum>", "<CtrlSum>1.235E2</CtrlSum>"),  # decimal lexical form
    ("<MsgId>PASSNUM-20260615-F3-01</MsgId>", "<MsgId>" + "X" * 36 + "</MsgId>"),  # maxLength 35
    ("<MsgId>PASSNUM-20260615-F3-01</MsgId>", ""),  # required element missing
    ("<PmtMtd>TRF</PmtMtd>", "<PmtMtd>TRF</PmtMtd><Intrus>1</Intrus>"),  # unexpected element
    ("<ReqdExctnDt>2026-06-16</ReqdExctnDt>", "<ReqdExctnDt>16/06/2026</ReqdExctnDt>"),  # date
    ("<IBAN>FR7630003000001234567890180</IBAN>", "<IBAN>fr76 3000</IBAN>"),  # IBAN pattern
    ("<BIC>SOGEFRPPXXX</BIC>", "<BIC>SOGE</BIC>"),  # BIC pattern
]


def _documents():
    for version in ("03", "09"):
        xml = build(version)
        yield f"{version}-valid", xml
        text = xml.decode()
        for i, (old, new) in enumerate(XSD_MUTATIONS):
            old_09 = old.replace("<BIC>", "<BICFI>").replace("</BIC>", "</BICFI>")
            for candidate in (old, old_09):
                if candidate in text:
                    new_here = new if candidate == old else new.replace("BIC>", "BICFI>")
                    yield f"{version}-mutation-{i}", text.replace(candidate, new_here, 1).encode()
                    break
    if SAMPLE_03.exists():
        yield "sample-03", SAMPLE_03.read_bytes()
        yield "sample-09", SAMPLE_09.read_bytes()


@pytest.mark.parametrize(("name", "xml"), list(_documents()), ids=[name for name, _ in _documents()])
def test_lxml_validator_agrees_with_xmlschema(name, xml):
    import xmlschema

    root = sepa.parse_xml_safely(xml)
    version = sepa.namespace_of(root).rsplit(":", 1)[-1]
    oracle = xmlschema.XMLSchema(sepa.SCHEMA_DIR / f"{version}.xsd")
    expected_valid = oracle.is_valid(root)
    problems = sepa.xsd_problems(xml, version)
    assert (problems == []) == expected_valid, (name, problems, [e.reason for e in oracle.iter_errors(root)])
    if "mutation" in name:
        assert (problems == []) == (XSD_MUTATIONS[int(name.rsplit("-", 1)[1])][0] == "<ChrgBr>SLEV</ChrgBr>")


def test_xsd_problems_name_the_element_and_its_path():
    xml = edit(build(), "<BtchBookg>true</BtchBookg>", "<BtchBookg>oui</BtchBookg>")
    (problem,) = sepa.xsd_problems(xml, "03")
    assert problem.startswith("Schéma pain.001.001.03 : Element 'BtchBookg': 'oui' is not a valid value")
    assert "(à /Document/CstmrCdtTrfInitn/PmtInf/BtchBookg, ligne " in problem
    assert "urn:iso" not in problem
    (problem,) = sepa.xsd_problems(edit(build(), "<PmtMtd>TRF</PmtMtd>", "<PmtMtd>VIR</PmtMtd>"), "03")
    assert "The value 'VIR' is not an element of the set {'CHK', 'TRF', 'TRA'}" in problem


def test_xsd_problems_refuse_entities_before_libxml2_sees_them():
    xxe = b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY e SYSTEM "file:///etc/passwd">]><Document>&e;</Document>'
    assert sepa.xsd_problems(xxe, "03")[0].startswith("XML illisible")
