"""Reads that scale: one paged listing per plugin run answers the Reads of a refresh.

The engine starts one plugin process per operation and sends it every resource's Read, up to 4 at once
(the plugin's thread pool). Read one by one, a refresh of N users costs 2N calls and each membership reads
its whole team. Here:
- users and keys: the first SINGLE_READS Reads of a kind are single calls (a small stack on a large proxy
  should not list the whole proxy); the next one lists every row once, in pages of 100 sorted by a unique
  column (the other Reads wait for it), and answers the rest from it. A row the listing lacks (gone, or
  made after it) gets a single read, so a Read answers exactly what a single read would.
- teams: the memberships of one team share one /team/info per run.
Only Read uses this module: creates and updates always read the proxy as it is now.
"""

from __future__ import annotations

import threading
from typing import Any, Callable, Iterable, Optional

from .client import LiteLLMClient, LiteLLMError, NotFound

SINGLE_READS = 3
_MISSING: Any = object()
_registry_lock = threading.Lock()
_listings: dict[tuple[str, str], "Listing"] = {}
_teams: dict[tuple[str, str], "Once"] = {}


class Listing:
    """Rows by id, listed at most once (thread-safe); None until listing pays off, or after it failed."""

    def __init__(self, rows: Callable[[], Iterable[dict[str, Any]]], id_field: str) -> None:
        self._fetch, self._id_field = rows, id_field
        self._lock = threading.Lock()
        self._reads = 0
        self._rows: Optional[dict[str, dict[str, Any]]] = None
        self._failed = False

    def row(self, id_: str) -> Optional[dict[str, Any]]:
        """The listed row of `id_`, or None: read it by itself (not listed yet, not in the listing)."""
        with self._lock:  # held while listing: the Reads that arrive meanwhile wait for its rows
            self._reads += 1
            if self._reads <= SINGLE_READS or self._failed:
                return None
            if self._rows is None:
                try:
                    self._rows = self._index(self._fetch())
                except LiteLLMError:
                    self._failed = True  # the single reads that follow report the proxy's own error
                    return None
            return self._rows.get(id_)

    def _index(self, rows: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any]]:
        indexed: dict[str, dict[str, Any]] = {}
        for row in rows:
            if isinstance(row.get(self._id_field), str):
                indexed.setdefault(row[self._id_field], row)
        return indexed


class Once:
    """A value computed once (thread-safe); a failure is not kept, so the next caller tries again."""

    def __init__(self, compute: Callable[[], Any]) -> None:
        self._compute, self._lock, self._value = compute, threading.Lock(), _MISSING

    def get(self) -> Any:
        with self._lock:
            if self._value is _MISSING:
                self._value = self._compute()
            return self._value


def _listing(kind: str, client: LiteLLMClient, make: Callable[[], Listing]) -> Listing:
    """The run's listing of `kind` at the client's proxy (its first client lists for all)."""
    with _registry_lock:
        if (kind, client.url) not in _listings:
            _listings[(kind, client.url)] = make()
        return _listings[(kind, client.url)]


def user_row(client: LiteLLMClient, user_id: str) -> Optional[dict[str, Any]]:
    """The user's /user/list row, when the run's listing answers for it."""
    return _listing("users", client, lambda: Listing(client.list_users, "user_id")).row(user_id)


def key_row(client: LiteLLMClient, key_hash: str) -> Optional[dict[str, Any]]:
    """The key's /key/list row (live keys only), when the run's listing answers for it."""
    return _listing("keys", client, lambda: Listing(client.list_keys, "token")).row(key_hash)


def team_info(client: LiteLLMClient, team_id: str) -> Optional[dict[str, Any]]:
    """/team/info of `team_id` once per run for all its memberships; None when the team is gone."""

    def read() -> Optional[dict[str, Any]]:
        try:
            return client.team_info(team_id)
        except NotFound:
            return None

    with _registry_lock:
        once = _teams.setdefault((client.url, team_id), Once(read))
    return once.get()
