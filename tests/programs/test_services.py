import dataclasses
import datetime as dt

import pytest

from passnum.common.errors import DomainError
from passnum.geo.enums import TerritoryLevel
from passnum.journal.models import JournalEntry
from passnum.programs.models import Program, ProgramFunder
from passnum.programs.selectors import program_covers_commune, program_list_for
from passnum.programs.services import FunderShare, ProgramData, program_create, program_update
from passnum.settlement.ledger import account_balances
from passnum.settlement.models import LedgerTransaction
from passnum.settlement.verify import ledger_verify
from passnum.vouchers.services import booklets_issue
from tests.factories import OrganisationFactory

pytestmark = pytest.mark.django_db


def data(funder, cofunder, **overrides) -> ProgramData:
    base = ProgramData(
        name="Pass numérique de la Marne",
        valid_from=dt.date(2026, 1, 1),
        valid_until=dt.date(2026, 12, 31),
        funders=[
            FunderShare(funder=funder, share_bps=6000, budget_cents=600_000),
            FunderShare(funder=cofunder, share_bps=4000, budget_cents=400_000),
        ],
        territory=[(TerritoryLevel.DEPARTEMENT, "51"), (TerritoryLevel.COMMUNE, "60057")],
        eligible_services=["outils_du_quotidien"],
    )
    return dataclasses.replace(base, **overrides)


def test_create_co_funded_program(funder, cofunder):
    program = program_create(owner=funder, actor=None, data=data(funder, cofunder))
    assert program.slug == "pass-numerique-de-la-marne"
    assert [(pf.funder, pf.share_bps) for pf in program.funders.all()] == [(funder, 6000), (cofunder, 4000)]
    assert JournalEntry.objects.filter(action="program.create", object_id=str(program.id)).exists()
    assert ledger_verify() == []
    assert list(program_list_for(organisation=cofunder)) == [program]
    assert list(program_list_for(organisation=OrganisationFactory(funder=True))) == []


def test_territory_covers_communes(funder, cofunder):
    program = program_create(owner=funder, actor=None, data=data(funder, cofunder))
    assert program_covers_commune(program=program, commune_code="51454")  # Reims, in the Marne
    assert program_covers_commune(program=program, commune_code="60057")  # Beauvais, named
    assert not program_covers_commune(program=program, commune_code="60001")
    assert not program_covers_commune(program=program, commune_code="99999")


def test_territory_query_is_one_query(funder, cofunder, django_assert_num_queries):
    program = program_create(owner=funder, actor=None, data=data(funder, cofunder))
    with django_assert_num_queries(1):
        program_covers_commune(program=program, commune_code="51454")


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"name": "  "}, "name_required"),
        ({"face_value_cents": 0}, "invalid_face_value"),
        ({"face_value_cents": -1000}, "invalid_face_value"),
        ({"face_value_cents": 10_000_001}, "invalid_face_value"),
        ({"vouchers_per_booklet": 0}, "invalid_vouchers_per_booklet"),
        ({"vouchers_per_booklet": 1000}, "invalid_vouchers_per_booklet"),
        ({"valid_until": dt.date(2025, 12, 31)}, "dates_out_of_order"),
        ({"grace_days": -1}, "invalid_grace_days"),
        ({"grace_days": 5000}, "invalid_grace_days"),
        ({"eligible_services": []}, "services_required"),
        ({"eligible_services": ["cuisine"]}, "unknown_service"),
        ({"target_publics": ["martiens"]}, "unknown_public"),
        ({"territory": []}, "territory_required"),
        ({"territory": [(TerritoryLevel.COMMUNE, "99999")]}, "unknown_insee_code"),
        ({"territory": [(TerritoryLevel.DEPARTEMENT, "00")]}, "unknown_insee_code"),
        ({"territory": [(TerritoryLevel.EPCI, "123456789")]}, "unknown_insee_code"),
        ({"territory": [("planete", "3")]}, "unknown_territory_level"),
    ],
)
def test_create_refuses_bad_input_and_saves_nothing(funder, cofunder, overrides, code):
    tx_before = LedgerTransaction.objects.count()
    with pytest.raises(DomainError) as exc:
        program_create(owner=funder, actor=None, data=data(funder, cofunder, **overrides))
    assert exc.value.code == code
    assert exc.value.message  # a French sentence for people
    assert not Program.objects.exists()
    assert LedgerTransaction.objects.count() == tx_before


