"""Every refusal of the desk (REFUSALS) reachable through the API comes back as a problem document with its HTTP
status, its stable code and its context members."""

import datetime as dt

import pytest
from django.test import Client
from django.utils import timezone

from passnum.accounts.apikeys import api_key_create
from passnum.common.standard import Service
from passnum.places.enums import QualificationStatus
from passnum.vouchers.models import Receipt
from passnum.vouchers.redemption import REFUSALS
from passnum.vouchers.services import vouchers_cancel
from tests.api.conftest import Api, problem_of
from tests.desk.scenario import make_site
from tests.factories import OrganisationFactory
from tests.settlement.flow import settle_all

T = Service.EVERYDAY_TOOLS
pytestmark = pytest.mark.django_db

# Not reachable through the API, on purpose: a key of another kind of organisation is refused before any service
# runs, with 403 `forbidden_kind` (test_redemptions_api), and another place's receipt is a 404 `not_found`.
UNREACHABLE = {"not_a_place"}


def api_for(organisation) -> Api:
    return Api(Client(), api_key_create(organisation=organisation, name="Test")[1])


def redeem(api, code, service=T, **more):
    headers = {"Idempotency-Key": more.pop("key")} if "key" in more else None
    return api.post("/redemptions", {"code": code, "service": service, **more}, headers=headers)


def cancel(api, receipt_id, reason="Erreur de saisie"):
    return api.post(f"/redemptions/{receipt_id}/cancel", {"reason": reason})


def typo(code):
    return code[:-1] + ("0" if code[-1] != "0" else "1")


def case_code_malformed(sc, api, settings):
    return api.post("/vouchers/check", {"code": "ABC"})


def case_code_typo(sc, api, settings):
    return api.post("/vouchers/check", {"code": typo(sc.code(1))})


def case_qr_malformed(sc, api, settings):
    return api.post("/vouchers/check", {"code": "PN1.abc"})


def case_qr_unknown_key(sc, api, settings):
    _, code, _, signature = sc.qr(1).split(".")
    return api.post("/vouchers/check", {"code": f"PN1.{code}.inconnue.{signature}"})


def case_qr_bad_signature(sc, api, settings):
    return api.post("/vouchers/check", {"code": sc.qr(1).replace(sc.code(1), sc.code(2))})


def case_unknown_code(sc, api, settings):
    return api.post("/vouchers/check", {"code": "0000000000000"})


def case_not_handed_out(sc, api, settings):
    return redeem(api, sc.code(1, sc.new_booklet(hand_out=False)))


def case_not_yet_valid(sc, api, settings):
    sc.program.valid_from = timezone.localdate() + dt.timedelta(days=3)
    sc.program.save()
    response = redeem(api, sc.code(1))
    assert response.json()["valid_from"] == sc.program.valid_from.isoformat()
    return response


def case_expired(sc, api, settings):
    sc.program.valid_from = timezone.localdate() - dt.timedelta(days=30)
    sc.program.valid_until = timezone.localdate() - dt.timedelta(days=1)
    sc.program.save()
    response = api.post("/vouchers/check", {"code": sc.code(1)})
    assert response.json()["valid_until"] == sc.program.valid_until.isoformat()
    return response


def case_cancelled(sc, api, settings):
    vouchers_cancel(vouchers=[sc.vouchers()[0]], reason="Perdu")
    return redeem(api, sc.code(1))


def case_already_redeemed(sc, api, settings):
    assert redeem(api, sc.code(1)).status_code == 201
    response = redeem(api, sc.code(1))
    body = response.json()
    assert body["redeemed_at"] and body["place"] == sc.site.name and sc.site.name in body["detail"]
    return response


def case_place_not_qualified(sc, api, settings):
    sc.site.status = QualificationStatus.PENDING
    sc.site.save()
    return redeem(api, sc.code(1))


def case_place_suspended(sc, api, settings):
    sc.site.status = QualificationStatus.SUSPENDED
    sc.site.save()
    return api.post("/vouchers/check", {"code": sc.code(1)})


def case_site_required(sc, api, settings):
    two = OrganisationFactory(place=True)
    make_site(two)
    make_site(two)
    return redeem(api_for(two), sc.code(1))


def case_unknown_site(sc, api, settings):
    other = make_site(OrganisationFactory(place=True))
    return redeem(api, sc.code(1), site=other.pk)


def case_outside_territory(sc, api, settings):
    far = OrganisationFactory(place=True)
    make_site(far, commune="75056")  # Paris: outside the Marne
    return redeem(api_for(far), sc.code(1))


def case_service_not_eligible(sc, api, settings):
    return redeem(api, sc.code(1), service=Service.LEISURE)


def case_invalid_count(sc, api, settings):
    return redeem(api, sc.code(1), count=0)


def case_too_many_vouchers(sc, api, settings):
    response = redeem(api, sc.code(1), service=Service.ADMIN_PROCEDURES, count=2)
    assert response.json()["max_vouchers"] == 1
    return response


def case_not_enough_vouchers(sc, api, settings):
    for position in range(1, 10):
        assert redeem(api, sc.code(position), service=Service.ADMIN_PROCEDURES).status_code == 201
    response = api.post("/vouchers/check", {"code": sc.code(10), "service": T, "count": 2})
    assert response.json()["left"] == 1
    return response


def case_rate_limited(sc, api, settings):
    settings.PASSNUM_CODE_CHECK_LIMITS = {"who": (3, 900), "org": (100, 900), "ip": (100, 900)}
    for _ in range(3):
        problem_of(api.post("/vouchers/check", {"code": "0000000000000"}), 404, "unknown_code")
    response = redeem(api, sc.code(1))  # even a good code
    assert 0 < response.json()["retry_after"] <= 900
    assert response["Retry-After"] == str(response.json()["retry_after"])
    return response


def case_idempotency_key_reused(sc, api, settings):
    assert redeem(api, sc.code(1), key="cle-1").status_code == 201
    return redeem(api, sc.code(2), key="cle-1")


def case_reason_required(sc, api, settings):
    receipt_id = redeem(api, sc.code(1)).json()["id"]
    return cancel(api, receipt_id, reason="   ")


def case_redemption_already_undone(sc, api, settings):
    receipt_id = redeem(api, sc.code(1)).json()["id"]
    assert cancel(api, receipt_id).status_code == 200
    return cancel(api, receipt_id)


def case_undo_window_closed(sc, api, settings):
    receipt_id = redeem(api, sc.code(1)).json()["id"]
    Receipt.objects.filter(pk=receipt_id).update(redeemed_at=timezone.now() - dt.timedelta(hours=25))
    return cancel(api, receipt_id)


def case_redemption_claimed(sc, api, settings):
    receipt_id = redeem(api, sc.code(1)).json()["id"]
    settle_all()
    return cancel(api, receipt_id)


CASES = {name.removeprefix("case_"): fn for name, fn in globals().copy().items() if name.startswith("case_")}


def test_every_refusal_has_a_case():
    assert set(CASES) == set(REFUSALS) - UNREACHABLE


@pytest.mark.parametrize("code", sorted(CASES))
def test_refusal_through_the_api(code, sc, place_api, settings):
    body = problem_of(CASES[code](sc, place_api, settings), REFUSALS[code], code)
    assert sc.code(1) not in body["detail"]  # the code tried is never echoed back
