import tracemalloc

import pytest
from django.urls import reverse

from passnum.settlement.verify import ledger_verify
from passnum.vouchers.models import Booklet
from passnum.vouchers.pdf import CHUNK, STREAM_CHUNK_BYTES
from passnum.vouchers.services import booklets_issue
from passnum.vouchers.stock import booklets_allocate, stock_of
from tests.factories import OrganisationFactory, ProgramFactory, member_of

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


def test_lead_funder_downloads_a_range_as_a_streamed_pdf(client, program, funder, cofunder):
    booklets_issue(program=program, count=3)
    client.force_login(member_of(funder))
    url = reverse("www:program_booklets_pdf", args=[program.slug])
    response = client.get(url, {"pdf-first": "1", "pdf-last": "2", "pdf-layout": "desk"})
    assert response.status_code == 200 and response.streaming
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"] == f'attachment; filename="carnets-{program.slug}-1-2-desk.pdf"'
    assert response["Cache-Control"] == "private, no-store"
    data = b"".join(response.streaming_content)
    assert data.startswith(b"%PDF-1.4") and data.endswith(b"%%EOF\n")
    assert data.count(b"/Type /Page ") == 4  # per booklet, a cover page and a page of 10 coupons
    response = client.get(url, {"pdf-first": "1", "pdf-last": "3", "pdf-layout": "print"})
    assert response["Content-Disposition"] == f'attachment; filename="carnets-{program.slug}-1-3-print.pdf"'
    assert b"".join(response.streaming_content).count(b"/Type /Page ") == 4  # 3 × 12 cards, 10 per sheet

    for params, message in [
        ({"pdf-first": "4", "pdf-last": "9", "pdf-layout": "print"}, "Aucun carnet émis dans cette plage."),
        ({"pdf-first": "3", "pdf-last": "1", "pdf-layout": "print"}, "La plage de numéros est à l’envers."),
        ({"pdf-first": "1", "pdf-last": "5001", "pdf-layout": "print"}, "Au plus 5 000 carnets par fichier"),
    ]:
        response = client.get(url, params, follow=True)
        assert response.redirect_chain == [(reverse("www:program_booklets", args=[program.slug]), 302)]
        assert message in response.content.decode()

    client.force_login(member_of(cofunder))
    assert client.get(url, {"pdf-first": "1", "pdf-last": "1", "pdf-layout": "desk"}).status_code == 403


def test_range_pdf_memory_does_not_grow_with_the_range(client, funder):
    program = ProgramFactory(owner=funder, vouchers_per_booklet=1)
    booklets_issue(program=program, count=2 * CHUNK)
    client.force_login(member_of(funder))
    url = reverse("www:program_booklets_pdf", args=[program.slug])

    def download(last):
        """Peak memory while the response is produced and sent (each chunk dropped, as a server does), and the
        sizes of the chunks."""
        sizes = []
        tracemalloc.start()
        try:
            response = client.get(url, {"pdf-first": "1", "pdf-last": str(last), "pdf-layout": "desk"})
            for chunk in response.streaming_content:
                sizes.append(len(chunk))
            return tracemalloc.get_traced_memory()[1], sizes
        finally:
            tracemalloc.stop()

    download(1)  # warm-up: first-use caches (fonts, URL resolver, keys)
    (small, _), (large, sizes) = download(CHUNK), download(2 * CHUNK)
    assert len(sizes) > 5 and max(sizes) < 2 * STREAM_CHUNK_BYTES  # sent as it is drawn, not as one body
    # The whole PDF here is about sum(sizes) bytes: ×2 booklets would add that much if it were kept in memory.
    assert large < small + 200_000 < small + sum(sizes) // 2
