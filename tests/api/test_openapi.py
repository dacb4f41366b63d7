"""The OpenAPI document is a contract: pinned in openapi.snapshot.json. After a deliberate change, regenerate it
with `UPDATE_SNAPSHOTS=1 make test` and review the diff. The error codes are documented in docs/api.md."""

import json
import os
import re
from pathlib import Path

import pytest

from passnum.api.problems import PROBLEMS
from passnum.vouchers.redemption import REFUSALS

pytestmark = pytest.mark.django_db

SNAPSHOT = Path(__file__).with_name("openapi.snapshot.json")
DOCS = Path(__file__).resolve().parents[2] / "docs" / "api.md"


def test_openapi_document_matches_the_snapshot(client):
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    current = json.dumps(response.json(), sort_keys=True, indent=2, ensure_ascii=False) + "\n"
    if os.environ.get("UPDATE_SNAPSHOTS") == "1":
        SNAPSHOT.write_text(current, encoding="utf-8")
        return
    assert SNAPSHOT.exists(), f"{SNAPSHOT.name} manque : créez-le avec `UPDATE_SNAPSHOTS=1 make test`."
    if SNAPSHOT.read_text(encoding="utf-8") != current:
        pytest.fail(
            f"Le document OpenAPI a changé et ne correspond plus à tests/api/{SNAPSHOT.name}. Si le changement est "
            "voulu, régénérez l’instantané avec `UPDATE_SNAPSHOTS=1 make test` et relisez le diff (c’est un "
            "contrat avec les logiciels clients).",
            pytrace=False,
        )


def test_openapi_documents_bearer_auth_and_problem_errors(client):
    doc = client.get("/api/v1/openapi.json").json()
    assert doc["components"]["securitySchemes"]["ApiKeyAuth"] == {"type": "http", "scheme": "bearer"}
    redeem = doc["paths"]["/api/v1/redemptions"]["post"]
    assert set(redeem["responses"]) >= {"200", "201", "401", "403", "404", "409", "422", "429"}
    assert list(redeem["responses"]["409"]["content"]) == ["application/problem+json"]
    assert any(p["name"] == "Idempotency-Key" and p["in"] == "header" for p in redeem["parameters"])


def test_every_refusal_has_a_problem_type():
    assert set(REFUSALS) <= set(PROBLEMS)
    assert all(PROBLEMS[code].status == status for code, status in REFUSALS.items())


def test_docs_list_every_error_code_with_its_status():
    text = DOCS.read_text(encoding="utf-8")
    rows = dict(re.findall(r"^\| `([a-z_]+)` \| (\d{3}) \|", text, flags=re.M))
    assert {code: int(status) for code, status in rows.items()} == {code: p.status for code, p in PROBLEMS.items()}
