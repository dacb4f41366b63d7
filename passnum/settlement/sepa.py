"""SEPA credit transfers (ISO 20022 pain.001): build a payment file and check it. Pure functions, no database.

`build_credit_transfer` writes one message with one payment-information block (one debtor, one execution date)
and one transfer per creditor, in euros, charges shared (SLEV), with the claim reference as end-to-end id and
remittance information. Every free text goes through `sepa_text`, so what is written always passes `validate`.

`validate` returns French problem strings (empty list = the file is fine): the XSD shipped in `schemas/`, then
the SEPA rules the generic ISO schema does not express (EPC SEPA Credit Transfer implementation guidelines).

`parse_xml_safely` is the one XML entry point for untrusted input (bank statements too): it refuses any DTD or
entity declaration, so no XXE and no entity expansion bomb."""

from __future__ import annotations

import datetime as dt
import re
import threading
import unicodedata
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from zoneinfo import ZoneInfo

SCHEMA_DIR = Path(__file__).parent / "schemas"
VERSIONS = ("pain.001.001.03", "pain.001.001.09")
DEFAULT_VERSION = "pain.001.001.03"
NAMESPACE_PREFIX = "urn:iso:std:iso:20022:tech:xsd:"
PARIS = ZoneInfo("Europe/Paris")

NAME_MAX = 70
REMITTANCE_MAX = 140
ID_MAX = 35
AMOUNT_MAX_CENTS = 99_999_999_999  # 999 999 999,99 € (EPC)

# The SEPA "Latin character set" every bank must accept (EPC217-08).
SEPA_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/-?:().,'+ ")
_SPECIAL = {
    "œ": "oe",
    "Œ": "OE",
    "æ": "ae",
    "Æ": "AE",
    "ß": "ss",
    "ẞ": "SS",
    "ø": "o",
    "Ø": "O",
    "đ": "d",
    "Đ": "D",
    "ð": "d",
    "Ð": "D",
    "ł": "l",
    "Ł": "L",
    "þ": "th",
    "Þ": "TH",
    "ı": "i",
    "&": "+",
    "’": "'",
    "‘": "'",
    "ʼ": "'",
    "`": "'",
    "´": "'",
    '"': "'",
    "«": "'",
    "»": "'",
    "“": "'",
    "”": "'",
    "–": "-",
    "—": "-",
    "‐": "-",
    "_": "-",
    "€": "EUR",
    "°": "o",
    "№": "No",
}


def normalise_version(version: str | None) -> str:
    """ "03", "09", "001.03" or the full "pain.001.001.03" → the full name; ValueError otherwise."""
    text = (version or DEFAULT_VERSION).strip().lower()
    for full in VERSIONS:
        if text == full or full.endswith("." + text.lstrip(".")) or text == full[-2:]:
            return full
    raise ValueError(f"Version SEPA inconnue « {version} » : choisissez 03 (pain.001.001.03) ou 09 (pain.001.001.09).")


def sepa_text(value: str, max_length: int | None = None) -> str:
    """Transliterate to the SEPA character set: accents dropped (é→e), ligatures spelt out (œ→oe, ß→ss),
    '&'→'+', typographic quotes and dashes to their plain forms; anything else becomes a space. Whitespace is
    collapsed, and the result is cut to `max_length`. `sepa_text(x)` always satisfies `is_sepa_text`."""
    out = []
    for char in value or "":
        if char in SEPA_CHARS:
            out.append(char)
            continue
        if char in _SPECIAL:
            out.append(_SPECIAL[char])
            continue
        decomposed = "".join(c for c in unicodedata.normalize("NFKD", char) if not unicodedata.combining(c))
        for c in decomposed:
            out.append(c if c in SEPA_CHARS else _SPECIAL.get(c, " "))
    text = re.sub(r"\s+", " ", "".join(out)).strip()
    if max_length is not None:
        text = text[:max_length].rstrip()
    return text


def is_sepa_text(value: str) -> bool:
    return all(c in SEPA_CHARS for c in value)


