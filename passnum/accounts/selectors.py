from passnum.accounts.models import Membership, Organisation


def memberships_of(*, user) -> list[Membership]:
    if not user.is_authenticated:
        return []
    return list(
        Membership.objects.filter(user=user, organisation__is_active=True)
        .select_related("organisation")
        .order_by("organisation__name")
    )


def organisation_list(*, kind: str | None = None):
    qs = Organisation.objects.filter(is_active=True)
    if kind:
        qs = qs.filter(kind=kind)
    return qs.order_by("name")
