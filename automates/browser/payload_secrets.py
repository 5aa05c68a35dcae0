"""Browser-job payload secrets, sealed at rest with a key kept outside the database (decision 0048).

The fields a kind types `FormSecret` (kinds.secret_fields) are stored in
`automates.browser_jobs.payload` as `{"$encrypted": "<Fernet token>"}`. `enqueue` seals them;
the gate's claim opens them before it hands the payload to the residential worker over its
authenticated connection, so the worker never holds a key and what it receives is unchanged.
A dump of the database carries the tokens, never a key.

The keys are `AUTOMATES_BROWSER_PAYLOAD_KEY` (Fernet keys, comma-separated, the newest first),
or else the key file `<data folder>/browser-payload.key` (one key a line, the newest first),
generated once, readable by its owner only. The newest key seals; every key opens, so a key is
rotated by putting the new one first and resealing (`automates browser encrypt-payloads`).
"""

from __future__ import annotations

import os
import re
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeGuard

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from sqlalchemy import Connection

from automates.browser.kinds import KINDS, Payload, secret_fields
from automates.errors import BrowserPayloadKeyError
from automates.settings import Settings
from automates.store import browser_jobs
from automates.store.database import database_url
from automates.store.engine import make_engine, transaction

SEALED = "$encrypted"
KEY_VARIABLE = "AUTOMATES_BROWSER_PAYLOAD_KEY"
KEY_FILE = "browser-payload.key"
RESEAL_BATCH = 200


@dataclass(frozen=True)
class PayloadKeys:
    """The keys that seal (the first) and open (any) payload secrets, and where they come from
    (for messages: the variable or the key file, never a key)."""

    keys: tuple[Fernet, ...] = field(repr=False)
    source: str

    def seal(self, secret: str) -> dict[str, str]:
        return {SEALED: self.keys[0].encrypt(secret.encode()).decode()}

    def open(self, token: str) -> str:
        """The secret of a token sealed with any of the keys; InvalidToken otherwise."""
        return MultiFernet(list(self.keys)).decrypt(token.encode()).decode()

    def rotated(self, token: str) -> str | None:
        """The token sealed again with the newest key; None when it already is."""
        try:
            self.keys[0].decrypt(token.encode())
            return None
        except InvalidToken:
            return MultiFernet(list(self.keys)).rotate(token.encode()).decode()


def key_path(settings: Settings) -> Path:
    return settings.data_path / KEY_FILE


def payload_keys(settings: Settings) -> PayloadKeys:
    """The setting's keys, else the key file's (generated the first time)."""
    if settings.browser.payload_key is not None:
        given = settings.browser.payload_key.get_secret_value()
        return PayloadKeys(_parsed(given, KEY_VARIABLE), KEY_VARIABLE)
    path = key_path(settings)
    if not path.exists():
        _generate(path)
    source = f"the key file {path} ({KEY_VARIABLE} unset)"
    return PayloadKeys(_parsed(path.read_text(), f"the key file {path}"), source)


def _parsed(text: str, source: str) -> tuple[Fernet, ...]:
    entries = [entry for entry in re.split(r"[\s,]+", text) if entry]
    if not entries:
        raise BrowserPayloadKeyError(f"{source} holds no key")
    keys = []
    for number, entry in enumerate(entries, 1):
        try:
            keys.append(Fernet(entry))
        except ValueError:  # its message never quotes the key
            raise BrowserPayloadKeyError(
                f"{source}: key {number} is not a Fernet key (32 url-safe base64-encoded bytes; "
                "make one with `python -c 'from cryptography.fernet import Fernet; "
                "print(Fernet.generate_key().decode())'`)"
            ) from None
    return tuple(keys)


