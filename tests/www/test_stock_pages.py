import pytest
from django.urls import reverse

from passnum.settlement.verify import ledger_verify
from passnum.vouchers.models import Booklet
from passnum.vouchers.services import booklets_issue
from passnum.vouchers.stock import booklets_allocate, stock_of
from tests.factories import OrganisationFactory, member_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def ccas():
    return OrganisationFactory(distributor=True, name="CCAS de Reims")


def test_lead_funder_issues_allocates_and_cancels(client, program, funder, ccas):
    client.force_login(member_of(funder))
    url = reverse("www:program_booklets", args=[program.slug])
    assert client.get(url).status_code == 200
    response = client.post(url, {"action": "issue", "emission-count": "5"})
    assert response.status_code == 302
    assert Booklet.objects.filter(program=program).count() == 5
    response = client.post(
        url,
        {"action": "allocate", "attribution-distributor": ccas.id, "attribution-first": "2", "attribution-last": "3"},
    )
    assert response.status_code == 302
    assert sorted(stock_of(distributor=ccas).values_list("number", flat=True)) == [2, 3]
    response = client.post(
        url, {"action": "allocate", "attribution-distributor": ccas.id, "attribution-quantity": "99"}
    )
    assert "Stock insuffisant" in response.content.decode()
    response = client.post(url, {"action": "cancel", "annulation-number": "1", "annulation-reason": "stolen"})
    assert response.status_code == 302
    assert set(Booklet.objects.get(program=program, number=1).vouchers.values_list("status", flat=True)) == {
        "cancelled"
    }
    response = client.post(url, {"action": "cancel", "annulation-number": "77", "annulation-reason": "lost"})
    assert "Ce carnet n’existe pas" in response.content.decode()
    response = client.post(url, {"action": "issue", "emission-count": "0"})
    assert response.status_code == 200 and Booklet.objects.filter(program=program).count() == 5
    assert ledger_verify() == []


def test_cofunder_sees_but_cannot_act_and_outsider_gets_404(client, program, cofunder):
    client.force_login(member_of(cofunder))
    url = reverse("www:program_booklets", args=[program.slug])
    page = client.get(url).content.decode()
    assert "Seul le financeur pilote" in page
    assert client.post(url, {"action": "issue", "emission-count": "1"}).status_code == 403
    outsider = OrganisationFactory(funder=True)
    client.force_login(member_of(outsider))
    assert client.get(url).status_code == 404
    assert client.post(url, {"action": "issue", "emission-count": "1"}).status_code == 404
    assert not Booklet.objects.exists()


def test_distributor_transfers_and_returns(client, program, funder, ccas):
    other = OrganisationFactory(distributor=True, name="France Services")
    booklets_issue(program=program, count=3)
    mine = booklets_allocate(program=program, distributor=ccas, quantity=3, organisation=funder)
    client.force_login(member_of(ccas))
    page = client.get(reverse("www:distributor_stock")).content.decode()
    assert "3 carnets prêts à remettre" in page
    move = reverse("www:distributor_stock_move")
    response = client.post(move, {"booklets": [str(mine[0].pk)], "target": other.id, "action": "transfer"})
    assert response.status_code == 302
    assert stock_of(distributor=other).count() == 1
    client.post(move, {"booklets": [str(mine[1].pk)], "action": "return"})
    assert stock_of(distributor=ccas).count() == 1
    # a booklet of someone else's stock is not a valid choice
    client.post(move, {"booklets": [str(mine[0].pk)], "action": "return"})
    assert stock_of(distributor=other).count() == 1


def test_distributor_member_cannot_move_and_funder_has_no_stock_page(client, program, funder, ccas):
    booklets_issue(program=program, count=1)
    mine = booklets_allocate(program=program, distributor=ccas, quantity=1, organisation=funder)
    client.force_login(member_of(ccas, admin=False))
    response = client.post(reverse("www:distributor_stock_move"), {"booklets": [str(mine[0].pk)], "action": "return"})
    assert response.status_code == 403
    client.force_login(member_of(funder))
    assert client.get(reverse("www:distributor_stock")).status_code == 403
