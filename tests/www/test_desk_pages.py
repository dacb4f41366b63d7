"""The redemption desk's pages (passnum/www/desk.py): « Vérifier », « Encaisser », receipts, undo. Every refusal
the pages can meet is shown in French with its stable code and changes nothing; a double submit lands on the
same receipt; codes never appear in URLs; outsiders see nothing."""

import datetime as dt
import html
import re

import pytest
from django.urls import reverse
from django.utils import timezone

from passnum.common.money import format_euros
from passnum.common.standard import Service
from passnum.places.enums import QualificationStatus
from passnum.vouchers import codes
from passnum.vouchers.enums import VoucherStatus as S
from passnum.vouchers.models import Receipt, Redemption, Voucher
from passnum.vouchers.redemption import REFUSALS, Desk, redeem
from passnum.vouchers.services import vouchers_cancel
from tests.desk.scenario import build, make_site
from tests.factories import OrganisationFactory, member_of
from tests.settlement.flow import settle_all

pytestmark = pytest.mark.django_db

T = Service.EVERYDAY_TOOLS
A = Service.ADMIN_PROCEDURES
DESK = reverse("www:desk")
RECEIPTS = reverse("www:desk_receipts")


@pytest.fixture
def sc():
    return build()


@pytest.fixture
def staff(client, sc):
    client.force_login(sc.place_user)
    return client


def text(response) -> str:
    return html.unescape(response.content.decode())


def state():
    """Everything a refusal must leave as it was."""
    return (
        Receipt.objects.count(),
        Redemption.objects.count(),
        sorted(Voucher.objects.values_list("pk", "status")),
        sorted(Receipt.objects.values_list("pk", "undone_at")),
    )


def check(client, code, **extra):
    return client.post(DESK, {"action": "check", "code": code, **extra})


def redeem_form(response) -> dict:
    """The hidden fields of the « Encaisser » form shown by a « Vérifier » response."""
    page = response.content.decode()
    form = page[page.index('id="form-encaisser"') :]
    form = form[: form.index("</form>")]
    fields = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', form))
    fields.pop("csrfmiddlewaretoken", None)
    return fields


def assert_refused(response, code, *, contains=()):
    """The page shows the refusal: the alert (role="alert"), the French message, the code for support."""
    assert code in REFUSALS
    assert response.status_code == 200
    page = text(response)
    assert 'role="alert"' in page and 'id="erreurs"' in page
    assert f"<code>{code}</code>" in page, f"{code} not shown"
    assert "Aucun chèque n’a été encaissé." in page
    for fragment in contains:
        assert fragment in page, fragment
    return page


# --- Vérifier, Encaisser ------------------------------------------------------------------------------------


def test_desk_page_has_the_check_form_and_the_scanner(staff):
    page = text(staff.get(DESK))
    assert 'name="code"' in page and ">Vérifier</button>" in page
    assert "Scanner le QR code" in page and 'id="scanner" class="fr-mb-3w" hidden' in page  # shown by the script
    assert 'role="status"' in page and "Arrêter la caméra" in page
    assert "www/desk.js" in page and "<script>" not in page  # static files only
    assert "www/vendor/jsqr/jsQR.js" in page  # loaded by the script only when needed
    assert 'name="site"' not in page  # one qualified site: no choice to make


def test_check_shows_the_voucher_and_the_redeem_form(staff, sc):
    before = state()
    response = check(staff, sc.code(1))
    page = text(response)
    assert response.status_code == 200 and 'role="alert"' not in page
    assert "10,00\xa0€ par chèque" in page
    assert sc.program.name in page and "Médiathèque Jean Falala" in page
    assert "Chèques restants dans le carnet</dt><dd>10 (carnet n° 1)" in page
    assert "Maîtrise des outils numériques du quotidien — 2 chèques au plus par séance" in page
    assert "Aide aux démarches administratives — 1 chèque au plus par séance" in page
    assert "Loisirs" not in page  # only the eligible services of this site
    assert ">Encaisser</button>" in page
    fields = redeem_form(response)
    assert fields["code"] == sc.code(1) and fields["site"] == str(sc.site.pk)
    assert re.fullmatch(r"[0-9a-f]{32}", fields["token"])
    assert fields["token"] != redeem_form(check(staff, sc.code(1)))["token"]  # a new token for each render
    assert state() == before


