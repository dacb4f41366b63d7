"""The nudge pages over HTTP: who may see them (outsiders get 403/404 and see nothing of others), what they show
(no personal data beyond the booklet and the pseudonymous reference), the reallocation form and its refusals,
and the person's opt-out on the wallet page (POST with CSRF)."""

import datetime as dt
import re

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from passnum.common import sms
from passnum.common.standard import Service
from passnum.journal.models import JournalEntry
from passnum.nudges.models import Nudge
from passnum.nudges.services import nudges_send
from passnum.vouchers import signing
from passnum.vouchers.models import Booklet, DigitalPass
from passnum.vouchers.redemption import Desk, redeem
from passnum.vouchers.services import booklet_hand_out
from tests.desk.scenario import build
from tests.factories import OrganisationFactory, ProgramFactory, member_of
from tests.nudges.world import EMAIL, days_later, give_pass, stock

pytestmark = pytest.mark.django_db
UNUSED = reverse("www:nudges_unused")
SLEEPING = reverse("www:nudges_sleeping")


@pytest.fixture(autouse=True)
def _setup(settings, tmp_path):
    settings.PASSNUM_SIGNING_KEYS_DIR = tmp_path / "keys"
    settings.SMS_BACKEND = "passnum.common.sms.MemoryBackend"
    settings.PASSNUM_NUDGE_AFTER_DAYS = 21
    settings.PASSNUM_SLEEPING_AFTER_DAYS = 60
    signing.load_keys.cache_clear()
    sms.MemoryBackend.outbox.clear()
    yield
    signing.load_keys.cache_clear()


def _handed_out_days_ago(booklet, days):
    Booklet.objects.filter(pk=booklet.pk).update(handed_out_at=timezone.now() - dt.timedelta(days=days))


def _as(client, user):
    client.force_login(user)
    return client


# --- distributors: booklets handed out, unused ----------------------------------------------------------------


@pytest.fixture
def handed():
    """The CCAS de Reims: sc.booklet on paper (30 days ago), a digital pass with reminders (30 days ago, reminded),
    one without consent (30 days ago), one used and one recent."""
    sc = build()
    sc.with_reminders = give_pass(sc)
    sc.without_consent = give_pass(sc, consent=False, site=False)
    sc.recent = give_pass(sc)
    for booklet in (sc.booklet, sc.with_reminders.booklet, sc.without_consent.booklet):
        _handed_out_days_ago(booklet, 30)
    DigitalPass.objects.filter(pk__in=[sc.with_reminders.pk, sc.without_consent.pk]).update(
        created_at=timezone.now() - dt.timedelta(days=30)
    )
    sc.used = give_pass(sc)
    _handed_out_days_ago(sc.used.booklet, 30)
    redeem(raw_code=sc.used.booklet.vouchers.first().code, desk=Desk(place=sc.place), service=Service.EVERYDAY_TOOLS)
    nudges_send(today=timezone.localdate())
    sc.agent = member_of(sc.distributor, admin=False)
    return sc


def _rows(html: str) -> list[str]:
    return [
        re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", row)).strip() for row in re.findall(r"<tr>(.*?)</tr>", html, re.S)
    ]


def test_distributor_sees_its_unused_booklets(client, handed):
    sc = handed
    assert Nudge.objects.filter(booklet=sc.with_reminders.booklet).exists()
    response = _as(client, sc.agent).get(UNUSED)
    assert response.status_code == 200
    html = response.content.decode()
    rows = [r for r in _rows(html) if r.startswith("n°")]
    numbers = sorted(int(r.split()[1]) for r in rows)
    assert numbers == sorted([sc.booklet.number, sc.with_reminders.booklet.number, sc.without_consent.booklet.number])
    reminded = next(r for r in rows if r.startswith(f"n° {sc.with_reminders.booklet.number} "))
    assert sc.with_reminders.booklet.beneficiary.reference in reminded
    assert "Médiathèque Jean Falala, Reims" in reminded and "Acceptés" in reminded and "Envoyée le" in reminded
    assert "30 jours" in reminded
    refused = next(r for r in rows if r.startswith(f"n° {sc.without_consent.booklet.number} "))
    assert "Refusés" in refused and "Aucun" in refused and refused.endswith("Non")
    paper = next(r for r in rows if r.startswith(f"n° {sc.booklet.number} "))
    assert "Sans pass numérique" in paper
    assert "3 carnets non utilisés" in html and sc.program.name in html
    assert "exemple.fr" not in html and "06 12" not in html  # no contact, even masked


