"""Money helpers. Every amount in this project is a signed integer number of euro cents, in fields named
`*_cents`. Floats never touch money: parsing goes through Decimal, splitting through integer arithmetic."""

import re
from decimal import ROUND_HALF_UP, Decimal

BPS_TOTAL = 10_000  # shares are in basis points; a program's shares sum to exactly this


_AMOUNT_RE = re.compile(r"^-?\d{1,15}(?:\.(?P<decimals>\d+))?$")


class InvalidAmount(ValueError):
    pass


def parse_euros(text: str | int | Decimal) -> int:
    """'12,50 €' → 1250. Refuses more than two decimals, exponents and anything that is not a plain amount."""
    raw = str(text).replace("\u202f", "").replace("\xa0", "").replace(" ", "").replace("€", "").replace(",", ".")
    match = _AMOUNT_RE.match(raw)
    if not match:
        raise InvalidAmount(f"« {text} » n’est pas un montant valide.")
    if len(match.group("decimals") or "") > 2:
        raise InvalidAmount("Un montant a au plus deux décimales (centimes).")
    return int(Decimal(raw) * 100)


def format_euros(cents: int) -> str:
    """1234567 → '12 345,67 €' (French typography, narrow no-break space between thousands)."""
    sign = "-" if cents < 0 else ""
    euros, rest = divmod(abs(int(cents)), 100)
    grouped = f"{euros:,}".replace(",", "\u202f")
    return f"{sign}{grouped},{rest:02d}\xa0€"


def cents_to_decimal(cents: int) -> Decimal:
    return (Decimal(int(cents)) / 100).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def split_largest_remainder(total_cents: int, weights: list[int]) -> list[int]:
    """Split `total_cents` in proportion to `weights` so the parts always add up to the whole.

    Each part gets the floor of its exact share; the cents left over go one each to the parts with the
    largest remainders, ties broken by position (the earlier weight wins). Deterministic, never negative for
    a non-negative total, and order-stable: callers pass weights in a fixed order (e.g. by funder id).
    """
    if total_cents < 0:
        return [-part for part in split_largest_remainder(-total_cents, weights)]
    if not weights or any(w < 0 for w in weights) or sum(weights) <= 0:
        raise ValueError("weights must be non-negative and not all zero")
    weight_sum = sum(weights)
    floors = [total_cents * w // weight_sum for w in weights]
    remainders = [total_cents * w % weight_sum for w in weights]
    left = total_cents - sum(floors)
    order = sorted(range(len(weights)), key=lambda i: (-remainders[i], i))
    for i in order[:left]:
        floors[i] += 1
    return floors