def test_a_scanned_qr_payload_and_a_sloppy_typed_code_work_the_same(staff, sc):
    assert redeem_form(check(staff, sc.qr(2)))["code"] == sc.code(2)
    sloppy = sc.code(3).lower()
    assert redeem_form(check(staff, f" {sloppy[:4]}-{sloppy[4:8]} {sloppy[8:]} "))["code"] == sc.code(3)


def test_redeem_two_vouchers_makes_one_receipt_and_redirects(staff, sc):
    fields = redeem_form(check(staff, sc.code(3)))
    response = staff.post(DESK, {**fields, "action": "redeem", "service": T, "count": "2"})
    receipt = Receipt.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("www:desk_receipt", args=[receipt.pk])
    assert sc.code(3) not in response["Location"]
    assert (receipt.count, receipt.amount_cents, receipt.site, receipt.service) == (2, 2000, sc.site, T)
    assert set(receipt.redemptions.values_list("voucher__position", flat=True)) == {3, 1}
    assert receipt.redeemed_by == sc.place_user and receipt.idempotency_key == fields["token"]
    page = text(staff.get(response["Location"]))
    assert "Encaissement enregistré : 2 chèques, 20,00\xa0€." in page


def test_the_default_number_is_the_services_maximum(staff, sc):
    fields = redeem_form(check(staff, sc.code(1)))
    staff.post(DESK, {**fields, "action": "redeem", "service": T, "count": ""})
    assert Receipt.objects.get().count == 2
    fields = redeem_form(check(staff, sc.code(5)))
    staff.post(DESK, {**fields, "action": "redeem", "service": A, "count": ""})
    assert Receipt.objects.filter(service=A).get().count == 1


def test_double_submit_lands_on_the_same_receipt(staff, sc):
    fields = {**redeem_form(check(staff, sc.code(1))), "action": "redeem", "service": T, "count": "2"}
    first = staff.post(DESK, fields)
    again = staff.post(DESK, fields)
    assert first.status_code == again.status_code == 302
    assert first["Location"] == again["Location"]
    assert Receipt.objects.count() == 1 and Redemption.objects.count() == 2
    assert "Cet encaissement était déjà enregistré" in text(staff.get(again["Location"]))


def test_no_service_chosen_shows_the_form_again(staff, sc):
    fields = redeem_form(check(staff, sc.code(1)))
    before = state()
    response = staff.post(DESK, {**fields, "action": "redeem", "count": "1"})
    page = text(response)
    assert "Choisissez le service rendu pendant la séance." in page and 'role="alert"' in page
    assert ">Encaisser</button>" in page
    assert state() == before


def test_an_organisation_with_several_sites_chooses_one(client, sc):
    two = OrganisationFactory(place=True, name="Association Les Liens")
    make_site(two, name="Antenne nord")
    south = make_site(two, name="Antenne sud")
    make_site(two, name="Antenne fermée", status=QualificationStatus.PENDING)
    client.force_login(member_of(two, admin=False))
    page = text(client.get(DESK))
    assert 'name="site"' in page and "Antenne nord" in page and "Antenne sud" in page
    assert "Antenne fermée" not in page
    before = state()
    assert_refused(
        check(client, sc.code(1)), "site_required", contains=["Votre structure a plusieurs lieux", 'href="#id_site"']
    )
    assert state() == before
    response = check(client, sc.code(1), site=str(south.pk))
    fields = redeem_form(response)
    assert fields["site"] == str(south.pk) and "Antenne sud" in text(response)
    client.post(DESK, {**fields, "action": "redeem", "service": T, "count": "1"})
    assert Receipt.objects.get().site == south
    assert f'<option value="{south.pk}" selected>' in client.get(DESK).content.decode()  # remembered


# --- every refusal --------------------------------------------------------------------------------------------


def test_code_refusals(staff, sc):
    code = sc.code(1)
    before = state()
    page = assert_refused(check(staff, "ABC"), "code_malformed", contains=["pas le bon format", 'href="#id_code"'])
    assert 'aria-invalid="true"' in page
    typo = code[:-1] + ("0" if code[-1] != "0" else "1")
    assert_refused(check(staff, typo), "code_typo", contains=["mal recopié"])
    assert_refused(check(staff, "0000000000000"), "unknown_code", contains=["Code inconnu"])
    tampered = sc.qr(1).replace(code, sc.code(2))
    assert_refused(check(staff, tampered), "qr_bad_signature")
    assert state() == before