def test_the_delay_can_be_changed_and_a_bad_one_is_reported(client, handed):
    sc = handed
    client = _as(client, sc.agent)
    html = client.get(UNUSED, {"jours": "1"}).content.decode()
    assert "3 carnets non utilisés" in html
    html = client.get(UNUSED, {"jours": "31"}).content.decode()
    assert "Aucun carnet remis depuis au moins 31 jours" in html
    response = client.get(UNUSED, {"jours": "zéro"})
    assert response.status_code == 200
    html = response.content.decode()
    assert "<title>Erreur : " in html and "Indiquez un nombre de jours." in html and "3 carnets non utilisés" in html


def test_another_distributor_sees_none_of_it(client, handed):
    other = OrganisationFactory(distributor=True, name="Mission locale")
    html = _as(client, member_of(other)).get(UNUSED).content.decode()
    assert "Aucun carnet remis" in html
    assert handed.with_reminders.booklet.beneficiary.reference not in html and "Médiathèque" not in html


@pytest.mark.parametrize("kind", ["funder", "place", "operator"])
def test_other_kinds_are_refused_the_distributor_page(client, handed, kind):
    org = OrganisationFactory(**{kind: True})
    response = _as(client, member_of(org)).get(UNUSED)
    assert response.status_code == 403
    assert handed.with_reminders.booklet.beneficiary.reference not in response.content.decode()


def test_anonymous_visitors_are_sent_to_log_in(client):
    assert client.get(UNUSED).status_code == 302
    assert client.get(SLEEPING).status_code == 302


def test_distributor_home_shows_the_count_and_link(client, handed):
    html = _as(client, handed.agent).get(reverse("www:home")).content.decode()
    assert "3 carnets remis il y a au moins 21 jours sans aucun chèque utilisé" in html
    assert UNUSED in html


# --- funders: sleeping stock, reallocation -----------------------------------------------------------------


@pytest.fixture
def sleepy():
    sc = build()
    sc.lead_admin = member_of(sc.funder)
    sc.cofunder_admin = member_of(sc.cofunder)
    member_of(sc.distributor, email="admin.ccas@exemple.fr")
    sc.target = OrganisationFactory(distributor=True, name="France Services Épernay")
    member_of(sc.target, email="admin.fs@exemple.fr")
    sc.sleeping = stock(sc, 3)
    sc.detail = reverse("www:nudges_sleeping_detail", args=[sc.program.slug, sc.distributor.pk])
    return sc


def test_lead_admin_sees_the_sleeping_stock_and_reallocates_chosen_booklets(client, sleepy):
    sc = sleepy
    client = _as(client, sc.lead_admin)
    html = client.get(SLEEPING).content.decode()
    row = next(r for r in _rows(html) if r.startswith("CCAS de Reims"))
    assert row.startswith("CCAS de Reims 3 30 300,00")
    assert "Voir et réattribuer" in row and sc.detail in html
    html = client.get(sc.detail).content.decode()
    assert "Réattribuer le carnet n° " in html and "France Services Épernay" in html
    assert "3 carnets dormants" in html
    with_callbacks = client.post(
        sc.detail,
        {"booklets": [sc.sleeping[0].pk, sc.sleeping[2].pk], "target": sc.target.pk, "action": "selected"},
    )
    assert with_callbacks.status_code == 302 and with_callbacks.url == SLEEPING
    holders = dict(Booklet.objects.filter(pk__in=[b.pk for b in sc.sleeping]).values_list("pk", "distributor_id"))
    assert holders == {
        sc.sleeping[0].pk: sc.target.pk,
        sc.sleeping[1].pk: sc.distributor.pk,
        sc.sleeping[2].pk: sc.target.pk,
    }
    assert "2 carnets réattribués à France Services Épernay" in client.get(SLEEPING).content.decode()


