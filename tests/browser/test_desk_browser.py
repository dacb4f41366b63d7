"""The redemption desk in Chromium, at a phone's size: type a code, « Vérifier », « Encaisser », the receipt, undo;
a refusal; and the QR scanner fed by Chromium's fake camera (a Y4M file showing a voucher's QR code), which
proves the vendored jsQR decoder works when the browser has no BarcodeDetector. axe-core runs on every page at
desktop width and at 320 px (`assert_accessible`)."""

import pytest
from django.core.cache import cache

from passnum.common.standard import Service
from passnum.vouchers import codes, signing
from passnum.vouchers.models import Receipt
from passnum.vouchers.redemption import Desk, redeem
from tests.browser.conftest import CHROMIUM, LAUNCH_ARGS, TIMEOUT_MS, assert_accessible, chromium_missing, in_ci
from tests.browser.conftest import login as log_in
from tests.browser.fakecam import write_y4m
from tests.desk.scenario import build

if chromium_missing() and not in_ci():
    pytest.skip(f"Tests de navigateur ignorés : {chromium_missing()}", allow_module_level=True)

from playwright.sync_api import expect  # noqa: E402 — only once Playwright is known to be there

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]

PHONE = {"width": 360, "height": 740}
TOOLS = "Maîtrise des outils numériques du quotidien"
SCAN_TIMEOUT_MS = 30_000


@pytest.fixture(autouse=True)
def _setup(settings, tmp_path):
    settings.PASSNUM_SIGNING_KEYS_DIR = tmp_path / "keys"
    settings.MEDIA_ROOT = tmp_path / "media"
    signing.load_keys.cache_clear()
    cache.clear()
    yield
    signing.load_keys.cache_clear()


def _verify_typed(page, code):
    page.get_by_label("Code du chèque").fill(code)
    with page.expect_navigation():
        page.get_by_role("button", name="Vérifier").click()


def test_redeem_by_typing_on_a_phone(page, live_server):
    sc = build()
    page.set_viewport_size(PHONE)
    log_in(page, live_server, sc.place_user.email)
    page.goto(f"{live_server.url}/lieu/encaisser/")
    expect(page.get_by_role("button", name="Scanner le QR code")).to_be_visible()  # shown by the script
    expect(page.get_by_role("button", name="Arrêter la caméra")).to_be_hidden()
    assert_accessible(page)

    _verify_typed(page, codes.display(sc.code(3)).lower())
    main = page.locator("main")
    expect(main.get_by_text(sc.program.name)).to_be_visible()
    expect(main.get_by_text("10 (carnet n° 1)")).to_be_visible()
    assert_accessible(page)

    count = page.get_by_label("Nombre de chèques pour cette séance")
    page.get_by_text("Aide aux démarches administratives").click()
    expect(count).to_have_value("1")  # the script sets the service's maximum…
    assert count.locator("option[value='2']").is_disabled()  # …and nothing above it
    page.get_by_text(TOOLS).click()
    expect(count).to_have_value("2")
    with page.expect_navigation():
        page.get_by_role("button", name="Encaisser").click()
    expect(page.get_by_role("heading", name="Reçu d’encaissement n°")).to_be_visible()
    expect(page.get_by_text("Encaissement enregistré : 2 chèques, 20,00")).to_be_visible()
    receipt = Receipt.objects.get()
    assert (receipt.count, receipt.service) == (2, Service.EVERYDAY_TOOLS)
    assert codes.display(sc.code(3)) in page.locator("main").inner_text()
    assert_accessible(page)

    with page.expect_navigation():  # no reason: refused, shown on the receipt
        page.get_by_role("button", name="Annuler cet encaissement").click()
    expect(page.locator("#erreurs")).to_contain_text("Indiquez le motif de l’annulation.")
    assert_accessible(page)
    page.get_by_label("Motif de l’annulation").fill("Erreur de service")
    with page.expect_navigation():
        page.get_by_role("button", name="Annuler cet encaissement").click()
    expect(page.get_by_role("heading", name="Encaissement annulé")).to_be_visible()
    expect(page.get_by_text("Motif : « Erreur de service »")).to_be_visible()
    receipt.refresh_from_db()
    assert receipt.undone_at is not None
    assert_accessible(page)

    with page.expect_navigation():
        page.get_by_role("link", name="Tous les encaissements").click()
    expect(page.get_by_role("link", name=f"n° {receipt.pk}")).to_be_visible()
    assert_accessible(page)


