"""`trackfoundry probe`: check, with the smallest request, that the configured provider answers in a shape
its profile reads, before a large run spends anything.

One instrumental (seed 1, one song, 10 s where the provider honours a duration) is submitted, followed by
polling to the end, downloaded and decoded. Every JSON answer of the provider is recorded as it came (by
the client's transport, so the client itself is used unchanged), and the report says what the provider
sent — its own status words, its fields, where its audio lives — and whether the profile read all a run
needs. A profile with `[sync]` has its audio taken from the POST's answer (the one paid call); an accepted
answer that is audio to a profile without it is reported as a provider that looks synchronous. A profile with
`[callback]` has a receiver listen while the track is polled as usual: the callbacks that came (how many, their
words, signed and verified or not, when) are reported. The cost the provider reported is set beside the
profile's price model's figure for the length observed. `--auth-only` sends one request that costs nothing.
The key is never shown: everything taken from the provider goes through `TextMusicClient.redact`.
"""

from __future__ import annotations

import contextlib
import json
import re
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from textmusic.client import (
    AcceptedUnread,
    Download,
    NotFound,
    SyncAudioLost,
    TextMusicClient,
    TextMusicError,
    Unanswered,
    Unauthorized,
)
from textmusic.contract import BIT_RATE_FORMATS, FAILED, PENDING, READY, TextToMusicRequest, Track, TrackStatus
from textmusic.pricing import Price
from textmusic.providers import Profile, Synchronous
from textmusic.settings import TextMusicSettings

if TYPE_CHECKING:
    from tasks.provider.callbacks import CallbackReceiver, Handled

PROBE_PROMPT = "short calm test tone"
PROBE_SEED = 1
PROBE_SECONDS = 10  # only where the provider honours a duration (local_extensions)
PROBE_BIT_RATE = "128"
FIRST_POLL_SECONDS = 0.5
MAX_POLL_SECONDS = 5.0
RAW_EXCERPT_CHARS = 400
CALLBACK_GRACE_SECONDS = 5.0  # after the track ended: how long the probe still waits for a first callback
CALLBACK_QUIET_SECONDS = 1.0  # after a final callback: how long without another before the count is taken
SNIFF_BYTES = 16  # the first bytes of an answer that is not JSON, kept to tell audio from an error page
# The first bytes of the audio files providers send (an mp3 frame's sync word is checked apart).
AUDIO_MAGIC = {b"ID3": "MP3", b"RIFF": "WAV", b"fLaC": "FLAC", b"OggS": "Ogg"}


# --- recording the provider's answers -------------------------------------------------------------------


@dataclass(frozen=True)
class Recorded:
    """One exchange: the request's method and URL, the answer's status, and its text when it is JSON
    (decoded, not yet redacted; audio and other bodies are not kept)."""

    at: float  # time.monotonic() when it arrived
    method: str
    url: str
    status: int
    text: str | None
    content_type: str = ""
    head: bytearray = field(default_factory=bytearray)  # the first bytes of a body that is not JSON, once read


class _Replay(httpx.SyncByteStream):
    def __init__(self, data: bytes) -> None:
        self._data = data

    def __iter__(self) -> Iterator[bytes]:
        yield self._data


class _Peek(httpx.SyncByteStream):
    """A body passed through as it streams, its first bytes kept in `head`."""

    def __init__(self, inner: Any, head: bytearray) -> None:
        self._inner, self._head = inner, head

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._inner:
            if len(self._head) < SNIFF_BYTES:
                self._head.extend(chunk[:SNIFF_BYTES - len(self._head)])
            yield chunk

    def close(self) -> None:
        self._inner.close()


class AnswerLog(httpx.BaseTransport):
    """A transport that keeps every exchange, with the text of JSON answers (audio and other bodies pass
    through untouched, streamed)."""

    def __init__(self, inner: httpx.BaseTransport | None = None) -> None:
        self._inner = inner or httpx.HTTPTransport()
        self._lock = threading.Lock()
        self._entries: list[Recorded] = []

    @property
    def entries(self) -> list[Recorded]:
        with self._lock:
            return list(self._entries)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self._inner.handle_request(request)
        content_type = response.headers.get("content-type", "")
        if "json" not in content_type.lower():
            head = bytearray()
            self._keep(Recorded(time.monotonic(), request.method, str(request.url), response.status_code, None,
                                content_type, head))
            return httpx.Response(response.status_code, headers=response.headers, stream=_Peek(response.stream, head),
                                  extensions=response.extensions, request=request)
        try:
            wire = b"".join(response.stream)  # type: ignore[arg-type]
        finally:
            response.close()
        try:
            text = httpx.Response(response.status_code, headers=response.headers, content=wire).text
        except httpx.DecodingError:
            text = ""
        self._keep(Recorded(time.monotonic(), request.method, str(request.url), response.status_code, text,
                            content_type))
        return httpx.Response(response.status_code, headers=response.headers, stream=_Replay(wire),
                              extensions=response.extensions, request=request)

    def _keep(self, entry: Recorded) -> None:
        with self._lock:
            self._entries.append(entry)

    def close(self) -> None:
        self._inner.close()