def test_lead_admin_reallocates_all_sleeping_booklets_and_both_sides_are_told(
    client, sleepy, django_capture_on_commit_callbacks
):
    sc = sleepy
    with django_capture_on_commit_callbacks(execute=True):
        response = _as(client, sc.lead_admin).post(sc.detail, {"target": sc.target.pk, "action": "all"})
    assert response.status_code == 302
    assert not Booklet.objects.filter(distributor=sc.distributor, handed_out_at__isnull=True).exists()
    assert sorted(m.to[0] for m in mail.outbox) == ["admin.ccas@exemple.fr", "admin.fs@exemple.fr"]
    assert JournalEntry.objects.get(action="booklet.reallocate").data["count"] == 3


def test_page_refusals_are_shown_and_change_nothing(client, sleepy):
    sc = sleepy
    client = _as(client, sc.lead_admin)
    response = client.post(sc.detail, {"target": sc.target.pk, "action": "selected"})
    html = response.content.decode()
    assert response.status_code == 200 and "<title>Erreur : " in html
    assert "Aucun carnet n’a été réattribué" in html and "Cochez au moins un carnet" in html
    response = client.post(sc.detail, {"booklets": [sc.sleeping[0].pk], "action": "selected"})
    assert "Choisissez le prescripteur destinataire." in response.content.decode()
    response = client.post(sc.detail, {"booklets": ["x"], "target": sc.target.pk, "action": "selected"})
    assert "Cochez les carnets dans la liste." in response.content.decode()
    booklet_hand_out(booklet=sc.sleeping[1], organisation=sc.distributor)
    response = client.post(
        sc.detail, {"booklets": [b.pk for b in sc.sleeping], "target": sc.target.pk, "action": "selected"}
    )
    html = response.content.decode()
    assert f"Ces carnets ont été remis entre-temps : {sc.sleeping[1].number}." in html
    assert f'value="{sc.sleeping[0].pk}" checked' in html  # the choice is kept
    assert not Booklet.objects.filter(distributor=sc.target).exists()
    assert not JournalEntry.objects.filter(action="booklet.reallocate").exists()


def test_cofunder_sees_read_only_and_may_not_post(client, sleepy):
    sc = sleepy
    client = _as(client, sc.cofunder_admin)
    html = client.get(SLEEPING).content.decode()
    assert "CCAS de Reims" in html and "Voir et réattribuer" not in html
    html = client.get(sc.detail).content.decode()
    assert 'type="checkbox"' not in html and "Seuls les administrateurs du financeur pilote" in html
    response = client.post(sc.detail, {"target": sc.target.pk, "action": "all"})
    assert response.status_code == 403
    assert not Booklet.objects.filter(distributor=sc.target).exists()


def test_lead_funders_plain_member_may_not_post(client, sleepy):
    sc = sleepy
    response = _as(client, member_of(sc.funder, admin=False)).post(sc.detail, {"target": sc.target.pk, "action": "all"})
    assert response.status_code == 403


def test_other_funders_see_nothing_and_get_404(client, sleepy):
    sc = sleepy
    stranger = OrganisationFactory(funder=True, name="Région Grand Est")
    ProgramFactory(owner=stranger)
    client = _as(client, member_of(stranger))
    html = client.get(SLEEPING).content.decode()
    assert "Aucun carnet ne dort" in html and "CCAS de Reims" not in html and sc.program.name not in html
    assert client.get(sc.detail).status_code == 404
    assert client.post(sc.detail, {"target": sc.target.pk, "action": "all"}).status_code == 404
    assert not Booklet.objects.filter(distributor=sc.target).exists()


