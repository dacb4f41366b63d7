"""Voucher codes: 60 random bits in Crockford base32 (12 symbols) plus one Crockford mod-37 check symbol.

Mod 37 catches every single-symbol error and every adjacent transposition: 37 is prime and larger than any
difference between two base-32 digits, so neither change can leave the value unchanged modulo 37."""

import secrets

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
CHECK_ALPHABET = ALPHABET + "*~$=U"
BODY_LENGTH = 12  # 12 × 5 = 60 bits
_VALUES = {ch: i for i, ch in enumerate(ALPHABET)}
_NORMALISE = str.maketrans({"O": "0", "I": "1", "L": "1"})


class CodeFormatError(ValueError):
    pass


class CodeChecksumError(ValueError):
    pass


def check_symbol(body: str) -> str:
    value = 0
    for ch in body:
        value = value * 32 + _VALUES[ch]
    return CHECK_ALPHABET[value % 37]


def generate_code() -> str:
    value = secrets.randbits(BODY_LENGTH * 5)
    body = "".join(ALPHABET[(value >> shift) & 31] for shift in range((BODY_LENGTH - 1) * 5, -1, -5))
    return body + CHECK_ALPHABET[value % 37]


def normalise(raw: str) -> str:
    """What a person typed → canonical code. Case, spaces and dashes ignored; O→0, I/L→1."""
    cleaned = "".join(raw.split()).replace("-", "").upper().translate(_NORMALISE)
    if len(cleaned) != BODY_LENGTH + 1 or any(ch not in _VALUES for ch in cleaned[:-1]):
        raise CodeFormatError("Ce code n’a pas le bon format (13 caractères).")
    if cleaned[-1] not in CHECK_ALPHABET:
        raise CodeFormatError("Ce code n’a pas le bon format (13 caractères).")
    if check_symbol(cleaned[:-1]) != cleaned[-1]:
        raise CodeChecksumError("Code mal recopié ? Le caractère de contrôle ne correspond pas.")
    return cleaned


def display(code: str) -> str:
    """'7KQ4M2XD9FTBP' → '7KQ4-M2XD-9FTB-P'."""
    return "-".join([code[0:4], code[4:8], code[8:12], code[12:]])