def sepa_identifier(value: str, max_length: int = ID_MAX) -> str:
    """An identifier (message id, end-to-end id): SEPA characters, no leading/trailing '/', no '//'."""
    text = sepa_text(value).replace(" ", "-")
    text = re.sub(r"/{2,}", "/", text).strip("/")
    return text[:max_length].strip("/")


@dataclass(frozen=True)
class Account:
    """The paying account (debtor): the funder's."""

    name: str
    iban: str
    bic: str = ""


@dataclass(frozen=True)
class Transfer:
    """One credit transfer to one creditor (a place)."""

    name: str
    iban: str
    bic: str
    amount_cents: int
    end_to_end_id: str
    remittance: str


def _compact(code: str) -> str:
    return re.sub(r"\s+", "", code or "").upper()


def _cents_to_text(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


def build_credit_transfer(
    *,
    debtor: Account,
    transfers: Sequence[Transfer],
    message_id: str,
    execution_date: dt.date,
    version: str = DEFAULT_VERSION,
    created_at: dt.datetime | None = None,
) -> bytes:
    """A pain.001 message (UTF-8 bytes): one payment-information block, one transfer per item of `transfers`.
    Amounts are integer cents (> 0). Texts are transliterated with `sepa_text`; the message id also names the
    payment-information block."""
    from sepaxml import SepaTransfer

    version = normalise_version(version)
    if not transfers:
        raise ValueError("No transfer to write.")
    message_id = sepa_identifier(message_id)
    if not message_id:
        raise ValueError("Empty message id.")
    created_at = (created_at or dt.datetime.now(tz=PARIS)).astimezone(PARIS)

    class _Transfer(SepaTransfer):
        def _finalize_batch(self):
            super()._finalize_batch()
            for node in self._xml.iter("PmtInfId"):
                node.text = message_id

    config = {
        "name": sepa_text(debtor.name, NAME_MAX),
        "IBAN": _compact(debtor.iban),
        "currency": "EUR",
        "batch": True,
    }
    if debtor.bic:
        config["BIC"] = _compact(debtor.bic)
    message = _Transfer(config, schema=version, clean=False)
    header = message._xml.find("CstmrCdtTrfInitn/GrpHdr")
    header.find("MsgId").text = message_id
    header.find("CreDtTm").text = created_at.strftime("%Y-%m-%dT%H:%M:%S")
    for t in transfers:
        if not isinstance(t.amount_cents, int) or isinstance(t.amount_cents, bool) or t.amount_cents <= 0:
            raise ValueError(f"Amount must be a positive integer of cents, got {t.amount_cents!r}.")
        payment = {
            "name": sepa_text(t.name, NAME_MAX),
            "IBAN": _compact(t.iban),
            "amount": t.amount_cents,
            "execution_date": execution_date,
            "description": sepa_text(t.remittance, REMITTANCE_MAX),
            "endtoend_id": sepa_identifier(t.end_to_end_id) or "NOTPROVIDED",
        }
        if t.bic:
            payment["BIC"] = _compact(t.bic)
        message.add_payment(payment)
    return message.export(validate=False)


# --- reading XML safely -----------------------------------------------------------------------------------


class UnsafeXML(ValueError):
    """The document declares a DTD or entities: refused, never expanded."""


def parse_xml_safely(data: bytes) -> ET.Element:
    """Parse untrusted XML. Refuses DOCTYPE, entity declarations and external references (XXE, billion laughs);
    raises UnsafeXML for those, ET.ParseError for malformed XML."""
    if re.search(rb"<!\s*(DOCTYPE|ENTITY)", data, re.IGNORECASE):
        raise UnsafeXML("DTD or entity declaration")
    import xml.parsers.expat

    def refuse(*args):
        raise UnsafeXML("DTD or entity declaration")

    # A first pass with bare expat, whatever the declared encoding: any DTD or entity declaration is refused
    # before anything is built or expanded.
    checker = xml.parsers.expat.ParserCreate()
    checker.StartDoctypeDeclHandler = refuse
    checker.EntityDeclHandler = refuse
    checker.UnparsedEntityDeclHandler = refuse
    checker.ExternalEntityRefHandler = refuse
    try:
        checker.Parse(data, True)
    except xml.parsers.expat.ExpatError as exc:
        error = ET.ParseError(xml.parsers.expat.ErrorString(exc.code))
        error.position = (exc.lineno, exc.offset)
        raise error from None
    return ET.fromstring(data)  # noqa: S314 - the expat pass above refused any DTD or entity


def local_name(tag: str) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def namespace_of(element: ET.Element) -> str:
    return element.tag[1:].split("}", 1)[0] if element.tag.startswith("{") else ""


def children(element: ET.Element, name: str) -> list[ET.Element]:
    return [c for c in element if local_name(c.tag) == name]


def child(element: ET.Element | None, *path: str) -> ET.Element | None:
    """Follow a path of local names, namespace-agnostic; None when any step is missing."""
    for name in path:
        if element is None:
            return None
        element = next((c for c in element if local_name(c.tag) == name), None)
    return element


def text_of(element: ET.Element | None, *path: str) -> str:
    found = child(element, *path) if path else element
    return (found.text or "").strip() if found is not None else ""


def descendants(element: ET.Element, name: str) -> list[ET.Element]:
    return [e for e in element.iter() if local_name(e.tag) == name]


# --- validation -------------------------------------------------------------------------------------------


_local = threading.local()


def _schema(version: str):
    """The compiled XSD (libxml2, through lxml): a C validator, about twenty times faster than a pure-Python one
    on a payment file of thousands of transfers. One per thread: lxml validators are not meant to be shared
    between threads."""
    from lxml import etree

    cache = _local.__dict__.setdefault("schemas", {})
    if version not in cache:
        cache[version] = etree.XMLSchema(etree.parse(str(SCHEMA_DIR / f"{version}.xsd"), parser=_lxml_parser()))
    return cache[version]


def _lxml_parser():
    """A new parser per use (lxml parsers are not shared between threads) that never loads a DTD, expands an
    entity or touches the network."""
    from lxml import etree

    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)


