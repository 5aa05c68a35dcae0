"""The transport of alerts: one message to Slack, Teams, Discord, e-mail or a webhook, by apprise.

Routes (who gets what) are declared elsewhere; this module only turns a channel, its options and
its secrets into an apprise URL, says early why such a URL cannot work, and sends one envelope,
reporting why a send failed without ever repeating a secret.

The operator gives each service's own URL (https://hooks.slack.com/services/…, a Power Automate
workflow URL, https://discord.com/api/webhooks/…): apprise recognises those "native" URLs itself,
so they are passed as they are, with apprise's timeouts appended. A generic webhook becomes
apprise's `json://` (`jsons://` for https) and e-mail its `mailto://` (`mailtos://`).

apprise reports failures only through the "apprise" logger. While this module calls apprise, the
records of the calling thread are redacted, kept as the outcome's detail and stopped there:
apprise's warnings quote pieces of the URLs it was given (an invalid token, say), and sends run
in several threads at once, so a global capture would mix them.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, quote, quote_plus, unquote, urlsplit, urlunsplit

import apprise
from apprise.plugins.custom_json import NotifyJSON
from apprise.plugins.discord import NotifyDiscord
from apprise.plugins.email import NotifyEmail
from apprise.plugins.slack import NotifySlack
from apprise.plugins.workflows import NotifyWorkflows
from apprise.utils.parse import is_email

from automates.registry.alert_kinds import Channel


@dataclass(frozen=True)
class Envelope:
    """One alert as sent on one route."""

    title: str
    body: str
    idempotency_key: str  # the same at every retry, so a receiver can drop duplicates
    fields: Mapping[str, str]  # structured facts; extra JSON keys on the webhook channel


@dataclass(frozen=True)
class SendOutcome:
    ok: bool
    detail: str


REDACTED = "***"
EMAIL_SECURITY = {"starttls": "starttls", "ssl": "ssl", "none": "insecure"}

# What each webhook-like channel's URL must resolve to in apprise, and how to describe that URL.
_SERVICES: dict[Channel, tuple[type[Any], str]] = {
    Channel.SLACK: (
        NotifySlack,
        "a Slack incoming-webhook URL (https://hooks.slack.com/services/…)",
    ),
    Channel.TEAMS: (
        NotifyWorkflows,
        "a Teams workflow URL (https://….logic.azure.com:443/workflows/…/triggers/manual/"
        "paths/invoke?…&sig=…)",
    ),
    Channel.DISCORD: (
        NotifyDiscord,
        "a Discord webhook URL (https://discord.com/api/webhooks/…)",
    ),
}
# The keys of apprise's own JSON payload: an extra key of the same name would rename that key
# instead of being added (custom_json.py), so envelope fields may not use them.
_JSON_PAYLOAD_KEYS = frozenset({"version", "title", "message", "attachments", "type"})
_MIN_FRAGMENT = 8
_ASSET = apprise.AppriseAsset(app_id="automates", app_desc="automates alerts")


class _Unusable(ValueError):
    """Why a route's settings cannot make a working apprise URL; never contains a secret."""


def apprise_url(
    channel: Channel,
    options: Mapping[str, Any],
    secrets: Mapping[str, str],
    envelope: Envelope | None,
    timeout_seconds: float,
) -> str:
    """The apprise URL of one send (ValueError if the settings cannot make one).

    apprise's `cto`/`rto` (connect and read timeouts) both get `timeout_seconds`: each bounds
    one wait on the socket, not the whole send.
    """
    if timeout_seconds <= 0:
        raise ValueError("timeout_seconds must be positive")
    timeouts = [("cto", f"{timeout_seconds:g}"), ("rto", f"{timeout_seconds:g}")]
    if channel in _SERVICES:
        return _with_query(_http_url(secrets), timeouts)
    if channel is Channel.WEBHOOK:
        return _json_url(_http_url(secrets), envelope, timeouts)
    if channel is Channel.EMAIL:
        return _mailto_url(options, secrets.get("password"), timeouts)
    raise ValueError(f"the {channel} channel sends nothing through apprise")


def check_url(
    channel: Channel, options: Mapping[str, Any], secrets: Mapping[str, str]
) -> str | None:
    """Why this route cannot work (naming the field, never quoting a secret), or None."""
    if channel is Channel.LOG:
        return None
    with _apprise_records(_sensitive_values(secrets)):
        try:
            if channel is Channel.WEBHOOK:
                _refuse_dedicated_service(_http_url(secrets))
            url = apprise_url(channel, options, secrets, None, 1.0)
        except _Unusable as error:
            return str(error)
        plugin = apprise.Apprise.instantiate(url, asset=_ASSET)
    if channel in _SERVICES:
        expected, description = _SERVICES[channel]
        if not isinstance(plugin, expected):
            found = f" (apprise reads it as {plugin.service_name})" if plugin else ""
            return f"url is not {description}{found}"
    elif channel is Channel.WEBHOOK and not isinstance(plugin, NotifyJSON):
        return "url is not an http(s) URL apprise can post JSON to"
    elif channel is Channel.EMAIL and not isinstance(plugin, NotifyEmail):
        return "apprise does not accept these e-mail settings (host, port, sender, to)"
    return None


