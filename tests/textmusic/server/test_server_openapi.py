"""The service's OpenAPI document is the contract's, and the running service honours it (schemathesis).

The server is the real `python -m textmusic serve` on loopback; schemathesis reads /openapi.json from it
and sends generated requests, valid and invalid, with a real key. No 5xx, and every answer must match
the documented status codes, content types, headers and body schemas.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from tests.support.service import Server, auth, create_key, start_server
from textmusic.contract import DURATION_RANGE, STATUS_PATH, SUBMIT_PATH, VERSION_KINDS


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, str]]:
    # A limit no generated run can reach (429 has its own tests) and a balance that runs out: 402s too.
    srv = start_server(tmp_path_factory.mktemp("tm-openapi"), "--rate-limit", "100000/1s")
    try:
        yield srv, create_key(srv.data, 2.0)
    finally:
        srv.crash()  # queued renders of generated requests are not worth waiting for


@pytest.fixture(scope="module")
def openapi_doc(api: tuple[Server, str]) -> dict[str, Any]:
    resp = httpx.get(api[0].url("/openapi.json"))
    assert resp.status_code == 200
    return resp.json()


def _built_document() -> dict[str, Any]:
    """The document the app builds, read at import time (schemathesis parametrizes at collection)."""
    from textmusic.server.app import create_app

    with tempfile.TemporaryDirectory(prefix="tm-openapi-doc-") as data:
        return create_app(Path(data)).openapi()


BUILT_DOCUMENT = _built_document()
schema = schemathesis.openapi.from_dict(BUILT_DOCUMENT)


def test_served_document_is_the_tested_one(openapi_doc: dict[str, Any]) -> None:
    assert openapi_doc == BUILT_DOCUMENT


def test_document_describes_the_endpoints(openapi_doc: dict[str, Any]) -> None:
    paths = openapi_doc["paths"]
    submit = paths[SUBMIT_PATH]["post"]
    status = paths[STATUS_PATH]["get"]
    assert submit["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/TextToMusicRequest"
    }
    assert submit["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/TextToMusicResponse"
    )
    assert status["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/Track")
    for op, codes in ((submit, {"400", "401", "402", "429", "500"}), (status, {"401", "404", "429", "500"})):
        assert codes <= set(op["responses"])
        for code in codes:
            assert op["responses"][code]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorResponse")
        assert "422" not in op["responses"]  # this service answers 400, never 422
        assert op["security"] == [{"HTTPBearer": []}]
    assert "Retry-After" in submit["responses"]["429"]["headers"]
    assert {"X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"} <= set(
        submit["responses"]["200"]["headers"]
    )
    audio = paths["/api/v1/audio/{filename}"]["get"]
    audio_types = {"audio/wav", "audio/mpeg", "audio/flac", "audio/ogg", "audio/mp4", "audio/midi"}  # midi: a version
    assert set(audio["responses"]["200"]["content"]) == audio_types
    assert "206" in audio["responses"] and "410" in audio["responses"]


def test_request_schema_is_exact(openapi_doc: dict[str, Any]) -> None:
    schemas = openapi_doc["components"]["schemas"]
    request = schemas["TextToMusicRequest"]
    props = request["properties"]
    assert request["additionalProperties"] is False
    assert "all three" in request["description"] and "lyrics only" in request["description"]
    assert props["prompt_strength"]["minimum"] == 0 and props["prompt_strength"]["maximum"] == 10
    assert props["seed"]["anyOf"][0] == {"maximum": 2**32 - 1, "minimum": 0, "type": "integer"}
    assert props["num_songs"]["enum"] == [1, 2]
    assert props["output_format"]["enum"] == ["flac", "mp3", "wav", "ogg", "m4a"]
    bit_rates = props["output_bit_rate"]["anyOf"]
    assert {"type": "integer", "enum": [128, 192, 256, 320]} in bit_rates
    assert {"type": "string", "enum": ["128", "192", "256", "320"]} in bit_rates
    assert props["tags"]["anyOf"][0]["items"]["minLength"] == 1
    duration = props["duration_seconds"]
    assert duration["x-extension"] == "textmusic-local" and "EXTENSION" in duration["description"]
    assert duration["anyOf"][0] == {"type": "number", "minimum": DURATION_RANGE[0], "maximum": DURATION_RANGE[1]}
    versions = props["versions"]
    assert versions["x-extension"] == "textmusic-local" and "cost nothing extra" in versions["description"]
    assert versions["anyOf"][0] == {"type": "array", "items": {"type": "string", "enum": list(VERSION_KINDS)}}
    assert schemas["Track"]["properties"]["versions"]["items"]["$ref"].endswith("/TrackVersion")
    assert set(schemas["TrackVersion"]["required"]) == {"name", "audio_url", "duration_seconds"}
    error = schemas["ErrorResponse"]
    assert set(error["required"]) >= {"error"}


@schema.parametrize()
@settings(max_examples=50, deadline=None, suppress_health_check=list(HealthCheck))
def test_service_honours_its_openapi_document(case: schemathesis.Case, api: tuple[Server, str]) -> None:
    """No 5xx, and every answer (status, content type, headers, body) as the document says.

    Every built-in check runs but one: the cross-field rules (the combination table, a bit rate only with
    mp3/m4a, a blank string counting as absent) are in the document's prose, not its JSON Schema, so a
    schema-valid body may rightly be refused with 400. Schema-invalid bodies must still be refused.
    """
    server, key = api
    case.call_and_validate(
        base_url=server.base,
        headers=auth(key),
        timeout=30,
        excluded_checks=[schemathesis.checks.positive_data_acceptance],
    )
