"""Bad input never makes a 500: junk, wrong types, huge strings, unknown addresses and methods all answer with a
problem document; so do unexpected failures."""

import json

import pytest
from django.db import IntegrityError, OperationalError

from passnum.api import views
from tests.api.conftest import API, PROBLEM, problem_of

pytestmark = pytest.mark.django_db

JUNK = [
    "{junk",
    "",
    "null",
    "[1, 2]",
    '"code"',
    "\udcff".encode("utf-8", "surrogatepass").decode("latin-1"),
    '{"code": null, "service": null}',
    '{"code": 7, "service": ["a"], "count": "deux", "site": -1}',
    '{"code": {"a": 1}, "service": "x", "count": 1.5}',
    '{"code": "AAAA", "service": "x", "count": 1e400}',
    '{"code": "AAAA", "service": "x", "site": 99999999999999999999999999}',
    '{"code": "AAAA", "service": "x", "quantity": 3}',
    '{"booklet": [], "person": "Odile"}',
    '{"booklet": "1", "person": {"needs": "tout"}}',
    '{"reason": 12}',
    json.dumps({"code": "A" * 10_000, "service": "x"}),
    json.dumps({"code": "\u0000\ud7ff" * 100, "service": "\u202e" * 40}),
]
POSTS = ["/vouchers/check", "/redemptions", "/redemptions/1/cancel", "/booklets/hand-out"]


@pytest.mark.parametrize("raw", JUNK, ids=range(len(JUNK)))
def test_junk_bodies_are_problems_never_500(sc, place_api, distributor_api, raw):
    for path in POSTS:
        api = distributor_api if "booklets" in path else place_api
        response = api.post(path, raw=raw)
        assert response["Content-Type"] == PROBLEM, (path, response.status_code, response.content[:200])
        assert response.status_code in (400, 403, 404, 409, 422), (path, response.content[:300])
        body = response.json()
        assert body["code"] and body["detail"] and body["status"] == response.status_code


def test_validation_errors_name_each_field_in_french(place_api):
    raw = '{"code": 7, "service": "x", "count": "deux", "site": 0, "quantity": 3}'
    body = problem_of(place_api.post("/redemptions", raw=raw), 422, "invalid_request")
    errors = {e["field"]: e for e in body["errors"]}
    assert set(errors) == {"code", "count", "site", "quantity"}
    assert errors["count"]["message"] == "Nombre entier attendu." and errors["count"]["in"] == "body"
    assert errors["site"]["message"] == "Valeur trop petite : au moins 1."
    assert errors["quantity"]["message"] == "Champ inconnu."
    assert "count" in body["detail"]


def test_unreadable_and_huge_bodies(place_api):
    problem_of(place_api.post("/redemptions", raw="{junk"), 400, "invalid_json")
    problem_of(place_api.post("/redemptions", raw="[]"), 400, "invalid_json")
    huge = json.dumps({"code": "A" * 100_000, "service": "x"})
    problem_of(place_api.post("/redemptions", raw=huge), 413, "payload_too_large")
    long = json.dumps({"code": "A" * 5_000, "service": "x"})
    body = problem_of(place_api.post("/redemptions", raw=long), 422, "invalid_request")
    assert body["errors"][0]["message"] == "Texte trop long : 256 caractères au plus."


def test_unknown_addresses_and_methods(place_api):
    problem_of(place_api.get("/nulle-part"), 404, "not_found")
    problem_of(place_api.get("/redemptions/1/cancel/plus"), 404, "not_found")
    problem_of(place_api.post("/redemptions/0/cancel", {"reason": "x"}), 422, "invalid_request")
    problem_of(place_api.post("/redemptions/abc/cancel", {"reason": "x"}), 422, "invalid_request")
    response = place_api.get("/vouchers/check")
    problem_of(response, 405, "method_not_allowed")
    assert response["Allow"] == "POST"
    problem_of(place_api.client.delete(f"{API}/redemptions"), 405, "method_not_allowed")


def test_unexpected_failures_are_problems_too(sc, place_api, monkeypatch):
    def boom(**kwargs):
        raise RuntimeError("panne")

    monkeypatch.setattr(views, "voucher_check", boom)
    body = problem_of(place_api.post("/vouchers/check", {"code": sc.code(1)}), 500, "internal_error")
    assert "panne" not in body["detail"]

    def busy(**kwargs):
        raise OperationalError("database is locked")

    monkeypatch.setattr(views, "voucher_check", busy)
    response = place_api.post("/vouchers/check", {"code": sc.code(1)})
    problem_of(response, 503, "unavailable")
    assert response["Retry-After"] == "1"

    def clash(**kwargs):
        raise IntegrityError("UNIQUE constraint failed")

    monkeypatch.setattr(views, "voucher_check", clash)
    problem_of(place_api.post("/vouchers/check", {"code": sc.code(1)}), 409, "conflict")


def test_root_and_problem_types_need_no_key(client):
    root = client.get(f"{API}/").json()
    assert root["openapi"] == f"{API}/openapi.json" and root["docs"] == f"{API}/docs"
    catalogue = client.get(f"{API}/problemes").json()
    assert catalogue["already_redeemed"]["status"] == 409 and catalogue["unauthorized"]["status"] == 401
    one = client.get(f"{API}/problemes/rate_limited").json()
    assert one["status"] == 429 and one["title"] == "Trop de codes erronés"
    problem_of(client.get(f"{API}/problemes/inexistant"), 404, "not_found")


def test_the_docs_page_is_served(client):
    response = client.get(f"{API}/docs")
    assert response.status_code == 200 and b"openapi.json" in response.content
