"""What LiteLLM deletes with a team or a membership: the keys in it.

/team/delete deletes the team's keys, and /team/member_delete the member's keys in that team (measured on
LiteLLM 1.108.7). A key that still names the team would go silently, so a Team's and a TeamMember's Delete
refuse while such keys exist, naming them, before anything is sent. Exempt: the old keys of our own
rotations (`<alias>.rotating-<hash>`, `<alias>.retired-<hash>`, the hash being their own), which go with
their Key anyway.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping, Optional

from .client import LiteLLMClient, LiteLLMError, NotFound
from .rotation import derived_alias

ROTATION_STAGES = ("rotating", "retired")


def team_keys(client: LiteLLMClient, team_id: str) -> Optional[list[dict[str, Any]]]:
    """The key rows (hashed tokens) of the team, from /team/info; None when the team is gone."""
    try:
        info = client.team_info(team_id)
    except NotFound:
        return None
    return [row for row in info.get("keys") or [] if isinstance(row, dict)]


def retired(row: Mapping[str, Any]) -> bool:
    """An old key of one of our rotations: its alias ends in a rotation stage and its own hash prefix."""
    alias, token = str(row.get("key_alias") or ""), str(row.get("token") or "")
    base = alias.rsplit(".", 1)[0]
    return bool(token) and any(alias == derived_alias(base, token, stage) for stage in ROTATION_STAGES)


def named(rows: Iterable[Mapping[str, Any]]) -> str:
    """Keys as a message names them: alias (or hash prefix) and user; never a raw key."""
    def one(row: Mapping[str, Any]) -> str:
        who = f"key alias {row['key_alias']!r}" if row.get("key_alias") else f"key {str(row.get('token'))[:12]}..."
        return f"{who} of user {row.get('user_id')!r}" if row.get("user_id") else who

    return ", ".join(sorted(one(row) for row in rows))


def refuse_team_delete(rows: list[dict[str, Any]], team_id: str) -> None:
    held = [row for row in rows if not retired(row)]
    if held:
        raise LiteLLMError(
            "delete team",
            f"team {team_id!r} still holds {len(held)} key(s): {named(held)}. LiteLLM deletes a team's keys with "
            "it, so nothing was deleted: move those keys to another team (their team_id) or remove them first, "
            "then run `pulumi up` again",
        )


def refuse_member_delete(rows: list[dict[str, Any]], team_id: str, user_id: str) -> None:
    held = [row for row in rows if row.get("user_id") == user_id and not retired(row)]
    if held:
        raise LiteLLMError(
            "remove team member",
            f"user {user_id!r} still holds {len(held)} key(s) in team {team_id!r}: {named(held)}. LiteLLM deletes "
            "a member's keys in the team when it leaves, so nothing was sent: move those keys out of the team "
            "(their team_id) or remove them first, then run `pulumi up` again",
        )
