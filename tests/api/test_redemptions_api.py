"""Places through the API: check, redeem (idempotent), cancel, list; keys, organisations and their kinds."""

import datetime as dt

import pytest
from django.test import Client
from django.utils import timezone

from passnum.accounts.apikeys import api_key_create, api_key_revoke
from passnum.common.standard import Service
from passnum.journal.models import JournalEntry
from passnum.settlement.verify import ledger_verify
from passnum.vouchers import codes
from passnum.vouchers.enums import VoucherStatus as S
from passnum.vouchers.models import Receipt
from passnum.vouchers.redemption import Desk, redeem
from tests.api.conftest import Api, problem_of
from tests.desk.scenario import make_site
from tests.factories import OrganisationFactory

T = Service.EVERYDAY_TOOLS
pytestmark = pytest.mark.django_db


def test_check_says_value_program_what_is_left_and_services(sc, place_api):
    response = place_api.post("/vouchers/check", {"code": sc.qr(3)})
    assert response.status_code == 200, response.content
    body = response.json()
    voucher = sc.vouchers()[2]
    assert body["code"] == voucher.code and body["display_code"] == codes.display(voucher.code)
    assert body["value_cents"] == 1000 and body["left"] == 10
    assert body["program"] == {"slug": sc.program.slug, "name": sc.program.name}
    assert body["valid_until"] == sc.program.valid_until.isoformat()
    assert body["site"] == {"id": sc.site.pk, "name": sc.site.name}
    assert {s["code"]: s["max_vouchers"] for s in body["services"]} == {T: 2, Service.ADMIN_PROCEDURES: 1}
    assert not Receipt.objects.exists()


def test_redeem_returns_the_receipt_and_moves_the_ledger(sc, place_api, place_key):
    response = place_api.post("/redemptions", {"code": sc.code(3), "service": T, "count": 2})
    assert response.status_code == 201, response.content
    body = response.json()
    receipt = Receipt.objects.get()
    assert body["id"] == receipt.pk and receipt.api_key == place_key[0] and receipt.redeemed_by is None
    assert (body["count"], body["amount_cents"], body["service"]) == (2, 2000, T)
    assert body["site"] == {"id": sc.site.pk, "name": sc.site.name}
    assert body["vouchers"] == [codes.display(sc.code(1)), codes.display(sc.code(3))]  # booklet order
    assert body["undone_at"] is None and body["undo_reason"] == ""
    redeemed_at = dt.datetime.fromisoformat(body["redeemed_at"])
    assert dt.datetime.fromisoformat(body["undo_until"]) - redeemed_at == dt.timedelta(hours=24)
    assert ledger_verify() == []
    entry = JournalEntry.objects.get(action="receipt.create")
    assert entry.actor is None and entry.data["api_key"] == place_key[0].pk


def test_idempotency_key_replays_the_same_receipt_with_200(sc, place_api):
    body = {"code": sc.code(1), "service": T}
    first = place_api.post("/redemptions", body, headers={"Idempotency-Key": "6f1c2a4e-retry"})
    again = place_api.post("/redemptions", body, headers={"Idempotency-Key": "6f1c2a4e-retry"})
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()
    assert Receipt.objects.count() == 1
    other = place_api.post("/redemptions", {"code": sc.code(2), "service": T}, headers={"Idempotency-Key": "autre"})
    assert other.status_code == 201 and other.json()["id"] != first.json()["id"]
    too_long = place_api.post("/redemptions", body, headers={"Idempotency-Key": "x" * 65})
    assert problem_of(too_long, 422, "invalid_request")["errors"][0]["in"] == "header"


def test_a_redemption_takes_few_queries(sc, place_api, django_assert_max_num_queries):
    code = sc.code(1)
    place_api.post("/redemptions", {"code": sc.code(5), "service": T})  # ledger accounts exist, shares known
    with django_assert_max_num_queries(20):
        response = place_api.post("/redemptions", {"code": code, "service": T}, headers={"Idempotency-Key": "k"})
    assert response.status_code == 201


def test_cancel_within_the_window_gives_the_vouchers_back(sc, place_api):
    receipt_id = place_api.post("/redemptions", {"code": sc.code(1), "service": T, "count": 2}).json()["id"]
    response = place_api.post(f"/redemptions/{receipt_id}/cancel", {"reason": "Mauvais service choisi"})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["id"] == receipt_id and body["undone_at"] and body["undo_reason"] == "Mauvais service choisi"
    assert len(body["vouchers"]) == 2
    assert set(sc.booklet.vouchers.values_list("status", flat=True)) == {S.DISTRIBUTED}
    assert ledger_verify() == []
    problem_of(place_api.post("/redemptions/999999/cancel", {"reason": "x"}), 404, "not_found")
    problem_of(place_api.post(f"/redemptions/{receipt_id}/cancel", {}), 422, "invalid_request")


