"""Sending text messages: `send_sms(to_e164, text)` hands the message to the backend named by SMS_BACKEND.

Backends (a dotted path in SMS_BACKEND, like Django's e-mail backends):

- `ConsoleBackend` (default): prints the message, with the phone number masked (`+33 6 •• •• •• 78`).
- `FileBackend`: appends one JSON line per message to `SMS_FILE_PATH/messages.jsonl` (default `VAR_DIR/sms`), for
  development and tests. The file is the outbox itself: it holds the full number and the text (mode 0600).
- `MemoryBackend`: keeps the messages in `MemoryBackend.outbox` (tests).
- `BrevoBackend`: Brevo's transactional SMS API (`BREVO_API_KEY`, `BREVO_API_URL`, `SMS_SENDER`).

Phone numbers never appear in logs. A refusal by the provider raises `SmsError` with a French message."""

import datetime as dt
import json
import logging
import os
import sys
import urllib.error
import urllib.request
from pathlib import Path

from django.conf import settings
from django.utils.module_loading import import_string

logger = logging.getLogger(__name__)

DEFAULT_BACKEND = "passnum.common.sms.ConsoleBackend"
DEFAULT_BREVO_API_URL = "https://api.brevo.com/v3/transactionalSMS/send"
DEFAULT_SENDER = "PassNum"
DEFAULT_TIMEOUT = 10  # seconds

# GSM 03.38: the basic character set and its extension table (an extension character counts twice).
GSM7_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = "^{}\\[~]|€\f"


class SmsError(Exception):
    """The message could not be handed to the provider. `message` is French, for the person who sent it."""

    def __init__(self, message: str, *, code: str = "sms_failed"):
        super().__init__(message)
        self.message = message
        self.code = code


def is_gsm7(text: str) -> bool:
    """Whether `text` fits the GSM 7-bit alphabet (160 characters per SMS; otherwise UCS-2, 70 per SMS)."""
    return all(ch in GSM7_BASIC or ch in GSM7_EXTENSION for ch in text)


def gsm7_length(text: str) -> int:
    """Septets used by `text` in GSM 7-bit encoding (extension characters count twice)."""
    return sum(2 if ch in GSM7_EXTENSION else 1 for ch in text)


def mask_phone(e164: str) -> str:
    """'+33612345678' → '+33 6 •• •• •• 78': enough to recognise a number, not to dial it."""
    digits = e164.lstrip("+")
    if len(digits) < 6:
        return "•" * len(digits)
    return f"+{digits[:2]} {digits[2]} •• •• •• {digits[-2:]}"


class BaseBackend:
    def send(self, to: str, text: str) -> None:
        raise NotImplementedError


class ConsoleBackend(BaseBackend):
    """Prints each message to standard output (or `stream`), the number masked."""

    def __init__(self, stream=None):
        self.stream = stream

    def send(self, to: str, text: str) -> None:
        stream = self.stream or sys.stdout
        stream.write(f"--- SMS à {mask_phone(to)} ---\n{text}\n---\n")
        stream.flush()


class FileBackend(BaseBackend):
    """Appends `{"at", "to", "text"}` as one JSON line per message to `SMS_FILE_PATH/messages.jsonl`."""

    file_name = "messages.jsonl"

    def __init__(self, path=None):
        default = Path(getattr(settings, "VAR_DIR", Path.cwd() / "var")) / "sms"
        self.directory = Path(path or getattr(settings, "SMS_FILE_PATH", None) or default)

    @property
    def file(self) -> Path:
        return self.directory / self.file_name

    def send(self, to: str, text: str) -> None:
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        line = json.dumps({"at": dt.datetime.now(dt.UTC).isoformat(), "to": to, "text": text}, ensure_ascii=False)
        fd = os.open(self.file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, "a", encoding="utf-8") as out:
            out.write(line + "\n")


class MemoryBackend(BaseBackend):
    """Keeps `(to, text)` pairs in the class-wide `outbox` list (tests empty it)."""

    outbox: list[tuple[str, str]] = []

    def send(self, to: str, text: str) -> None:
        MemoryBackend.outbox.append((to, text))


