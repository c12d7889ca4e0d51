"""Key rotation: when a key is due, and what one `up` remembers between the calls of a rotation.

A rotation is a create-before-delete replacement of a Key. The engine's Create gets no olds, so Diff, which
the plugin always serves before a replacement's Create in the same process and the same `up`, notes which key
is being replaced (keyed by user_id and declared alias); Create takes that note. That is also how the Create
of an auto-created key (which gets the same `existing_key` every time) tells a rotation, which mints the next
key with /key/generate, from the first adoption. Create in turn notes the old keys it gave a grace, so the
Delete the engine sends for the old key at the end of that `up` keeps it (LiteLLM ends it at `expires`).

The notes live in the plugin process only: a Delete in another process (the next `up` after a failed one,
or a destroy) asks the proxy instead (see `in_grace`).
"""

from __future__ import annotations

import dataclasses
import threading
from datetime import datetime, timedelta, timezone
from typing import Any, Mapping, Optional

from . import fields as f

# Why a key is replaced although no input that replaces it changed (the names `preview` shows).
AGE, EXPIRY = "rotate_after", "expires"
_lock = threading.Lock()
_replacing: dict[tuple[str, str], "Rotation"] = {}
_graced: set[str] = set()


@dataclasses.dataclass(frozen=True)
class Rotation:
    """The key a replacement's Create retires: its hash, its alias, and whether it has already expired
    (an expired key gets no grace: that would bring it back to life)."""

    old_hash: str
    old_alias: str
    expired: bool

    @property
    def rotating_alias(self) -> str:
        """The alias the old key carries from the start of the rotation: `<alias>.rotating-<first 8 of its
        hash>`; the key is deleted at the end of the `up` unless it gets a grace."""
        return derived_alias(self.old_alias, self.old_hash, "rotating")

    @property
    def retired_alias(self) -> str:
        """The alias it carries once it has its grace, set with its `expires` in one call: `<alias>.retired-
        <first 8 of its hash>`. So the proxy itself says which old key is in a grace."""
        return derived_alias(self.old_alias, self.old_hash, "retired")


def derived_alias(alias: str, key_hash: str, stage: str) -> str:
    return f"{alias}.{stage}-{key_hash[:8]}"


def when(value: Any) -> Optional[datetime]:
    """A LiteLLM timestamp ("2026-12-01T04:29:13.772000+00:00", or with a Z), None when absent or unreadable."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def info(outputs: Mapping[str, Any]) -> Mapping[str, Any]:
    """The key's row as last read (`key_data.info` in the outputs)."""
    return ((outputs.get("key_data") or {}).get("info")) or {}


def due(olds: Mapping[str, Any], news: Mapping[str, Any]) -> list[str]:
    """Why the key must be replaced now, from the outputs in state (no call): it is at least `rotate_after`
    old (by its `created_at` on the proxy), or its `expires` has passed."""
    row, now, reasons = info(olds), datetime.now(timezone.utc), []
    rotate_after, created = news.get("rotate_after"), when(row.get("created_at"))
    if created and _valid(rotate_after) and now - created >= timedelta(seconds=f.seconds(rotate_after)):
        reasons.append(AGE)
    expires = when(row.get("expires"))
    if expires and expires <= now:
        reasons.append(EXPIRY)
    return reasons


def _valid(value: Any) -> bool:
    try:
        return f.duration(value) is not None
    except f.Invalid:
        return False


def note_replacing(id_: str, olds: Mapping[str, Any], news: Mapping[str, Any], reasons: list[str]) -> None:
    """Diff answered a create-before-delete replacement of key `id_` (`reasons`: what `due` found): its
    Create will retire that key."""
    if not isinstance(news.get("user_id"), str) or not isinstance(news.get("key_alias"), str):
        return  # unknown at preview: no Create follows
    rotation = Rotation(id_, str(olds.get("key_alias")), expired=EXPIRY in reasons)
    with _lock:
        _replacing[(news["user_id"], news["key_alias"])] = rotation


def take_replacing(props: Mapping[str, Any]) -> Optional[Rotation]:
    with _lock:
        return _replacing.pop((props["user_id"], props["key_alias"]), None)


def note_graced(key_hash: str) -> None:
    with _lock:
        _graced.add(key_hash)


def take_graced(key_hash: str) -> bool:
    with _lock:
        if key_hash in _graced:
            _graced.discard(key_hash)
            return True
        return False


def in_grace(key_hash: str, row: Optional[Mapping[str, Any]], props: Mapping[str, Any]) -> bool:
    """From the proxy's row: a key in its grace carries its retired alias and has not expired yet."""
    if row is None or row.get("key_alias") != derived_alias(str(props.get("key_alias")), key_hash, "retired"):
        return False
    expires = when(row.get("expires"))
    return expires is not None and expires > datetime.now(timezone.utc)
