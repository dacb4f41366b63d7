import pytest
from hypothesis import given
from hypothesis import strategies as st

from passnum.vouchers import codes

body = st.text(alphabet=codes.ALPHABET, min_size=codes.BODY_LENGTH, max_size=codes.BODY_LENGTH)


@given(body)
def test_check_symbol_roundtrip(b):
    code = b + codes.check_symbol(b)
    assert codes.normalise(code) == code
    assert codes.normalise(codes.display(code).lower()) == code


@given(body, st.integers(min_value=0, max_value=codes.BODY_LENGTH), st.integers(min_value=1, max_value=36))
def test_every_single_symbol_error_is_caught(b, position, shift):
    code = b + codes.check_symbol(b)
    alphabet = codes.CHECK_ALPHABET if position == codes.BODY_LENGTH else codes.ALPHABET
    wrong = alphabet[(alphabet.index(code[position]) + shift) % len(alphabet)]
    if wrong == code[position]:
        return
    typo = code[:position] + wrong + code[position + 1 :]
    with pytest.raises((codes.CodeChecksumError, codes.CodeFormatError)):
        codes.normalise(typo)


@given(body, st.integers(min_value=0, max_value=codes.BODY_LENGTH - 1))
def test_every_adjacent_transposition_is_caught(b, i):
    code = b + codes.check_symbol(b)
    if code[i] == code[i + 1]:
        return
    swapped = code[:i] + code[i + 1] + code[i] + code[i + 2 :]
    with pytest.raises((codes.CodeChecksumError, codes.CodeFormatError)):
        codes.normalise(swapped)


def test_generated_codes_have_60_bits_and_are_valid():
    seen = {codes.generate_code() for _ in range(2000)}
    assert len(seen) == 2000
    for code in seen:
        assert len(code) == 13 and codes.normalise(code) == code


@pytest.mark.parametrize("typed", ["7kq4-m2xd-9ftb-", "  7KQ4 M2XD 9FTB  "])
def test_normalise_ignores_case_spaces_and_dashes(typed):
    b = "7KQ4M2XD9FTB"
    code = b + codes.check_symbol(b)
    assert codes.normalise(typed + codes.check_symbol(b).lower()) == code


def test_normalise_maps_confusable_letters():
    b = "1000000000AB"
    code = b + codes.check_symbol(b)
    assert codes.normalise("L" + "OOOOOOOOO" + "AB" + code[-1]) == code
    assert codes.normalise("i" + "ooooooooo" + "ab" + code[-1].lower()) == code


@pytest.mark.parametrize("typed", ["", "ABC", "7KQ4M2XD9FTBPP", "7KQ4M2XD9FTU!"])
def test_bad_format_has_its_own_error(typed):
    with pytest.raises(codes.CodeFormatError):
        codes.normalise(typed)


def test_wrong_check_symbol_says_typo():
    b = "7KQ4M2XD9FTB"
    good = codes.check_symbol(b)
    bad = next(c for c in "0123456789" if c != good)
    with pytest.raises(codes.CodeChecksumError, match="mal recopié"):
        codes.normalise(b + bad)
