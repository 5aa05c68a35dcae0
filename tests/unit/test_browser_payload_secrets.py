"""The sealing rule of browser-job payload secrets (decision 0048): which fields, how they are
stored and opened, what a wrong key says, how a key rotates, and the key file made once."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from pydantic import SecretStr

from automates.browser.kinds import KINDS, FormSecret, Payload, SafeUrl, parse_payload
from automates.browser.kinds import secret_fields as secret_fields_of
from automates.browser.payload_secrets import (
    KEY_FILE,
    KEY_VARIABLE,
    SEALED,
    _resealed,
    key_path,
    opened_payload,
    payload_keys,
    sealed_payload,
)
from automates.errors import BrowserPayloadKeyError
from automates.settings import Settings
from automates.settings.groups import BrowserSettings
from tests.conftest import REPO
from tests.fixtures.payload_keys import FOREIGN, LOGIN, NEW, OLD, SECRET, keys_of


def _pieces(secret: str, size: int = 5) -> set[str]:
    """Every substring of `secret` of `size` characters or more (shorter ones may turn up in
    any random text)."""
    n = len(secret)
    return {secret[i:j] for i in range(n) for j in range(i + size, n + 1)}


def test_the_secret_fields_are_the_ones_typed_form_secret() -> None:
    assert {kind: secret_fields_of(model) for kind, model in KINDS.items()} == {
        "page_snapshot": [],
        "portal_login": ["password"],
    }

    class Later(Payload):  # a kind added later: an optional secret is found too
        url: SafeUrl
        token: FormSecret | None = None
        note: str = ""

    assert secret_fields_of(Later) == ["token"]


def test_a_sealed_payload_holds_no_piece_of_its_secret_and_opens_to_the_original() -> None:
    model = parse_payload("portal_login", LOGIN)
    stored = sealed_payload(model, keys_of(NEW))
    text = json.dumps(stored)
    assert not {piece for piece in _pieces(SECRET) if piece in text}
    assert list(stored["password"]) == [SEALED]
    # Only the secret is sealed: the rest stays readable (the gate reads `mailbox`).
    assert {k: v for k, v in stored.items() if k != "password"} == {
        **{k: v for k, v in LOGIN.items() if k != "password"},
        "welcome_selector": "#welcome",
    }
    job = uuid.uuid4()
    assert opened_payload(job, stored, keys_of(NEW)) == model.model_dump(mode="json")
    # Sealing twice gives two tokens: equal secrets are not recognisable in the store.
    assert sealed_payload(model, keys_of(NEW))["password"] != stored["password"]


def test_a_payload_stored_before_sealing_is_handed_over_as_it_is() -> None:
    assert opened_payload(uuid.uuid4(), dict(LOGIN), keys_of(NEW)) == LOGIN
    snapshot = {"url": "https://example.org/", "max_text_chars": 10}
    assert opened_payload(uuid.uuid4(), snapshot, None) == snapshot


@pytest.mark.parametrize("keys", [(FOREIGN,), None], ids=["wrong-key", "no-key"])
def test_a_wrong_key_names_the_job_the_field_and_the_setting_never_a_secret(
    keys: tuple[str, ...] | None,
) -> None:
    stored = sealed_payload(parse_payload("portal_login", LOGIN), keys_of(OLD))
    job = uuid.uuid4()
    with pytest.raises(BrowserPayloadKeyError) as refused:
        opened_payload(job, stored, keys_of(*keys) if keys else None)
    message = str(refused.value)
    assert str(job) in message and "password" in message and KEY_VARIABLE in message
    for secret in (SECRET, OLD, FOREIGN, stored["password"][SEALED]):
        assert secret not in message


def test_after_a_rotation_the_old_key_still_opens_and_resealing_moves_to_the_new() -> None:
    rotated = keys_of(NEW, OLD)  # the new key first, the old one after it
    old_row = sealed_payload(parse_payload("portal_login", LOGIN), keys_of(OLD))
    assert opened_payload(uuid.uuid4(), old_row, rotated)["password"] == SECRET
    resealed, outcome = _resealed(old_row, "portal_login", rotated)
    assert outcome == "rotated"
    assert opened_payload(uuid.uuid4(), resealed, keys_of(NEW))["password"] == SECRET
    assert _resealed(resealed, "portal_login", rotated) == (resealed, "unchanged")


@pytest.mark.parametrize(
    ("stored_with", "kind", "outcome"),
    [
        ("plain", "portal_login", "encrypted"),
        ("old", "portal_login", "rotated"),
        ("new", "portal_login", "unchanged"),
        ("foreign", "portal_login", "unreadable"),
        ("plain", "retired_kind", "unknown_kind"),
    ],
)
def test_resealing_each_kind_of_stored_payload(stored_with: str, kind: str, outcome: str) -> None:
    keys = {"old": OLD, "new": NEW, "foreign": FOREIGN}
    model = parse_payload("portal_login", LOGIN)
    row = (
        model.model_dump(mode="json")
        if stored_with == "plain"
        else sealed_payload(model, keys_of(keys[stored_with]))
    )
    resealed, got = _resealed(row, kind, keys_of(NEW, OLD))
    assert got == outcome
    if outcome in ("encrypted", "rotated", "unchanged"):
        assert SECRET not in json.dumps(resealed)
        assert opened_payload(uuid.uuid4(), resealed, keys_of(NEW))["password"] == SECRET
    else:
        assert resealed == row  # left as it was, and reported


def _settings(tmp_path: Path, key: str | None = None) -> Settings:
    browser = BrowserSettings(payload_key=SecretStr(key) if key is not None else None)
    return Settings(project_root=REPO, data_dir=tmp_path, browser=browser)


def test_the_key_file_is_made_once_readable_by_its_owner_only(tmp_path: Path) -> None:
    settings = _settings(tmp_path / "data")
    path = key_path(settings)
    assert path == tmp_path / "data" / KEY_FILE and not path.exists()
    first = payload_keys(settings)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    written = path.read_text()
    assert str(path) in first.source and KEY_VARIABLE in first.source
    token = first.seal(SECRET)[SEALED]
    # Later readers (and other processes at once) use that key; the file is never rewritten.
    assert payload_keys(settings).open(token) == SECRET
    code = (
        "import sys; from pathlib import Path; from automates.settings import Settings; "
        "from automates.browser.payload_secrets import payload_keys; "
        "root, data = (Path(a) for a in sys.argv[1:]); "
        "keys = payload_keys(Settings(project_root=root, data_dir=data)); "
        "print(keys.seal('x')['$encrypted'])"
    )
    other = tmp_path / "other"
    started = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(REPO), str(other)],
            stdout=subprocess.PIPE,
            text=True,
            cwd=REPO,
        )
        for _ in range(3)
    ]
    tokens = [process.communicate(timeout=120)[0].strip() for process in started]
    assert all(process.returncode == 0 for process in started)
    shared = payload_keys(_settings(other))
    assert [shared.open(token) for token in tokens] == ["x"] * 3  # one key won, for all three
    assert [p.name for p in other.iterdir()] == [KEY_FILE]  # no draft left behind
    assert path.read_text() == written


def test_the_setting_wins_over_the_file_and_a_bad_key_is_refused_unquoted(
    tmp_path: Path,
) -> None:
    keys = payload_keys(_settings(tmp_path, f"{NEW}, {OLD}"))
    assert keys.source == KEY_VARIABLE and len(keys.keys) == 2
    assert not (tmp_path / KEY_FILE).exists()
    bad = "not-a-key-" + SECRET
    with pytest.raises(BrowserPayloadKeyError) as refused:
        payload_keys(_settings(tmp_path, f"{NEW},{bad}"))
    assert f"{KEY_VARIABLE}: key 2 is not a Fernet key" in str(refused.value)
    assert bad not in str(refused.value) and NEW not in str(refused.value)
    with pytest.raises(BrowserPayloadKeyError, match="holds no key"):
        payload_keys(_settings(tmp_path, " , "))
