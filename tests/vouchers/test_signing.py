import base64

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from django.core.management import call_command

from passnum.vouchers import codes, signing


@pytest.fixture(autouse=True)
def keys_dir(tmp_path, settings):
    settings.PASSNUM_SIGNING_KEYS_DIR = tmp_path / "keys"
    signing.load_keys.cache_clear()
    yield
    signing.load_keys.cache_clear()


def a_code():
    b = "7KQ4M2XD9FTB"
    return b + codes.check_symbol(b)


def test_sign_and_verify():
    payload = signing.sign_code(a_code())
    assert payload.startswith(f"PN1.{a_code()}.k")
    assert signing.verify_payload(payload) == a_code()


def test_offline_verification_with_published_keys_only():
    payload = signing.sign_code(a_code())
    doc = signing.published_keys()
    keys = {
        k["kid"]: Ed25519PublicKey.from_public_bytes(base64.urlsafe_b64decode(k["public_key"] + "=="))
        for k in doc["keys"]
    }
    assert signing.verify_payload(payload, public_keys=keys) == a_code()


@pytest.mark.parametrize(
    ("mutate", "error"),
    [
        (lambda p: p.replace(a_code(), "0000000000000"), "qr_bad_signature"),
        (lambda p: p[:-3] + ("AAA" if not p.endswith("AAA") else "BBB"), "qr_bad_signature"),
        (lambda p: p.replace(".k", ".kUNKNOWN", 1), "qr_unknown_key"),
        (lambda p: "PN2" + p[3:], "qr_malformed"),
        (lambda p: a_code(), "qr_malformed"),
        (lambda p: p + ".extra", "qr_malformed"),
    ],
)
def test_tampered_payloads_are_refused(mutate, error):
    payload = signing.sign_code(a_code())
    with pytest.raises(signing.SignatureError) as exc:
        signing.verify_payload(mutate(payload))
    assert exc.value.code == error


def test_rotation_keeps_old_passes_valid():
    old = signing.sign_code(a_code())
    old_kid = old.split(".")[2]
    call_command("keys", "rotate")
    new = signing.sign_code(a_code())
    assert new.split(".")[2] != old_kid
    assert signing.verify_payload(old) == a_code()
    assert signing.verify_payload(new) == a_code()
    assert len(signing.published_keys()["keys"]) == 2


def test_no_autocreate_in_production(settings):
    settings.PASSNUM_SIGNING_AUTOCREATE = False
    with pytest.raises(RuntimeError):
        signing.sign_code(a_code())


def test_well_known_endpoint(client):
    signing.sign_code(a_code())
    response = client.get("/.well-known/passnum-keys.json")
    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == "*"
    assert response.json()["algorithm"] == "Ed25519" and len(response.json()["keys"]) == 1