def send(
    channel: Channel,
    options: Mapping[str, Any],
    secrets: Mapping[str, str],
    envelope: Envelope,
    timeout_seconds: float,
) -> SendOutcome:
    """One real send through apprise, in the calling thread. Retrying is the caller's: apprise
    makes one attempt (Discord alone tries once more, after its rate-limit wait, on a 429).

    On the `log` channel nothing is sent: the caller journals the alert.
    """
    if channel is Channel.LOG:
        return SendOutcome(ok=True, detail="journaled, not sent")
    sensitive = _sensitive_values(secrets)
    try:
        url = apprise_url(channel, options, secrets, envelope, timeout_seconds)
    except ValueError as error:
        return SendOutcome(ok=False, detail=redact(str(error), sensitive))
    with _apprise_records(sensitive) as said:
        plugin = apprise.Apprise.instantiate(url, asset=_ASSET)
        if plugin is None:
            ok = False
            said.insert(0, "apprise could not load the URL")
        else:
            try:
                ok = plugin.notify(
                    body=envelope.body, title=envelope.title, body_format=apprise.NotifyFormat.TEXT
                )
            except Exception as error:  # a plugin bug is one failed send, not a crash
                ok = False
                said.append(f"apprise raised {type(error).__name__}: {error}")
    if ok and plugin is not None:
        return SendOutcome(ok=True, detail=f"sent through {plugin.service_name}")
    detail = "; ".join(dict.fromkeys(said)) or "apprise reported a failure without a reason"
    return SendOutcome(ok=False, detail=redact(detail, sensitive))


def redact(text: str, secrets: Iterable[str]) -> str:
    """`text` with every secret, raw or URL-quoted, replaced by ***."""
    forms = set()
    for secret in secrets:
        if secret:
            forms |= {secret, quote(secret, safe=""), quote(secret), quote_plus(secret)}
    for form in sorted(forms, key=len, reverse=True):  # longest first: a secret may contain another
        text = text.replace(form, REDACTED)
    return text


def _http_url(secrets: Mapping[str, str]) -> str:
    url = (secrets.get("url") or "").strip()
    if not url:
        raise _Unusable("url is missing")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        raise _Unusable("url is not a well-formed URL") from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise _Unusable("url is not an http(s) URL")
    return url


def _with_query(url: str, params: Iterable[tuple[str, str]]) -> str:
    """`url` with `params` appended to its query, the query it had left exactly as it was.

    A key's leading + - or : is apprise's mark of a header, GET argument or JSON key: kept."""
    parts = urlsplit(url)
    added = "&".join(f"{quote(key, safe='+-:')}={quote(value, safe='')}" for key, value in params)
    query = f"{parts.query}&{added}" if parts.query else added
    return urlunsplit(parts._replace(query=query))


def _json_url(url: str, envelope: Envelope | None, timeouts: list[tuple[str, str]]) -> str:
    """apprise's JSON poster for `url`: headers are `+Name=value`, extra JSON keys `:key=value`,
    and the URL's own query parameters `-name=value` (bare ones would be read as apprise's)."""
    parts = urlsplit(url)
    schema = "jsons" if parts.scheme.lower() == "https" else "json"
    params = [
        (f"-{_twice(key)}", _twice(value))
        for key, value in parse_qsl(parts.query, keep_blank_values=True)
    ]
    if envelope is not None:
        params.append(("+Idempotency-Key", _twice(envelope.idempotency_key)))
        clashing = sorted(_JSON_PAYLOAD_KEYS & set(envelope.fields))
        if clashing:
            raise ValueError(f"envelope fields may not be named {', '.join(clashing)}")
        params += [(f":{_twice(key)}", _twice(value)) for key, value in envelope.fields.items()]
    params += timeouts
    return _with_query(urlunsplit((schema, parts.netloc, parts.path, "", "")), params)


def _twice(text: str) -> str:
    """`text` quoted for a query argument that apprise unquotes twice (once parsing the query,
    once more in the plugin): a literal %41 must survive both."""
    return quote(text, safe="")


