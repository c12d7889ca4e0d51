"""Key rotation and expiry healing (README, "Rotating keys") on the real engine. A rotation is a
create-before-delete replacement whose Create gets no olds: the Key's Diff notes in the plugin process which
key it replaces, and Create takes that note (providers/rotation.py). Without it a generated key's Create would
collide with its own alias, and an auto-created key's would adopt the same key again; so these tests prove
that the note holds between the real engine's Diff and Create. Durations are seconds, so they wait a few."""

from __future__ import annotations

import time
from typing import Any

from providers.client import LiteLLMClient, token_hash
from providers.rotation import when
from support.proxy_state import key_alive, keys_of

from .checks import ops, replace_reasons, steps, wait_until, works
from .conftest import Project


def person(user_id: str, **overrides: Any) -> dict[str, Any]:
    """One `litellm:users` entry with a key on `fake-mock`."""
    return {"user_id": user_id, "user_email": user_id, "user_role": "internal_user", "max_budget": 10,
            "models": ["fake-mock"], "user_models": ["fake-mock"], **overrides}


def holders(api: LiteLLMClient, alias: str) -> list[str]:
    """The hashes of the live keys with this alias."""
    return [row["token"] for row in api.keys_with_alias(alias)]


def only_the_key_replaced(unique: str, user: str) -> dict[str, str]:
    return {f"Stack::litellm-access-{unique}": "same", f"UserWithKey::{user}": "same", f"User::{user}": "same",
            f"Key::{user}": "replace"}


def test_a_key_older_than_rotate_after_is_rotated_and_the_old_one_stops_working(
    project: Project, api: LiteLLMClient, litellm: Any, unique: str
) -> None:
    jdoe = f"jdoe-{unique}@example.edu"
    project.configure({"litellm:users": [person(jdoe, rotate_after="3s")]})
    project.up()
    outputs = project.outputs(secrets=True)
    old_raw = outputs[f"{jdoe}_key"]
    assert works(litellm.url, old_raw) == 200

    wait_until(when(outputs[f"{jdoe}_key_data"]["info"]["created_at"]).timestamp() + 3)
    found = steps(project)
    assert ops(found) == only_the_key_replaced(unique, jdoe)
    assert replace_reasons(found, f"Key::{jdoe}") == ["rotate_after"]
    project.up()

    new_raw = project.outputs(secrets=True)[f"{jdoe}_key"]
    assert new_raw != old_raw
    assert works(litellm.url, new_raw) == 200 and works(litellm.url, old_raw) == 401
    assert not key_alive(api, token_hash(old_raw))
    assert holders(api, jdoe) == [token_hash(new_raw)]
    assert [row["token"] for row in keys_of(api, jdoe)] == [token_hash(new_raw)]