def probe_client(profile: Profile, api_key: Any, settings: TextMusicSettings | None = None,
                 inner: httpx.BaseTransport | None = None) -> tuple[TextMusicClient, AnswerLog]:
    """A client for `profile` whose answers are recorded."""
    log = AnswerLog(inner)
    client = TextMusicClient(profile.base_url, api_key, profile=profile, settings=settings, transport=log)
    return client, log


# --- the report -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reading:
    """One reading of the track: the provider's word and what the profile made of it."""

    seconds: float  # since the submission was sent
    word: str | None
    status: TrackStatus
    known: bool  # the word is in the profile's vocabulary (True when there is no word)
    has_audio: bool


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool | None  # None: not reached
    detail: str = ""


@dataclass(frozen=True)
class SyncAnswer:
    """A synchronous provider's answer: the audio came in the POST's answer."""

    seconds: float  # from the submission to the last byte of the audio
    bytes: int
    content_type: str


@dataclass(frozen=True)
class CallbackSeen:
    """One callback that passed the receiver's checks (signed ones verified)."""

    seconds: float  # since the submission was sent
    word: str | None
    status: TrackStatus
    signed: bool
    ours: bool  # for the probe's track (else another track id)


@dataclass
class ProbeReport:
    provider: str
    base_url: str
    request: TextToMusicRequest
    expected_cents: int
    at_most_cents: int
    track_id: str | None = None
    readings: list[Reading] = field(default_factory=list)
    answers: dict[str, int] = field(default_factory=dict)  # "submission"/"status"/"other" → count
    fields: dict[str, list[str]] = field(default_factory=dict)  # answer kind → dotted field names seen
    extras: dict[str, str] = field(default_factory=dict)  # track fields outside the contract → how read
    ready_seconds: float | None = None
    last_pending_seconds: float | None = None
    cost_cents: int | None = None
    balance_cents: int | None = None
    reported_duration: float | None = None
    audio_hops: list[str] = field(default_factory=list)  # origins the download went through, in order
    same_origin: bool | None = None  # the audio was served by the API's origin
    download: Download | None = None
    container: str | None = None
    codec: str | None = None
    duration_seconds: float | None = None
    bit_rate: int | None = None
    sample_rate: int | None = None
    channels: int | None = None
    sync: SyncAnswer | None = None  # the profile's [sync]: the audio came in the POST's answer
    looks_synchronous: str | None = None  # no [sync], but the accepted answer was audio: what was seen
    callback_url: str | None = None  # the profile's [callback]: the URL sent (None: no callback asked)
    callbacks: list[CallbackSeen] = field(default_factory=list)
    callbacks_refused: dict[str, int] = field(default_factory=dict)  # why → how many (bad signature, ...)
    callback_waited: float | None = None  # seconds from the submission until the probe stopped listening
    price_cents: int | None = None  # the profile's price model's figure for the observed length
    priced_seconds: float | None = None  # the length it was priced for (reported, else measured)
    checks: list[Check] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def price_differs(self) -> bool:
        return self.cost_cents is not None and self.price_cents is not None and self.cost_cents != self.price_cents

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(c.ok for c in self.checks) and not self.errors

    @property
    def words(self) -> list[str]:
        """The provider's status words, in the order seen (repeats of the same word folded)."""
        out: list[str] = []
        for r in self.readings:
            if r.word is not None and (not out or out[-1] != r.word):
                out.append(r.word)
        return out

    @property
    def unknown_words(self) -> list[str]:
        return list(dict.fromkeys(r.word for r in self.readings if r.word is not None and not r.known))


def probe_request(profile: Profile, output_format: str = "mp3") -> TextToMusicRequest:
    """The smallest request: one instrumental song, seed 1, 10 s where the provider takes a duration."""
    return TextToMusicRequest(
        prompt=PROBE_PROMPT, lyrics="", seed=PROBE_SEED, num_songs=1, output_format=output_format,  # type: ignore[arg-type]
        output_bit_rate=PROBE_BIT_RATE if output_format in BIT_RATE_FORMATS else None,  # type: ignore[arg-type]
        duration_seconds=PROBE_SECONDS if profile.local_extensions else None,
    )


def probe_cost(request: TextToMusicRequest, profile: Profile) -> tuple[int, int]:
    """(expected, at most) cents for the request, by the profile's price model as the run's estimate uses it."""
    from tasks.intake.plan import expected_cost_cents, max_cost_cents
    from tasks.settings import PipelineSettings

    settings = PipelineSettings()
    return (expected_cost_cents(request, settings, profile), max_cost_cents(request, settings, profile))