def test_list_is_newest_first_paginated_and_own_only(sc, place_api):
    ids = [place_api.post("/redemptions", {"code": sc.code(p), "service": T}).json()["id"] for p in (1, 2, 3)]
    body = place_api.get("/redemptions").json()
    assert body["count"] == 3 and [r["id"] for r in body["items"]] == ids[::-1]
    assert body["items"][0]["vouchers"] == [codes.display(sc.code(3))]
    page = place_api.get("/redemptions", {"limit": 1, "offset": 1}).json()
    assert page["count"] == 3 and [r["id"] for r in page["items"]] == [ids[1]]
    assert place_api.get("/redemptions", {"offset": 10}).json() == {"count": 3, "items": []}
    problem_of(place_api.get("/redemptions", {"limit": 201}), 422, "invalid_request")
    problem_of(place_api.get("/redemptions", {"limit": "beaucoup"}), 422, "invalid_request")


def test_another_organisation_sees_nothing_of_it(sc, place_api):
    receipt_id = place_api.post("/redemptions", {"code": sc.code(1), "service": T}).json()["id"]
    outsider = OrganisationFactory(place=True, name="Tiers-lieu voisin")
    make_site(outsider)
    redeem(raw_code=sc.code(2, sc.new_booklet()), desk=Desk(place=outsider, ip="x"), service=T)
    theirs = Api(Client(), api_key_create(organisation=outsider, name="Leur caisse")[1])
    body = problem_of(theirs.post(f"/redemptions/{receipt_id}/cancel", {"reason": "Pour voir"}), 404, "not_found")
    assert "Médiathèque" not in body["detail"]
    listed = theirs.get("/redemptions").json()
    assert listed["count"] == 1 and receipt_id not in [r["id"] for r in listed["items"]]
    assert Receipt.objects.get(pk=receipt_id).undone_at is None


def test_a_distributor_key_cannot_redeem(sc, distributor_api):
    problem_of(distributor_api.post("/vouchers/check", {"code": sc.code(1)}), 403, "forbidden_kind")
    problem_of(distributor_api.post("/redemptions", {"code": sc.code(1), "service": T}), 403, "forbidden_kind")
    problem_of(distributor_api.post("/redemptions/1/cancel", {"reason": "x"}), 403, "forbidden_kind")
    problem_of(distributor_api.get("/redemptions"), 403, "forbidden_kind")
    assert not Receipt.objects.exists()


def test_missing_unknown_or_revoked_keys_are_401(sc, place_api, place_key):
    body = {"code": sc.code(1), "service": T}
    for key, headers in [
        ("", {}),
        ("pn_inconnue", {}),
        ("", {"Authorization": f"Basic {place_key[1]}"}),
        ("", {"Authorization": "Bearer"}),
        ("", {"Authorization": "Bearer " + "pn_" + "x" * 5000}),
    ]:
        response = Api(Client(), key).post("/redemptions", body, headers=headers)
        problem_of(response, 401, "unauthorized")
        assert response["WWW-Authenticate"].startswith("Bearer ")
    assert place_api.get("/redemptions").status_code == 200
    api_key_revoke(api_key=place_key[0])
    response = place_api.post("/redemptions", body)
    problem_of(response, 401, "unauthorized")
    assert 'error="invalid_token"' in response["WWW-Authenticate"]
    assert not Receipt.objects.exists()


def test_a_key_of_a_deactivated_organisation_is_refused(sc, place_api):
    sc.place.is_active = False
    sc.place.save()
    problem_of(place_api.get("/redemptions"), 401, "unauthorized")


def test_too_many_wrong_codes_is_429_with_retry_after(sc, place_api, settings):
    settings.PASSNUM_CODE_CHECK_LIMITS = {"who": (2, 900), "org": (100, 900), "ip": (100, 900)}
    for _ in range(2):
        problem_of(place_api.post("/vouchers/check", {"code": "0000000000000"}), 404, "unknown_code")
    response = place_api.post("/vouchers/check", {"code": sc.code(1)})
    body = problem_of(response, 429, "rate_limited")
    assert int(response["Retry-After"]) == body["retry_after"] > 0
    # another key of another place, from elsewhere, is not blocked
    other = OrganisationFactory(place=True)
    make_site(other)
    api = Api(Client(REMOTE_ADDR="198.51.100.7"), api_key_create(organisation=other, name="Autre")[1])
    assert api.post("/vouchers/check", {"code": sc.code(1)}).status_code == 200


def test_check_failures_are_journaled_with_the_key_not_the_code(sc, place_api, place_key):
    place_api.post("/vouchers/check", {"code": "0000000000000"})
    entry = JournalEntry.objects.get(action="voucher.check_failed")
    assert entry.data == {"refusal": "unknown_code", "api_key": place_key[0].pk}


def test_a_late_cancel_says_when_it_was(sc, place_api):
    receipt_id = place_api.post("/redemptions", {"code": sc.code(1), "service": T}).json()["id"]
    Receipt.objects.filter(pk=receipt_id).update(redeemed_at=timezone.now() - dt.timedelta(hours=30))
    listed = place_api.get("/redemptions").json()["items"][0]
    assert dt.datetime.fromisoformat(listed["undo_until"]) < timezone.now()
