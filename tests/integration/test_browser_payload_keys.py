"""Payload secrets sealed at rest (decision 0048), against a real store and the real gate: a gate
given the new key first still opens rows sealed with the old one; a gate without the row's key
fails the claim clearly and shows no secret; `automates browser encrypt-payloads` seals rows
stored in plain text and reseals old ones with the newest key. (The end-to-end login through
Chromium with a sealed password: tests/integration/test_browser_jobs.py.)"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text

from automates.browser.kinds import parse_payload
from automates.browser.payload_secrets import (
    KEY_VARIABLE,
    SEALED,
    opened_payload,
    sealed_payload,
)
from automates.settings import Settings
from automates.store import browser_jobs
from automates.store.engine import make_engine, migrate, transaction
from tests.fixtures.browser_layer import auth, start_gate, stop
from tests.fixtures.commands import run_module
from tests.fixtures.payload_keys import FOREIGN, LOGIN, NEW, OLD, SECRET, keys_of


def _payload(*keys: str) -> dict[str, Any]:
    """The login payload as the store keeps it: sealed with `keys`, or plain without any."""
    model = parse_payload("portal_login", LOGIN)
    return sealed_payload(model, keys_of(*keys)) if keys else model.model_dump(mode="json")


def _insert(database_url: str, rows: dict[str, tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    engine = make_engine(database_url)
    with transaction(engine) as connection:
        ids = {
            name: browser_jobs.insert_job(connection, kind, payload, 60)
            for name, (kind, payload) in rows.items()
        }
    engine.dispose()
    return ids


def _stored(database_url: str) -> dict[str, tuple[str, str, str | None]]:
    """Every job's payload as plain SQL reads it, with its status and error."""
    engine = make_engine(database_url)
    with transaction(engine) as connection:
        rows = connection.execute(
            text("SELECT id, payload::text, status, error FROM automates.browser_jobs")
        ).all()
    engine.dispose()
    return {str(row[0]): (row[1], row[2], row[3]) for row in rows}


def test_the_gate_opens_old_rows_after_a_rotation_and_fails_a_claim_it_cannot_open(
    server_session: Settings, tmp_path: Path
) -> None:
    database = server_session.database_url or ""
    ids = _insert(
        database,
        {
            "old": ("portal_login", _payload(OLD)),
            "plain": ("portal_login", _payload()),  # stored before sealing existed
            "foreign": ("portal_login", _payload(FOREIGN)),
        },
    )
    # The rotation: the new key first, the old one after it.
    gate = start_gate(server_session, tmp_path, **{KEY_VARIABLE: f"{NEW},{OLD}"})
    try:

        def claim(name: str) -> httpx.Response:
            return httpx.post(
                f"{gate.url}/automates/browser/jobs/{ids[name]}/claim",
                json={"host": "home-9"},
                headers=auth(gate),
                timeout=30,
            )

        for name in ("old", "plain"):
            answer = claim(name)
            assert answer.status_code == 200, answer.text
            assert answer.json()["payload"]["password"] == SECRET  # what the worker types
        refused = claim("foreign")
    finally:
        stop(gate.process)
    assert refused.status_code == 422
    detail = refused.json()["detail"]
    assert str(ids["foreign"]) in detail and KEY_VARIABLE in detail and "'password'" not in detail
    assert "field(s) password cannot be decrypted" in detail
    stored, status, error = _stored(database)[str(ids["foreign"])]
    assert (status, error) == ("failed", detail)  # nothing will run it: it ends, saying why
    gate_log = gate.log.read_text()
    assert f"browser job {ids['foreign']}: its payload's sealed field(s) password" in gate_log
    for shown in (detail, gate_log, stored):
        assert SECRET not in shown
        assert not {key for key in (OLD, NEW, FOREIGN) if key in shown}


def test_encrypt_payloads_seals_plain_rows_and_reseals_old_ones_with_the_newest_key(
    scratch_database: str, tmp_path: Path
) -> None:
    engine = make_engine(scratch_database)
    migrate(engine)
    engine.dispose()
    ids = _insert(
        scratch_database,
        {
            "plain": ("portal_login", _payload()),
            "old": ("portal_login", _payload(OLD)),
            "new": ("portal_login", _payload(NEW)),
            "foreign": ("portal_login", _payload(FOREIGN)),
            "snapshot": ("page_snapshot", {"url": "https://example.org/", "max_text_chars": 9}),
            "retired": ("retired_kind", {"note": "a kind this code no longer knows"}),
        },
    )
    env = {
        **os.environ,
        "AUTOMATES_DATABASE_URL": scratch_database,
        "AUTOMATES_DATA_DIR": str(tmp_path),
        KEY_VARIABLE: f"{NEW},{OLD}",
    }
    first = run_module("automates.cli", "browser", "encrypt-payloads", "--json", env=env)
    assert first.returncode == 1, first.stderr  # ran, and found a row it cannot read
    assert json.loads(first.stdout) == {
        "encrypted": 1,
        "rotated": 1,
        "unchanged": 2,  # the one sealed with the newest key, and the snapshot (no secret)
        "unreadable": [str(ids["foreign"])],
        "unknown_kind": [str(ids["retired"])],
        "key": KEY_VARIABLE,
    }
    stored = _stored(scratch_database)
    assert SECRET not in first.stdout + first.stderr + "".join(p for p, _, _ in stored.values())
    newest = keys_of(NEW)  # the old key can now be dropped
    for name in ("plain", "old", "new"):
        payload = json.loads(stored[str(ids[name])][0])
        assert list(payload["password"]) == [SEALED]
        assert opened_payload(ids[name], payload, newest)["password"] == SECRET
    # The unreadable row is left as it was: sealed with a key only its owner has.
    foreign = json.loads(stored[str(ids["foreign"])][0])
    assert opened_payload(ids["foreign"], foreign, keys_of(FOREIGN))["password"] == SECRET
    again = run_module("automates.cli", "browser", "encrypt-payloads", "--json", env=env)
    assert json.loads(again.stdout)["unchanged"] == 4  # nothing left to do
    assert not (tmp_path / "browser-payload.key").exists()  # the setting was used
