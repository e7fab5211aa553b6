"""SQLite state of the local service: keys and balances, tracks, charges.

WAL mode: reads never wait for a writer, so each thread keeps one read connection open (a status
poll costs no connection set-up), while every read-modify-write opens its own connection and takes the
lock up front (`BEGIN IMMEDIATE`), so a balance can never be spent twice. Keys are kept only as
SHA-256 hashes: a copied database grants no access.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from textmusic.contract import FAILED, PENDING, READY, TRACK_STATUSES, price_cents

DB_NAME = "textmusic.db"
AUDIO_DIR = "audio"
KEY_PREFIX = "tm_"
UNSTORED_TTL_SECONDS = 3600.0
KEY_ID_CHARS = 12  # how much of a key's hash `textmusic usage` shows: enough to tell keys apart

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS keys (
    key_hash TEXT PRIMARY KEY,
    balance_cents INTEGER NOT NULL,
    initial_cents INTEGER,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS tracks (
    id TEXT PRIMARY KEY,
    key_hash TEXT NOT NULL REFERENCES keys(key_hash),
    request_json TEXT NOT NULL,
    song_index INTEGER NOT NULL,
    seed INTEGER NOT NULL,
    name TEXT,
    tags_json TEXT,
    output_format TEXT NOT NULL,
    output_bit_rate TEXT,
    store_audio INTEGER NOT NULL,
    status TEXT NOT NULL CHECK (status IN ({', '.join(repr(s) for s in TRACK_STATUSES)})),
    error TEXT,
    duration_seconds REAL,
    bpm REAL,
    file_path TEXT,
    reserved_cents INTEGER NOT NULL,
    cost_cents INTEGER,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    expires_at REAL,
    fault TEXT,
    engine_version TEXT,
    ready_not_before REAL,
    versions_json TEXT
);
CREATE INDEX IF NOT EXISTS tracks_status ON tracks(status);
CREATE INDEX IF NOT EXISTS tracks_key ON tracks(key_hash);
CREATE TABLE IF NOT EXISTS idempotency (
    key_hash TEXT NOT NULL REFERENCES keys(key_hash),
    idempotency_key TEXT NOT NULL,
    request_sha256 TEXT NOT NULL,
    track_ids TEXT NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (key_hash, idempotency_key)
);
CREATE TABLE IF NOT EXISTS charges (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    track_id TEXT NOT NULL UNIQUE REFERENCES tracks(id),
    key_hash TEXT NOT NULL,
    seconds REAL NOT NULL,
    cents INTEGER NOT NULL,
    at REAL NOT NULL
);
"""


def hash_key(key: str) -> str:
    """What the database stores instead of the key."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


# Columns added after the first release: a data folder made by an older service gains them at start.
_ADDED_COLUMNS: dict[str, dict[str, str]] = {
    "keys": {"initial_cents": "INTEGER"},
    "tracks": {"fault": "TEXT", "engine_version": "TEXT", "ready_not_before": "REAL", "versions_json": "TEXT"},
}


def _migrate(conn: sqlite3.Connection) -> None:
    for table, columns in _ADDED_COLUMNS.items():
        have = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
        for name, decl in columns.items():
            if name not in have:
                conn.execute(f"ALTER TABLE {table} ADD COLUMN {name} {decl}")


class IdempotencyConflict(Exception):
    """An Idempotency-Key this API key already used for a different request."""


class InsufficientBalance(Exception):
    """The key cannot cover the reservation; carries the balance so the 402 can say how short it is."""

    def __init__(self, balance_cents: int, needed_cents: int) -> None:
        super().__init__(f"balance {balance_cents} cents, needed {needed_cents} cents")
        self.balance_cents = balance_cents
        self.needed_cents = needed_cents


@dataclass(frozen=True)
class NewTrack:
    """One song of a submission, as inserted (status pending)."""

    id: str
    request_json: str
    song_index: int
    seed: int
    name: str | None
    tags_json: str | None
    output_format: str
    output_bit_rate: str | None
    store_audio: bool
    reserved_cents: int
    fault: str | None = None  # an injected fault for this song ("fail" or "stuck"), see faults.py
    # Hosted timing (latency.py): seconds from submission during which the track shows as pending.
    latency_seconds: float | None = None


@dataclass(frozen=True)
class StoredVersion:
    """A version of a ready track (the local extension): its file beside the song's, relative to the data folder."""

    name: str
    file_path: str
    duration_seconds: float


