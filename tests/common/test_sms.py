"""SMS backends: the console masks the number, the file backend writes JSON lines, and the Brevo adapter's requests
are checked against a fake Brevo server on 127.0.0.1 (no network)."""

import http.server
import io
import json
import logging
import threading

import pytest

from passnum.common import sms

TEXT = "Vos chèques du pass numérique : https://pass.exemple.fr/pass/abc/ Gardez ce lien pour vous."


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch):
    """urllib would send requests for 127.0.0.1 through a proxy named in the environment."""
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)


class FakeBrevo(http.server.BaseHTTPRequestHandler):
    """Records each request; answers with the server's `reply` (status, JSON body)."""

    def do_POST(self):  # noqa: N802 — http.server's naming
        length = int(self.headers.get("Content-Length", 0))
        self.server.requests.append(
            {"method": self.command, "path": self.path, "headers": dict(self.headers), "body": self.rfile.read(length)}
        )
        status, body = self.server.reply
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


@pytest.fixture
def brevo():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FakeBrevo)
    server.requests = []
    server.reply = (201, {"messageId": 1511882900176220})
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    server.url = f"http://127.0.0.1:{server.server_address[1]}/v3/transactionalSMS/send"
    yield server
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@pytest.fixture
def brevo_settings(settings, brevo):
    settings.SMS_BACKEND = "passnum.common.sms.BrevoBackend"
    settings.BREVO_API_KEY = "xkeysib-test-0123456789"
    settings.BREVO_API_URL = brevo.url
    settings.SMS_SENDER = "PassNum"
    return settings


# --- console, file, memory ---------------------------------------------------------------------------------------


def test_console_backend_masks_the_number():
    out = io.StringIO()
    sms.ConsoleBackend(stream=out).send("+33612345678", TEXT)
    printed = out.getvalue()
    assert "+33 6 •• •• •• 78" in printed
    assert TEXT in printed
    assert "612345678" not in printed and "12 34 56" not in printed


def forget(settings, name):
    if hasattr(settings, name):
        delattr(settings, name)


def test_console_is_the_default_backend(settings, capsys):
    forget(settings, "SMS_BACKEND")
    assert isinstance(sms.get_backend(), sms.ConsoleBackend)
    sms.send_sms("+33712345678", "Bonjour")
    printed = capsys.readouterr().out
    assert "Bonjour" in printed and "712345678" not in printed


def test_file_backend_writes_one_json_line_per_message(settings, tmp_path):
    settings.SMS_BACKEND = "passnum.common.sms.FileBackend"
    settings.SMS_FILE_PATH = tmp_path / "sms"
    sms.send_sms("+33612345678", TEXT)
    sms.send_sms("+590690123456", "Deuxième")
    path = tmp_path / "sms" / "messages.jsonl"
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert [(m["to"], m["text"]) for m in lines] == [("+33612345678", TEXT), ("+590690123456", "Deuxième")]
    assert all(m["at"].endswith("+00:00") for m in lines)
    assert path.stat().st_mode & 0o077 == 0  # the outbox is private


def test_file_backend_defaults_under_var_dir(settings, tmp_path):
    settings.VAR_DIR = tmp_path
    forget(settings, "SMS_FILE_PATH")
    assert sms.FileBackend().file == tmp_path / "sms" / "messages.jsonl"


def test_memory_backend_keeps_messages(settings):
    settings.SMS_BACKEND = "passnum.common.sms.MemoryBackend"
    sms.MemoryBackend.outbox.clear()
    sms.send_sms("+33612345678", "Bonjour")
    assert sms.MemoryBackend.outbox == [("+33612345678", "Bonjour")]
    sms.MemoryBackend.outbox.clear()


def test_gsm7():
    assert sms.is_gsm7(TEXT)
    assert not sms.is_gsm7("Vos chèques : gardez-le pour vous, c’est personnel")  # curly apostrophe
    assert sms.gsm7_length("10 €") == 5  # the euro sign is an extension character


# --- Brevo -------------------------------------------------------------------------------------------------------


def test_brevo_request_shape(brevo_settings, brevo):
    sms.send_sms("+33612345678", TEXT)
    [request] = brevo.requests
    assert request["method"] == "POST"
    assert request["path"] == "/v3/transactionalSMS/send"
    headers = {k.lower(): v for k, v in request["headers"].items()}
    assert headers["api-key"] == "xkeysib-test-0123456789"
    assert headers["content-type"] == "application/json"
    assert headers["accept"] == "application/json"
    assert json.loads(request["body"]) == {
        "sender": "PassNum",
        "recipient": "33612345678",
        "content": TEXT,
        "type": "transactional",
    }


def test_brevo_asks_for_unicode_only_when_needed(brevo_settings, brevo):
    sms.send_sms("+33612345678", "C’est parti")
    assert json.loads(brevo.requests[0]["body"])["unicodeEnabled"] is True


def test_brevo_default_url_is_the_current_endpoint(settings):
    forget(settings, "BREVO_API_URL")
    assert sms.BrevoBackend(api_key="k").url == "https://api.brevo.com/v3/transactionalSMS/send"


@pytest.mark.parametrize(
    ("status", "code", "words"),
    [
        (400, "sms_rejected", "numéro ou contenu"),
        (401, "sms_unauthorised", "clé d’API"),
        (402, "sms_no_credit", "crédit"),
        (403, "sms_unauthorised", "clé d’API"),
        (429, "sms_rate_limited", "quelques minutes"),
        (500, "sms_unavailable", "indisponible"),
        (503, "sms_unavailable", "indisponible"),
        (404, "sms_rejected", "erreur 404"),
    ],
)
def test_brevo_errors_become_sms_errors_in_french(brevo_settings, brevo, caplog, status, code, words):
    brevo.reply = (status, {"code": "invalid_parameter", "message": "Invalid phone number +33612345678"})
    with caplog.at_level(logging.WARNING, logger="passnum.common.sms"), pytest.raises(sms.SmsError) as exc:
        sms.send_sms("+33612345678", TEXT)
    assert exc.value.code == code
    assert words in exc.value.message
    assert "612345678" not in exc.value.message
    assert f"HTTP {status}" in caplog.text and "invalid_parameter" in caplog.text
    assert "612345678" not in caplog.text  # never the number in the logs


def test_brevo_unreachable(brevo_settings, brevo, caplog):
    brevo.shutdown()
    brevo.server_close()
    with caplog.at_level(logging.WARNING, logger="passnum.common.sms"), pytest.raises(sms.SmsError) as exc:
        sms.send_sms("+33612345678", TEXT)
    assert exc.value.code == "sms_unavailable"
    assert "ne répond pas" in exc.value.message
    assert "612345678" not in caplog.text


def test_brevo_without_key_sends_nothing(brevo_settings, brevo):
    brevo_settings.BREVO_API_KEY = ""
    with pytest.raises(sms.SmsError) as exc:
        sms.send_sms("+33612345678", TEXT)
    assert exc.value.code == "sms_not_configured"
    assert brevo.requests == []


def test_brevo_refuses_other_schemes(brevo_settings):
    brevo_settings.BREVO_API_URL = "file:///etc/passwd"
    with pytest.raises(sms.SmsError) as exc:
        sms.send_sms("+33612345678", TEXT)
    assert exc.value.code == "sms_not_configured"
