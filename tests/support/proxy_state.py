"""What is really on the proxy, asked directly (not through the providers under test)."""

from __future__ import annotations

from typing import Any, Iterable

from providers.client import LiteLLMClient, NotFound


def team_exists(api: LiteLLMClient, team_id: str) -> bool:
    try:
        api.team_info(team_id)
        return True
    except NotFound:
        return False


def destroy_or_delete(stacks: Iterable[Any], api: LiteLLMClient) -> None:
    """A test's cleanup: destroy each harness stack, and delete its users and teams directly whatever the
    destroy did (a test may leave a stack that can no longer be destroyed)."""
    for stack in stacks:
        try:
            stack.destroy()
        except Exception:  # noqa: BLE001 - fall back to the API below
            pass
        for user in stack.config.get("litellm:users", []):
            api.user_delete(user["user_id"])
        for team in stack.config.get("litellm:teams", []):
            api.team_delete(team["team_id"])


def user_exists(api: LiteLLMClient, user_id: str) -> bool:
    try:
        api.user_info(user_id)
        return True
    except NotFound:
        return False


def key_alive(api: LiteLLMClient, key_hash: str) -> bool:
    """True while the key exists and is not deleted (LiteLLM answers 200 for deleted keys, from an archive)."""
    try:
        info = api.key_info(key_hash)
    except NotFound:
        return False
    return (info.get("info") or {}).get("status") != "deleted"


def keys_of(api: LiteLLMClient, user_id: str) -> list[dict]:
    """The user's live keys (rows with hashed tokens); [] when the user is gone."""
    try:
        return list(api.user_info(user_id).get("keys") or [])
    except NotFound:
        return []