def cost_warning(report: ProbeReport, price: Price) -> str:
    length = (f"{report.request.duration_seconds:g} s" if report.request.duration_seconds
              else "the provider's own length (no duration can be asked)")
    return (f"probe: this sends ONE paid request to {report.provider} ({report.base_url}): one instrumental "
            f"song of {length}, {report.request.output_format}; expected ${report.expected_cents / 100:.2f}, "
            f"at most ${report.at_most_cents / 100:.2f} (the profile's price: {price.model}, {price.cents} cents)")


def _flatten(value: Any, prefix: str = "", depth: int = 0) -> Iterator[str]:
    if isinstance(value, dict) and depth < 4:
        for key, item in value.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            yield name
            yield from _flatten(item, name, depth + 1)
    elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value) and depth < 4:
        for item in value:
            yield from _flatten(item, f"{prefix}[]", depth + 1)


def _origin(url: httpx.URL) -> str:
    default = {"http": 80, "https": 443}.get(url.scheme)
    port = f":{url.port}" if url.port and url.port != default else ""
    return f"{url.scheme}://{url.host}{port}"


def _excerpt(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= RAW_EXCERPT_CHARS else text[:RAW_EXCERPT_CHARS] + "…"


class _Prober:
    def __init__(self, client: TextMusicClient, log: AnswerLog, report: ProbeReport) -> None:
        self.client, self.log, self.report = client, log, report
        self.profile = client.profile
        self.t0 = time.monotonic()
        self.status_re = re.compile(re.escape(self.profile.status_path).replace(r"\{id\}", "[^/]+") + "$")

    def say(self, text: str) -> str:
        return self.client.redact(text)

    def fail(self, message: str) -> None:
        self.report.errors.append(self.say(message))

    def read(self, track: Track, at: float) -> None:
        word = track.status_word
        known = word is None or self.profile.status_for(word) is not None
        self.report.readings.append(Reading(round(at - self.t0, 3), word, track.effective_status, known,
                                            bool(track.audio_url)))
        for key in track.model_extra or {}:
            read_as = [name for name, paths in self.profile.answer.model_dump().items()
                       if any(p.split(".")[0] == key for p in paths)]
            self.report.extras[key] = f"read by the profile as {', '.join(read_as)}" if read_as else "ignored"
        if track.duration_seconds is not None:
            self.report.reported_duration = track.duration_seconds
        if track.cost_cents is not None and self.report.cost_cents is None:
            self.report.cost_cents = track.cost_cents

    def stuck(self, track: Track) -> bool:
        """An unknown word on a track that has its audio: the profile would keep it pending for ever."""
        word = track.status_word
        return bool(word and track.audio_url and self.profile.status_for(word) is None)

    def follow(self, track: Track, timeout: float, sleep: Callable[[float], None]) -> Track:
        interval = FIRST_POLL_SECONDS
        while track.effective_status == PENDING and not self.stuck(track):
            if time.monotonic() + interval > self.t0 + timeout:
                self.fail(f"the track was not ready after {timeout:g} s")
                break
            sleep(interval)
            interval = min(interval * 1.5, MAX_POLL_SECONDS)
            track = self.client.get_track(track.id)
            self.read(track, time.monotonic())
        return track

    def summarise_answers(self) -> None:
        base = httpx.URL(self.client.base_url)
        for entry in self.log.entries:
            url = httpx.URL(entry.url)
            if not (url.host == base.host and url.port == base.port):
                continue
            if entry.method == "POST" and url.path.endswith(httpx.URL(self.profile.submit_path).path):
                kind = "submission"
            elif entry.method == "GET" and self.status_re.search(url.path):
                kind = "status"
            else:
                kind = "other"
            if entry.text is None:
                continue
            self.report.answers[kind] = self.report.answers.get(kind, 0) + 1
            try:
                body = json.loads(self.say(entry.text))
            except ValueError:
                continue
            if kind != "other" and 200 <= entry.status < 300:
                seen = self.report.fields.setdefault(kind, [])
                seen.extend(f for f in _flatten(body) if f not in seen)


class _Callbacks:
    """The callbacks the probe's receiver handed on, with when each came (the receiver's threads add)."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.seen: list[tuple[float, Track, bool]] = []  # (time.monotonic(), track, signed)

    def handle(self, target: Any, track: Track, signed: bool) -> Handled:
        with self.cond:
            self.seen.append((time.monotonic(), track, signed))
            self.cond.notify_all()
        return "intermediate" if track.effective_status == PENDING else "accepted"


def probe_provider(client: TextMusicClient, log: AnswerLog, output_format: str = "mp3", timeout: float = 600.0,
                   workdir: Path | None = None, sleep: Callable[[float], None] = time.sleep,
                   cost: tuple[int, int] | None = None, *, callback_url: str | None = None,
                   callback_host: str = "127.0.0.1", callback_port: int = 0) -> ProbeReport:
    """Submit the smallest request, follow it to the end, download and measure the audio; never raises for
    what the provider answers (it goes into the report). A profile with `[sync]` has the audio taken from the
    POST's answer; one with `[callback]` has a receiver listen (on `callback_host:callback_port`, the provider
    sent `callback_url` or the receiver's loopback address) while the track is polled as usual."""
    from tasks.provider.callbacks import CallbackError, CallbackReceiver

    profile = client.profile
    request = probe_request(profile, output_format)
    expected, at_most = cost or probe_cost(request, profile)
    report = ProbeReport(profile.name, client.base_url, request, expected, at_most)
    prober = _Prober(client, log, report)
    try:
        with contextlib.ExitStack() as stack:
            if workdir is None:
                workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="trackfoundry-probe-")))
            receiver = collector = None
            if profile.callback is not None and profile.sync is not None:
                report.notes.append("the profile has both [sync] and [callback]: the audio comes in the POST's "
                                    "answer, no callback is asked")
            elif profile.callback is not None:
                collector = _Callbacks()
                try:
                    receiver = stack.enter_context(CallbackReceiver(
                        profile, f"probe-{uuid.uuid4().hex[:12]}", collector.handle, public_url=callback_url,
                        host=callback_host, port=callback_port))
                except CallbackError as exc:
                    prober.fail(f"no callback receiver, nothing sent: {exc}")
                    return report
                host = httpx.URL(client.base_url).host
                if callback_url is None and host not in ("127.0.0.1", "localhost", "::1"):
                    report.notes.append("TRACKFOUNDRY_CALLBACK_URL is not set: the provider was sent a loopback URL "
                                        "it cannot reach (set it to the public URL forwarding to "
                                        "TRACKFOUNDRY_CALLBACK_PORT)")
            prober.t0 = time.monotonic()
            if profile.sync is not None:
                _run_sync(prober, request, workdir)
            else:
                _run(prober, request, timeout, workdir, sleep, receiver, collector)
            if report.track_id is not None:
                _price(prober)
    finally:
        prober.summarise_answers()
    return report