def test_voucher_refusals(staff, sc):
    not_given = sc.new_booklet(hand_out=False)
    cancelled = sc.vouchers()[4]
    vouchers_cancel(vouchers=[cancelled], reason="Perdu")
    before = state()
    assert_refused(check(staff, sc.code(1, not_given)), "not_handed_out", contains=["pas encore été remis"])
    assert_refused(check(staff, cancelled.code), "cancelled", contains=["a été annulé"])
    assert state() == before


def test_already_redeemed_says_when_and_where(staff, sc):
    first = redeem(raw_code=sc.code(1), desk=Desk(place=sc.place, user=sc.place_user), service=T)
    when = timezone.localtime(first.redeemed_at)
    before = state()
    assert_refused(
        check(staff, sc.code(1)),
        "already_redeemed",
        contains=["Ce chèque a déjà été encaissé le", f"à {when:%H:%M}", "par « Médiathèque Jean Falala »"],
    )
    assert state() == before


def test_redeemed_meanwhile_is_refused_at_encaisser(staff, sc):
    fields = redeem_form(check(staff, sc.code(1)))
    redeem(raw_code=sc.code(1), desk=Desk(place=sc.place, user=sc.place_user), service=A)  # at another desk
    before = state()
    page = assert_refused(
        staff.post(DESK, {**fields, "action": "redeem", "service": T, "count": "1"}),
        "already_redeemed",
        contains=["Encaissement refusé", "Ce chèque a déjà été encaissé le"],
    )
    assert f'value="{codes.display(sc.code(1))}"' in page  # ready to be checked again
    assert state() == before


def test_date_refusals(staff, sc):
    today = timezone.localdate()
    sc.program.valid_from, sc.program.valid_until = today + dt.timedelta(days=3), today + dt.timedelta(days=30)
    sc.program.save()
    before = state()
    assert_refused(check(staff, sc.code(1)), "not_yet_valid", contains=["utilisable qu’à partir du"])
    sc.program.valid_from, sc.program.valid_until = today - dt.timedelta(days=30), today - dt.timedelta(days=1)
    sc.program.save()
    assert_refused(check(staff, sc.code(1)), "expired", contains=["Ce chèque a expiré le"])
    assert state() == before


def test_place_refusals(client, staff, sc):
    before = state()
    sc.site.status = QualificationStatus.SUSPENDED
    sc.site.save()
    assert_refused(check(staff, sc.code(1)), "place_suspended", contains=["est suspendu"])
    sc.site.status = QualificationStatus.PENDING
    sc.site.save()
    assert_refused(check(staff, sc.code(1)), "place_not_qualified", contains=["pas encore qualifié"])
    far = OrganisationFactory(place=True, name="Espace Paris")
    make_site(far, commune="75056", name="Espace Paris")
    client.force_login(member_of(far, admin=False))
    assert_refused(check(client, sc.code(1)), "outside_territory", contains=["hors du territoire"])
    assert state() == before


def test_no_eligible_service_at_this_site(staff, sc):
    sc.program.eligible_services = [Service.EMPLOYMENT]
    sc.program.save()
    before = state()
    assert_refused(check(staff, sc.code(1)), "service_not_eligible", contains=["Aucun service de"])
    assert state() == before


def test_redeem_refusals_show_the_form_again(staff, sc):
    fields = {**redeem_form(check(staff, sc.code(1))), "action": "redeem"}
    before = state()
    page = assert_refused(
        staff.post(DESK, {**fields, "service": Service.LEISURE, "count": "1"}),
        "service_not_eligible",
        contains=["Le service « Loisirs et créations numériques » n’est pas éligible ici", "Encaissement refusé"],
    )
    assert ">Encaisser</button>" in page
    page = assert_refused(
        staff.post(DESK, {**fields, "service": A, "count": "2"}),
        "too_many_vouchers",
        contains=["prend au plus 1 chèque(s)", 'href="#id_count"'],
    )
    assert f'value="{A}" dsfr="dsfr" id="id_service_0" required checked' in page  # the choice is kept
    assert_refused(staff.post(DESK, {**fields, "service": T, "count": "0"}), "invalid_count", contains=["au moins 1"])
    assert state() == before


