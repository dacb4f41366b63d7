"""Nudges in Chromium, clicked through as people do it: a funder's admin finds stock sleeping at a distributor and
reallocates it; a distributor's agent sees the booklets handed out but unused; a person stops reminders from the
wallet page on a phone. axe-core on every page at desktop width and 320 px (`assert_accessible`), and at 360 px."""

import datetime as dt
import re

import pytest
from django.core import mail
from django.core.cache import cache
from django.utils import timezone

from passnum.common import sms
from passnum.nudges.services import nudges_send
from passnum.vouchers import signing
from passnum.vouchers.models import Booklet, DigitalPass
from tests.browser.conftest import (
    TIMEOUT_MS,
    assert_accessible,
    assert_no_axe_violations,
    assert_no_horizontal_scroll,
    chromium_missing,
    in_ci,
)
from tests.browser.conftest import login as log_in
from tests.desk.scenario import build
from tests.factories import OrganisationFactory, member_of
from tests.nudges.world import give_pass, stock

if chromium_missing() and not in_ci():
    pytest.skip(f"Tests de navigateur ignorés : {chromium_missing()}", allow_module_level=True)

from playwright.sync_api import expect  # noqa: E402 — only once Playwright is known to be there

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]

PHONE = {"width": 360, "height": 740}


@pytest.fixture(autouse=True)
def _setup(settings, tmp_path, live_server):
    settings.PASSNUM_SIGNING_KEYS_DIR = tmp_path / "keys"
    settings.PASSNUM_PUBLIC_URL = live_server.url
    settings.SMS_BACKEND = "passnum.common.sms.MemoryBackend"
    settings.PASSNUM_NUDGE_AFTER_DAYS = 21
    settings.PASSNUM_SLEEPING_AFTER_DAYS = 60
    signing.load_keys.cache_clear()
    sms.MemoryBackend.outbox.clear()
    cache.clear()
    yield
    cache.clear()
    sms.MemoryBackend.outbox.clear()
    signing.load_keys.cache_clear()


def _click(page, locator) -> None:
    with page.expect_navigation():
        locator.click()
    page.wait_for_load_state()


def _at_360(page) -> None:
    """axe and reflow at 360 px too (a common phone), then back to desktop."""
    original = page.viewport_size
    page.set_viewport_size(PHONE)
    try:
        page.wait_for_function(f"() => window.innerWidth === {PHONE['width']}")
        assert_no_horizontal_scroll(page)
        assert_no_axe_violations(page)
    finally:
        page.set_viewport_size(original)