def _submission_failed(p: _Prober, exc: TextMusicError, check: Callable[..., None], first: str) -> None:
    """What the report says of a submission that did not bring a usable answer."""
    if isinstance(exc, SyncAudioLost):
        check(first, False, exc.message)
        p.fail("the provider accepted the request (it is charged) but its audio did not come whole")
    elif isinstance(exc, AcceptedUnread):
        check(first, False, f"{exc.message}; the answer was: {_excerpt(exc.raw) or '(empty)'}")
        p.fail("the provider accepted the request (it may be charged) but the profile cannot read its answer")
    elif isinstance(exc, Unanswered):
        p.fail(f"{exc.message}")
    elif isinstance(exc, Unauthorized):
        p.fail(f"the provider refused the key ({exc.message})")
    else:
        p.fail(f"the submission was refused: {exc.message}")


def _audio_seen(entry: Recorded) -> str | None:
    """What says an accepted answer is audio (its Content-Type, or its first bytes), or None."""
    kind = entry.content_type.split(";")[0].strip().lower()
    if kind.startswith("audio/") or kind == "application/octet-stream":
        return f"Content-Type {kind}"
    head = bytes(entry.head)
    for magic, name in AUDIO_MAGIC.items():
        if head.startswith(magic):
            return f"its first bytes are {name}'s"
    if head[4:8] == b"ftyp":
        return "its first bytes are MP4's"
    if len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0:
        return "its first bytes are an MP3 frame's"
    return None


def _looks_synchronous(p: _Prober) -> None:
    """An accepted submission the profile could not read: when its answer was audio, the provider looks
    synchronous (the audio came in the POST's answer): the report says so, nothing is sent again."""
    posts = [e for e in p.log.entries if e.method == "POST" and 200 <= e.status < 300]
    if not posts:
        return
    seen = _audio_seen(posts[-1])
    if seen is None:
        return
    p.report.looks_synchronous = f"{seen}, after {posts[-1].at - p.t0:.1f} s"
    p.report.notes.append(f"the provider looks SYNCHRONOUS: its answer to the POST was audio ({seen}). Add "
                          '`[sync]` with `audio = "body"` to the profile (docs/providers.md, "Synchronous '
                          'providers") and probe again; this probe does not pay a second time')


