"""Exactly once through the API, on PostgreSQL with real concurrent requests (skipped on SQLite): the benchmark's
8 clients redeeming the same voucher, and retries of one request with one idempotency key."""

import pytest
from django.test import Client

from passnum.accounts.apikeys import api_key_create
from passnum.common.standard import Service
from passnum.settlement.verify import ledger_verify
from passnum.vouchers.models import Receipt
from tests.api.conftest import Api
from tests.desk.scenario import build
from tests.races.conftest import run_concurrently  # noqa: F401 (fixture)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.xdist_group("races"), pytest.mark.postgres]
T = Service.EVERYDAY_TOOLS
CLIENTS = 8


def test_eight_clients_redeeming_one_voucher_give_one_receipt(run_concurrently):  # noqa: F811
    sc = build()
    key = api_key_create(organisation=sc.place, name="Caisse")[1]
    code = sc.code(1)

    def post(i):
        api = Api(Client(REMOTE_ADDR=f"10.2.0.{i + 1}"), key)
        return api.post("/redemptions", {"code": code, "service": T}, headers={"Idempotency-Key": f"client-{i}"})

    responses, errors = run_concurrently(post, CLIENTS)
    assert errors == [None] * CLIENTS
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201] + [409] * (CLIENTS - 1)
    assert {r.json()["code"] for r in responses if r.status_code == 409} == {"already_redeemed"}
    assert Receipt.objects.count() == 1 and ledger_verify() == []


def test_eight_retries_with_one_idempotency_key_make_one_receipt(run_concurrently):  # noqa: F811
    sc = build()
    key = api_key_create(organisation=sc.place, name="Caisse")[1]
    code = sc.code(2)

    def post(i):
        api = Api(Client(), key)
        return api.post("/redemptions", {"code": code, "service": T, "count": 2}, headers={"Idempotency-Key": "k-1"})

    responses, errors = run_concurrently(post, CLIENTS)
    assert errors == [None] * CLIENTS
    assert sorted(r.status_code for r in responses) == [200] * (CLIENTS - 1) + [201]
    assert len({r.json()["id"] for r in responses}) == 1
    assert Receipt.objects.count() == 1 and ledger_verify() == []
