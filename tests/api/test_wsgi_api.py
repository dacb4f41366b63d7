"""config.wsgi: /api/ goes to a lean handler without the site's middleware (no sessions, CSRF, users…), the rest
to the site's. The API works there exactly as through the test client's full stack."""

import io
import json
from wsgiref.util import setup_testing_defaults

import pytest
from django.core.signals import request_finished, request_started
from django.db import close_old_connections

from passnum.common.standard import Service
from passnum.vouchers.models import Receipt

pytestmark = pytest.mark.django_db


@pytest.fixture
def wsgi(settings):
    """config.wsgi's application, called without closing the test's database connection between requests (as
    Django's test client does)."""
    import config.wsgi

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield config.wsgi
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


def call(application, method, path, *, body=None, headers=None):
    data = json.dumps(body).encode() if body is not None else b""
    environ = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(data)),
        "wsgi.input": io.BytesIO(data),
        **{f"HTTP_{k.upper().replace('-', '_')}": v for k, v in (headers or {}).items()},
    }
    setup_testing_defaults(environ)
    started = {}

    def start_response(status, response_headers, exc_info=None):
        started["status"], started["headers"] = int(status.split()[0]), dict(response_headers)

    response = application(environ, start_response)
    content = b"".join(response)
    return started["status"], started["headers"], content


def test_the_api_handler_has_only_the_api_middleware(wsgi, settings):
    api, site = wsgi.application.api, wsgi.application.site
    assert api is wsgi.api_application and site is wsgi.site_application
    assert api.middleware == settings.API_MIDDLEWARE
    assert "django.contrib.sessions.middleware.SessionMiddleware" not in api.middleware
    assert settings.MIDDLEWARE != settings.API_MIDDLEWARE  # the site's list is left as it was


def test_a_redemption_through_the_lean_handler(wsgi, sc, place_key):
    headers = {"Authorization": f"Bearer {place_key[1]}", "Idempotency-Key": "wsgi-1"}
    body = {"code": sc.code(1), "service": Service.EVERYDAY_TOOLS}
    status, response_headers, content = call(
        wsgi.application, "POST", "/api/v1/redemptions", body=body, headers=headers
    )
    assert status == 201, content
    assert json.loads(content)["id"] == Receipt.objects.get().pk
    assert "Set-Cookie" not in response_headers and "Cookie" not in response_headers.get("Vary", "")
    status, _, _ = call(wsgi.application, "POST", "/api/v1/redemptions", body=body, headers=headers)
    assert status == 200  # replayed, no CSRF token needed for a POST
    status, response_headers, content = call(wsgi.application, "GET", "/api/v1/redemptions")
    assert status == 401 and response_headers["Content-Type"] == "application/problem+json"
    assert response_headers["WWW-Authenticate"].startswith("Bearer")


def test_other_paths_go_to_the_site(wsgi):
    status, headers, _ = call(wsgi.application, "GET", "/healthz")
    assert status == 200
    status, headers, _ = call(wsgi.application, "GET", "/cles-api/")
    assert status == 302 and "/connexion/" in headers["Location"]  # the site's login, through its middleware