def _run_sync(p: _Prober, request: TextToMusicRequest, workdir: Path) -> None:
    """The profile's `[sync]`: the one paid call is the POST whose answer carries the audio, into a temp file."""
    report = p.report
    checks: dict[str, Check] = {name: Check(name, None) for name in (
        "answered with audio", "audio downloaded and decoded", "file as asked", "duration read or measured")}

    def check(name: str, ok: bool, detail: str = "") -> None:
        checks[name] = Check(name, ok, p.say(detail))

    dest = workdir / f"probe.{request.output_format}"
    try:
        try:
            track = p.client.submit_sync(request, dest, lambda _id: None,
                                         idempotency_key=f"tf-probe-{uuid.uuid4().hex}")
        except TextMusicError as exc:
            _submission_failed(p, exc, check, "answered with audio")
            return
        at = time.monotonic()
        posts = [e for e in p.log.entries if e.method == "POST"]
        size = dest.stat().st_size
        report.sync = SyncAnswer(round(at - p.t0, 3), size, posts[-1].content_type if posts else "")
        report.track_id = p.say(track.id)
        report.ready_seconds = report.sync.seconds
        if track.duration_seconds is not None:
            report.reported_duration = track.duration_seconds
        if track.cost_cents is not None:
            report.cost_cents = track.cost_cents
        check("answered with audio", True, f"synchronously, after {report.sync.seconds:.1f} s, {size:,} bytes")
        _measure(p, track, dest, check)
    finally:
        report.checks = list(checks.values())


def _run(p: _Prober, request: TextToMusicRequest, timeout: float, workdir: Path,
         sleep: Callable[[float], None], receiver: CallbackReceiver | None = None,
         collector: _Callbacks | None = None) -> None:
    report = p.report
    checks: dict[str, Check] = {name: Check(name, None) for name in (
        "track id found", "status or audio URL found", "status words known", "ready",
        "audio downloaded and decoded", "file as asked", "duration read or measured")}

    def check(name: str, ok: bool, detail: str = "") -> None:
        checks[name] = Check(name, ok, p.say(detail))

    if receiver is not None:
        report.callback_url = receiver.url_for(receiver.register("probe"))
    try:
        try:
            answer = p.client.submit(request, idempotency_key=f"tf-probe-{uuid.uuid4().hex}",
                                     callback_url=report.callback_url)
        except TextMusicError as exc:
            _submission_failed(p, exc, check, "track id found")
            if isinstance(exc, AcceptedUnread):
                _looks_synchronous(p)
            return
        report.cost_cents, report.balance_cents = answer.cost_cents, answer.balance_cents
        track = answer.tracks[0]
        report.track_id = p.say(track.id)
        check("track id found", True, report.track_id)
        if len(answer.tracks) > 1:
            report.notes.append(f"{len(answer.tracks)} tracks answered for num_songs 1; the first is followed")
        p.read(track, time.monotonic())
        try:
            track = p.follow(track, timeout, sleep)
        except NotFound as exc:
            p.fail(f"the status path {p.profile.status_path} answered 404 ({exc.message}): set `status_path` "
                   "in the profile to where this provider tells a track's state")
        except TextMusicError as exc:
            p.fail(f"polling failed: {exc.message}")
        _judge_readings(p, track, check)
        if track.audio_url:
            _fetch(p, track, workdir, check)
        if receiver is not None and collector is not None:
            _await_callbacks(p, receiver, collector, track.id, timeout, check)
    finally:
        report.checks = list(checks.values())


def _await_callbacks(p: _Prober, receiver: CallbackReceiver, collector: _Callbacks, track_id: str,
                     timeout: float, check: Callable[..., None]) -> None:
    """Listen on after the track ended: until a callback saying it ended came and no other followed for a
    moment (duplicates are counted), or, none having come, for a few seconds more (within the timeout)."""
    report = p.report
    ended_at = time.monotonic()
    give_up = min(ended_at + CALLBACK_GRACE_SECONDS, max(ended_at, p.t0 + timeout))
    with collector.cond:
        while True:
            now = time.monotonic()
            final = [at for at, t, _ in collector.seen if t.id == track_id and t.effective_status != PENDING]
            last = max((at for at, _, _ in collector.seen), default=None)
            if final and last is not None and now - last >= CALLBACK_QUIET_SECONDS:
                break
            if not final and now >= give_up:
                break
            collector.cond.wait(0.05)
        seen = list(collector.seen)
    report.callback_waited = round(time.monotonic() - p.t0, 1)
    report.callbacks = [CallbackSeen(round(at - p.t0, 3), t.status_word, t.effective_status, signed, t.id == track_id)
                        for at, t, signed in seen]
    report.callbacks_refused = {why: n for why, n in receiver.counts.items()
                                if why not in ("accepted", "intermediate", "already ended")}
    ours = [c for c in report.callbacks if c.ours]
    refused = {k: n for k, n in report.callbacks_refused.items() if k != "unknown run or token"}
    if ours:
        check("callbacks read", True, f"{len(ours)} for the track")
    elif refused:
        check("callbacks read", False, "every callback was refused: "
              + ", ".join(f"{n} {why}" for why, n in refused.items()))
        hint = ("the profile's [callback.signature] or the secret in its secret_env does not match the "
                "provider's" if any("signature" in k for k in refused) else
                "the profile's [callback.answer] does not find the track in the provider's callback")
        report.notes.append(f"callbacks came but were refused: {hint}; a run ignores them and falls back to polling")
    else:
        report.notes.append(f"no callback arrived in {report.callback_waited:g} s: a run still polls each track "
                            "after the callback fallback time")