def _check_email_options(options: Mapping[str, Any]) -> None:
    host = options.get("host")
    if not isinstance(host, str) or not host.strip():
        raise _Unusable("host is missing")
    port = options.get("port")
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise _Unusable("port must be a whole number from 1 to 65535")
    if options.get("security", "starttls") not in EMAIL_SECURITY:
        raise _Unusable('security must be "starttls", "ssl" or "none"')
    sender = options.get("sender")
    if not isinstance(sender, str) or not is_email(sender):
        raise _Unusable("sender is not an e-mail address")
    recipients = options.get("to") or []
    if isinstance(recipients, str) or not recipients:
        raise _Unusable("to has no recipient (a list of e-mail addresses)")
    for recipient in recipients:
        if not isinstance(recipient, str) or not is_email(recipient):
            raise _Unusable(f"to: {recipient!r} is not an e-mail address")


def _mailto_url(
    options: Mapping[str, Any], password: str | None, timeouts: list[tuple[str, str]]
) -> str:
    """`mailto://` (`mailtos://` when encrypted) with the SMTP server named explicitly: `smtp=`
    stops apprise from guessing a provider's server and port from the sender's domain."""
    _check_email_options(options)
    security = options.get("security", "starttls")
    login = ""
    if options.get("username"):
        login = quote(options["username"], safe="")
        if password:
            login += f":{quote(password, safe='')}"
        login += "@"
    recipients = "/".join(quote(address, safe="") for address in options["to"])
    host = options["host"].strip()
    netloc = f"[{host}]" if ":" in host else host  # an IPv6 address
    params = [
        ("from", _twice(options["sender"])),
        ("smtp", _twice(host)),
        ("mode", EMAIL_SECURITY[security]),
        ("format", "text"),  # the body is plain text: no HTML part to render it in one line
        *timeouts,
    ]
    schema = "mailto" if security == "none" else "mailtos"
    return _with_query(f"{schema}://{login}{netloc}:{options['port']}/{recipients}", params)


def _refuse_dedicated_service(url: str) -> None:
    """A webhook route to Slack, Teams or Discord would post a payload they reject."""
    for channel, (plugin, _) in _SERVICES.items():
        if plugin.parse_native_url(url):
            raise _Unusable(f"url is a {channel} URL: declare the route with channel {channel}")


def _sensitive_values(secrets: Mapping[str, str]) -> list[str]:
    """The secrets, and the pieces of a secret URL that apprise may quote on their own (a token
    it found invalid), raw and decoded."""
    found = [value for value in secrets.values() if value]
    for value in list(found):
        try:
            parts = urlsplit(value)
        except ValueError:
            continue
        if not (parts.scheme and parts.netloc):
            continue
        pieces = [parts.password or "", parts.username or "", *parts.path.split("/")]
        for argument in parts.query.split("&"):
            pieces.append(argument.partition("=")[2])
        pieces += [unquote(piece) for piece in pieces]
        pieces += [piece for _, piece in parse_qsl(parts.query, keep_blank_values=True)]
        found += [piece for piece in pieces if _may_be_token(piece)]
    return found


def _may_be_token(piece: str) -> bool:
    # Shorter pieces and plain words are a URL's structure (services, webhooks, invoke) or a
    # version: redacting them would only garble the detail.
    return len(piece) >= _MIN_FRAGMENT and not (piece.isalpha() and piece.islower())


@dataclass
class _Collecting:
    sensitive: list[str]
    said: list[str]


class _ThreadRecords(logging.Filter):
    """Keeps the apprise records of threads inside `_apprise_records`, redacted, and stops them."""

    def __init__(self) -> None:
        super().__init__()
        self._local = threading.local()

    @contextmanager
    def collecting(self, sensitive: list[str]) -> Iterator[list[str]]:
        state = _Collecting(sensitive=sensitive, said=[])
        self._local.state = state
        try:
            yield state.said
        finally:
            self._local.state = None

    def filter(self, record: logging.LogRecord) -> bool:
        state: _Collecting | None = getattr(self._local, "state", None)
        if state is None:
            return True
        if record.levelno >= logging.WARNING:
            try:
                message = record.getMessage()
            except Exception:  # a malformed record must not break the send
                message = str(record.msg)
            state.said.append(redact(message, state.sensitive))
        return False


_RECORDS = _ThreadRecords()
_INSTALL_LOCK = threading.Lock()


def _apprise_records(sensitive: list[str]) -> AbstractContextManager[list[str]]:
    """Collect this thread's apprise warnings and errors while the block runs."""
    logger = logging.getLogger(apprise.LOGGER_NAME)
    with _INSTALL_LOCK:
        if _RECORDS not in logger.filters:
            logger.addFilter(_RECORDS)
    return _RECORDS.collecting(sensitive)
