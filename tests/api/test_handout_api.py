"""Distributors through the API: hand a booklet out (idempotent), with orientation; suggestions of places."""

import pytest
from django.test import Client

from passnum.accounts.apikeys import api_key_create
from passnum.common.standard import Service
from passnum.journal.models import JournalEntry
from passnum.vouchers import codes
from passnum.vouchers.enums import VoucherStatus as S
from passnum.vouchers.models import Beneficiary, Booklet
from passnum.vouchers.services import booklet_allocate, booklets_issue
from tests.api.conftest import Api, problem_of
from tests.desk.scenario import make_site
from tests.factories import OrganisationFactory, ProgramFactory

T = Service.EVERYDAY_TOOLS
pytestmark = pytest.mark.django_db


@pytest.fixture
def booklet(sc):
    return sc.new_booklet(hand_out=False)


def test_hand_out_records_the_person_orients_and_makes_vouchers_usable(sc, distributor_api, booklet):
    person = {
        "first_name": "Odile",
        "consent_first_name": True,
        "birth_year": 1950,
        "commune": "51454",
        "public": "senior",
        "needs": [T],
        "consent_reminders": True,
    }
    response = distributor_api.post(
        "/booklets/hand-out", {"booklet": str(booklet.number), "person": person, "oriented_site": sc.site.pk}
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["booklet"] == {"id": booklet.pk, "number": booklet.number, "program": sc.program.slug}
    assert body["oriented_site"] == {"id": sc.site.pk, "name": sc.site.name}
    assert body["valid_until"] == sc.program.valid_until.isoformat()
    assert body["vouchers"] == [codes.display(v.code) for v in sc.vouchers(booklet)]
    beneficiary = Beneficiary.objects.get(reference=body["beneficiary"]["reference"])
    assert (beneficiary.first_name, beneficiary.birth_year, beneficiary.commune_id) == ("Odile", 1950, "51454")
    assert beneficiary.distributor == sc.distributor and beneficiary.needs == [T]
    assert set(booklet.vouchers.values_list("status", flat=True)) == {S.DISTRIBUTED}
    assert "Odile" not in str(list(JournalEntry.objects.values_list("data", flat=True)))


def test_hand_out_by_a_voucher_code_or_qr(sc, distributor_api, booklet):
    response = distributor_api.post("/booklets/hand-out", {"booklet": sc.qr(4, booklet)})
    assert response.status_code == 201 and response.json()["booklet"]["id"] == booklet.pk
    other = sc.new_booklet(hand_out=False)
    response = distributor_api.post("/booklets/hand-out", {"booklet": codes.display(sc.code(2, other)).lower()})
    assert response.status_code == 201 and response.json()["booklet"]["id"] == other.pk


def test_idempotency_key_replays_the_hand_out_with_200(sc, distributor_api, booklet):
    body = {"booklet": str(booklet.number), "person": {"needs": [T]}}
    first = distributor_api.post("/booklets/hand-out", body, headers={"Idempotency-Key": "remise-1"})
    again = distributor_api.post("/booklets/hand-out", body, headers={"Idempotency-Key": "remise-1"})
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()
    assert Beneficiary.objects.count() == 1
    problem_of(distributor_api.post("/booklets/hand-out", body), 409, "booklet_handed_out")


def test_the_same_idempotency_key_for_another_hand_out_is_refused(sc, distributor_api, booklet):
    body = {"booklet": str(booklet.number), "person": {"needs": [T], "birth_year": 1950}, "oriented_site": sc.site.pk}
    headers = {"Idempotency-Key": "remise-2"}
    assert distributor_api.post("/booklets/hand-out", body, headers=headers).status_code == 201
    # the same booklet for another person, or oriented elsewhere (or nowhere): not a retry
    other_person = {**body, "person": {"needs": [T], "birth_year": 1951}}
    problem_of(distributor_api.post("/booklets/hand-out", other_person, headers=headers), 422, "idempotency_key_reused")
    not_oriented = {**body, "oriented_site": None}
    problem_of(distributor_api.post("/booklets/hand-out", not_oriented, headers=headers), 422, "idempotency_key_reused")
    # another booklet: refused, and it stays in stock
    other = sc.new_booklet(hand_out=False)
    another_booklet = {**body, "booklet": str(other.number)}
    problem_of(
        distributor_api.post("/booklets/hand-out", another_booklet, headers=headers), 422, "idempotency_key_reused"
    )
    assert Booklet.objects.get(pk=other.pk).handed_out_at is None
    assert Beneficiary.objects.count() == 1
    # the very same request still replays
    again = distributor_api.post("/booklets/hand-out", body, headers=headers)
    assert again.status_code == 200 and again.json()["booklet"]["id"] == booklet.pk


def test_a_place_key_cannot_hand_out(sc, place_api, booklet):
    problem_of(place_api.post("/booklets/hand-out", {"booklet": str(booklet.number)}), 403, "forbidden_kind")
    problem_of(place_api.get("/places/suggestions"), 403, "forbidden_kind")
    assert Booklet.objects.get(pk=booklet.pk).handed_out_at is None


@pytest.mark.parametrize(
    ("person", "status", "code"),
    [
        ({"first_name": "Odile"}, 422, "consent_required"),
        ({"birth_year": 1800}, 422, "birth_year_invalid"),
        ({"commune": "99999"}, 422, "commune_unknown"),
        ({"public": "martien"}, 422, "public_invalid"),
        ({"needs": ["jardinage"]}, 422, "need_invalid"),
        ({"age": 70}, 422, "invalid_request"),  # unknown member: refused, not ignored
        ({"birth_year": "mille neuf cent"}, 422, "invalid_request"),
    ],
)
def test_person_refusals(sc, distributor_api, booklet, person, status, code):
    response = distributor_api.post("/booklets/hand-out", {"booklet": str(booklet.number), "person": person})
    problem_of(response, status, code)
    assert Booklet.objects.get(pk=booklet.pk).handed_out_at is None and not Beneficiary.objects.exists()


def test_booklet_refusals(sc, distributor_api, booklet):
    post = distributor_api.post
    problem_of(post("/booklets/hand-out", {"booklet": " "}), 422, "booklet_required")
    problem_of(post("/booklets/hand-out", {"booklet": "ABC"}), 422, "booklet_code_invalid")
    problem_of(post("/booklets/hand-out", {"booklet": "999"}), 404, "booklet_not_in_stock")
    problem_of(post("/booklets/hand-out", {"booklet": "9" * 200}), 404, "booklet_not_in_stock")
    problem_of(post("/booklets/hand-out", {"booklet": "1", "program": "inconnu"}), 422, "unknown_program")
    theirs = OrganisationFactory(distributor=True)
    elsewhere = booklets_issue(program=sc.program, count=1)[0]
    booklet_allocate(booklet=elsewhere, distributor=theirs)
    problem_of(post("/booklets/hand-out", {"booklet": sc.code(1, elsewhere)}), 404, "booklet_not_in_stock")
    far = OrganisationFactory(place=True)
    paris = make_site(far, commune="75056")
    body = {"booklet": str(booklet.number), "oriented_site": paris.pk}
    problem_of(post("/booklets/hand-out", body), 422, "site_not_eligible")
    assert Booklet.objects.get(pk=booklet.pk).handed_out_at is None


def test_two_programs_with_the_same_booklet_number(sc, distributor_api, booklet):
    second = ProgramFactory(owner=sc.funder)
    same = list(booklets_issue(program=second, count=booklet.number))[-1]
    booklet_allocate(booklet=same, distributor=sc.distributor)
    assert same.number == booklet.number
    body = problem_of(
        distributor_api.post("/booklets/hand-out", {"booklet": str(booklet.number)}), 422, "booklet_ambiguous"
    )
    assert body["field"] == "program"
    response = distributor_api.post("/booklets/hand-out", {"booklet": str(same.number), "program": second.slug})
    assert response.status_code == 201 and response.json()["booklet"]["id"] == same.pk


def test_suggestions(sc, distributor_api):
    response = distributor_api.get("/places/suggestions", {"commune": "51454", "needs": [T]})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["program"]["slug"] == sc.program.slug
    assert [s["id"] for s in body["items"]] == [sc.site.pk]
    assert body["items"][0]["commune"] == {"code": "51454", "name": "Reims"} and T in body["items"][0]["services"]
    comma = distributor_api.get("/places/suggestions", {"needs": f"{T},{Service.ADMIN_PROCEDURES}"}).json()
    assert [s["id"] for s in comma["items"]] == [sc.site.pk]
    problem_of(distributor_api.get("/places/suggestions", {"commune": "99999"}), 422, "commune_unknown")
    problem_of(distributor_api.get("/places/suggestions", {"needs": "jardinage"}), 422, "need_invalid")
    problem_of(distributor_api.get("/places/suggestions", {"program": "autre"}), 422, "unknown_program")
    second = ProgramFactory(owner=sc.funder)
    booklet_allocate(booklet=booklets_issue(program=second, count=1)[0], distributor=sc.distributor)
    problem_of(distributor_api.get("/places/suggestions"), 422, "program_required")
    assert distributor_api.get("/places/suggestions", {"program": second.slug}).status_code == 200


def test_a_distributor_without_stock_has_no_program(sc):
    empty = Api(Client(), api_key_create(organisation=OrganisationFactory(distributor=True), name="Vide")[1])
    problem_of(empty.get("/places/suggestions"), 422, "unknown_program")