def _judge_readings(p: _Prober, track: Track, check: Callable[..., None]) -> None:
    report = p.report
    found = [r for r in report.readings if r.word is not None or r.has_audio]
    check("status or audio URL found", bool(found),
          "" if found else f"no status at {p.profile.answer.status} and no audio URL at {p.profile.answer.audio_url}")
    unknown = report.unknown_words
    if unknown:
        check("status words known", False, f"not in the profile's vocabulary: {', '.join(unknown)} (counted as "
              "pending: a run would wait on them until its poll deadline)")
        with_audio = list(dict.fromkeys(r.word for r in report.readings if r.word in unknown and r.has_audio))
        for word in with_audio:
            report.notes.append(f"{word!r} came with the audio: if it means ready, add `{word.lower()} = \"ready\"` "
                                "under [status_words] in the profile")
    else:
        check("status words known", True, "" if report.words else "none sent: ready is read from the audio URL")
    status = track.effective_status
    if status == READY:
        ready = next(r for r in report.readings if r.status == READY)
        pending = [r.seconds for r in report.readings if r.seconds < ready.seconds]
        report.ready_seconds = ready.seconds
        report.last_pending_seconds = pending[-1] if pending else None
        check("ready", True, f"after {ready.seconds:.1f} s")
    elif status == FAILED:
        check("ready", False, f"the provider says the track failed: {track.error or track.status_word}")
    else:
        check("ready", False, "never counted ready by the profile")


def _fetch(p: _Prober, track: Track, workdir: Path, check: Callable[..., None]) -> None:
    report = p.report
    dest = workdir / f"probe.{report.request.output_format}"
    before = len(p.log.entries)
    try:
        report.download = p.client.download(track, dest)
    except TextMusicError as exc:
        check("audio downloaded and decoded", False, f"download failed: {exc.message}")
        return
    finally:
        for entry in p.log.entries[before:]:
            hop = f"{_origin(httpx.URL(entry.url))} ({entry.status})"
            if not report.audio_hops or report.audio_hops[-1] != hop:
                report.audio_hops.append(hop)
        served = p.log.entries[-1].url if len(p.log.entries) > before else None
        if served is not None:
            report.same_origin = _origin(httpx.URL(served)) == _origin(httpx.URL(p.client.base_url))
    _measure(p, track, dest, check)


def _measure(p: _Prober, track: Track, dest: Path, check: Callable[..., None]) -> None:
    """The audio in `dest` decoded and checked as a run checks it."""
    from tasks.delivery.check import AudioCheckError, check_audio, probe
    from tasks.settings import PipelineSettings

    report = p.report
    try:
        info = probe(dest)
    except AudioCheckError as exc:
        check("audio downloaded and decoded", False, str(exc))
        return
    report.container, report.codec, report.duration_seconds = info.container, info.codec, info.duration_seconds
    report.bit_rate, report.sample_rate, report.channels = info.bit_rate, info.sample_rate, info.channels
    check("audio downloaded and decoded", info.duration_seconds > 0,
          f"{dest.stat().st_size:,} bytes" if info.duration_seconds > 0 else "the file holds no audio")
    try:
        check_audio(dest, report.request.output_format, track.duration_seconds,
                    PipelineSettings().duration_tolerance_seconds)
        check("file as asked", True, f"{report.request.output_format}"
              + (", duration as reported" if track.duration_seconds is not None else ""))
    except AudioCheckError as exc:
        check("file as asked", False, f"{exc} (a run checks the same and would fail the row)")
    if report.reported_duration is not None:
        check("duration read or measured", True, f"reported {report.reported_duration:g} s")
    elif info.duration_seconds > 0:
        check("duration read or measured", True, f"not reported; measured {info.duration_seconds:.2f} s")
    else:
        check("duration read or measured", False, "not reported and not measurable")


def _price(p: _Prober) -> None:
    """The profile's price model's figure for the length observed (reported, else measured), to set beside the
    cost the provider reported."""
    report, price = p.report, p.profile.price
    seconds = report.reported_duration if report.reported_duration is not None else report.duration_seconds
    if price.by_length and not seconds:
        return
    report.priced_seconds = seconds
    report.price_cents = price.request_cents(1, seconds or 0.0)
    if report.price_differs:
        report.notes.append(
            f"the provider reported {report.cost_cents} cents where the profile's price ({price.model}, "
            f"{price.cents} cents) gives {report.price_cents}: check [price] against the provider's price list "
            "(the observed profile keeps the profile's [price] unchanged)")


# --- the profile it observed ---------------------------------------------------------------------------