def _generate(path: Path) -> None:
    """Write a new key, published whole: of two processes starting at once, one key wins (the
    link fails for the other) and neither ever reads a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    draft = path.with_name(f"{path.name}.{os.getpid()}")
    descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(Fernet.generate_key().decode() + "\n")
    try:
        os.link(draft, path)
    except FileExistsError:
        pass
    finally:
        draft.unlink()


def sealed_payload(payload: Payload, keys: PayloadKeys) -> dict[str, Any]:
    """The payload as the store keeps it: each secret field sealed."""
    data = payload.model_dump(mode="json")
    for name in secret_fields(type(payload)):
        if isinstance(data.get(name), str):
            data[name] = keys.seal(data[name])
    return data


def is_sealed(value: Any) -> TypeGuard[dict[str, str]]:
    return isinstance(value, dict) and list(value) == [SEALED] and isinstance(value[SEALED], str)


def opened_payload(
    job_id: uuid.UUID, payload: dict[str, Any], keys: PayloadKeys | None
) -> dict[str, Any]:
    """The payload as the worker gets it: every sealed field opened. A field stored before
    sealing existed (plain text) is handed over as it is."""
    opened, unreadable = dict(payload), []
    for name, value in payload.items():
        if not is_sealed(value):
            continue
        try:
            if keys is None:
                raise InvalidToken
            opened[name] = keys.open(value[SEALED])
        except InvalidToken:
            unreadable.append(name)
    if unreadable:
        source = keys.source if keys is not None else "no key (the gate was given none)"
        raise BrowserPayloadKeyError(
            f"browser job {job_id}: its payload's sealed field(s) {', '.join(unreadable)} cannot "
            f"be decrypted with the key(s) of {source}; set {KEY_VARIABLE} to the key the job "
            "was enqueued with (the newest key first, older ones after it; decision 0048). The "
            "job failed and nothing was run"
        )
    return opened


@dataclass
class Resealed:
    """What `encrypt-payloads` did: counts of jobs, and the ids it could not reseal."""

    encrypted: int = 0  # a secret stored in plain text (before sealing existed), now sealed
    rotated: int = 0  # sealed with an older key, now with the newest
    unchanged: int = 0
    unreadable: list[str] = field(default_factory=list)  # sealed with no key given
    unknown_kind: list[str] = field(default_factory=list)  # a kind this code does not know
    key: str = ""  # where the keys came from


def _resealed(payload: dict[str, Any], kind: str, keys: PayloadKeys) -> tuple[dict[str, Any], str]:
    model = KINDS.get(kind)
    if model is None:
        return payload, "unknown_kind"
    data, outcome = dict(payload), "unchanged"
    for name in secret_fields(model):
        value = data.get(name)
        if isinstance(value, str):
            data[name], outcome = keys.seal(value), "encrypted"
        elif is_sealed(value):
            try:
                token = keys.rotated(value[SEALED])
            except InvalidToken:
                return payload, "unreadable"
            if token is not None:
                data[name] = {SEALED: token}
                outcome = "encrypted" if outcome == "encrypted" else "rotated"
    return data, outcome


def _reseal_batch(
    connection: Connection, after: uuid.UUID | None, keys: PayloadKeys, done: Resealed
) -> uuid.UUID | None:
    rows = browser_jobs.payloads_after(connection, after, RESEAL_BATCH)
    for row in rows:
        payload, outcome = _resealed(row["payload"], row["kind"], keys)
        if outcome in ("unreadable", "unknown_kind"):
            getattr(done, outcome).append(str(row["id"]))
            continue
        if payload != row["payload"]:
            browser_jobs.set_payload(connection, row["id"], payload)
        setattr(done, outcome, getattr(done, outcome) + 1)
    return rows[-1]["id"] if len(rows) == RESEAL_BATCH else None


def reseal_payloads(settings: Settings) -> Resealed:
    """Seal every stored secret with the newest key: plain-text ones (jobs enqueued before
    sealing existed) and ones sealed with an older key. Batches of rows, each locked for its
    own short transaction; safe to run again, and while jobs are enqueued and claimed."""
    keys = payload_keys(settings)
    done = Resealed(key=keys.source)
    engine = make_engine(database_url(settings))
    try:
        after: uuid.UUID | None = None
        while True:
            with transaction(engine) as connection:
                after = _reseal_batch(connection, after, keys, done)
            if after is None:
                return done
    finally:
        engine.dispose()
