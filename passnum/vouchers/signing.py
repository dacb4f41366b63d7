"""Signed QR payloads: any device can check offline that a voucher code was issued by the platform.

Payload: ``PN1.<code>.<key id>.<signature>`` where the signature is Ed25519 over ``PN1.<code>`` (base64url, no
padding). Private keys are PEM files in PASSNUM_SIGNING_KEYS_DIR, one per key id; the newest signs, all of them
verify (rotation keeps old passes valid). Public keys are published at /.well-known/passnum-keys.json."""

import base64
import datetime as dt
import secrets
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from django.conf import settings

PREFIX = "PN1"


class SignatureError(ValueError):
    def __init__(self, message: str, code: str):
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class SigningKey:
    kid: str
    private: Ed25519PrivateKey

    @property
    def public_b64(self) -> str:
        raw = self.private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return _b64(raw)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def keys_dir() -> Path:
    return Path(settings.PASSNUM_SIGNING_KEYS_DIR)


def create_key() -> SigningKey:
    """Write a new key; it becomes the signing key (key ids sort by creation time)."""
    directory = keys_dir()
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    kid = f"k{dt.datetime.now(dt.UTC):%Y%m%d%H%M%S%f}{secrets.token_hex(2)}"
    private = Ed25519PrivateKey.generate()
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    path = directory / f"{kid}.pem"
    path.write_bytes(pem)
    path.chmod(0o600)
    load_keys.cache_clear()
    return SigningKey(kid=kid, private=private)


@lru_cache(maxsize=1)
def load_keys() -> dict[str, SigningKey]:
    directory = keys_dir()
    found = {}
    for path in sorted(directory.glob("k*.pem")) if directory.exists() else []:
        private = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if isinstance(private, Ed25519PrivateKey):
            found[path.stem] = SigningKey(kid=path.stem, private=private)
    return found


def signing_key() -> SigningKey:
    keys = load_keys()
    if not keys:
        if not settings.PASSNUM_SIGNING_AUTOCREATE:
            raise RuntimeError("no signing key: run `passnum keys rotate` once")
        return create_key()
    return keys[max(keys)]


def sign_code(code: str) -> str:
    key = signing_key()
    message = f"{PREFIX}.{code}"
    return f"{message}.{key.kid}.{_b64(key.private.sign(message.encode()))}"


def verify_payload(payload: str, public_keys: dict[str, Ed25519PublicKey] | None = None) -> str:
    """Return the voucher code carried by a genuine payload, or raise SignatureError."""
    parts = payload.strip().split(".")
    if len(parts) != 4 or parts[0] != PREFIX:
        raise SignatureError("Ce QR code n’est pas celui d’un pass numérique.", "qr_malformed")
    _, code, kid, signature = parts
    if public_keys is None:
        public_keys = {kid_: k.private.public_key() for kid_, k in load_keys().items()}
    key = public_keys.get(kid)
    if key is None:
        raise SignatureError("Ce QR code est signé par une clé inconnue.", "qr_unknown_key")
    try:
        key.verify(_unb64(signature), f"{PREFIX}.{code}".encode())
    except (InvalidSignature, ValueError) as exc:
        raise SignatureError("Ce QR code a été modifié : sa signature ne correspond pas.", "qr_bad_signature") from exc
    return code


def published_keys() -> dict:
    """The JSON document at /.well-known/passnum-keys.json."""
    return {
        "algorithm": "Ed25519",
        "payload": "PN1.<code>.<kid>.<base64url(signature over 'PN1.<code>')>",
        "keys": [{"kid": k.kid, "public_key": k.public_b64, "encoding": "base64url-raw"} for k in load_keys().values()],
    }
