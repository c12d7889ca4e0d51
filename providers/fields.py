"""Field tables: each resource declares its fields once, and validation, diff, request bodies and drift
are derived from that declaration.

A field's `parse` turns a raw input into its canonical value or raises `Invalid` with the accepted values.
Canonical values compare equal when they mean the same thing (300 == 300.0, 0 budget == unset, {} == unset),
so a diff of canonical values is a no-op exactly when nothing changed.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import math
import re
from typing import Any, Callable, Iterable, Mapping
from urllib.parse import urlsplit

from pulumi.dynamic import CheckFailure
from pulumi.output import Unknown
from pulumi.runtime import rpc

from .client import redact

MAX_TEXT = 256
ROLES = ("proxy_admin", "proxy_admin_viewer", "internal_user", "internal_user_viewer")
LEGACY_ROLES = {"admin": "proxy_admin", "app_owner": "internal_user", "app_user": "internal_user_viewer"}
DURATION_RE = re.compile(r"^(\d+)(s|m|h|d|w|mo)$")
NAMED_DURATIONS = ("hourly", "daily", "weekly", "monthly")
DURATION_HELP = "a LiteLLM duration: <number><s|m|h|d|w|mo> such as '30d', or hourly/daily/weekly/monthly"
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")


class Invalid(ValueError):
    """An input that cannot be accepted; the message says what is accepted."""


def anywhere(value: Any, test: Callable[[Any], bool]) -> bool:
    """True when `test` holds for the value or for anything inside its maps and lists, at any depth."""
    if test(value):
        return True
    if isinstance(value, dict):
        return any(anywhere(v, test) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(anywhere(v, test) for v in value)
    return False


def is_unknown(value: Any) -> bool:
    """True for a value the engine does not know yet (preview), at any depth."""
    return anywhere(value, lambda v: isinstance(v, Unknown) or (isinstance(v, str) and v == rpc.UNKNOWN))


# Defensive: the engine strips secret wrappers for dynamic providers, but never trust the wire.
unwrap_secret = rpc.unwrap_rpc_secret


# ------------------------------------------------------------------ parsers
def text(max_len: int = MAX_TEXT) -> Callable[[Any], str]:
    def parse(value: Any) -> str:
        if not isinstance(value, str):
            raise Invalid(f"a string of 1 to {max_len} characters")
        if not value.strip():
            raise Invalid("a non-blank string")
        if len(value) > max_len:
            raise Invalid(f"at most {max_len} characters (got {len(value)})")
        if CONTROL_RE.search(value):
            raise Invalid("a string without control characters")
        return value

    return parse


def optional(parse: Callable[[Any], Any]) -> Callable[[Any], Any]:
    return lambda value: None if value is None else parse(value)


def email(value: Any) -> str:
    if not isinstance(value, str):
        raise Invalid("an email address such as 'name@example.org'")
    value = text()(value)
    if not EMAIL_RE.match(value):
        raise Invalid("an email address such as 'name@example.org'")
    return value


def role(value: Any) -> str:
    if isinstance(value, str) and value in LEGACY_ROLES:
        return LEGACY_ROLES[value]
    if value not in ROLES:
        legacy = ", ".join(f"{old} (= {new})" for old, new in LEGACY_ROLES.items())
        raise Invalid(f"one of {', '.join(ROLES)}, or the legacy {legacy}")
    return value


def duration(value: Any) -> str | None:
    """A key lifetime or budget period. None means never (no expiry / no reset)."""
    if value is None:
        return None
    if not isinstance(value, str) or not (DURATION_RE.match(value) or value in NAMED_DURATIONS):
        raise Invalid(DURATION_HELP)
    match = DURATION_RE.match(value)
    if match and int(match.group(1)) == 0:
        raise Invalid(DURATION_HELP + " greater than zero")
    return value


# Seconds per unit of the duration grammar, and of the named durations; a month counts 30 days.
UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "mo": 30 * 86400}
NAMED_SECONDS = {"hourly": 3600, "daily": 86400, "weekly": 7 * 86400, "monthly": 30 * 86400}


def seconds(value: str) -> int:
    """How long a valid duration is, in seconds; a month counts as 30 days (LiteLLM's calendar month can be
    a day or two longer, so a rotation by month is at most that much early)."""
    match = DURATION_RE.match(value)
    return int(match.group(1)) * UNIT_SECONDS[match.group(2)] if match else NAMED_SECONDS[value]


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise Invalid("a number >= 0")
    if not math.isfinite(value):
        raise Invalid("a finite number >= 0")
    if value < 0:
        raise Invalid("a number >= 0")
    return value


def budget(value: Any) -> float | None:
    """USD budget; 0 (the module's default) and None mean no budget."""
    if value is None:
        return None
    value = float(_number(value))
    return None if value == 0 else value


def count(value: Any) -> int | None:
    """A whole-number limit (tpm, rpm, parallel requests); None means unlimited."""
    if value is None:
        return None
    value = _number(value)
    if value != int(value):
        raise Invalid("a whole number >= 0")
    return int(value)


def spend(value: Any) -> float:
    return float(_number(0 if value is None else value))


def string_list(value: Any) -> list[str]:
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) and v.strip() for v in value):
        raise Invalid("a list of non-blank strings, such as ['gpt-4o']")
    for item in value:
        text()(item)
    return list(value)