def test_a_refusal_page_is_accessible(page, live_server):
    sc = build()
    redeem(raw_code=sc.code(1), desk=Desk(place=sc.place, user=sc.place_user), service=Service.EVERYDAY_TOOLS)
    page.set_viewport_size(PHONE)
    log_in(page, live_server, sc.place_user.email)
    page.goto(f"{live_server.url}/lieu/encaisser/")
    _verify_typed(page, sc.code(1))
    alert = page.locator("#erreurs")
    expect(alert).to_contain_text("Ce chèque a déjà été encaissé le")
    expect(alert).to_contain_text("Médiathèque Jean Falala")
    expect(alert).to_contain_text("already_redeemed")
    assert page.title().startswith("Erreur : ")
    assert_accessible(page)
    _verify_typed(page, "ABC")  # a field in error, linked from the summary
    expect(alert).to_contain_text("code_malformed")
    assert_accessible(page)
    assert Receipt.objects.count() == 1


def test_without_javascript_the_code_is_typed(browser, live_server):
    sc = build()
    context = browser.new_context(locale="fr-FR", viewport=PHONE, base_url=live_server.url, java_script_enabled=False)
    context.set_default_timeout(TIMEOUT_MS)
    try:
        page = context.new_page()
        log_in(page, live_server, sc.place_user.email)
        page.goto(f"{live_server.url}/lieu/encaisser/")
        expect(page.get_by_role("button", name="Scanner le QR code")).to_be_hidden()
        _verify_typed(page, sc.code(1))
        page.get_by_text("Aide aux démarches administratives").click()
        with page.expect_navigation():
            page.get_by_role("button", name="Encaisser").click()
        assert Receipt.objects.get().count == 1  # the default: the service's maximum
        assert_accessible(page)
    finally:
        context.close()


def test_redeem_by_scanning_the_qr_code(playwright_session, live_server, tmp_path):
    sc = build()
    y4m = write_y4m(tmp_path / "cheque.y4m", sc.qr(2))
    browser = playwright_session.chromium.launch(
        executable_path=str(CHROMIUM),
        headless=True,
        args=LAUNCH_ARGS
        + [
            "--use-fake-ui-for-media-stream",
            "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-video-capture={y4m}",
        ],
    )
    try:
        context = browser.new_context(locale="fr-FR", viewport=PHONE, base_url=live_server.url, permissions=["camera"])
        context.set_default_timeout(TIMEOUT_MS)
        # Whatever this Chromium build offers, the vendored jsQR must do the decoding: it is what Firefox,
        # Safari and most desktop browsers will use.
        context.add_init_script("delete window.BarcodeDetector;")
        page = context.new_page()
        js_errors = []
        page.on("pageerror", lambda exc: js_errors.append(str(exc)))
        decoder_loaded = []
        page.on("request", lambda request: "jsQR.js" in request.url and decoder_loaded.append(request.url))
        log_in(page, live_server, sc.place_user.email)
        page.goto(f"{live_server.url}/lieu/encaisser/")
        assert not decoder_loaded  # loaded only when the scanner needs it
        page.get_by_role("button", name="Scanner le QR code").click()
        # The scanner fills the field with the QR payload and submits « Vérifier »: the voucher is shown.
        expect(page.get_by_role("heading", name=f"Chèque {codes.display(sc.code(2))}")).to_be_visible(
            timeout=SCAN_TIMEOUT_MS
        )
        expect(page.locator("main").get_by_text(sc.program.name)).to_be_visible()
        assert decoder_loaded == [f"{live_server.url}/static/www/vendor/jsqr/jsQR.js"]
        page.get_by_text(TOOLS).click()
        with page.expect_navigation():
            page.get_by_role("button", name="Encaisser").click()
        expect(page.get_by_text("Encaissement enregistré : 2 chèques, 20,00")).to_be_visible()
        receipt = Receipt.objects.get()
        assert set(receipt.redemptions.values_list("voucher__position", flat=True)) == {2, 1}
        assert not js_errors, js_errors
        context.close()
    finally:
        browser.close()