def test_unknown_insee_code_message_names_the_code(funder, cofunder):
    with pytest.raises(DomainError) as exc:
        program_create(
            owner=funder,
            actor=None,
            data=data(funder, cofunder, territory=[(TerritoryLevel.COMMUNE, "99999")]),
        )
    assert exc.value.message == "Code commune inconnu : 99999."


@pytest.mark.parametrize(
    ("shares", "code"),
    [
        ([6000, 3000], "shares_not_100"),
        ([6000, 5000], "shares_not_100"),
        ([10_000, 0], "invalid_share"),
        ([11_000, -1000], "invalid_share"),
    ],
)
def test_shares_must_sum_to_100(funder, cofunder, shares, code):
    funders = [
        FunderShare(funder=funder, share_bps=shares[0], budget_cents=1000),
        FunderShare(funder=cofunder, share_bps=shares[1], budget_cents=1000),
    ]
    with pytest.raises(DomainError) as exc:
        program_create(owner=funder, actor=None, data=data(funder, cofunder, funders=funders))
    assert exc.value.code == code
    assert not Program.objects.exists()


def test_shares_message_is_french(funder, cofunder):
    funders = [
        FunderShare(funder=funder, share_bps=6000, budget_cents=1000),
        FunderShare(funder=cofunder, share_bps=3000, budget_cents=1000),
    ]
    with pytest.raises(DomainError) as exc:
        program_create(owner=funder, actor=None, data=data(funder, cofunder, funders=funders))
    assert exc.value.message == "Les parts des financeurs doivent faire exactement 100 % (actuellement 90,00 %)."


@pytest.mark.parametrize("budget", [-1, 10**13])
def test_absurd_budgets_refused(funder, cofunder, budget):
    funders = [FunderShare(funder=funder, share_bps=10_000, budget_cents=budget)]
    with pytest.raises(DomainError) as exc:
        program_create(owner=funder, actor=None, data=data(funder, cofunder, funders=funders))
    assert exc.value.code == "invalid_budget"


def test_funder_rules(funder, cofunder):
    distributor = OrganisationFactory(distributor=True)
    cases = [
        ([], "funders_required"),
        ([FunderShare(funder=funder, share_bps=5000, budget_cents=1)] * 2, "duplicate_funder"),
        ([FunderShare(funder=cofunder, share_bps=10_000, budget_cents=1)], "owner_not_funder"),
        (
            [
                FunderShare(funder=funder, share_bps=5000, budget_cents=1),
                FunderShare(funder=distributor, share_bps=5000, budget_cents=1),
            ],
            "not_a_funder",
        ),
    ]
    for funders, code in cases:
        with pytest.raises(DomainError) as exc:
            program_create(owner=funder, actor=None, data=data(funder, cofunder, funders=funders))
        assert exc.value.code == code


def test_update_budgets_moves_the_ledger(funder, cofunder):
    program = program_create(owner=funder, actor=None, data=data(funder, cofunder))
    new = data(
        funder,
        cofunder,
        funders=[
            FunderShare(funder=funder, share_bps=6000, budget_cents=900_000),
            FunderShare(funder=cofunder, share_bps=4000, budget_cents=400_000),
        ],
    )
    program_update(program=program, organisation=funder, actor=None, data=new)
    assert account_balances()[f"budget:p{program.id}:f{funder.id}"] == 900_000
    assert ledger_verify() == []


def test_update_after_issuance_freezes_shares_and_face_value(funder, cofunder):
    program = program_create(owner=funder, actor=None, data=data(funder, cofunder))
    booklets_issue(program=program, count=10)  # commits 60 000 + 40 000
    with pytest.raises(DomainError) as exc:
        program_update(
            program=program,
            organisation=funder,
            actor=None,
            data=data(funder, cofunder, face_value_cents=500),
        )
    assert exc.value.code == "program_frozen"
    shares = [
        FunderShare(funder=funder, share_bps=5000, budget_cents=600_000),
        FunderShare(funder=cofunder, share_bps=5000, budget_cents=400_000),
    ]
    with pytest.raises(DomainError) as exc:
        program_update(program=program, organisation=funder, actor=None, data=data(funder, cofunder, funders=shares))
    assert exc.value.code == "program_frozen"
    below = [
        FunderShare(funder=funder, share_bps=6000, budget_cents=50_000),
        FunderShare(funder=cofunder, share_bps=4000, budget_cents=400_000),
    ]
    with pytest.raises(DomainError) as exc:
        program_update(program=program, organisation=funder, actor=None, data=data(funder, cofunder, funders=below))
    assert exc.value.code == "budget_below_committed"
    assert ProgramFunder.objects.get(program=program, funder=funder).budget_cents == 600_000
    assert ledger_verify() == []