def test_detail_of_a_non_distributor_or_unknown_program_is_404(client, sleepy):
    sc = sleepy
    client = _as(client, sc.lead_admin)
    assert client.get(reverse("www:nudges_sleeping_detail", args=[sc.program.slug, sc.place.pk])).status_code == 404
    assert client.get(reverse("www:nudges_sleeping_detail", args=["inconnu", sc.distributor.pk])).status_code == 404


@pytest.mark.parametrize("kind", ["distributor", "place", "operator"])
def test_other_kinds_are_refused_the_funder_pages(client, sleepy, kind):
    client = _as(client, member_of(OrganisationFactory(**{kind: True})))
    assert client.get(SLEEPING).status_code == 403
    assert client.get(sleepy.detail).status_code == 403
    assert client.post(sleepy.detail, {"target": sleepy.target.pk, "action": "all"}).status_code == 403


# --- the person: opt-out on the wallet page ------------------------------------------------------------------


def _pass_with_token(sc, **kwargs):
    """give_pass, and the token of its link (read from the SMS the person received)."""
    sms.MemoryBackend.outbox.clear()
    dp = give_pass(sc, **kwargs)
    token = re.search(r"/pass/([A-Za-z0-9_\-]+)/", sms.MemoryBackend.outbox[-1][1]).group(1)
    return dp, reverse("www:wallet", args=[token])


def test_wallet_opt_out_with_csrf(sleepy):
    sc = sleepy
    dp, url = _pass_with_token(sc)
    client = Client(enforce_csrf_checks=True)
    html = client.get(url).content.decode()
    assert "Ne plus recevoir de rappels" in html
    stop = url + "ne-plus-recevoir-de-rappels/"
    assert stop == reverse("www:nudges_wallet_opt_out", args=[url.split("/")[2]])
    assert f'href="{stop}"' in html
    confirm = client.get(stop)
    assert confirm.status_code == 200 and confirm["Referrer-Policy"] == "same-origin"
    assert confirm["Cache-Control"] == "no-store" and "noindex" in confirm["X-Robots-Tag"]
    html = confirm.content.decode()
    assert "Confirmer : ne plus recevoir de rappels" in html
    assert client.post(stop).status_code == 403  # no CSRF token
    dp.refresh_from_db()
    assert dp.reminder_contact
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html).group(1)
    response = client.post(stop, {"csrfmiddlewaretoken": csrf})
    assert response.status_code == 302 and response.url == url
    assert response["Referrer-Policy"] == "no-referrer" and response["Cache-Control"] == "no-store"
    dp.refresh_from_db()
    assert dp.reminder_contact == "" and dp.booklet.beneficiary.consent_reminders is False
    assert JournalEntry.objects.filter(action="reminders.opt_out", object_id=str(dp.pk)).count() == 1
    html = client.get(url).content.decode()
    assert "vous ne recevrez plus de rappels" in html and "Ne plus recevoir de rappels" not in html
    assert "il n’y a rien à faire" in client.get(stop).content.decode()
    sms.MemoryBackend.outbox.clear()
    mail.outbox.clear()
    DigitalPass.objects.filter(pk=dp.pk).update(created_at=timezone.now() - dt.timedelta(days=30))
    _handed_out_days_ago(dp.booklet, 30)
    assert nudges_send(today=days_later(0)).sent == 0
    assert sms.MemoryBackend.outbox == [] and EMAIL not in [m.to[0] for m in mail.outbox]


def test_wallet_without_reminders_shows_no_button(client, sleepy):
    _, url = _pass_with_token(sleepy, consent=False)
    assert "Ne plus recevoir de rappels" not in client.get(url).content.decode()


def test_wallet_post_with_an_unknown_token_is_404_and_changes_nothing(client, sleepy):
    dp, _ = _pass_with_token(sleepy)
    response = client.post(reverse("www:nudges_wallet_opt_out", args=["x" * 43]))
    assert response.status_code == 404
    dp.refresh_from_db()
    assert dp.reminder_contact and not JournalEntry.objects.filter(action="reminders.opt_out").exists()
