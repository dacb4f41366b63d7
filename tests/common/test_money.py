import pytest
from hypothesis import given
from hypothesis import strategies as st

from passnum.common.money import InvalidAmount, format_euros, parse_euros, split_largest_remainder

weights = st.lists(st.integers(min_value=0, max_value=10_000), min_size=1, max_size=12).filter(lambda w: sum(w) > 0)


@given(total=st.integers(min_value=0, max_value=10**12), weights=weights)
def test_split_parts_sum_to_whole_and_are_never_negative(total, weights):
    parts = split_largest_remainder(total, weights)
    assert sum(parts) == total
    assert all(p >= 0 for p in parts)
    assert len(parts) == len(weights)


@given(total=st.integers(min_value=0, max_value=10**9), weights=weights)
def test_split_is_deterministic_and_fair(total, weights):
    parts = split_largest_remainder(total, weights)
    assert parts == split_largest_remainder(total, weights)
    wsum = sum(weights)
    for part, w in zip(parts, weights, strict=True):
        exact = total * w / wsum
        assert abs(part - exact) < 1  # never more than one cent from the exact share
        if w == 0:
            assert part == 0


@given(total=st.integers(min_value=-(10**9), max_value=-1), weights=weights)
def test_split_negative_amounts_mirror_positive(total, weights):
    assert split_largest_remainder(total, weights) == [-p for p in split_largest_remainder(-total, weights)]


def test_split_examples():
    assert split_largest_remainder(1000, [6000, 4000]) == [600, 400]
    assert split_largest_remainder(1000, [3333, 3333, 3334]) == [333, 333, 334]
    assert split_largest_remainder(1, [5000, 5000]) == [1, 0]  # tie: the earlier weight wins
    assert split_largest_remainder(100, [1, 1, 1]) == [34, 33, 33]


@pytest.mark.parametrize("weights", [[], [0, 0], [-1, 2]])
def test_split_refuses_bad_weights(weights):
    with pytest.raises(ValueError):
        split_largest_remainder(100, weights)


@pytest.mark.parametrize(
    ("text", "cents"),
    [("10", 1000), ("10,50", 1050), ("10.5", 1050), ("1 234,56 €", 123456), ("0,01", 1), ("-3", -300)],
)
def test_parse_euros(text, cents):
    assert parse_euros(text) == cents


@pytest.mark.parametrize("text", ["abc", "10,123", "", "1e400", "NaN", "Infinity"])
def test_parse_euros_refuses(text):
    with pytest.raises(InvalidAmount):
        parse_euros(text)


def test_format_euros():
    assert format_euros(123456789) == "1\u202f234\u202f567,89\xa0€"
    assert format_euros(-5) == "-0,05\xa0€"
    assert format_euros(0) == "0,00\xa0€"