def test_funder_reallocates_sleeping_stock(page, live_server):
    sc = build()
    admin = member_of(sc.funder)
    member_of(sc.distributor, email="admin.ccas@exemple.fr")
    target = OrganisationFactory(distributor=True, name="France Services Épernay")
    member_of(target, email="admin.fs@exemple.fr")
    sleeping = stock(sc, 3)
    stock(sc, 1, days_ago=5)  # recent: not sleeping
    log_in(page, live_server, admin.email)
    main = page.locator("main")

    _click(page, main.get_by_role("link", name="Stock dormant (3 carnets)"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Stock dormant chez les prescripteurs")
    table = page.get_by_role("table", name=f"Stock dormant par prescripteur — {sc.program.name}")
    expect(table).to_contain_text("CCAS de Reims")
    expect(table.get_by_role("row").nth(1)).to_contain_text("300,00")
    assert_accessible(page)
    _at_360(page)

    _click(page, main.get_by_role("link", name="Voir et réattribuer les carnets de CCAS de Reims"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Stock dormant de CCAS de Reims")
    expect(page.get_by_role("table", name="3 carnets dormants")).to_be_visible()
    assert_accessible(page)

    # a mistake first: nothing ticked, no distributor chosen
    _click(page, main.get_by_role("button", name="Réattribuer les carnets cochés"))
    expect(page).to_have_title(re.compile(r"^Erreur : "))
    expect(page.locator("#erreurs")).to_contain_text("Aucun carnet n’a été réattribué")
    expect(page.locator("#erreurs")).to_contain_text("Cochez au moins un carnet")
    expect(main.get_by_text("Choisissez le prescripteur destinataire.")).to_be_visible()
    assert_accessible(page)

    main.get_by_label(f"Réattribuer le carnet n° {sleeping[0].number}").check()
    main.get_by_label(f"Réattribuer le carnet n° {sleeping[2].number}").check()
    main.get_by_label("Prescripteur destinataire").select_option(label="France Services Épernay")
    with page.expect_navigation():
        main.get_by_role("button", name="Réattribuer les carnets cochés").click()
    expect(page.get_by_text("2 carnets réattribués à France Services Épernay")).to_be_visible()
    expect(page.get_by_role("heading", level=1)).to_have_text("Stock dormant chez les prescripteurs")
    assert_accessible(page)
    holders = dict(Booklet.objects.filter(pk__in=[b.pk for b in sleeping]).values_list("number", "distributor_id"))
    assert holders == {
        sleeping[0].number: target.pk,
        sleeping[1].number: sc.distributor.pk,
        sleeping[2].number: target.pk,
    }
    assert sorted(m.to[0] for m in mail.outbox) == ["admin.ccas@exemple.fr", "admin.fs@exemple.fr"]

    # the last one, with "all sleeping booklets"
    _click(page, main.get_by_role("link", name="Voir et réattribuer les carnets de CCAS de Reims"))
    main.get_by_label("Prescripteur destinataire").select_option(label="France Services Épernay")
    _click(page, main.get_by_role("button", name="Réattribuer tous les carnets dormants (1)"))
    expect(page.get_by_text("1 carnet réattribué à France Services Épernay")).to_be_visible()
    expect(main.get_by_text("Aucun carnet ne dort chez un prescripteur dans vos dispositifs.")).to_be_visible()
    assert_accessible(page)


def test_distributor_sees_booklets_handed_out_but_unused(page, live_server):
    sc = build()
    agent = member_of(sc.distributor, admin=False)
    reminded = give_pass(sc)
    paper = sc.booklet
    Booklet.objects.filter(pk__in=[reminded.booklet_id, paper.pk]).update(
        handed_out_at=timezone.now() - dt.timedelta(days=25)
    )
    DigitalPass.objects.filter(pk=reminded.pk).update(created_at=timezone.now() - dt.timedelta(days=25))
    assert nudges_send().sent == 1
    give_pass(sc)  # handed out today: not listed yet
    log_in(page, live_server, agent.email)
    main = page.locator("main")

    expect(main.locator("#carnets-non-utilises")).to_contain_text("2 carnets remis il y a au moins 21 jours")
    assert_accessible(page)
    _click(page, main.get_by_role("link", name="voir les carnets non utilisés"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Carnets remis non utilisés")
    table = page.get_by_role("table", name=f"Carnets non utilisés — {sc.program.name}")
    row = table.get_by_role("row").filter(has_text=f"n° {reminded.booklet.number}")
    expect(row).to_contain_text(Booklet.objects.get(pk=reminded.booklet_id).beneficiary.reference)
    expect(row).to_contain_text("Médiathèque Jean Falala, Reims")
    expect(row).to_contain_text("Acceptés")
    expect(row).to_contain_text("Envoyée le")
    expect(table.get_by_role("row").filter(has_text=f"n° {paper.number}")).to_contain_text("Sans pass numérique")
    expect(table.get_by_role("row")).to_have_count(3)  # the header and two booklets
    assert_accessible(page)
    _at_360(page)

    main.get_by_label("Remis depuis au moins (jours)").fill("0")
    _click(page, main.get_by_role("button", name="Afficher"))
    expect(page).to_have_title(re.compile(r"^Erreur : "))
    expect(main.get_by_text("Indiquez au moins 1 jour.")).to_be_visible()
    assert_accessible(page)
    main.get_by_label("Remis depuis au moins (jours)").fill("30")
    _click(page, main.get_by_role("button", name="Afficher"))
    expect(main.locator("#total-non-utilises")).to_contain_text("Aucun carnet remis depuis au moins 30 jours")
    assert_accessible(page)


@pytest.fixture
def phone(browser, live_server):
    """The person's phone: a 360 px wide touch screen, a context of its own."""
    context = browser.new_context(
        locale="fr-FR", viewport=PHONE, is_mobile=True, has_touch=True, device_scale_factor=2, base_url=live_server.url
    )
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    context.close()
    assert not errors, "Erreurs JavaScript :\n" + "\n".join(errors)


def test_person_stops_reminders_from_the_wallet(phone, live_server):
    sc = build()
    dp = give_pass(sc, email="")
    [(_, text)] = sms.MemoryBackend.outbox
    link = re.search(r"https?://\S+/pass/\S+/", text).group(0)

    phone.goto(link)
    expect(phone.get_by_role("heading", name="Rappels")).to_be_visible()
    assert_no_horizontal_scroll(phone)
    assert_accessible(phone)
    _click(phone, phone.get_by_role("link", name="Ne plus recevoir de rappels"))
    expect(phone.get_by_role("heading", level=1)).to_have_text("Ne plus recevoir de rappels")
    assert_no_horizontal_scroll(phone)
    assert_accessible(phone)
    _click(phone, phone.get_by_role("button", name="Confirmer : ne plus recevoir de rappels"))
    expect(phone.get_by_text("C’est noté : vous ne recevrez plus de rappels.")).to_be_visible()
    expect(phone.get_by_role("link", name="Ne plus recevoir de rappels")).to_have_count(0)
    expect(phone.get_by_role("heading", level=1)).to_have_text("Mon pass numérique")
    assert_no_horizontal_scroll(phone)
    assert_accessible(phone)
    dp.refresh_from_db()
    assert dp.reminder_contact == "" and dp.booklet.beneficiary.consent_reminders is False

    # no reminder afterwards, whatever the delay
    DigitalPass.objects.filter(pk=dp.pk).update(created_at=timezone.now() - dt.timedelta(days=30))
    Booklet.objects.filter(pk=dp.booklet_id).update(handed_out_at=timezone.now() - dt.timedelta(days=30))
    sms.MemoryBackend.outbox.clear()
    assert nudges_send().sent == 0 and sms.MemoryBackend.outbox == []