def json_map(value: Any) -> dict[str, Any] | None:
    """Metadata: a map with string keys; empty means unset. The owner mark's key is the providers' own."""
    if value is None:
        return None
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise Invalid("a map with string keys, such as {'team': 'research'}")
    if MANAGED_BY in value:
        raise Invalid(f"a map without {MANAGED_BY!r}: that entry is the mark of the stack that created the object")
    return dict(value) or None


def model_budgets(value: Any) -> dict[str, dict[str, Any]] | None:
    """{model: {budget_limit, time_period}}; a bare number per model (the module's map) is the limit."""
    if value is None:
        return None
    accepted = "a map of model name to a budget (a number >= 0) or {budget_limit, time_period}"
    if not isinstance(value, Mapping):
        raise Invalid(accepted)
    out: dict[str, dict[str, Any]] = {}
    for model, limit in value.items():
        if not isinstance(model, str) or not model.strip():
            raise Invalid(accepted)
        if isinstance(limit, str):
            try:
                limit = float(limit)
            except ValueError:
                raise Invalid(accepted) from None
        try:
            if isinstance(limit, Mapping):
                entry = {"budget_limit": float(_number(limit.get("budget_limit")))}
                if limit.get("time_period") is not None:
                    entry["time_period"] = duration(limit.get("time_period"))
            else:
                entry = {"budget_limit": float(_number(limit))}
        except Invalid as err:
            raise Invalid(f"{accepted}; for {model!r}: {err}") from None
        out[model] = entry
    return out or None


def proxy_url(value: Any) -> str:
    accepted = "the proxy's root URL, http(s)://host[:port] with no path, query or credentials"
    if not isinstance(value, str) or CONTROL_RE.search(value):
        raise Invalid(accepted)
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise Invalid(accepted)
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username or parts.password:
        raise Invalid(accepted)
    try:
        parts.port
    except ValueError:
        raise Invalid(accepted) from None
    return value.strip().rstrip("/")


def admin_token(value: Any) -> str:
    if not isinstance(value, str) or not value.strip() or CONTROL_RE.search(value):
        raise Invalid("a non-empty LiteLLM master key or admin key")
    return value


def boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise Invalid("true or false")
    return value


def flag(value: Any) -> bool:
    """A switch that is off unless set: LiteLLM reports a key never blocked as `blocked: null`."""
    return False if value is None else boolean(value)


# ------------------------------------------------------------------- fields
@dataclasses.dataclass(frozen=True)
class Field:
    """One property of a resource.

    sent:     goes to LiteLLM in request bodies under its own name.
    live:     LiteLLM reports it back, so `read` reports drift on it (False for duration, spend: the
              server does not echo them or changes them on its own).
    replaces: a change forces a new object on the proxy.
    diffed:   a change is a change (False for creation-time settings that are never sent again).
    secret:   never shown in messages.
    clearable: LiteLLM accepts `cleared` on update to remove the value.
    cleared:  what an update sends to remove the value (null, unless LiteLLM needs something else).
    default:  the value `check` fills in when the input is absent (None: nothing).
    """

    name: str
    parse: Callable[[Any], Any]
    required: bool = False
    sent: bool = True
    live: bool = True
    replaces: bool = False
    diffed: bool = True
    secret: bool = False
    clearable: bool = True
    cleared: Any = None
    default: Any = None


# The owner mark (providers/owner.py): a metadata entry naming the stack that created the object, set by
# the providers and never part of the declared metadata, so never drift.
MANAGED_BY = "pulumi_managed_by"
# The stack (`<project>/<stack>`) a User, Key or Team belongs to, registered by the resource itself: written
# in the mark of what it creates, never sent otherwise and never a change (a stack renamed changes nothing).
OWNER = Field("managed_by", optional(text()), sent=False, live=False, diffed=False)

CREDENTIALS = (
    Field("url", proxy_url, required=True, sent=False, live=False),
    Field("token", admin_token, required=True, sent=False, live=False, secret=True),
)


_URL_CREDENTIALS = re.compile(r"(?i)([a-z][a-z0-9+.-]*://)[^/@\s]*@")


def shown(field: Field, value: Any) -> str:
    """The value as a message may show it: secrets, credentials in a URL and raw keys never appear."""
    if field.secret:
        return "[secret]"
    text_value = redact(_URL_CREDENTIALS.sub(r"\1[credentials]@", repr(value)))
    return text_value if len(text_value) <= 80 else text_value[:77] + "..."


