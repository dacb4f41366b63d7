SESSION_KEY = "passnum_organisation_id"


def current_membership(request):
    from passnum.accounts.selectors import memberships_of

    memberships = memberships_of(user=request.user)
    wanted = request.session.get(SESSION_KEY)
    for m in memberships:
        if m.organisation_id == wanted:
            return m, memberships
    return (memberships[0] if memberships else None), memberships


class CurrentOrganisationMiddleware:
    """Sets request.membership, request.organisation and request.memberships: the organisation the user acts
    for now, chosen with the switcher and kept in the session (only its id). Perms still re-check membership."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        membership, memberships = current_membership(request)
        request.membership = membership
        request.memberships = memberships
        request.organisation = membership.organisation if membership else None
        return self.get_response(request)