_BREVO_ERRORS = {
    400: ("Le fournisseur de SMS a refusé le message : numéro ou contenu non valable.", "sms_rejected"),
    401: ("Le fournisseur de SMS refuse l’accès : la clé d’API est à vérifier.", "sms_unauthorised"),
    402: ("Le crédit de SMS est épuisé chez le fournisseur.", "sms_no_credit"),
    403: ("Le fournisseur de SMS refuse l’accès : la clé d’API est à vérifier.", "sms_unauthorised"),
    429: ("Trop de SMS envoyés en peu de temps : réessayez dans quelques minutes.", "sms_rate_limited"),
}


class BrevoBackend(BaseBackend):
    """POST BREVO_API_URL with the `api-key` header and `{"sender", "recipient", "content", "type"}`.

    Brevo takes the recipient with its country code, digits only or prefixed with '+': we send the E.164 digits
    without '+' (33612345678). The sender is at most 11 letters and digits. `unicodeEnabled` is only sent when the
    text does not fit the GSM 7-bit alphabet."""

    def __init__(self, *, api_key=None, url=None, sender=None, timeout=None):
        self.api_key = api_key if api_key is not None else getattr(settings, "BREVO_API_KEY", "")
        self.url = url or getattr(settings, "BREVO_API_URL", "") or DEFAULT_BREVO_API_URL
        self.sender = sender or getattr(settings, "SMS_SENDER", "") or DEFAULT_SENDER
        self.timeout = timeout or getattr(settings, "SMS_TIMEOUT", DEFAULT_TIMEOUT)

    def payload(self, to: str, text: str) -> dict:
        body = {"sender": self.sender, "recipient": to.lstrip("+"), "content": text, "type": "transactional"}
        if not is_gsm7(text):
            body["unicodeEnabled"] = True
        return body

    def send(self, to: str, text: str) -> None:
        if not self.api_key:
            raise SmsError("L’envoi de SMS n’est pas configuré (clé d’API Brevo absente).", code="sms_not_configured")
        if not self.url.lower().startswith(("https://", "http://")):
            raise SmsError("L’envoi de SMS est mal configuré (adresse de l’API).", code="sms_not_configured")
        request = urllib.request.Request(  # noqa: S310 — the scheme is checked just above
            self.url,
            data=json.dumps(self.payload(to, text)).encode(),
            method="POST",
            headers={"api-key": self.api_key, "Content-Type": "application/json", "Accept": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                response.read()
        except urllib.error.HTTPError as exc:
            provider_code = _error_code(exc)
            # Brevo's error message may quote the number: only the HTTP status and Brevo's code are logged.
            logger.warning("Brevo SMS refused: HTTP %s (%s)", exc.code, provider_code or "no code")
            if exc.code in _BREVO_ERRORS:
                message, code = _BREVO_ERRORS[exc.code]
            elif exc.code >= 500:
                message, code = "Le fournisseur de SMS est indisponible : réessayez plus tard.", "sms_unavailable"
            else:
                message, code = f"Le fournisseur de SMS a refusé le message (erreur {exc.code}).", "sms_rejected"
            raise SmsError(message, code=code) from None
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            logger.warning("Brevo SMS not sent: %s", type(exc).__name__)
            raise SmsError(
                "Le fournisseur de SMS ne répond pas : réessayez plus tard.", code="sms_unavailable"
            ) from None


def _error_code(exc: urllib.error.HTTPError) -> str:
    try:
        body = json.loads(exc.read(4096) or b"{}")
    except (ValueError, OSError):
        return ""
    code = body.get("code", "") if isinstance(body, dict) else ""
    return code if isinstance(code, str) and code.replace("_", "").isalnum() else ""


def get_backend() -> BaseBackend:
    return import_string(getattr(settings, "SMS_BACKEND", "") or DEFAULT_BACKEND)()


def send_sms(to_e164: str, text: str) -> None:
    """Send `text` to `to_e164` (+33612345678) through SMS_BACKEND; raises SmsError when it cannot."""
    get_backend().send(to_e164, text)