def test_not_enough_vouchers_left(staff, sc):
    desk = Desk(place=sc.place, user=sc.place_user)
    for position in range(1, 10):
        redeem(raw_code=sc.code(position), desk=desk, service=A)
    response = check(staff, sc.code(10))
    assert "Chèques restants dans le carnet</dt><dd>1 (carnet" in text(response)
    before = state()
    assert_refused(
        staff.post(DESK, {**redeem_form(response), "action": "redeem", "service": T, "count": "2"}),
        "not_enough_vouchers",
        contains=["Il ne reste que 1 chèque(s)"],
    )
    assert state() == before


def test_rate_limited_says_when_to_retry(staff, sc, settings):
    settings.PASSNUM_CODE_CHECK_LIMITS = {"who": (3, 900), "org": (100, 900), "ip": (100, 900)}
    for _ in range(3):
        assert_refused(check(staff, "0000000000000"), "unknown_code")
    before = state()
    page = assert_refused(check(staff, sc.code(1)), "rate_limited", contains=["Réessayez dans"])
    assert re.search(r"Vous pourrez réessayer à partir de \d\d:\d\d\.", page)
    fields = {"action": "redeem", "code": sc.code(1), "site": str(sc.site.pk), "token": "t-1", "service": T}
    assert_refused(staff.post(DESK, fields), "rate_limited")
    assert state() == before


def test_every_refusal_of_the_brief_is_covered():
    """The refusals the desk pages can meet, each tested above (the list of the brief)."""
    tested = {
        "code_malformed", "code_typo", "unknown_code", "qr_bad_signature", "not_handed_out", "not_yet_valid",
        "expired", "cancelled", "already_redeemed", "outside_territory", "service_not_eligible",
        "place_not_qualified", "place_suspended", "too_many_vouchers", "not_enough_vouchers", "rate_limited",
        "site_required", "invalid_count", "reason_required", "undo_window_closed", "redemption_already_undone",
        "redemption_claimed",
    }  # fmt: skip
    assert tested <= set(REFUSALS)


# --- receipts, undo -----------------------------------------------------------------------------------------


def _redeemed(sc, count=2, position=1, service=T):
    return redeem(
        raw_code=sc.code(position), desk=Desk(place=sc.place, user=sc.place_user), service=service, count=count
    )


def test_receipt_page(staff, sc, settings):
    receipt = _redeemed(sc)
    page = text(staff.get(reverse("www:desk_receipt", args=[receipt.pk])))
    assert f"Reçu d’encaissement n° {receipt.pk}" in page
    assert "Médiathèque Jean Falala" in page and "Maîtrise des outils numériques du quotidien" in page
    assert sc.program.name in page and format_euros(2000) in page
    for voucher in Voucher.objects.filter(redemptions__receipt=receipt):
        display = "-".join([voucher.code[:4], voucher.code[4:8], voucher.code[8:12], voucher.code[12:]])
        assert display in page
    local = timezone.localtime(receipt.redeemed_at)
    assert f"{local:%H:%M}" in page
    until = timezone.localtime(receipt.redeemed_at + dt.timedelta(hours=settings.PASSNUM_UNDO_WINDOW_HOURS))
    assert f"jusqu’au {until.day}" in page and f"{until:%H:%M}" in page
    assert "Annuler cet encaissement</button>" in page and 'name="reason"' in page


def test_undo_within_the_window(staff, sc):
    receipt = _redeemed(sc)
    url = reverse("www:desk_receipt_undo", args=[receipt.pk])
    before = state()
    page = text(staff.post(url, {"reason": "  "}))
    assert "<code>reason_required</code>" in page and "Indiquez le motif de l’annulation." in page
    assert 'role="alert"' in page and 'aria-invalid="true"' in page
    assert state() == before
    response = staff.post(url, {"reason": "Erreur de service"})
    assert response.status_code == 302 and response["Location"] == reverse("www:desk_receipt", args=[receipt.pk])
    receipt.refresh_from_db()
    assert receipt.undone_at and receipt.undo_reason == "Erreur de service" and receipt.undone_by == sc.place_user
    assert set(sc.booklet.vouchers.values_list("status", flat=True)) == {S.DISTRIBUTED}
    page = text(staff.get(response["Location"]))
    assert "Encaissement annulé" in page and "Motif : « Erreur de service »" in page
    assert "2 chèques de nouveau utilisables" in page
    assert "Annuler cet encaissement</button>" not in page
    before = state()
    page = text(staff.post(url, {"reason": "Encore"}))
    assert "<code>redemption_already_undone</code>" in page and "a déjà été annulé le" in page
    assert state() == before
    assert staff.get(url).status_code == 405  # POST only


