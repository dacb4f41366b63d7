from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied


def organisation_required(*kinds):
    """Logged in, acting for an organisation (of one of `kinds` when given); otherwise 403."""

    def decorator(view):
        @login_required
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            org = request.organisation
            if org is None or (kinds and org.kind not in kinds):
                raise PermissionDenied
            return view(request, *args, **kwargs)

        return wrapper

    return decorator
