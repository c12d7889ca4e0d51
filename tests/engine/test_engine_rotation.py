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

from .checks import keys, ops, person, replace_reasons, steps, wait_until, works
from .conftest import Project


def holders(api: LiteLLMClient, alias: str) -> list[str]:
    """The hashes of the live keys with this alias."""
    return [row["token"] for row in api.keys_with_alias(alias)]


def only_the_key_replaced(unique: str, user: str) -> dict[str, str]:
    return {f"Stack::litellm-access-{unique}": "same", "Ledger::ledger": "same",
            f"UserWithKey::{user}": "same", f"User::{user}": "same", f"Key::{user}": "replace"}


def test_a_key_older_than_rotate_after_is_rotated_and_the_old_one_stops_working(
    project: Project, api: LiteLLMClient, litellm: Any, unique: str
) -> None:
    jdoe = f"jdoe-{unique}@example.edu"
    project.configure({"litellm:users": [person(jdoe, rotate_after="3s")]})
    project.up()
    outputs = project.outputs(secrets=True)
    old_raw = outputs["key"][jdoe]
    assert works(litellm.url, old_raw) == 200

    wait_until(when(outputs["key_data"][jdoe]["info"]["created_at"]).timestamp() + 3)
    found = steps(project)
    assert ops(found) == only_the_key_replaced(unique, jdoe)
    assert replace_reasons(found, f"Key::{jdoe}") == ["rotate_after"]
    project.up()

    new_raw = keys(project)[jdoe]
    assert new_raw != old_raw
    assert works(litellm.url, new_raw) == 200 and works(litellm.url, old_raw) == 401
    assert not key_alive(api, token_hash(old_raw))
    assert holders(api, jdoe) == [token_hash(new_raw)]
    assert [row["token"] for row in keys_of(api, jdoe)] == [token_hash(new_raw)]


def test_a_new_trigger_rotates_an_auto_created_key_with_a_grace_that_ends_by_itself(
    project: Project, api: LiteLLMClient, litellm: Any, unique: str
) -> None:
    asmith, alias = f"asmith-{unique}@example.edu", f"asmith-{unique}-key"
    entry = person(asmith, auto_create_key=True, key_alias=alias, rotation_trigger="first", rotation_grace="20s")
    project.configure({"litellm:users": [entry]})
    project.up()
    first_raw = keys(project)[asmith]
    first_hash = token_hash(first_raw)

    project.configure({"litellm:users": [{**entry, "rotation_trigger": "leaked"}]})
    found = steps(project)
    assert ops(found) == only_the_key_replaced(unique, asmith)
    assert replace_reasons(found, f"Key::{asmith}") == ["rotation_trigger"]
    project.run("up", "--yes")  # with its preview, as users run it

    second_raw = keys(project)[asmith]
    second_hash = token_hash(second_raw)
    assert second_hash != first_hash
    assert works(litellm.url, second_raw) == 200 and works(litellm.url, first_raw) == 200  # both during the grace
    assert holders(api, alias) == [second_hash]
    assert holders(api, f"{alias}.retired-{first_hash[:8]}") == [first_hash]
    grace_ends = when(api.key_info(first_hash)["info"]["expires"]).timestamp()
    assert grace_ends - time.time() <= 20

    wait_until(grace_ends)
    assert works(litellm.url, first_raw) == 401 and works(litellm.url, second_raw) == 200
    project.run("destroy", "--yes", "--skip-preview")
    assert not key_alive(api, first_hash) and not key_alive(api, second_hash)
    assert project.resources() == []


def test_an_expired_key_is_reported_by_preview_and_replaced_by_up(
    project: Project, api: LiteLLMClient, litellm: Any, unique: str
) -> None:
    jdoe = f"jdoe-{unique}@example.edu"
    entry = person(jdoe, duration="3s", rotation_grace="1h")
    project.configure({"litellm:users": [entry]})
    project.up()
    outputs = project.outputs(secrets=True)
    old_raw = outputs["key"][jdoe]
    wait_until(when(outputs["key_data"][jdoe]["info"]["expires"]).timestamp())
    assert works(litellm.url, old_raw) == 401

    project.configure({"litellm:users": [{**entry, "duration": "30d"}]})
    found = steps(project)
    assert ops(found) == only_the_key_replaced(unique, jdoe)
    assert replace_reasons(found, f"Key::{jdoe}") == ["expires"]
    project.up()

    new_raw = keys(project)[jdoe]
    assert works(litellm.url, new_raw) == 200
    assert works(litellm.url, old_raw) == 401  # an expired key gets no grace: it is not brought back to life
    assert not key_alive(api, token_hash(old_raw))
    assert holders(api, jdoe) == [token_hash(new_raw)]
