"""What is really on the proxy, asked directly (not through the providers under test)."""

from __future__ import annotations

from providers.client import LiteLLMClient, NotFound


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
