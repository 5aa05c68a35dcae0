"""The whitelist of browser job kinds and the payload model of each.

A payload is data only: it is validated here, stored as JSON, and read by a handler as typed
fields. It is never evaluated, formatted into code or passed through a shell. The same module
is the whitelist on both sides: the server refuses an unknown kind at enqueue, and the worker
checks again before dispatch (its copy of this file comes with its code).
"""

from __future__ import annotations

import json
from typing import Annotated, Any, get_args

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError
from pydantic.fields import FieldInfo

from automates.browser.addresses import AddressRule
from automates.errors import BrowserPayloadError, field_problems

MAX_PAYLOAD_BYTES = 4096

# Characters a URL may hold here: RFC 3986's unreserved and reserved sets, minus the ones a
# shell or SQL would read specially ($ ' " ` ( ) and whitespace). A legitimate target never
# needs them; a hostile payload usually does.
URL_FIELD = "automates:url-field"  # marks the fields the browser opens: the address rule's
SafeUrl = Annotated[
    str,
    StringConstraints(
        pattern=r"^https?://[A-Za-z0-9.\-]+(:[0-9]{1,5})?(/[A-Za-z0-9/?#\[\]@!&*+,;=%._~:-]*)?$",
        max_length=2048,
    ),
    URL_FIELD,
]
# Names, accounts, mailboxes: letters, digits and . _ @ + - only.
Identifier = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._@+\-]{0,127}$")]
# A secret typed into a form: printable ASCII without quotes, $, backquote, backslash or spaces.
# Its mark is how the store finds the fields it seals at rest (payload_secrets.py, decision 0048).
SECRET_FIELD = "automates:secret-field"
FormSecret = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Za-z0-9!#%&*+,./:;<=>?@\[\]^_{|}~\-]{1,128}$"),
    SECRET_FIELD,
]
Selector = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9#.\-_ >\[\]=]{1,200}$")]


class Payload(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


class PageSnapshot(Payload):
    """Open a page and keep its title and visible text."""

    url: SafeUrl
    max_text_chars: int = Field(default=2000, ge=1, le=20000)


class PortalLogin(Payload):
    """Log into a portal whose login asks a second factor sent to a mailbox of the server."""

    login_url: SafeUrl
    username: Identifier
    password: FormSecret
    mailbox: Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9._@+\-]{0,127}$")]
    welcome_selector: Selector = "#welcome"


KINDS: dict[str, type[Payload]] = {
    "page_snapshot": PageSnapshot,
    "portal_login": PortalLogin,
}


def payload_model(kind: str) -> type[Payload]:
    """The payload model of a whitelisted kind; anything else is refused."""
    model = KINDS.get(kind) if isinstance(kind, str) else None
    if model is None:
        raise BrowserPayloadError(
            f"kind {str(kind)[:40]!r} is not a browser job kind; known: {', '.join(sorted(KINDS))}"
        )
    return model


def parse_payload(kind: str, payload: Any) -> Payload:
    """Validate `payload` (a mapping, or its JSON text) for `kind`; name every bad field."""
    model = payload_model(kind)
    if isinstance(payload, str | bytes):
        if len(payload) > MAX_PAYLOAD_BYTES:
            raise BrowserPayloadError(
                f"kind {kind!r}: the payload is {len(payload)} bytes; at most "
                f"{MAX_PAYLOAD_BYTES} are accepted"
            )
        try:
            payload = json.loads(payload)
        except json.JSONDecodeError as error:
            raise BrowserPayloadError(f"kind {kind!r}: the payload is not JSON: {error}") from None
        except RecursionError:  # `[[[[…` deeper than the parser's stack: no payload nests so
            raise BrowserPayloadError(f"kind {kind!r}: the payload nests too deeply") from None
    if not isinstance(payload, dict):
        raise BrowserPayloadError(f"kind {kind!r}: the payload must be a JSON object")
    size = len(json.dumps(payload))
    if size > MAX_PAYLOAD_BYTES:
        raise BrowserPayloadError(
            f"kind {kind!r}: the payload is {size} bytes; at most {MAX_PAYLOAD_BYTES} are accepted"
        )
    try:
        return model.model_validate(payload)
    except ValidationError as error:
        problems = field_problems(error, "(payload)")
        raise BrowserPayloadError(f"kind {kind!r}: invalid payload: {problems}") from None


def _marked(info: FieldInfo, mark: str) -> bool:
    """The field's type carries `mark`, alone or in a union (`FormSecret | None`)."""
    if mark in info.metadata:
        return True
    return any(mark in getattr(arg, "__metadata__", ()) for arg in get_args(info.annotation))


def url_fields(model: type[Payload]) -> list[str]:
    """The payload fields the browser is sent to (every field typed SafeUrl)."""
    return [name for name, info in model.model_fields.items() if _marked(info, URL_FIELD)]


def secret_fields(model: type[Payload]) -> list[str]:
    """The payload fields sealed in the store (every field typed FormSecret)."""
    return [name for name, info in model.model_fields.items() if _marked(info, SECRET_FIELD)]


async def check_addresses(kind: str, payload: Payload, rule: AddressRule) -> None:
    """Refuse a payload whose URL the address rule forbids, naming the kind and the field."""
    problems = []
    for name in url_fields(type(payload)):
        url = getattr(payload, name)
        reason = None if url is None else await rule.check_url(url)
        if reason is not None:
            problems.append(f"field {name!r}: {reason}")
    if problems:
        raise BrowserPayloadError(
            f"kind {kind!r}: forbidden address: {'; '.join(problems)} (decision 0028: browser "
            "jobs reach public addresses only, unless the operator allows the host)"
        )
