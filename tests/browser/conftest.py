"""Browser tests: Playwright drives Debian's Chromium against pytest-django's live server.

One Playwright and one browser per session (per xdist worker), a new context for each test. Chromium is
`/usr/bin/chromium` (`apt-get install chromium`); never `playwright install`. Without it the browser tests
are skipped with a message, except in CI (`CI=true`) where its absence is a failure.

`assert_accessible(page)` runs axe-core (vendored in `vendor/`, no network) on the current page at desktop
width and again at 320 px, and fails on any WCAG 2.0/2.1 A or AA violation.
"""

import os
from pathlib import Path

import pytest
from django.urls import reverse

from tests.factories import PASSWORD

CHROMIUM = Path("/usr/bin/chromium")
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
AXE_JS = Path(__file__).resolve().parent / "vendor" / "axe.min.js"
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
DESKTOP = {"width": 1280, "height": 900}
NARROW = {"width": 320, "height": 800}
TIMEOUT_MS = 10_000


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() == "true"


def chromium_missing() -> str | None:
    """Why the browser tests cannot run here, or None."""
    if not (CHROMIUM.exists() and os.access(CHROMIUM, os.X_OK)):
        return (
            f"Chromium est introuvable ({CHROMIUM}). "
            "Installez-le avec « apt-get install chromium » (jamais « playwright install »)."
        )
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright n’est pas installé (pip install -e '.[dev]')."
    return None


@pytest.fixture(scope="session")
def playwright_session():
    reason = chromium_missing()
    if reason:
        if in_ci():
            pytest.fail(f"CI=true : les tests de navigateur doivent tourner. {reason}", pytrace=False)
        pytest.skip(f"Tests de navigateur ignorés : {reason}")
    from playwright.sync_api import sync_playwright

    pw = sync_playwright().start()
    yield pw
    pw.stop()


@pytest.fixture(scope="session")
def browser(playwright_session):
    browser = playwright_session.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=LAUNCH_ARGS)
    yield browser
    browser.close()


@pytest.fixture
def page(browser, live_server):
    """A fresh context (cookies, storage) per test, in French, at desktop width, rooted at the live server.

    Uncaught JavaScript errors on any page fail the test."""
    context = browser.new_context(locale="fr-FR", viewport=DESKTOP, base_url=live_server.url)
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    js_errors: list[str] = []
    page.on("pageerror", lambda exc: js_errors.append(f"{page.url}: {exc}"))
    yield page
    context.close()
    assert not js_errors, "Erreurs JavaScript :\n" + "\n".join(js_errors)


def login(page, live_server, email, password=PASSWORD):
    """Log in through the web form at /connexion/ and land on the home page, logged in."""
    page.goto(f"{live_server.url}/connexion/")
    form = page.locator("main form")
    form.get_by_label("Adresse électronique").fill(email)
    form.get_by_label("Mot de passe", exact=True).fill(password)
    with page.expect_navigation():  # the form posts, successful or not
        form.get_by_role("button", name="Se connecter").click()
    if page.url != f"{live_server.url}/":
        shown = page.locator("main .fr-error-text, main .fr-alert").all_inner_texts()
        pytest.fail(f"Connexion refusée pour {email} ({page.url}) : {' '.join(shown) or 'sans message'}", pytrace=False)
    assert page.locator(f"form[action='{reverse('www:logout')}']").count() > 0, "pas de bouton « Se déconnecter »"


def _format_violations(violations: list[dict], where: str) -> str:
    lines = [f"{len(violations)} violation(s) axe-core sur {where} :"]
    for v in violations:
        lines.append(f"- [{v['impact']}] {v['id']} : {v['help']} ({v['helpUrl']})")
        for node in v["nodes"]:
            lines.append(f"    · {' '.join(node['target'])}")
            lines.append(f"      {node['html'][:200]}")
            if node["summary"]:
                lines.extend(f"      {line}" for line in node["summary"].splitlines())
    return "\n".join(lines)


_AXE_RUN = """async (tags) => {
  const results = await axe.run(document, {runOnly: {type: 'tag', values: tags}, resultTypes: ['violations']});
  return results.violations.map(v => ({
    id: v.id, impact: v.impact, help: v.help, helpUrl: v.helpUrl,
    nodes: v.nodes.map(n => ({target: n.target.map(String), html: n.html, summary: n.failureSummary || ''})),
  }));
}"""