def test_undo_refused_after_the_window_or_once_claimed(staff, sc, settings):
    receipt = _redeemed(sc)
    Receipt.objects.filter(pk=receipt.pk).update(redeemed_at=timezone.now() - dt.timedelta(hours=25))
    page = text(staff.get(reverse("www:desk_receipt", args=[receipt.pk])))
    assert "Annuler cet encaissement</button>" not in page and "ne peut plus être annulé ici" in page
    url = reverse("www:desk_receipt_undo", args=[receipt.pk])
    before = state()
    page = text(staff.post(url, {"reason": "Trop tard"}))
    assert "<code>undo_window_closed</code>" in page and "ne peut être annulé que dans les 24 h" in page
    assert state() == before
    settings.PASSNUM_UNDO_WINDOW_HOURS = 48
    settle_all()
    page = text(staff.get(reverse("www:desk_receipt", args=[receipt.pk])))
    assert "Annuler cet encaissement</button>" not in page  # claimed: not offered
    before = state()
    page = text(staff.post(url, {"reason": "Erreur"}))
    assert "<code>redemption_claimed</code>" in page and "déjà en cours de remboursement" in page
    assert state() == before


def test_receipts_list_is_paginated_newest_first_with_the_totals_of_the_day(staff, sc):
    old = timezone.now() - dt.timedelta(days=3)
    Receipt.objects.bulk_create(
        [
            Receipt(
                place=sc.place,
                site=sc.site,
                booklet=sc.booklet,
                service=A,
                count=1,
                amount_cents=1000,
                redeemed_at=old - dt.timedelta(minutes=i),
            )
            for i in range(55)
        ]
    )
    kept = _redeemed(sc, count=2, position=1)
    undone = _redeemed(sc, count=1, position=5, service=A)
    staff.post(reverse("www:desk_receipt_undo", args=[undone.pk]), {"reason": "Erreur"})
    page = text(staff.get(RECEIPTS))
    assert len(re.findall(r'href="/lieu/encaissements/\d+/"', page)) == 50
    assert page.index(f"n° {undone.pk}<") < page.index(f"n° {kept.pk}<")  # newest first
    assert "1 encaissement, 2 chèques, 20,00\xa0€." in page
    assert "1 encaissement annulé (non compté)." in page
    assert "Annulé</span>" in page and "page 1 sur 2" in page and 'class="fr-table__container"' in page
    page2 = text(staff.get(RECEIPTS, {"page": 2}))
    assert len(re.findall(r'href="/lieu/encaissements/\d+/"', page2)) == 7


# --- permissions ----------------------------------------------------------------------------------------------


def test_outsiders_never_see_a_receipt(client, sc):
    receipt = _redeemed(sc)
    detail = reverse("www:desk_receipt", args=[receipt.pk])
    undo = reverse("www:desk_receipt_undo", args=[receipt.pk])
    assert client.get(DESK).status_code == 302  # anonymous: to the login page
    assert client.get(detail).status_code == 302
    client.force_login(sc.distributor_user)
    for url in (DESK, RECEIPTS, detail):
        assert client.get(url).status_code == 403
    assert check(client, sc.code(2)).status_code == 403
    assert client.post(undo, {"reason": "x"}).status_code == 403
    client.force_login(member_of(sc.funder))
    assert client.get(detail).status_code == 403
    other = OrganisationFactory(place=True)
    make_site(other)
    client.force_login(member_of(other))
    assert client.get(detail).status_code == 404
    assert client.post(undo, {"reason": "x"}).status_code == 404
    assert f"n° {receipt.pk}<" not in text(client.get(RECEIPTS))
    receipt.refresh_from_db()
    assert receipt.undone_at is None
