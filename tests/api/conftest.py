"""A ready desk (tests.desk.scenario.build) with an API key for the place and one for the distributor, and a
small client speaking JSON with a bearer key."""

import json
from dataclasses import dataclass

import pytest
from django.test import Client

from passnum.accounts.apikeys import api_key_create
from tests.desk.scenario import build

API = "/api/v1"
PROBLEM = "application/problem+json"


@dataclass
class Api:
    client: Client
    key: str

    def _headers(self, headers):
        out = {f"HTTP_{name.upper().replace('-', '_')}": value for name, value in (headers or {}).items()}
        if self.key:
            out.setdefault("HTTP_AUTHORIZATION", f"Bearer {self.key}")
        return out

    def post(self, path, body=None, *, raw=None, headers=None):
        data = raw if raw is not None else json.dumps(body if body is not None else {})
        return self.client.post(f"{API}{path}", data=data, content_type="application/json", **self._headers(headers))

    def get(self, path, params=None, *, headers=None):
        return self.client.get(f"{API}{path}", params or {}, **self._headers(headers))


def problem_of(response, status, code):
    """The problem document of `response`, after checking it is one, with this status and code."""
    assert response["Content-Type"] == PROBLEM, (response.status_code, response.content[:300])
    body = response.json()
    assert (response.status_code, body["code"]) == (status, code), body
    assert body["status"] == status and body["title"] and body["detail"]
    assert body["type"].endswith(f"/api/v1/problemes/{code}")
    return body


@pytest.fixture
def sc():
    return build()


@pytest.fixture
def place_key(sc):
    return api_key_create(organisation=sc.place, name="Caisse de l’accueil")


@pytest.fixture
def distributor_key(sc):
    return api_key_create(organisation=sc.distributor, name="Logiciel d’accueil")


@pytest.fixture
def place_api(place_key):
    return Api(Client(), place_key[1])


@pytest.fixture
def distributor_api(distributor_key):
    return Api(Client(), distributor_key[1])
