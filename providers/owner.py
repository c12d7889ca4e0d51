"""The owner mark: which stack manages an object, so that a create of the same stack may take it over.

A create that finds its object already there refuses it unless `adopt_existing` is set: it may be another
stack's, or made by hand. But two cases find an object this very stack made: a resource renamed (a new URN:
the engine creates the new resource before it deletes the old one, and the old one's Delete then releases
the object: providers/claims.py), and an `up` killed after the proxy made the object but before the state
recorded it. So every User, Key and Team this stack creates (or adopts: it manages it from then on) carries
`metadata.pulumi_managed_by = "<project>/<stack>"`, and a create that finds an object with this stack's mark
takes it over as `adopt_existing` would; one with another stack's mark, or none, still needs
`adopt_existing`, and the refusal says which.

Where the mark comes from: each resource registers its stack (`managed_by`, `pulumi.get_project()` and
`pulumi.get_stack()`, known to the program; the plugin is told no stack), a creation-time input that is
never a change. Where it goes: into the metadata of every create (with the pending marker of
providers/create.py) and of every later write of the declared metadata (which replaces the whole map), so
it stays; read takes it out of the live metadata (providers/fields.live_values), so it is never drift.
Objects made before the mark existed are not marked by an upgrade: nothing is written to them until their
declared metadata changes (a key's or team's; a user's metadata is never written after its create).
The identity is the project and stack names: two stacks of one name (separate backends) on one proxy would
take each other's objects on a rename, as they would share every id anyway.

A taken-over key's raw value is not readable from LiteLLM: its `key` output is empty (docs/recovery.md).
"""

from __future__ import annotations

from typing import Any, Mapping, Optional

import pulumi

from .fields import MANAGED_BY, OWNER


def stack_identity() -> Optional[str]:
    """`<project>/<stack>` of the running program (None outside one)."""
    try:
        return f"{pulumi.get_project()}/{pulumi.get_stack()}"
    except Exception:  # noqa: BLE001  (no program: the SDK raises when its settings are missing)
        return None


def mark(props: Mapping[str, Any]) -> dict[str, str]:
    """The metadata entry naming this resource's stack, or nothing for a resource registered without one."""
    owner = props.get(OWNER.name)
    return {MANAGED_BY: owner} if owner else {}


def marked(metadata: Optional[Mapping[str, Any]], props: Mapping[str, Any]) -> dict[str, Any]:
    """Metadata to send: the given map (None: empty) with this stack's mark."""
    return {**(metadata or {}), **mark(props)}


def in_body(body: dict[str, Any], props: Mapping[str, Any]) -> dict[str, Any]:
    """An update body whose declared metadata (if it has any) goes with the mark: LiteLLM's /key/update and
    /team/update replace the whole map, so metadata sent without it would drop it."""
    if "metadata" in body:
        body["metadata"] = marked(body["metadata"], props)
    return body


def owned(row: Optional[Mapping[str, Any]], props: Mapping[str, Any]) -> bool:
    """True when the row (user_info, key info, team_info) carries this resource's stack's mark."""
    owner = props.get(OWNER.name)
    return bool(owner) and row is not None and (row.get("metadata") or {}).get(MANAGED_BY) == owner


def whose(row: Optional[Mapping[str, Any]]) -> str:
    """Who made the object, as far as its mark says, for the message of a refused create."""
    other = (row or {}).get("metadata", {}) or {}
    return (f"it was created by stack {other[MANAGED_BY]!r}" if other.get(MANAGED_BY)
            else "it carries no stack's mark (made by hand, or by this project before the mark existed)")