# True when a script added to the page runs: false with java_script_enabled=False (or a CSP against inline
# scripts), where axe-core cannot be injected, or would wait for ever for its timers (evaluate has no timeout).
_SCRIPTS_RUN = """() => {
  window.__passnumScripts = false;
  const probe = document.createElement('script');
  probe.textContent = 'window.__passnumScripts = true;';
  document.head.appendChild(probe);
  probe.remove();
  return window.__passnumScripts === true;
}"""

# The page as a person without JavaScript gets it: no scripts, and <noscript> content shown (it would be
# mere text where scripts run).
_SCRIPTLESS_COPY = """() => {
  const root = document.documentElement.cloneNode(true);
  root.querySelectorAll('script').forEach(s => s.remove());
  root.querySelectorAll('noscript').forEach(n => n.replaceWith(...n.childNodes));
  return '<!DOCTYPE html>' + root.outerHTML;
}"""


def _axe_violations(page) -> list[dict]:
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.add_script_tag(path=str(AXE_JS))
    return page.evaluate(_AXE_RUN, AXE_TAGS)


def _axe_violations_without_javascript(page) -> list[dict]:
    """Run axe-core on a copy of the page, minus its scripts, served at the same address (without headers)
    in a context where scripts run. The stylesheets load from the live server as usual."""
    html, url = page.evaluate(_SCRIPTLESS_COPY), page.url
    context = page.context.browser.new_context(locale="fr-FR", viewport=page.viewport_size or DESKTOP)
    context.set_default_timeout(TIMEOUT_MS)
    try:
        copy = context.new_page()
        copy.route(lambda u: u == url, lambda route: route.fulfill(body=html, content_type="text/html; charset=utf-8"))
        copy.goto(url)
        return _axe_violations(copy)
    finally:
        context.close()


def assert_no_axe_violations(page):
    """Inject the vendored axe-core into the current page and fail on any WCAG 2.0/2.1 A/AA violation.

    A page where scripts cannot run (JavaScript disabled) is checked through a copy of it without scripts."""
    scripts_run = page.evaluate(_SCRIPTS_RUN)
    violations = _axe_violations(page) if scripts_run else _axe_violations_without_javascript(page)
    if violations:
        size = page.viewport_size or {}
        where = f"{page.url} ({size.get('width')} × {size.get('height')} px)"
        pytest.fail(_format_violations(violations, where), pytrace=False)


_OVERFLOWING = """() => {
  const right = document.documentElement.clientWidth + 1;
  const name = e => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '')
    + (typeof e.className === 'string' && e.className.trim() ? '.' + e.className.trim().split(/\\s+/).join('.') : '');
  return [...document.querySelectorAll('body *')]
    .filter(e => e.getBoundingClientRect().right > right && !e.closest('.fr-table__wrapper, .fr-sr-only'))
    .slice(0, 8).map(name);
}"""


def assert_no_horizontal_scroll(page):
    """WCAG 1.4.10 (reflow), which axe does not test: at 320 px the page itself never scrolls sideways.
    Data tables scroll inside their own DSFR wrapper, which is allowed."""
    widths = page.evaluate(
        "() => ({page: document.documentElement.scrollWidth, view: document.documentElement.clientWidth})"
    )
    if widths["page"] > widths["view"]:
        wide = page.evaluate(_OVERFLOWING)
        pytest.fail(
            f"{page.url} : défilement horizontal à {widths['view']} px (largeur du contenu {widths['page']} px). "
            f"Éléments qui débordent : {', '.join(wide)}",
            pytrace=False,
        )


def assert_accessible(page):
    """axe-core at desktop width, then at 320 × 800 px (plus the reflow check); the viewport is restored."""
    original = page.viewport_size or DESKTOP
    page.set_viewport_size(DESKTOP)
    assert_no_axe_violations(page)
    page.set_viewport_size(NARROW)
    try:
        page.wait_for_function(f"() => window.innerWidth === {NARROW['width']}")
        assert_no_horizontal_scroll(page)
        assert_no_axe_violations(page)
    finally:
        page.set_viewport_size(original)