def parse_amount_cents(text: str) -> int | None:
    """ "150.00" → 15000; None when not a decimal number with at most two decimals."""
    try:
        value = Decimal(text.strip())
    except (InvalidOperation, AttributeError):
        return None
    if not value.is_finite():
        return None
    cents = value * 100
    if cents != cents.to_integral_value():
        return None
    return int(cents)


def validate(xml: bytes, version: str | None = None) -> list[str]:
    """Problems of a pain.001 credit-transfer message, in French; [] when it is valid for the XSD and SEPA.
    Without `version`, the message's namespace says which schema applies."""
    try:
        root = parse_xml_safely(xml)
    except UnsafeXML:
        return ["Le fichier contient une déclaration DTD ou d’entité : refusé."]
    except ET.ParseError as exc:
        return [f"XML mal formé : {exc}."]
    namespace = namespace_of(root)
    found = namespace[len(NAMESPACE_PREFIX) :] if namespace.startswith(NAMESPACE_PREFIX) else ""
    if version is None:
        if found not in VERSIONS:
            return [f"Espace de noms inattendu « {namespace} » : ce n’est pas un message pain.001.001.03 ou .09."]
        version = found
    else:
        try:
            version = normalise_version(version)
        except ValueError as exc:
            return [str(exc)]
        if found != version:
            return [f"Espace de noms « {namespace} » : un message {version} était attendu."]
    problems = xsd_problems(xml, version, checked=True)
    problems += sepa_problems(root)
    return problems


