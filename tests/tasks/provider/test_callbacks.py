"""Callbacks (webhooks) over real loopback HTTP: a stand-in provider calls the run's receiver back.

Signed callbacks are believed (a track costs its POST only); unsigned ones are confirmed by one status poll;
duplicates, late words and forged, unknown, huge or unreadable callbacks change nothing they should not; a
lost callback leaves the track to the poller. Money is as without callbacks: one POST and one charge a row."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import threading
import time
from pathlib import Path

import httpx
import pytest

from tasks.generation.machinery import Generation
from tasks.intake.plan import plan_rows
from tasks.intake.validate import BriefRow
from tasks.provider.callbacks import MAX_LOGGED, CallbackReceiver
from tasks.provider.preflight import PreflightError, check_provider
from tasks.run import Provider, RunOptions
from tasks.settings import PipelineSettings
from tests.support.generation import CATALOG, QUICK, quick_profile
from textmusic.client import TextMusicClient
from textmusic.contract import TextToMusicRequest
from textmusic.providers import AnswerPaths, CallbackSpec, Profile, load_profile
from textmusic.providers.callback import Signature, sign, verify, with_url
from textmusic.settings import TextMusicSettings
from textmusic.testing.standins import Shape, StandIn

API = TextMusicSettings(max_attempts=3, poll_deadline_seconds=30)
SECRET = "cb-secret-0123456789abcdef"
STANDARD_WEBHOOKS = Signature(header="webhook-signature", encoding="base64", prefix="v1,",
                              timestamp_header="webhook-timestamp", id_header="webhook-id")


def callback_profile(signed: bool, **update: object) -> Profile:
    """The verbatik profile with callbacks as the stand-in sends them: the track under `track`, the event's
    word in its status field. Expected ready in 2 s: the fallback poll (3 × that) never races a callback sent
    after 0.4 s, however loaded the machine."""
    answer = AnswerPaths(track=["track"], id=["id"], status=["status"], audio_url=["audio_url"])
    spec = CallbackSpec(url_field="callBackUrl", answer=answer, status_words={"text": "pending", "first": "pending"},
                        signature=STANDARD_WEBHOOKS if signed else None)
    return quick_profile(callback=spec, **{"expected_ready_seconds": 2.0, **update})


def rows(n: int, start: int = 1) -> list:
    brief = [BriefRow(i, f"t{i}", f"Row {i}", TextToMusicRequest(prompt=f"calm piano {i}", seed=10 * i,
                                                                  output_format="flac"), {})
             for i in range(start, start + n)]
    return plan_rows(brief, "demo", "hosted", False)


class Run:
    """Rows through a run's generation machinery against `api`, started in the background."""

    def __init__(self, api: StandIn, profile: Profile, out: Path, planned: list) -> None:
        profile = profile.model_copy(update={"base_url": api.base_url})
        self.journal: list = []
        self.client = TextMusicClient(api.base_url, api.api_key, profile=profile, settings=API)
        self.gen = Generation(self.client, out, CATALOG, Provider.of(profile), profile, QUICK, RunOptions(),
                              self.journal.extend, 0.25)
        self.futures = self.gen.add(planned, {})

    def records(self) -> list:
        try:
            return [r for f in self.futures for r in f.result(timeout=30)]
        finally:
            self.gen.close()
            self.client.close()


def audio_gets(api: StandIn) -> int:
    return sum(1 for method, path, _, _ in api.requests if method == "GET" and path.startswith("/audio/"))


