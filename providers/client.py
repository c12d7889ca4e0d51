"""The one HTTP client for the LiteLLM management API: timeouts, retries, errors, redaction.

Every call goes through `LiteLLMClient._call`, so every call has connect and read timeouts, idempotent
calls retry within a bounded total time, and every error that leaves this module names the operation,
LiteLLM's status and message, and never carries the admin token or a raw key.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import os
import random
import re
import time
from typing import Any, Mapping, Optional

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import InvalidHeader, NewConnectionError, ReadTimeoutError
from urllib3.util.retry import Retry

RETRY_STATUSES = frozenset({429, 502, 503, 504})
_RAW_KEY = re.compile(r"sk-[A-Za-z0-9_\-.~+/=]{4,}")


def token_hash(raw_key: str) -> str:
    """A key's identity on the proxy: the sha256 hex of the raw key (safe to log and to put in URLs)."""
    return hashlib.sha256(raw_key.encode()).hexdigest()


def redact(text: str, *secrets: str | None) -> str:
    """Remove the given secrets and anything shaped like a raw LiteLLM key from `text`."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[secret]")
    return _RAW_KEY.sub("sk-[redacted]", text)


@dataclasses.dataclass(frozen=True)
class ClientSettings:
    """Timeouts and the retry budget, from the environment (the plugin process inherits the engine's).

    LITELLM_CONNECT_TIMEOUT    seconds to open a connection (default 5)
    LITELLM_READ_TIMEOUT       seconds to wait for an answer (default 30)
    LITELLM_RETRY_MAX_SECONDS  total time one call may spend retrying, backoff included (default 30; 0: no retry)
    LITELLM_RETRY_ATTEMPTS     retries after the first attempt (default 5; 0: no retry)
    LITELLM_RETRY_BACKOFF      first back-off in seconds, doubled at each retry, plus as much jitter (default 0.5)
    """

    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    retry_max_seconds: float = 30.0
    retry_attempts: int = 5
    backoff_factor: float = 0.5

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> "ClientSettings":
        def number(name: str, default: float, *, positive: bool = False, whole: bool = False) -> float:
            raw = env.get(name)
            if raw in (None, ""):
                return default
            accepted = "a whole number >= 0" if whole else ("a number of seconds > 0" if positive else "a number of seconds >= 0")
            try:
                value = float(raw)
            except ValueError:
                raise ValueError(f"{name} must be {accepted}, got {raw!r}") from None
            if not math.isfinite(value) or value < 0 or (positive and value == 0) or (whole and value != int(value)):
                raise ValueError(f"{name} must be {accepted}, got {raw!r}")
            return value

        return cls(
            connect_timeout=number("LITELLM_CONNECT_TIMEOUT", cls.connect_timeout, positive=True),
            read_timeout=number("LITELLM_READ_TIMEOUT", cls.read_timeout, positive=True),
            retry_max_seconds=number("LITELLM_RETRY_MAX_SECONDS", cls.retry_max_seconds),
            retry_attempts=int(number("LITELLM_RETRY_ATTEMPTS", cls.retry_attempts, whole=True)),
            backoff_factor=number("LITELLM_RETRY_BACKOFF", cls.backoff_factor),
        )


class LiteLLMError(Exception):
    """A failed management call. `status` is LiteLLM's HTTP status (None when no answer came back)."""

    def __init__(
        self, operation: str, message: str, status: int | None = None, retry_after: float | None = None
    ) -> None:
        self.operation = operation
        self.status = status
        self.detail = message
        self.retry_after = retry_after  # seconds the proxy asked us to wait (429/503 Retry-After)
        where = f"HTTP {status}" if status is not None else "no response"
        super().__init__(f"{operation} failed ({where}): {message}")


class NotFound(LiteLLMError):
    """404: the object does not exist."""


class Conflict(LiteLLMError):
    """409 (or LiteLLM's 400 for a taken key alias): the object already exists."""


class AmbiguousFailure(LiteLLMError):
    """The request may or may not have reached the proxy (timeout, reset, 5xx): look before retrying.
    (429 is one too, although LiteLLM rejects before acting: `surely_not_done` tells them apart.)"""

    @property
    def surely_not_done(self) -> bool:
        return self.status == 429

    @property
    def retryable(self) -> bool:
        """Worth another attempt: no answer, an answer that could not be read (a 2xx cut short), or
        429/502/503/504. A 500 is LiteLLM's own verdict on the request (an invalid duration, an
        Enterprise-only field) and would only fail again."""
        return self.status is None or self.status < 400 or self.status in RETRY_STATUSES


def _parse_retry_after(value: str | None) -> float | None:
    """Retry-After as seconds: an integer (RFC 9110), a decimal (lenient) or an HTTP date; None if malformed."""
    if not value:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        try:
            return max(0.0, Retry().parse_retry_after(value))
        except InvalidHeader:
            return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


class RetryBudget:
    """The retry budget of one logical operation done in several calls (a create that looks before it
    tries again): at most `retry_attempts` more attempts, none started after `retry_max_seconds`, each
    after an exponential backoff with jitter, or the Retry-After the proxy asked for."""

    def __init__(self, settings: "ClientSettings") -> None:
        self._settings = settings
        self._started = time.monotonic()
        self.retries = 0

    def remaining(self) -> float:
        return self._settings.retry_max_seconds - (time.monotonic() - self._started)

    def wait(self, error: Optional[LiteLLMError] = None) -> bool:
        """Sleep before the next attempt and return True, or return False when the budget is spent."""
        s = self._settings
        if self.retries >= s.retry_attempts or self.remaining() <= 0:
            return False
        self.retries += 1
        pause = s.backoff_factor * (2 ** (self.retries - 1)) + random.uniform(0, s.backoff_factor)
        if error is not None and error.retry_after is not None:
            pause = error.retry_after
        time.sleep(max(0.0, min(pause, self.remaining())))
        return True

    def spent(self) -> str:
        return f"{self.retries + 1} attempt(s) in {time.monotonic() - self._started:.1f}s"


class BoundedRetry(Retry):
    """urllib3's Retry with a wall-clock budget: no retry, backoff or Retry-After wait past `max_seconds`.

    The clock starts at the first failure of a request, so the template on the adapter stays reusable.
    """

    def __init__(self, *args: Any, max_seconds: float = 30.0, started: float | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.max_seconds = max_seconds
        self.started = started

    def new(self, **kwargs: Any) -> "BoundedRetry":
        kwargs.setdefault("max_seconds", self.max_seconds)
        kwargs.setdefault("started", self.started if self.started is not None else time.monotonic())
        return super().new(**kwargs)  # type: ignore[return-value]

    def _remaining(self) -> float:
        if self.started is None:
            return self.max_seconds
        return self.max_seconds - (time.monotonic() - self.started)

    def is_exhausted(self) -> bool:
        return super().is_exhausted() or self._remaining() <= 0

    def get_backoff_time(self) -> float:
        return max(0.0, min(super().get_backoff_time(), self._remaining()))

    def get_retry_after(self, response: Any) -> float | None:
        # A malformed or fractional Retry-After falls back to the backoff instead of failing the call.
        after = _parse_retry_after(response.headers.get("Retry-After"))
        return None if after is None else max(0.0, min(after, self._remaining()))


def _session(retry: Retry) -> requests.Session:
    session = requests.Session()
    adapter = HTTPAdapter(max_retries=retry)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


PAGE_SIZE = 100  # LiteLLM's largest page for /user/list and /key/list (101 is refused with 422)


class LiteLLMClient:
    """Talks to one proxy with one admin token. Build one per operation; it holds no state worth keeping."""

    def __init__(self, url: str, token: str, settings: ClientSettings | None = None) -> None:
        self._url = url.rstrip("/")
        self._token = token
        self._settings = settings or ClientSettings.from_env()
        s = self._settings
        common = dict(
            backoff_factor=s.backoff_factor,
            backoff_jitter=s.backoff_factor,
            backoff_max=s.retry_max_seconds,
            max_seconds=s.retry_max_seconds,
            raise_on_status=False,
            respect_retry_after_header=True,
        )
        # Idempotent calls (reads, updates, deletes) retry on connection errors and 429/502/503/504.
        self._retrying = _session(
            BoundedRetry(total=s.retry_attempts, status_forcelist=RETRY_STATUSES, allowed_methods=None, **common)
        )
        # Creates retry only when the request surely never left (connect errors); anything else is
        # ambiguous and the provider looks before it tries again.
        self._once = _session(
            BoundedRetry(total=s.retry_attempts, connect=s.retry_attempts, read=0, status=0, other=0, **common)
        )

    @property
    def url(self) -> str:
        return self._url

    def __repr__(self) -> str:
        return f"LiteLLMClient(url={self._url!r}, token=[secret])"

    __str__ = __repr__

    # ------------------------------------------------------------------ users
    def user_new(self, body: dict[str, Any]) -> dict[str, Any]:
        return self._call(f"create user {body.get('user_id')!r}", "POST", "/user/new", body=body, idempotent=False)

    def user_info(self, user_id: str) -> dict[str, Any]:
        if not user_id:  # without user_id LiteLLM answers with the admin's own row
            raise ValueError("user_info needs a user_id")
        return self._call(f"read user {user_id!r}", "GET", "/user/info", params={"user_id": user_id})

    def user_update(self, body: dict[str, Any]) -> dict[str, Any]:
        return self._call(f"update user {body.get('user_id')!r}", "POST", "/user/update", body=body)

    def user_delete(self, user_id: str) -> None:
        """Deleting a user that is already gone succeeds (LiteLLM answers 200 or 404 for it)."""
        self._delete(f"delete user {user_id!r}", "/user/delete", {"user_ids": [user_id]})

    # ------------------------------------------------------------------- keys
    def key_generate(self, body: dict[str, Any]) -> dict[str, Any]:
        operation = f"generate key {body.get('key_alias')!r}"
        return self._call(operation, "POST", "/key/generate", body=body, idempotent=False)

    def key_info(self, key_hash: str) -> dict[str, Any]:
        return self._call(f"read key {_short(key_hash)}", "GET", "/key/info", params={"key": key_hash})

    def key_update(self, key_hash: str, fields: dict[str, Any]) -> dict[str, Any]:
        return self._call(f"update key {_short(key_hash)}", "POST", "/key/update", body={"key": key_hash, **fields})

    def key_delete(self, key_hash: str) -> None:
        """Deleting a key that is already gone succeeds (404 "No keys found", also when a retry follows a
        delete whose answer was lost)."""
        self._delete(f"delete key {_short(key_hash)}", "/key/delete", {"keys": [key_hash]})

    def key_blocked(self, key_hash: str, blocked: bool) -> dict[str, Any]:
        """/key/block or /key/unblock: the key keeps its value (unblocking restores the same key)."""
        action = "block" if blocked else "unblock"
        return self._call(f"{action} key {_short(key_hash)}", "POST", f"/key/{action}", body={"key": key_hash})

    def keys_with_alias(self, alias: str) -> list[dict[str, Any]]:
        """The keys (rows with hashed tokens) whose alias is `alias`: at most one, aliases are unique."""
        found = self._call(
            f"list keys with alias {alias!r}", "GET", "/key/list", params={"key_alias": alias, "return_full_object": "true"}
        )
        return [row for row in found.get("keys", []) if isinstance(row, dict) and row.get("key_alias") == alias]

    # ------------------------------------------------------------------ teams
    def team_new(self, body: dict[str, Any]) -> dict[str, Any]:
        return self._call(f"create team {body.get('team_id')!r}", "POST", "/team/new", body=body, idempotent=False)

    def team_info(self, team_id: str) -> dict[str, Any]:
        if not team_id:
            raise ValueError("team_info needs a team_id")
        return self._call(f"read team {team_id!r}", "GET", "/team/info", params={"team_id": team_id})

    def team_update(self, body: dict[str, Any]) -> dict[str, Any]:
        return self._call(f"update team {body.get('team_id')!r}", "POST", "/team/update", body=body)

    def team_delete(self, team_id: str) -> None:
        """Deleting a team that is already gone succeeds (LiteLLM answers 404). LiteLLM deletes the team's
        keys with it."""
        self._delete(f"delete team {team_id!r}", "/team/delete", {"team_ids": [team_id]})

    def team_blocked(self, team_id: str, blocked: bool) -> dict[str, Any]:
        """/team/block or /team/unblock. The team's keys follow only once the proxy's cache of the team
        expires (tens of seconds on LiteLLM 1.108.7)."""
        action = "block" if blocked else "unblock"
        return self._call(f"{action} team {team_id!r}", "POST", f"/team/{action}", body={"team_id": team_id})

    def team_member_add(self, team_id: str, user_id: str, role: str) -> dict[str, Any]:
        """Not retried blindly (a second add answers 400 "already in team", raised as Conflict)."""
        operation = f"add user {user_id!r} to team {team_id!r}"
        body = {"team_id": team_id, "member": [{"role": role, "user_id": user_id}]}
        try:
            return self._call(operation, "POST", "/team/member_add", body=body, idempotent=False)
        except LiteLLMError as err:
            if err.status == 400 and "already in team" in err.detail:
                raise Conflict(operation, err.detail, err.status) from None
            raise

    def team_member_update(self, body: dict[str, Any]) -> dict[str, Any]:
        operation = f"update user {body.get('user_id')!r} in team {body.get('team_id')!r}"
        return self._call(operation, "POST", "/team/member_update", body=body)

    def team_member_delete(self, team_id: str, user_id: str) -> None:
        """Removing a member that is not in the team, or from a team that is gone, succeeds (LiteLLM
        answers 400 "User not found in team" / "does not exist in db")."""
        operation = f"remove user {user_id!r} from team {team_id!r}"
        try:
            self._delete(operation, "/team/member_delete", {"team_id": team_id, "user_id": user_id})
        except LiteLLMError as err:
            if not (err.status == 400 and ("not found in team" in err.detail or "does not exist" in err.detail)):
                raise

    # ---------------------------------------------------------------- listing
    def list_users(self) -> list[dict[str, Any]]:
        """Every user, paged by user_id (LiteLLM's default order, newest first, repeats and skips rows
        across pages)."""
        return self._paged("list users", "/user/list", "users", "user_id", "page_size", {"sort_by": "user_id"})

    def list_keys(self) -> list[dict[str, Any]]:
        """Every live key (rows with hashed tokens, never a raw key), paged by token hash."""
        return self._paged("list keys", "/key/list", "keys", "token", "size",
                           {"sort_by": "token", "return_full_object": "true"})

    def list_teams(self) -> list[dict[str, Any]]:
        """Every team, paged by team_id (/v2/team/list: /team/list has no paging)."""
        return self._paged("list teams", "/v2/team/list", "teams", "team_id", "page_size", {"sort_by": "team_id"})

    def _paged(self, operation: str, path: str, items: str, key: str, size: str,
               params: dict[str, str]) -> list[dict[str, Any]]:
        """All rows of a listing, PAGE_SIZE at a time (LiteLLM's maximum), in ascending order of a stable key,
        each row once. LiteLLM pages by offset: a row added meanwhile before the cursor repeats the last row of
        a page on the next one (dropped here, by `key`); a row deleted meanwhile hides one, which paging by
        offset cannot prevent (refresh reads the ids a listing lacks one by one)."""
        rows: list[dict[str, Any]] = []
        seen: set[Any] = set()
        page = 1
        while True:
            query = {**params, "sort_order": "asc", "page": str(page), size: str(PAGE_SIZE)}
            found = self._call(f"{operation} (page {page})", "GET", path, params=query)
            batch = [row for row in (found or {}).get(items) or [] if isinstance(row, dict)]
            for row in batch:
                if row.get(key) is None or row[key] not in seen:
                    rows.append(row)
                    seen.add(row.get(key))
            if not batch or page >= int((found or {}).get("total_pages") or 0):
                return rows
            page += 1

    def budget(self) -> RetryBudget:
        """A retry budget for an operation made of several calls (see RetryBudget)."""
        return RetryBudget(self._settings)

    # --------------------------------------------------------------- plumbing
    def _delete(self, operation: str, path: str, body: dict[str, Any]) -> None:
        try:
            self._call(operation, "POST", path, body=body)
        except NotFound:
            pass

    def _call(
        self,
        operation: str,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        body: dict[str, Any] | None = None,
        idempotent: bool = True,
    ) -> Any:
        session = self._retrying if idempotent else self._once
        timeout = (self._settings.connect_timeout, self._settings.read_timeout)
        budget = self.budget()
        while True:
            failure: LiteLLMError | None = None
            try:
                response = session.request(
                    method,
                    self._url + path,
                    params=params,
                    json=body,
                    headers={"Authorization": f"Bearer {self._token}"},
                    timeout=timeout,
                )
            except requests.RequestException as err:
                reason = redact(_describe(err), self._token)
                # A request that never got a connection never reached the proxy; anything else may have.
                cls = LiteLLMError if _never_sent(err) else AmbiguousFailure
                failure = cls(operation, f"{reason} ({self._url}{path})")
                # urllib3 retries what fails before the answer's body; an answer cut off mid-body
                # (ChunkedEncodingError) is retried here, for idempotent calls only.
                truncated = isinstance(err, requests.exceptions.ChunkedEncodingError)
                if idempotent and truncated and budget.wait():
                    continue
            # Raised outside `except`, so no chained urllib3 exception (which holds the request and its
            # Authorization header) rides along in __context__ into tracebacks.
            if failure is not None:
                raise failure
            return self._decode(operation, response)

    def _decode(self, operation: str, response: requests.Response) -> Any:
        status = response.status_code
        try:
            payload = response.json()
        except ValueError:
            payload = None
        if status < 400:
            if payload is None and response.content:
                raise AmbiguousFailure(operation, "the proxy sent a body that is not JSON (truncated?)", status)
            return payload
        message = redact(_error_message(payload, response.text), self._token)
        if status == 404:
            raise NotFound(operation, message, status)
        if status == 409 or (status == 400 and "already exists" in message):
            raise Conflict(operation, message, status)
        if status >= 500 or status == 429:
            retry_after = _parse_retry_after(response.headers.get("Retry-After"))
            raise AmbiguousFailure(operation, message, status, retry_after)
        raise LiteLLMError(operation, message, status)


def _short(key_hash: str) -> str:
    """A key as errors name it: the start of its hash (never a raw key, even if one is passed by mistake)."""
    return f"{key_hash[:12]}..." if not key_hash.startswith("sk-") else "sk-[redacted]"


def _reason(err: requests.RequestException) -> Any:
    """The urllib3 error under requests' wrapper (MaxRetryError's reason when retries ran out)."""
    inner = err.args[0] if err.args else None
    return getattr(inner, "reason", inner)


def _never_sent(err: requests.RequestException) -> bool:
    return isinstance(err, requests.exceptions.ConnectTimeout) or isinstance(_reason(err), NewConnectionError)


def _describe(err: requests.RequestException) -> str:
    reason = _reason(err)
    if isinstance(err, requests.exceptions.ConnectTimeout):
        return "timed out connecting to the proxy"
    if isinstance(err, requests.exceptions.ReadTimeout) or isinstance(reason, ReadTimeoutError):
        return "timed out waiting for the proxy's answer"
    if isinstance(err, requests.exceptions.SSLError):
        return "TLS verification failed (set REQUESTS_CA_BUNDLE for a private CA)"
    if isinstance(err, requests.exceptions.ChunkedEncodingError):
        return "the proxy's answer was cut off before its end"
    if isinstance(reason, NewConnectionError):
        return "could not connect to the proxy (refused or unreachable)"
    if isinstance(err, requests.exceptions.ConnectionError):
        return "connection to the proxy failed or was dropped"
    return type(err).__name__


def _error_message(payload: Any, text: str) -> str:
    """LiteLLM's own words: {"error": {"message"}} or FastAPI's {"detail": [...]} for 422."""
    if isinstance(payload, dict):
        error = payload.get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
        detail = payload.get("detail")
        if isinstance(detail, list):
            parts = []
            for item in detail:
                if isinstance(item, dict):
                    loc = ".".join(str(p) for p in item.get("loc", []) if p != "body")
                    parts.append(f"{loc}: {item.get('msg')}" if loc else str(item.get("msg")))
            if parts:
                return "; ".join(parts)
        if isinstance(detail, dict) and detail.get("error"):  # HTTPException(detail={"error": ...})
            return str(detail["error"])
        if detail:
            return str(detail)
    return text[:500] or "empty response"