def xsd_problems(xml: bytes | ET.Element, version: str, *, checked: bool = False) -> list[str]:
    """XSD validation against the schema shipped in `schemas/`. `checked`: the bytes already went through
    `parse_xml_safely` (no DTD, no entity), so they are not checked twice."""
    from lxml import etree

    version = normalise_version(version)
    if isinstance(xml, ET.Element):
        xml = ET.tostring(xml, encoding="utf-8")
    elif not checked:
        try:
            parse_xml_safely(bytes(xml))
        except (UnsafeXML, ET.ParseError) as exc:
            return [f"XML illisible : {exc}."]
    try:
        document = etree.fromstring(bytes(xml), parser=_lxml_parser()).getroottree()
    except etree.XMLSyntaxError as exc:
        return [f"XML illisible : {exc}."]
    schema = _schema(version)
    if schema.validate(document):
        return []
    problems = []
    for error in schema.error_log:
        # Drop the namespaces ({urn:…}), not the value sets ({'CHK', 'TRF'}).
        reason = re.sub(r"\{[^}'\s]*\}", "", error.message).strip().rstrip(".")
        problems.append(f"Schéma {version} : {reason} (à {_readable_path(document, error.path)}, ligne {error.line}).")
        if len(problems) >= 20:
            problems.append("… (autres erreurs de schéma non listées)")
            break
    return problems


def _readable_path(document, path: str | None) -> str:
    """libxml2 reports '/*/*[1]/*[2]': say '/Document/CstmrCdtTrfInitn/PmtInf' instead."""
    try:
        found = document.xpath(path) if path else []
    except Exception:  # noqa: BLE001 - only a nicer message is at stake
        found = []
    if not found or not hasattr(found[0], "iterancestors"):
        return path or "?"
    element = found[0]
    names = [local_name(e.tag) for e in reversed([element, *element.iterancestors()])]
    return "/" + "/".join(names)