def observed_profile(profile: Profile, report: ProbeReport) -> Profile:
    """`profile` with the status words seen (where its vocabulary knew them) written out in `status_words`,
    `expected_ready_seconds` set to the observed time to ready (a synchronous answer's: to its last byte), and
    `[sync] audio = "body"` when the provider looked synchronous to a profile without it. Its `[sync]`,
    `[callback]` and `[price]` tables are kept as given (a reported cost that differs is only reported)."""
    words = dict(profile.status_words)
    for word in report.words:
        key = word.strip().lower()
        if key in profile.vocabulary and key not in {w.lower() for w in words}:
            words[key] = profile.vocabulary[key]
    update: dict[str, Any] = {"status_words": words}
    if report.ready_seconds is not None:
        update["expected_ready_seconds"] = max(0.1, round(report.ready_seconds, 1))
    if profile.sync is None and report.looks_synchronous is not None:
        update["sync"] = Synchronous(audio="body").model_dump()
    return Profile.model_validate({**profile.model_dump(), **update})


# --- reading it ----------------------------------------------------------------------------------------


def render(report: ProbeReport) -> str:
    """The report as text (every string from the provider in it is already redacted)."""
    r = report
    req = r.request
    asked = req.output_format + (f" {req.output_bit_rate} kbps" if req.output_bit_rate else "")
    lines = [f"provider {r.provider} at {r.base_url}",
             f"  request      one instrumental, seed {req.seed}, {asked}"
             + (f", {req.duration_seconds:g} s" if req.duration_seconds else ", the provider's own length"),
             f"  price        expected ${r.expected_cents / 100:.2f}, at most ${r.at_most_cents / 100:.2f}"]
    if r.cost_cents is not None or r.balance_cents is not None:
        lines.append("  reported     " + ", ".join(
            [f"cost {r.cost_cents} cents"] * (r.cost_cents is not None)
            + [f"balance {r.balance_cents} cents"] * (r.balance_cents is not None)))
    else:
        lines.append("  reported     no cost in the answers")
    if r.price_cents is not None:
        lines.append(f"  price check  {_price_line(r)}")
    if r.track_id:
        lines.append(f"  {'generation' if r.sync else 'track id':<13}{r.track_id}")
    if r.sync is not None:
        lines.append(f"  answered synchronously: the audio came in the POST's answer after {r.sync.seconds:.1f} s, "
                     f"{r.sync.bytes:,} bytes ({r.sync.content_type or 'no type'})")
    if r.looks_synchronous is not None:
        lines.append(f"  looks synchronous: the accepted answer was audio ({r.looks_synchronous}); "
                     'suggested: [sync] audio = "body"')
    if r.callback_url is not None:
        lines += _callback_lines(r)
    answered = ", ".join(f"{n} {kind}" for kind, n in r.answers.items()) or "none"
    lines.append(f"  JSON answers {answered}")
    if r.readings:
        lines.append("  status words " + (" → ".join(_word(r, w) for w in r.words) if r.words
                                         else "none: the answers carry no status word"))
        lines.append("  readings     " + ", ".join(
            f"{x.seconds:.1f} s {x.word or '(no word)'}→{x.status}{' +audio' if x.has_audio else ''}"
            for x in r.readings))
    for kind, names in r.fields.items():
        lines.append(f"  fields ({kind}) {', '.join(names)}")
    if r.extras:
        lines.append("  not in the contract  " + ", ".join(f"{k} ({v})" for k, v in sorted(r.extras.items())))
    if r.ready_seconds is not None:
        since = f" (last seen pending at {r.last_pending_seconds:.1f} s)" if r.last_pending_seconds is not None \
            else " (in the submission's answer)"
        lines.append(f"  time to ready {r.ready_seconds:.1f} s{since}")
    if r.audio_hops:
        where = "the API's own origin" if r.same_origin else "another origin than the API (the key is not sent there)"
        lines.append(f"  audio from   {where}: {' → '.join(r.audio_hops)}")
    if r.download is not None:
        d = r.download
        lines.append(f"  download     host {d.host}, {len(d.redirects)} redirect(s), "
                     f"content-encoding: {d.content_encoding or 'none'}, {d.wire_bytes:,} bytes on the wire, "
                     f"{d.bytes_written:,} kept, {d.content_type or 'no type'}")
    if r.container is not None:
        rate = f"{r.bit_rate / 1000:.0f} kbps" if r.bit_rate else "bit rate unknown"
        reported = f"{r.reported_duration:g} s reported" if r.reported_duration is not None else "not reported"
        lines.append(f"  file         {r.container} / {r.codec}, {r.duration_seconds:.2f} s ({reported}), {rate}, "
                     f"{r.sample_rate} Hz, {r.channels} ch")
    lines.append("verdict: " + ("the profile reads everything a run needs" if r.ok
                                else "the profile CANNOT read this provider as configured"))
    for c in r.checks:
        mark = {True: "ok  ", False: "FAIL", None: "--  "}[c.ok]
        lines.append(f"  {mark} {c.name}" + (f": {c.detail}" if c.detail else "" if c.ok is not None
                                              else ": not reached"))
    lines += [f"  error: {e}" for e in r.errors]
    lines += [f"  note: {n}" for n in r.notes]
    return "\n".join(lines)