def wait_for(condition, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def signed_post(url: str, body: bytes, secret: str = SECRET) -> httpx.Response:
    headers = {"webhook-id": "msg_test", "webhook-timestamp": str(int(time.time()))}
    headers["webhook-signature"] = sign(STANDARD_WEBHOOKS, secret.encode(), headers, body)
    return httpx.post(url, content=body, headers=headers, timeout=5)


def tracked(run: Run, url: str) -> tuple[str, str]:
    """(the provider's track id, our row's track_id) of the submission sent callback URL `url`."""
    state = next(s for s in run.gen._open() if s.token and url.endswith(s.token))
    return state.jobs[0].track.id, state.row.track_id


@pytest.fixture
def secret(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("TRACKFOUNDRY_CALLBACK_SECRET", SECRET)
    return SECRET


def test_signed_callbacks_deliver_every_track_for_its_post_alone_and_duplicates_or_a_late_failed_change_nothing(
        tmp_path: Path, secret: str) -> None:
    shape = Shape(audio_seconds=4.0, callbacks="signed", callback_secret=secret, seconds_to_ready=0.4,
                  callback_copies=3, late_word="failed", callback_stages=("text",))
    with StandIn(shape) as api:
        run = Run(api, callback_profile(signed=True), tmp_path, rows(4))
        records = run.records()
        assert [r.status for r in records] == ["ready"] * 4, [r.error for r in records]
        assert len(api.posts) == 4 and len(api.charges) == 4 and api.poll_count == 0  # 1 metered request a track
        assert audio_gets(api) == 4  # each track downloaded once, though its callback came 3 times
        wait_for(lambda: len(api.callbacks_sent) == 4 * 5)  # text, 3 copies, late "failed"
        sent = api.callbacks_sent
    assert {status for _, _, status in sent} == {200}  # every callback answered at once with a 2xx
    assert [r.status for r in run.journal if r.status in ("ready", "failed")] == ["ready"] * 4  # journaled once
    assert all(body["callBackUrl"].startswith("http://127.0.0.1:") for body in api.posts)
    assert len({body["callBackUrl"] for body in api.posts}) == 4  # one token per row


def test_unsigned_callbacks_are_confirmed_by_one_status_request_each(tmp_path: Path) -> None:
    shape = Shape(audio_seconds=4.0, callbacks="unsigned", seconds_to_ready=0.4, callback_copies=2,
                  callback_stages=("text", "first"))
    with StandIn(shape) as api:
        records = Run(api, callback_profile(signed=False), tmp_path, rows(4)).records()
        assert [r.status for r in records] == ["ready"] * 4, [r.error for r in records]
        assert len(api.charges) == 4 and len(api.posts) == 4
        assert sorted(api.polls.values()) == [1] * 4  # intermediate stages and the duplicate ask for nothing
        assert audio_gets(api) == 4


def test_a_lost_callback_leaves_the_track_to_the_poller(tmp_path: Path) -> None:
    with StandIn(Shape(audio_seconds=4.0, callbacks="lost", seconds_to_ready=0.3)) as api:
        records = Run(api, callback_profile(signed=False, expected_ready_seconds=0.3), tmp_path, rows(3)).records()
        assert [r.status for r in records] == ["ready"] * 3, [r.error for r in records]
        assert len(api.charges) == 3 and api.callbacks_sent == []
        assert all(n >= 1 for n in api.polls.values()) and len(api.polls) == 3


def test_forged_unknown_huge_unreadable_and_key_echoing_callbacks_change_nothing(
        tmp_path: Path, secret: str, caplog: pytest.LogCaptureFixture) -> None:
    shape = Shape(audio_seconds=4.0, callbacks="signed", callback_secret=secret, seconds_to_ready=1.5)
    with StandIn(shape) as api:
        run = Run(api, callback_profile(signed=True), tmp_path, rows(2))
        wait_for(lambda: len(api.posts) == 2 and len(run.gen.poller._heap) >= 2)
        url = api.posts[0]["callBackUrl"]
        track_id, row_id = tracked(run, url)
        forged = {"event": "ready", "track": {"id": track_id, "status": "ready",
                                               "audio_url": "http://127.0.0.1:9/forged.flac"}}
        body = json.dumps(forged).encode()
        assert signed_post(url, body, secret="not-the-secret").status_code == 401
        assert httpx.post(url, content=body, timeout=5).status_code == 401  # unsigned, to a signed profile
        stale = {"webhook-id": "m", "webhook-timestamp": str(int(time.time()) - 3600)}
        stale["webhook-signature"] = sign(STANDARD_WEBHOOKS, secret.encode(), stale, body)
        assert httpx.post(url, content=body, headers=stale, timeout=5).status_code == 401  # replayed: too old
        run_id, token = url.rsplit("/", 2)[-2:]
        assert signed_post(url.replace(run_id, "otherrun1234"), body).status_code == 404
        assert signed_post(url.replace(token, "not-a-token"), body).status_code == 404
        other = json.dumps({"event": "ready", "track": {"id": "someone-elses", "status": "ready"}}).encode()
        assert signed_post(url, other).status_code == 200  # an unknown track: ignored
        assert signed_post(url, b"x" * (2 << 20)).status_code == 413
        assert signed_post(url, b"<html>not json</html>").status_code == 400
        assert signed_post(url, b"[" * 200 + b"]" * 200).status_code == 400  # too deep
        counts = dict(run.gen.callbacks.counts)
        # the second row: a signed "failed" whose error echoes the API key
        url2 = api.posts[1]["callBackUrl"]
        track2, _ = tracked(run, url2)
        echo = {"event": "failed", "track": {"id": track2, "status": "failed", "error": f"bad key {api.api_key}"}}
        assert signed_post(url2, json.dumps(echo).encode()).status_code == 200
        records = run.records()
        assert len(api.charges) == 2 and len(api.posts) == 2  # nothing resubmitted
    first, second = sorted(records, key=lambda r: r.track_id != row_id)
    assert first.status == "ready" and audio_gets(api) == 1  # the real audio, not the forged URL
    assert second.status == "failed" and "[redacted]" in second.error and api.api_key not in second.error
    assert counts == {"bad or missing signature": 3, "unknown run or token": 2, "unknown track": 1,
                      "body larger than 1048576 bytes": 1, "unreadable body": 2}
    assert api.api_key not in caplog.text and api.api_key not in json.dumps([r.model_dump() for r in run.journal])


def test_a_callback_table_round_trips_through_toml_and_the_shipped_sunoapi_profile_uses_it(tmp_path: Path) -> None:
    profile = callback_profile(signed=True)
    path = tmp_path / "p.toml"
    path.write_text(profile.to_toml())
    assert load_profile(path) == profile
    suno = load_profile("sunoapi-org")
    assert suno.callback is not None and suno.callback.url_field == "callBackUrl"
    assert suno.request is not None and "callBackUrl" not in suno.request.constants


def test_a_signed_profile_without_its_secret_refuses_to_start(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TRACKFOUNDRY_CALLBACK_SECRET", raising=False)
    with StandIn(Shape(callbacks="signed")) as api, pytest.raises(RuntimeError, match="CALLBACK_SECRET"):
        Run(api, callback_profile(signed=True), tmp_path, rows(1))


def test_the_preflight_stops_a_signed_run_whose_secret_is_not_set(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TRACKFOUNDRY_CALLBACK_SECRET", raising=False)
    path = tmp_path / "signed.toml"
    path.write_text(callback_profile(signed=True).to_toml())
    api = TextMusicSettings(api_url="http://127.0.0.1:9", api_key="tf-test-key-123456")
    with pytest.raises(PreflightError, match="TRACKFOUNDRY_CALLBACK_SECRET"):
        check_provider(PipelineSettings(provider=str(path)), api)


def test_the_url_goes_at_a_dotted_path_and_signatures_verify_by_the_profiles_scheme() -> None:
    assert with_url({"a": 1, "hooks": {"x": 2}}, "hooks.done", "u") == {"a": 1, "hooks": {"x": 2, "done": "u"}}
    github = Signature(header="x-signature", encoding="hex", prefix="sha256=")  # no timestamp: the body alone
    body, key = b'{"id": "t1"}', b"k3y"
    good = {"x-signature": "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()}
    assert verify(github, key, good, body, now=0)
    assert not verify(github, key, good, body + b" ", now=0)  # another body
    assert not verify(github, b"other", good, body, now=0)
    rotating = {"x-signature": "sha256=00 " + good["x-signature"]}  # several signatures: any one may match
    assert verify(github, key, rotating, body, now=0)


def test_the_receiver_takes_a_public_base_url_with_a_path_and_logs_only_the_first_ignored_callbacks(
        caplog: pytest.LogCaptureFixture) -> None:
    handled: list[tuple[object, str, bool]] = []

    def handle(target: object, track, signed: bool) -> str:
        handled.append((target, track.id, signed))
        return "accepted" if track.id == "t1" else "unknown track"

    profile = callback_profile(signed=False)
    with CallbackReceiver(profile, "run1", handle, public_url="https://hooks.studio.example/tf/") as receiver, \
            httpx.Client(timeout=5) as http:
        token = receiver.register("row-1")
        url = receiver.url_for(token)
        assert url == f"https://hooks.studio.example/tf/callbacks/run1/{token}"
        local = f"http://127.0.0.1:{receiver.port}/tf/callbacks/run1/{token}"  # as the ingress forwards it
        ready = {"event": "ready", "track": {"id": "t1", "status": "ready", "audio_url": "http://x/a.flac"}}
        assert http.post(local, json=ready).status_code == 200
        with caplog.at_level("WARNING", logger="tasks.provider.callbacks"):
            for i in range(MAX_LOGGED + 15):
                stray = {"event": "ready", "track": {"id": f"stray{i}", "status": "ready"}}
                assert http.post(local, json=stray).status_code == 200
    assert handled[0] == ("row-1", "t1", False)  # unsigned: handed on as such (the run confirms it by a poll)
    assert receiver.counts["unknown track"] == MAX_LOGGED + 15 and receiver.counts["accepted"] == 1
    assert len([r for r in caplog.records if "callback ignored" in r.getMessage()]) == MAX_LOGGED


def test_two_providers_of_a_run_share_a_fixed_callback_port_each_receiving_its_own_callbacks() -> None:
    """Per-row providers: each provider that calls back has its own receiver; on a fixed port (the one a studio's
    ingress forwards to) they share one listener, each callback reaching the receiver whose token it carries,
    the other's signature never accepted for it. The port is free again once both are stopped."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    got: dict[str, list[tuple[object, str, bool]]] = {"a": [], "b": []}
    handler = lambda name: lambda target, track, signed: got[name].append((target, track.id, signed)) or "accepted"  # noqa: E731
    ready = {"event": "ready", "track": {"id": "t1", "status": "ready", "audio_url": "http://x/a.flac"}}
    with pytest.MonkeyPatch.context() as env, httpx.Client(timeout=5) as http:
        env.setenv("TRACKFOUNDRY_CALLBACK_SECRET", SECRET)
        signed = callback_profile(signed=True)
        a = CallbackReceiver(signed, "run1", handler("a"), port=port).start()
        b = CallbackReceiver(callback_profile(signed=False), "run1", handler("b"), port=port).start()
        assert a.port == b.port == port
        to_a, to_b = a.url_for(a.register("row-a")), b.url_for(b.register("row-b"))
        body = json.dumps(ready).encode()
        headers = {"webhook-id": "m1", "webhook-timestamp": str(int(time.time()))}
        headers["webhook-signature"] = sign(signed.callback.signature, SECRET.encode(), headers, body)  # type: ignore[union-attr]
        assert http.post(to_a, content=body, headers=headers).status_code == 200
        assert http.post(to_b, json=ready).status_code == 200
        assert http.post(to_a, json=ready).status_code == 401  # a's callbacks must be signed, whichever else listens
        assert http.post(to_a.replace(to_a.rsplit("/", 1)[1], "nope"), json=ready).status_code == 404
        assert got == {"a": [("row-a", "t1", True)], "b": [("row-b", "t1", False)]}
        assert a.counts["unknown run or token"] == b.counts["unknown run or token"] == 1
        a.stop()
        assert http.post(to_b, json=ready).status_code == 200  # b still listens
        b.stop()
        with pytest.raises(httpx.TransportError):
            http.post(to_b, json=ready)
    with socket.socket() as again:
        again.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        again.bind(("127.0.0.1", port))


def test_receivers_started_and_stopped_at_once_from_many_threads_share_the_fixed_port_cleanly() -> None:
    """Dask tasks of one process each open their own receiver: started and stopped concurrently on one fixed port,
    none fails to bind or to start, and every one that is started answers."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    errors: list[BaseException] = []

    def churn() -> None:
        try:
            for _ in range(4):
                receiver = CallbackReceiver(callback_profile(signed=False), "run1", lambda *a: "accepted",
                                            port=port).start()
                token = receiver.register("row")
                answer = httpx.post(receiver.url_for(token), json={"track": {"id": "t", "status": "ready"}},
                                    timeout=5)
                assert answer.status_code == 200, answer.status_code
                receiver.stop()
        except BaseException as exc:  # noqa: BLE001 - collected for the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=churn) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
