from django import template

from passnum.common.money import format_euros

register = template.Library()


@register.filter
def euros(cents):
    return "" if cents is None else format_euros(cents)


@register.filter
def bps(value):
    """6000 → '60 %'; 3333 → '33,33 %'."""
    return f"{value / 100:g}".replace(".", ",") + "\xa0%"


@register.filter
def get_item(mapping, key):
    return mapping.get(key, key)