def accepted(field: Field) -> str:
    """What a field accepts, in words (the message its parser gives for a missing value)."""
    try:
        field.parse(None)
    except Invalid as err:
        return str(err)
    return "any value"


def unknown_name(name: Any, accepted_names: Iterable[str], what: str = "input") -> str:
    """The message for a name nobody accepts: the closest accepted name, else all of them."""
    names = sorted(accepted_names)
    close = difflib.get_close_matches(str(name), names, n=1, cutoff=0.75)
    hint = f"did you mean {close[0]!r}?" if close else f"accepted: {', '.join(names)}"
    return f"unknown {what} {name!r}; {hint}"


def problems(
    table: Mapping[str, Field], values: Mapping[str, Any], skip: Callable[[Any], bool] = is_unknown
) -> list[str]:
    """Every problem of a set of named inputs against a table of accepted ones, one message each (names
    unknown, required values missing, values refused); values for which `skip` holds are left for later.
    The table's keys are the names the caller's users write, which may differ from the fields' own."""
    out = [unknown_name(name, table) for name in values if name not in table]
    for name, field in table.items():
        value = values.get(name)
        if skip(value) or (name not in values and not field.required):
            continue
        refused = parsed(name, field, value)[1]
        if refused:
            out.append(refused)
    return out


def parsed(name: str, field: Field, value: Any) -> tuple[Any, str | None]:
    """The canonical value (the field's default when unset), or why the field refuses it, in words."""
    if value is None and field.default is not None:
        value = copy.deepcopy(field.default)
    if value is None and field.required:
        return value, f"{name} is required: {accepted(field)}"
    try:
        return field.parse(value), None
    except Invalid as err:
        return value, f"{name} must be {err}; got {shown(field, value)}"


def check(fields: Iterable[Field], news: Mapping[str, Any]) -> tuple[dict[str, Any], list[CheckFailure]]:
    """Validate and canonicalize every field; unknown values (preview) pass through untouched."""
    inputs = {k: unwrap_secret(v) for k, v in news.items()}
    failures: list[CheckFailure] = []
    for field in fields:
        value = inputs.get(field.name)
        if is_unknown(value):
            continue
        canonical_value, refused = parsed(field.name, field, value)
        if refused:
            failures.append(CheckFailure(field.name, refused))
        else:
            inputs[field.name] = canonical_value
    return inputs, failures


def canonical(field: Field, value: Any) -> Any:
    """The canonical form of a stored or incoming value; an unparseable one stays as it is (and differs)."""
    value = unwrap_secret(value)
    if is_unknown(value):
        return value
    try:
        return field.parse(value)
    except Invalid:
        return value


def changed(fields: Iterable[Field], olds: Mapping[str, Any], news: Mapping[str, Any]) -> list[str]:
    """Names of the fields whose canonical value differs (an unknown new value counts as a change)."""
    out = []
    for field in fields:
        if not field.diffed:
            continue
        new = news.get(field.name)
        if is_unknown(new) or canonical(field, olds.get(field.name)) != canonical(field, new):
            out.append(field.name)
    return out


def body(fields: Iterable[Field], props: Mapping[str, Any], names: Iterable[str] | None = None) -> dict[str, Any]:
    """A request body: the sent fields (only `names` if given). Unset values are left out on create;
    on update (`names` given) a clearable field that became unset is sent as its `cleared` value."""
    wanted = None if names is None else set(names)
    out: dict[str, Any] = {}
    for field in fields:
        if not field.sent or (wanted is not None and field.name not in wanted):
            continue
        value = props.get(field.name)
        if value is None:
            if wanted is not None and field.clearable:
                out[field.name] = copy.deepcopy(field.cleared)
            continue
        out[field.name] = value
    return out


def compact(value: Any) -> Any:
    """A LiteLLM response as Pulumi state keeps it: null entries of maps dropped, at every depth.

    The engine drops them anyway when outputs travel back to a provider (Read, Update), so keeping them at
    Create would make the first refresh report every response as changed; most of a response is nulls."""
    if isinstance(value, dict):
        return {k: compact(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [compact(v) for v in value]
    return value


def live_values(fields: Iterable[Field], row: Mapping[str, Any]) -> dict[str, Any]:
    """The canonical live value of every field LiteLLM reports back; metadata without the owner mark,
    which the providers add and the program never declares."""
    return {f.name: canonical(f, _unmarked(f.name, row.get(f.name))) for f in fields if f.live}


def _unmarked(name: str, value: Any) -> Any:
    if name != "metadata" or not isinstance(value, Mapping) or MANAGED_BY not in value:
        return value
    return {k: v for k, v in value.items() if k != MANAGED_BY}