def stored_versions(row: sqlite3.Row) -> list[StoredVersion]:
    """The versions recorded for a track (none for a track that asked for none or is not ready)."""
    return [StoredVersion(**v) for v in json.loads(row["versions_json"] or "[]")]


@dataclass(frozen=True)
class Submitted:
    balance_cents: int  # after this submission
    track_ids: list[str]
    replayed: bool  # an earlier submission with the same Idempotency-Key, answered again


@dataclass(frozen=True)
class Charge:
    track_id: str
    seconds: float
    cents: int
    at: float


@dataclass(frozen=True)
class KeyUsage:
    """One key's account: `initial - charged - reserved == balance` holds whenever no write is under way."""

    key_id: str  # a prefix of the key's hash, never the key
    initial_cents: int | None
    balance_cents: int
    charged_cents: int
    reserved_cents: int  # held for tracks still pending
    tracks_ready: int
    tracks_pending: int
    tracks_failed: int
    charges: list[Charge]


class Store:
    """All durable state of one data folder."""

    def __init__(self, data_dir: Path, audio_ttl_seconds: float = UNSTORED_TTL_SECONDS) -> None:
        if audio_ttl_seconds <= 0:
            raise ValueError("the audio TTL must be positive")
        self.data_dir = Path(data_dir)
        self.audio_dir = self.data_dir / AUDIO_DIR
        self.db_path = self.data_dir / DB_NAME
        self.audio_ttl_seconds = audio_ttl_seconds
        self._local = threading.local()
        self._known_keys: set[str] = set()  # keys are never deleted, so a key seen once stays valid
        self.audio_dir.mkdir(parents=True, exist_ok=True)
        conn = self._connect()
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript(_SCHEMA)
            _migrate(conn)
        finally:
            conn.close()

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.db_path, timeout=30.0, isolation_level=None)
        conn.row_factory = sqlite3.Row
        return conn

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """This thread's read connection (autocommit: each statement sees the latest commit)."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._connect()
        yield conn

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction that takes the lock up front, so check-then-update is atomic."""
        conn = self._connect()
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        finally:
            conn.close()

    # keys

    def add_key(self, balance_cents: int) -> str:
        """Create a key with a starting balance; the plain key is returned once and never stored."""
        if balance_cents < 0:
            raise ValueError("a balance cannot be negative")
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        with self._write() as conn:
            conn.execute(
                "INSERT INTO keys (key_hash, balance_cents, initial_cents, created_at) VALUES (?, ?, ?, ?)",
                (hash_key(key), balance_cents, balance_cents, time.time()),
            )
        return key

    def key_exists(self, key_hash: str) -> bool:
        if key_hash in self._known_keys:
            return True
        with self._read() as conn:
            found = conn.execute("SELECT 1 FROM keys WHERE key_hash = ?", (key_hash,)).fetchone() is not None
        if found:
            self._known_keys.add(key_hash)
        return found

    def balance(self, key_hash: str) -> int | None:
        with self._read() as conn:
            row = conn.execute("SELECT balance_cents FROM keys WHERE key_hash = ?", (key_hash,)).fetchone()
        return None if row is None else int(row["balance_cents"])

    # tracks

    def submit(self, key_hash: str, tracks: list[NewTrack], now: float | None = None,
               idempotency: tuple[str, str] | None = None) -> Submitted:
        """Reserve the tracks' funds and insert them as pending, all or nothing.

        `idempotency` is (Idempotency-Key, request digest): a key seen before with the same digest
        replays the first submission's tracks without reserving again (the client lost the first answer);
        with another digest it is an IdempotencyConflict."""
        now = time.time() if now is None else now
        needed = sum(t.reserved_cents for t in tracks)
        with self._write() as conn:
            row = conn.execute("SELECT balance_cents FROM keys WHERE key_hash = ?", (key_hash,)).fetchone()
            if row is None:
                raise KeyError("unknown key")
            balance = int(row["balance_cents"])
            if idempotency is not None:
                replayed = self._replay_or_remember(conn, key_hash, tracks, idempotency, now)
                if replayed is not None:
                    return Submitted(balance, replayed, replayed=True)
            if balance < needed:
                raise InsufficientBalance(balance, needed)
            conn.execute("UPDATE keys SET balance_cents = balance_cents - ? WHERE key_hash = ?", (needed, key_hash))
            conn.executemany(
                """INSERT INTO tracks (id, key_hash, request_json, song_index, seed, name, tags_json,
                       output_format, output_bit_rate, store_audio, status, reserved_cents,
                       created_at, updated_at, expires_at, fault, ready_not_before)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                [self._pending_row(key_hash, t, now) for t in tracks],
            )
        return Submitted(balance - needed, [t.id for t in tracks], replayed=False)

    @staticmethod
    def _replay_or_remember(conn: sqlite3.Connection, key_hash: str, tracks: list[NewTrack],
                            idempotency: tuple[str, str], now: float) -> list[str] | None:
        """The first submission's track ids when this Idempotency-Key was seen with the same digest; else
        None, the key now remembered for these tracks (in the submission's transaction: both or neither)."""
        seen = conn.execute(
            "SELECT request_sha256, track_ids FROM idempotency WHERE key_hash = ? AND idempotency_key = ?",
            (key_hash, idempotency[0]),
        ).fetchone()
        if seen is not None:
            if seen["request_sha256"] != idempotency[1]:
                raise IdempotencyConflict("this Idempotency-Key was already used for a different request")
            return list(json.loads(seen["track_ids"]))
        conn.execute(
            "INSERT INTO idempotency (key_hash, idempotency_key, request_sha256, track_ids, created_at) "
            "VALUES (?, ?, ?, ?, ?)",
            (key_hash, idempotency[0], idempotency[1], json.dumps([t.id for t in tracks]), now),
        )
        return None

    def _pending_row(self, key_hash: str, t: NewTrack, now: float) -> tuple[object, ...]:
        """A new track's row, in the INSERT's column order: pending, its funds reserved, its clocks set."""
        return (
            t.id,
            key_hash,
            t.request_json,
            t.song_index,
            t.seed,
            t.name,
            t.tags_json,
            t.output_format,
            t.output_bit_rate,
            int(t.store_audio),
            PENDING,
            t.reserved_cents,
            now,
            now,
            # Provisional: the clock restarts when the audio is ready (mark_ready).
            None if t.store_audio else now + (t.latency_seconds or 0.0) + self.audio_ttl_seconds,
            t.fault,
            None if t.latency_seconds is None else now + t.latency_seconds,
        )

    def get_track(self, track_id: str) -> sqlite3.Row | None:
        with self._read() as conn:
            return conn.execute("SELECT * FROM tracks WHERE id = ?", (track_id,)).fetchone()

    def pending_tracks(self) -> list[sqlite3.Row]:
        """Tracks to (re-)queue at start-up, oldest first."""
        with self._read() as conn:
            return conn.execute(
                "SELECT * FROM tracks WHERE status = ? ORDER BY created_at, song_index", (PENDING,)
            ).fetchall()

    def mark_ready(
        self,
        track_id: str,
        *,
        duration_seconds: float,
        bpm: float,
        output_bit_rate: str | None,
        file_path: str,
        engine_version: str | None = None,
        versions: list[StoredVersion] | None = None,
    ) -> bool:
        """Settle a finished track: charge its real price, give back the rest of its reservation. Its
        versions cost nothing: the price is the song's own length.

        Only a pending track moves, so a track rendered twice (a restart mid-render) is charged once.
        An unstored track's audio lives for the TTL from now, so a slow render never shortens it, or,
        under hosted timing, from the time the track is shown ready (`ready_not_before`), if later.
        """
        now = time.time()
        with self._write() as conn:
            row = conn.execute(
                "SELECT status, key_hash, reserved_cents, store_audio, ready_not_before FROM tracks WHERE id = ?",
                (track_id,),
            ).fetchone()
            if row is None or row["status"] != PENDING:
                return False
            cost = price_cents(duration_seconds)
            shown_at = max(now, row["ready_not_before"] or 0.0)
            expires_at = None if row["store_audio"] else shown_at + self.audio_ttl_seconds
            conn.execute(
                """UPDATE tracks SET status = ?, duration_seconds = ?, bpm = ?, output_bit_rate = ?,
                       file_path = ?, cost_cents = ?, updated_at = ?, expires_at = ?, engine_version = ?,
                       versions_json = ?
                   WHERE id = ?""",
                (READY, duration_seconds, bpm, output_bit_rate, file_path, cost, now, expires_at, engine_version,
                 json.dumps([asdict(v) for v in versions]) if versions else None, track_id),
            )
            conn.execute(
                "UPDATE keys SET balance_cents = balance_cents + ? WHERE key_hash = ?",
                (int(row["reserved_cents"]) - cost, row["key_hash"]),
            )
            conn.execute(
                "INSERT INTO charges (track_id, key_hash, seconds, cents, at) VALUES (?, ?, ?, ?, ?)",
                (track_id, row["key_hash"], duration_seconds, cost, now),
            )
        return True

    def mark_failed(self, track_id: str, error: str) -> bool:
        """A failed track costs nothing: its whole reservation goes back to the key."""
        now = time.time()
        with self._write() as conn:
            row = conn.execute(
                "SELECT status, key_hash, reserved_cents FROM tracks WHERE id = ?", (track_id,)
            ).fetchone()
            if row is None or row["status"] != PENDING:
                return False
            conn.execute(
                "UPDATE tracks SET status = ?, error = ?, cost_cents = 0, updated_at = ? WHERE id = ?",
                (FAILED, error, now, track_id),
            )
            conn.execute(
                "UPDATE keys SET balance_cents = balance_cents + ? WHERE key_hash = ?",
                (int(row["reserved_cents"]), row["key_hash"]),
            )
        return True

    def expired_files(self, now: float | None = None) -> list[str]:
        """Audio files of unstored tracks past their expiry (their versions' too), for clean-up."""
        now = time.time() if now is None else now
        with self._read() as conn:
            rows = conn.execute(
                """SELECT file_path, versions_json FROM tracks WHERE store_audio = 0 AND file_path IS NOT NULL
                   AND expires_at IS NOT NULL AND expires_at <= ?""",
                (now,),
            ).fetchall()
        return [path for r in rows for path in (r["file_path"], *(v.file_path for v in stored_versions(r)))]


    def usage(self) -> list[KeyUsage]:
        """Every key's account and charges, oldest key first, read in one snapshot."""
        conn = self._connect()
        try:
            conn.execute("BEGIN")  # one read transaction: the figures agree with each other
            keys = conn.execute("SELECT * FROM keys ORDER BY created_at, key_hash").fetchall()
            charges = conn.execute("SELECT * FROM charges ORDER BY at, id").fetchall()
            counts = conn.execute(
                """SELECT key_hash, status, COUNT(*) AS n,
                          SUM(CASE WHEN status = ? THEN reserved_cents ELSE 0 END) AS held
                   FROM tracks GROUP BY key_hash, status""", (PENDING,)
            ).fetchall()
        finally:
            conn.close()
        by_key: dict[str, list[Charge]] = {}
        for c in charges:
            by_key.setdefault(c["key_hash"], []).append(Charge(c["track_id"], c["seconds"], c["cents"], c["at"]))
        tally: dict[tuple[str, str], tuple[int, int]] = {
            (r["key_hash"], r["status"]): (int(r["n"]), int(r["held"] or 0)) for r in counts
        }
        out = []
        for k in keys:
            h = k["key_hash"]
            own = by_key.get(h, [])
            out.append(
                KeyUsage(
                    key_id=h[:KEY_ID_CHARS],
                    initial_cents=k["initial_cents"],
                    balance_cents=int(k["balance_cents"]),
                    charged_cents=sum(c.cents for c in own),
                    reserved_cents=tally.get((h, PENDING), (0, 0))[1],
                    tracks_ready=tally.get((h, READY), (0, 0))[0],
                    tracks_pending=tally.get((h, PENDING), (0, 0))[0],
                    tracks_failed=tally.get((h, FAILED), (0, 0))[0],
                    charges=own,
                )
            )
        return out


def create_key(data_dir: Path, balance_cents: int) -> str:
    """Create a key for the service at `data_dir` (folder and database made if needed)."""
    return Store(data_dir).add_key(balance_cents)