def sepa_problems(root: ET.Element) -> list[str]:
    """The SEPA Credit Transfer rules beyond the ISO schema. Namespace-agnostic, works on both versions."""
    from schwifty import BIC, IBAN

    problems: list[str] = []
    initiation = child(root, "CstmrCdtTrfInitn")
    if initiation is None:
        return ["Bloc CstmrCdtTrfInitn absent : ce n’est pas un ordre de virement."]

    # character set, everywhere
    for element in root.iter():
        text = (element.text or "").strip()
        bad = sorted({c for c in text if c not in SEPA_CHARS})
        if bad:
            shown = " ".join(repr(c) for c in bad[:5])
            problems.append(f"{local_name(element.tag)} « {text[:40]} » : caractères hors du jeu SEPA ({shown}).")
    # Every element under the initiation by local name, in one walk (a file has tens of thousands of elements).
    named: dict[str, list[ET.Element]] = {}
    for element in initiation.iter():
        named.setdefault(local_name(element.tag), []).append(element)

    def descendants_named(name: str) -> list[ET.Element]:
        return named.get(name, [])

    # identifiers
    ids = [("MsgId", e) for e in descendants_named("MsgId")]
    ids += [("PmtInfId", e) for e in descendants_named("PmtInfId")]
    ids += [("EndToEndId", e) for e in descendants_named("EndToEndId")]
    for name, element in ids:
        value = text_of(element)
        if value.startswith("/") or value.endswith("/") or "//" in value:
            problems.append(f"{name} « {value} » : ne doit ni commencer ni finir par « / », ni contenir « // ».")
    # names
    for element in descendants_named("Nm"):
        value = text_of(element)
        if len(value) > NAME_MAX:
            problems.append(f"Nom « {value[:40]}… » : {len(value)} caractères, {NAME_MAX} au plus en SEPA.")
    # charges and service level
    for element in descendants_named("ChrgBr"):
        if text_of(element) != "SLEV":
            problems.append(f"Frais « {text_of(element)} » : un virement SEPA partage les frais (ChrgBr = SLEV).")
    for element in descendants_named("PmtMtd"):
        if text_of(element) != "TRF":
            problems.append(f"Mode de paiement « {text_of(element)} » : un virement SEPA est de type TRF.")
    for element in descendants_named("SvcLvl"):
        code = text_of(element, "Cd")
        if code and code != "SEPA":
            problems.append(f"Niveau de service « {code} » : SEPA attendu.")
    # accounts
    for role, path in (("débiteur", ("DbtrAcct", "Id")), ("créancier", ("CdtrAcct", "Id"))):
        for holder in descendants_named(path[0]):
            ident = child(holder, "Id")
            iban = text_of(ident, "IBAN")
            if not iban:
                problems.append(f"Compte {role} sans IBAN : SEPA n’accepte que des IBAN.")
                continue
            try:
                parsed = IBAN(iban)
            except ValueError as exc:
                problems.append(f"IBAN {role} {_mask(iban)} invalide ({exc}).")
                continue
            if not parsed.in_sepa_zone:
                problems.append(f"IBAN {role} {_mask(iban)} : pays hors de la zone SEPA.")
    for agent in descendants_named("DbtrAgt") + descendants_named("CdtrAgt"):
        role = "débiteur" if local_name(agent.tag) == "DbtrAgt" else "créancier"
        for name in ("BIC", "BICFI"):
            code = text_of(agent, "FinInstnId", name)
            if code:
                try:
                    BIC(code)
                except ValueError as exc:
                    problems.append(f"BIC {role} « {code} » invalide ({exc}).")
    # amounts, remittance, control sums
    all_count, all_sum, sums_ok = 0, 0, True
    for info in children(initiation, "PmtInf"):
        count, total = 0, 0
        for tx in children(info, "CdtTrfTxInf"):
            count += 1
            ref = text_of(tx, "PmtId", "EndToEndId") or f"n° {count}"
            amount = child(tx, "Amt", "InstdAmt")
            if amount is None:
                problems.append(f"Virement {ref} : montant InstdAmt absent (seul InstdAmt est admis en SEPA).")
                sums_ok = False
                continue
            currency = amount.get("Ccy", "")
            if currency != "EUR":
                problems.append(f"Virement {ref} : devise « {currency} », seul l’euro (EUR) est admis.")
            cents = parse_amount_cents(amount.text or "")
            if cents is None:
                problems.append(f"Virement {ref} : montant « {amount.text} » illisible (deux décimales au plus).")
                sums_ok = False
                continue
            if cents <= 0:
                problems.append(f"Virement {ref} : le montant doit être supérieur à zéro.")
            elif cents > AMOUNT_MAX_CENTS:
                problems.append(f"Virement {ref} : montant supérieur au plafond SEPA (999 999 999,99 €).")
            total += cents
            remittance = child(tx, "RmtInf")
            if remittance is not None:
                unstructured = children(remittance, "Ustrd")
                if unstructured and children(remittance, "Strd"):
                    problems.append(f"Virement {ref} : motif structuré et non structuré à la fois (un seul admis).")
                if len(unstructured) > 1:
                    problems.append(f"Virement {ref} : un seul motif non structuré (Ustrd) est admis.")
                for u in unstructured:
                    if len(text_of(u)) > REMITTANCE_MAX:
                        problems.append(f"Virement {ref} : motif de plus de {REMITTANCE_MAX} caractères.")
        problems += _check_totals(f"Lot {text_of(info, 'PmtInfId')}", info, count, total, sums_ok)
        all_count += count
        all_sum += total
    if not children(initiation, "PmtInf"):
        problems.append("Aucun lot de virements (PmtInf).")
    problems += _check_totals("En-tête", child(initiation, "GrpHdr"), all_count, all_sum, sums_ok)
    return problems


def _check_totals(label: str, node: ET.Element | None, count: int, total: int, sums_ok: bool) -> list[str]:
    problems = []
    declared = text_of(node, "NbOfTxs")
    if declared and declared != str(count):
        problems.append(f"{label} : {declared} virement(s) annoncé(s), {count} présent(s).")
    ctrl = text_of(node, "CtrlSum")
    if ctrl and sums_ok:
        cents = parse_amount_cents(ctrl)
        if cents != total:
            problems.append(f"{label} : somme de contrôle {ctrl}, total des virements {_cents_to_text(total)}.")
    return problems


def _mask(iban: str) -> str:
    iban = _compact(iban)
    return f"{iban[:4]}…{iban[-4:]}" if len(iban) > 8 else "…"


mask_iban = _mask
