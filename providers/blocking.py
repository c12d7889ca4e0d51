"""The kill switch: `blocked` on a Key or a Team.

A create carries `blocked: true` in its own body when the object is declared blocked, so it never exists
unblocked. After that the switch is thrown with /key/block and /key/unblock (for a key, also on the old
keys its rotations keep for a grace), or /team/block and /team/unblock: the key keeps its value, so
unblocking restores the same key. A blocked key is refused at once; a blocked team's keys only once the
proxy's cache of the team expires (measured on LiteLLM 1.108.7: still answering 20 s after the block,
refused about 60 s after it; docs/offboarding.md). When other settings change in the same update, a block
goes first and an unblock last: a failure half-way never leaves the object usable early.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

from . import fields as f

FIELD = f.Field("blocked", f.flag, sent=False, default=False)  # live: /key/info and /team/info report it


def on_create(props: Mapping[str, Any]) -> dict[str, Any]:
    """What a create body adds: `blocked: true` for an object declared blocked, nothing otherwise (so a
    create of an unblocked object sends what it sent before the switch existed)."""
    return {FIELD.name: True} if props.get(FIELD.name) else {}


def differs(live: Mapping[str, Any], props: Mapping[str, Any]) -> bool:
    """True when an object as it is on the proxy (`blocked` null = never blocked) is not as declared."""
    return f.canonical(FIELD, live.get(FIELD.name)) != props.get(FIELD.name)


def around(switch: Callable[[bool], Any], blocked: bool | None, change: Callable[[], Any]) -> Any:
    """Run `change` (the other settings' update) with the switch thrown on the safe side of it: block
    before, unblock after; `blocked` None leaves the switch alone. Returns the last answer."""
    answer = switch(True) if blocked is True else None
    answer = change() or answer
    return switch(False) if blocked is False else answer