def _price_line(r: ProbeReport) -> str:
    length = f" for {r.priced_seconds:.2f} s" if r.priced_seconds else ""
    model = f"the profile's price gives {r.price_cents} cents{length}"
    if r.cost_cents is None:
        return f"no cost reported; {model}"
    if r.price_differs:
        return (f"the provider reported {r.cost_cents} cents, {model}: they DIFFER "
                "(the profile's [price] is kept unchanged)")
    return f"the provider reported {r.cost_cents} cents, as the profile's price gives{length}"


def _callback_lines(r: ProbeReport) -> list[str]:
    ours = [c for c in r.callbacks if c.ours]
    lines = []
    if ours:
        words = [c.word for c in ours if c.status != PENDING]
        repeats = len(words) - len(set(words))
        signed = ("signed and verified" if all(c.signed for c in ours)
                  else "unsigned (a run confirms each with one status request)")
        lines.append(f"  callbacks    {len(ours)} for the track" + (f" ({repeats} repeated)" if repeats else "")
                     + f", {signed}: " + ", ".join(
                         f"{c.seconds:.1f} s {c.word or '(no word)'}→{c.status}" for c in ours))
    else:
        lines.append(f"  callbacks    no callback arrived in {r.callback_waited or 0:g} s")
    others = len(r.callbacks) - len(ours)
    if others:
        lines.append(f"  callbacks    {others} for another track id than the one submitted")
    if r.callbacks_refused:
        lines.append("  callbacks    refused: " + ", ".join(f"{n} ({why})" for why, n in r.callbacks_refused.items()))
    return lines


def _word(report: ProbeReport, word: str) -> str:
    reading = next(x for x in report.readings if x.word == word)
    return f"{word!r} ({reading.status})" if reading.known else f"{word!r} (UNKNOWN, counted {reading.status})"


# --- the command -----------------------------------------------------------------------------------------


def check_key(client: TextMusicClient) -> tuple[bool, str]:
    """(accepted, what was seen) by one request that costs nothing."""
    try:
        client.check_auth()
    except Unauthorized as exc:
        return False, client.redact(f"the key was refused ({exc.message})")
    except TextMusicError as exc:
        return False, client.redact(f"the provider does not answer: {exc.message}")
    return True, "the key was accepted"


def run_probe(auth_only: bool = False, write_profile: Path | None = None, output_format: str = "mp3",
              timeout: float = 600.0, out: Callable[[str], None] = print,
              err: Callable[[str], None] = print) -> int:
    """The command: 0 when the provider works with the profile, 1 otherwise."""
    from tasks.provider.connection import ProviderError, open_provider
    from tasks.provider.preflight import resolve_profile
    from tasks.settings import PipelineSettings

    settings, api = PipelineSettings(), TextMusicSettings()
    try:
        configured, embedded = resolve_profile(settings, api)
    except ValueError as exc:
        err(f"probe: {exc}")
        return 1
    if embedded:
        err("probe: TEXTMUSIC_API_URL is unset: starting the embedded local service")
    if auth_only:  # no retries worth waiting for: one request that costs nothing
        api = api.model_copy(update={"max_attempts": 2, "request_timeout_seconds": 15.0,
                                     "connect_timeout_seconds": 5.0})
    try:
        with open_provider(settings, api, settings.state_dir / "probe") as connection:
            client, log = probe_client(connection.profile, connection.api_key, api)
            with client:
                if auth_only:
                    accepted, message = check_key(client)
                    out(f"{connection.profile.name} at {client.base_url}: {message}")
                    return 0 if accepted else 1
                request = probe_request(client.profile, output_format)
                cost = probe_cost(request, client.profile)
                report = ProbeReport(client.profile.name, client.base_url, request, *cost)
                err(cost_warning(report, client.profile.price))
                report = probe_provider(client, log, output_format, timeout, cost=cost,
                                        callback_url=settings.callback_url, callback_host=settings.callback_host,
                                        callback_port=settings.callback_port)
                out(render(report))
    except (ProviderError, TextMusicError) as exc:
        err(f"probe: {exc}")
        return 1
    if write_profile is not None:
        if report.track_id is None and report.looks_synchronous is None:
            err("probe: no profile written: no track was read")
        else:
            write_profile.write_text(observed_profile(configured, report).to_toml(), encoding="utf-8")
            out(f"observed profile written to {write_profile}"
                + (' with [sync] audio = "body": probe again with it' if report.looks_synchronous else "")
                + ("" if report.ok else " (the probe failed: correct it as the report says before a run)"))
            if report.price_differs:
                out(f"  its [price] is the profile's, unchanged: the provider reported {report.cost_cents} cents "
                    f"where it gives {report.price_cents}")
    return 0 if report.ok else 1
