"""The desk's hand-written statements (vouchers.redemption: sites, voucher with territory and catalogue, lock,
writes) say what the ORM queries they replace said: the same territory test at every level, the same refusals
when a site has no catalogue or no commune, the same rows written for k vouchers."""

import pytest
from django.db import connection

from passnum.common.standard import Service
from passnum.geo.models import Commune
from passnum.places.models import SiteService
from passnum.programs.models import Program, ProgramTerritory
from passnum.programs.selectors import program_covers_commune, program_covers_commune_sql
from passnum.vouchers.enums import VoucherStatus as S
from passnum.vouchers.models import Receipt, Redemption, VoucherStatusLog
from passnum.vouchers.redemption import Desk, Refusal, redeem, site_for, voucher_check
from tests.desk.scenario import build, make_site
from tests.factories import OrganisationFactory

T = Service.EVERYDAY_TOOLS
pytestmark = pytest.mark.django_db


@pytest.fixture
def sc():
    return build()


def _covers_sql(program_id: int, commune_code: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {program_covers_commune_sql('p.id')} FROM {Program._meta.db_table} p WHERE p.id = %s",
            [commune_code, program_id],
        )
        return bool(cursor.fetchone()[0])


def test_the_territory_expression_agrees_with_program_covers_commune_at_every_level(sc):
    reims = Commune.objects.get(code="51454")
    samples = list(Commune.objects.exclude(departement_id=reims.departement_id).order_by("code")[:20])
    samples += list(Commune.objects.filter(departement_id=reims.departement_id).order_by("code")[:20])
    samples += list(Commune.objects.filter(parent__isnull=False).order_by("code")[:5])
    items = [("commune", reims.code), ("departement", reims.departement_id), ("region", reims.region_id)]
    if reims.epci_id:
        items.append(("epci", reims.epci_id))
    if samples[-1].parent_id:
        items.append(("commune", samples[-1].parent_id))  # a delegated commune, through its parent
    for level, code in items:
        ProgramTerritory.objects.filter(program=sc.program).delete()
        ProgramTerritory.objects.create(program=sc.program, level=level, code=code)
        for commune in [reims, *samples]:
            expected = program_covers_commune(program=sc.program, commune_code=commune.code)
            assert _covers_sql(sc.program.pk, commune.code) == expected, (level, code, commune.code)
    assert _covers_sql(sc.program.pk, "00000") is False


def test_a_site_without_catalogue_or_commune_is_refused_as_before(sc):
    desk = Desk(place=sc.place, ip="192.0.2.9")
    SiteService.objects.filter(site=sc.site).delete()
    with pytest.raises(Refusal) as exc:
        voucher_check(raw_code=sc.code(1), desk=desk)
    assert exc.value.code == "service_not_eligible"
    sc.site.commune = None
    sc.site.save()
    with pytest.raises(Refusal) as exc:
        redeem(raw_code=sc.code(1), desk=desk, service=T)
    assert exc.value.code == "outside_territory"
    assert Receipt.objects.count() == 0


def test_sites_are_read_with_what_the_desk_shows(sc):
    site = site_for(sc.place)
    assert (site.pk, site.name, site.status, site.commune_id) == (
        sc.site.pk,
        sc.site.name,
        sc.site.status,
        sc.site.commune_id,
    )
    assert site_for(sc.place, str(sc.site.pk)) == sc.site
    for bad in ("abc", "99999999999999999999999", -1):
        with pytest.raises(Refusal) as exc:
            site_for(sc.place, bad)
        assert exc.value.code == "unknown_site"
    other = OrganisationFactory(place=True)
    elsewhere = make_site(other)
    with pytest.raises(Refusal):
        site_for(sc.place, elsewhere.pk)


def test_k_vouchers_write_every_row_once(sc):
    desk = Desk(place=sc.place, user=sc.place_user, ip="192.0.2.9")
    receipt = redeem(raw_code=sc.code(4), desk=desk, service=T, count=2, idempotency_key="k-rows")
    stored = Receipt.objects.get(pk=receipt.pk)
    assert (stored.count, stored.amount_cents, stored.site_id, stored.redeemed_by_id) == (
        2,
        2000,
        sc.site.pk,
        sc.place_user.pk,
    )
    assert (stored.idempotency_key, stored.undone_at, stored.undo_reason, stored.redeemed_at) == (
        "k-rows",
        None,
        "",
        receipt.redeemed_at,
    )
    rows = list(Redemption.objects.filter(receipt=stored).order_by("voucher__position"))
    assert [r.voucher.position for r in rows] == [1, 4]
    assert all(
        (r.place_id, r.service, r.amount_cents, r.redeemed_by_id, r.redeemed_at, r.undone_at)
        == (sc.place.pk, T, 1000, sc.place_user.pk, receipt.redeemed_at, None)
        for r in rows
    )
    logs = VoucherStatusLog.objects.filter(voucher__in=[r.voucher_id for r in rows], to_status=S.REDEEMED)
    assert (
        sorted((log.from_status, log.actor_id, log.organisation_id) for log in logs)
        == [(S.DISTRIBUTED, sc.place_user.pk, sc.place.pk)] * 2
    )
    assert {r.voucher.status for r in rows} == {S.REDEEMED}
    assert all(r.voucher.redeemed_at == receipt.redeemed_at for r in rows)
    assert receipt.voucher_codes == [r.voucher.code for r in rows]
    again = redeem(raw_code=sc.code(4), desk=desk, service=T, count=2, idempotency_key="k-rows")
    assert again.pk == receipt.pk and again.replayed
