"""The review server (flows/review.py) for real on 127.0.0.1, over a catalog the pipeline made (synthetic audio
from the embedded local service): who may use it, what it serves, what it refuses, and what it writes."""

from __future__ import annotations

import http.client
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from flows.review import MAX_BODY_BYTES, ReviewServer, cookie_name, serve
from tasks.catalog.decisions import MAX_NOTE_CHARS, REVIEW_CSV, decision_for, load_decisions
from tasks.catalog.ledger import LedgerRecord
from tests.support import ROOT
from tests.support.catalogs import takes


def decision_body(record: LedgerRecord, decision: str = "reject", note: str = "") -> dict[str, object]:
    """What the page's JS posts for a card."""
    return {"track_id": record.track_id, "song_index": record.song_index, "seed": record.seed,
            "file": record.audio_path, "decision": decision, "note": note}


def base(server: ReviewServer) -> str:
    return f"http://127.0.0.1:{server.port}"


def post(server: ReviewServer, body: object, **headers: str) -> httpx.Response:
    return httpx.post(f"{base(server)}/api/decisions", json=body, headers={"X-Review-Token": server.token, **headers})


def raw_get(server: ReviewServer, path: str) -> tuple[int, bytes]:
    """A GET sent byte for byte as given (httpx would resolve `..` before sending)."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        conn.request("GET", path, headers={"X-Review-Token": server.token})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def review_bytes(catalog: Path) -> bytes | None:
    path = catalog / REVIEW_CSV
    return path.read_bytes() if path.exists() else None


def test_the_catalog_has_four_delivered_takes(catalog: Path) -> None:
    assert [(r.track_id, r.song_index) for r in takes(catalog)] == [
        ("calm-1", 0), ("pads-3", 0), ("pair-2", 0), ("pair-2", 1)]
    assert all((catalog / r.audio_path).is_file() for r in takes(catalog))


def test_binding_anywhere_but_loopback_is_refused(catalog: Path, tmp_path: Path) -> None:
    for host in ("0.0.0.0", "192.168.1.10", "::", "example.com"):
        with pytest.raises(ValueError, match="loopback"):
            serve(catalog, host=host)
    with pytest.raises(ValueError, match="no ledger"):
        serve(tmp_path)


def test_the_url_printed_carries_a_fresh_token_for_loopback(server: ReviewServer) -> None:
    assert server.url == f"http://127.0.0.1:{server.port}/?token={server.token}"
    assert len(server.token) >= 40
    assert httpx.get(server.url).status_code == 200


def other_token(token: str) -> str:
    """The token with its first character changed (a random token may itself start with the replacement)."""
    return ("y" if token[0] == "x" else "x") + token[1:]


def test_every_path_wants_the_token(server: ReviewServer, catalog: Path) -> None:
    audio = takes(catalog)[0].audio_path
    for path in ("/", "/api/decisions", f"/{audio}", "/nothing-here"):
        assert httpx.get(base(server) + path).status_code == 403, path
        assert httpx.get(base(server) + path, params={"token": other_token(server.token)}).status_code == 403, path
        assert httpx.get(base(server) + path, headers={"X-Review-Token": "wrong"}).status_code == 403, path
        assert httpx.get(base(server) + path, cookies={cookie_name(server.port): "wrong"}).status_code == 403, path
    before = review_bytes(catalog)
    refused = httpx.post(f"{base(server)}/api/decisions", json=decision_body(takes(catalog)[0]))
    assert refused.status_code == 403 and review_bytes(catalog) == before
    assert httpx.get(f"{base(server)}/api/decisions", headers={"X-Review-Token": server.token}).status_code == 200


def test_the_page_sets_a_strict_http_only_cookie_that_opens_the_audio(server: ReviewServer, catalog: Path) -> None:
    with httpx.Client(base_url=base(server)) as client:
        page = client.get("/", params={"token": server.token})
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        cookie = page.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie and server.token.lower() in cookie
        assert page.headers["referrer-policy"] == "no-referrer" and page.headers["x-frame-options"] == "DENY"
        for record in takes(catalog):  # with the cookie alone, as the page's <audio> elements ask
            audio = client.get(f"/{record.audio_path}")
            assert audio.status_code == 200 and audio.content == (catalog / record.audio_path).read_bytes()
        part = client.get(f"/{takes(catalog)[0].audio_path}", headers={"Range": "bytes=0-99"})
        assert part.status_code == 206 and len(part.content) == 100  # a browser seeks with byte ranges


def test_a_post_from_another_site_is_refused(server: ReviewServer, catalog: Path) -> None:
    before = review_bytes(catalog)
    body = decision_body(takes(catalog)[0])
    for origin in ("http://evil.example", "null", f"http://127.0.0.1:{server.port + 1}", f"https://localhost:{server.port}"):
        response = post(server, body, Origin=origin)
        assert response.status_code == 403, origin
    assert review_bytes(catalog) == before


def test_only_json_is_accepted_so_a_plain_form_cannot_post(server: ReviewServer, catalog: Path) -> None:
    before = review_bytes(catalog)
    body = httpx.Request("POST", "/", json=decision_body(takes(catalog)[0])).content
    for content_type in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"):
        response = httpx.post(f"{base(server)}/api/decisions", content=body,
                              headers={"X-Review-Token": server.token, "Content-Type": content_type})
        assert response.status_code == 415, content_type
    assert review_bytes(catalog) == before


def test_another_host_name_is_refused_against_dns_rebinding(server: ReviewServer) -> None:
    for host in ("evil.example", f"evil.example:{server.port}", f"127.0.0.1:{server.port + 1}", "127.0.0.1"):
        response = httpx.get(server.url, headers={"Host": host})
        assert response.status_code == 403, host
    assert httpx.get(server.url, headers={"Host": f"localhost:{server.port}"}).status_code == 200


def test_nothing_but_the_takes_and_waveforms_is_served(server: ReviewServer, catalog: Path) -> None:
    waveforms = catalog / ".waveforms"
    waveforms.mkdir(exist_ok=True)
    (waveforms / "probe.svg").write_text("<svg xmlns='http://www.w3.org/2000/svg'/>")
    assert raw_get(server, "/.waveforms/probe.svg") == (200, (waveforms / "probe.svg").read_bytes())
    (catalog / "support").mkdir(exist_ok=True)
    (catalog / "support" / "answer.json").write_text('{"secret": "raw answer"}')
    ledger = (catalog / "ledger.csv").read_bytes()
    refused = ["/ledger.csv", "/ledger.parquet", "/rejects.csv", "/.ledger.jsonl", "/support/answer.json",
               "/../ledger.csv", "/%2e%2e/ledger.csv", "/.waveforms/../ledger.csv", "/.waveforms/%2e%2e/ledger.csv",
               "/.waveforms/..%2fledger.csv", "/.waveforms/../../../../etc/passwd", "/%2fetc%2fpasswd",
               "//etc/passwd", "/.waveforms/", "/.waveforms/../support/answer.json",
               f"/./{takes(catalog)[0].audio_path}/.."]
    for path in refused:
        status, content = raw_get(server, path)
        assert status == 404, path
        assert ledger not in content and b"raw answer" not in content and b"root:" not in content, path


def test_a_take_the_ledger_does_not_hold_is_refused_and_nothing_is_written(server: ReviewServer,
                                                                            catalog: Path) -> None:
    before = review_bytes(catalog)
    take = decision_body(takes(catalog)[0])
    unknown = [{**take, "track_id": "nope"}, {**take, "seed": take["seed"] + 1}, {**take, "song_index": 1},
               {**take, "seed": None}]
    for body in unknown:
        assert post(server, body).status_code == 404, body
    malformed = [{**take, "decision": "maybe"}, {**take, "note": "n" * (MAX_NOTE_CHARS + 1)},
                 {**take, "file": "ledger.csv"}, {**take, "song_index": "first"}, {"decision": "reject"}, []]
    for body in malformed:
        assert post(server, body).status_code == 400, body
    huge = post(server, {**take, "padding": "x" * MAX_BODY_BYTES})
    assert huge.status_code == 413
    assert review_bytes(catalog) == before


def test_a_decision_is_stored_read_back_and_published(server: ReviewServer, catalog: Path) -> None:
    pair = [r for r in takes(catalog) if r.track_id == "pair-2"]
    page = catalog / "index.html"
    published_before = page.stat().st_mtime_ns if page.exists() else 0
    answer = post(server, {**decision_body(pair[1], "reject", note="=too busy, redo"), "file": ""},
                  Origin=f"http://localhost:{server.port}")
    assert answer.status_code == 200, answer.text
    stored = answer.json()
    assert stored["decision"] == "reject" and stored["file"] == pair[1].audio_path and stored["decided_at"]
    entries = load_decisions(catalog)
    assert decision_for(pair[1], entries).model_dump() == stored  # type: ignore[union-attr]
    assert decision_for(pair[1], entries).note == "=too busy, redo"  # type: ignore[union-attr]
    assert decision_for(pair[0], entries) is None  # the other song of the row is another take
    assert page.stat().st_mtime_ns > published_before  # the static page was written again
    listed = httpx.get(f"{base(server)}/api/decisions", headers={"X-Review-Token": server.token}).json()
    assert stored in listed
    changed = post(server, decision_body(pair[1], "approve"))
    assert changed.status_code == 200
    assert decision_for(pair[1], load_decisions(catalog)).decision == "approve"  # type: ignore[union-attr]
    assert sum(e.track_id == "pair-2" for e in load_decisions(catalog)) == 1


def test_decisions_survive_a_restart_with_a_new_token(catalog: Path) -> None:
    record = next(r for r in takes(catalog) if r.track_id == "pads-3")
    with serve(catalog) as first:
        assert post(first, decision_body(record, "reject", note="check the ending")).status_code == 200
        old_token = first.token
    with serve(catalog) as second:
        assert second.token != old_token
        assert httpx.get(f"{base(second)}/api/decisions", headers={"X-Review-Token": old_token}).status_code == 403
        listed = httpx.get(f"{base(second)}/api/decisions", headers={"X-Review-Token": second.token}).json()
    kept = [e for e in listed if (e["track_id"], e["song_index"], e["seed"]) ==
            (record.track_id, record.song_index, record.seed)]
    assert [(e["decision"], e["note"]) for e in kept] == [("reject", "check the ending")]


def test_the_command_prints_the_url_and_ctrl_c_stops_it_cleanly(catalog: Path) -> None:
    code = "import sys; from pathlib import Path; from flows.review import review_command; " \
           "review_command(Path(sys.argv[1]), 0)"
    ignore_ctrl_c = lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)  # noqa: E731 (inherited, as from a shell)
    proc = subprocess.Popen([sys.executable, "-c", code, str(catalog)], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, preexec_fn=ignore_ctrl_c)
    try:
        lines = [proc.stdout.readline() for _ in range(2)]  # type: ignore[union-attr]
        url = lines[1].strip()
        assert url.startswith("http://127.0.0.1:") and "/?token=" in url, lines
        assert httpx.get(url).status_code == 200
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)  # stop's bounds: 5 s graceful shutdown, then a 10 s join
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "review server stopped" in out and "Traceback" not in err
    with pytest.raises(httpx.ConnectError):
        httpx.get(url)
