"""`Authorization: Bearer <key>`: request.auth is the ApiKey (with its organisation), in one query."""

from ninja.security import HttpBearer

from passnum.accounts.apikeys import api_key_authenticate


class ApiKeyAuth(HttpBearer):
    """Bearer API keys (docs/api.md). Unlike ninja's HttpBearer, never logs the header, even with DEBUG on."""

    def __call__(self, request):
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        return self.authenticate(request, token.strip())

    def authenticate(self, request, token):
        return api_key_authenticate(token)
