"""Changes to a running stack on the real engine: a budget change updates only that user's resources, drift
made on the proxy shows in `pulumi preview --refresh` and `up --refresh` restores it, and a user_id change
replaces the user and its key in place (also after a failed attempt that was reverted)."""

from __future__ import annotations

from typing import Any

import pytest

from providers.client import LiteLLMClient, NotFound, token_hash
from support.proxy_state import key_alive, keys_of, user_exists

from .checks import diff_changes, keys, ops, person, replace_reasons, steps, works
from .conftest import Project


def test_a_budget_change_updates_only_that_users_resources_and_keeps_the_key(
    project: Project, api: LiteLLMClient, litellm: Any, unique: str
) -> None:
    jdoe, asmith = f"jdoe-{unique}@example.edu", f"asmith-{unique}@example.edu"
    project.configure({"litellm:users": [person(jdoe), person(asmith, max_budget=5)]})
    project.up()
    before = keys(project)

    project.configure({"litellm:users": [person(jdoe, max_budget=12), person(asmith, max_budget=5)]})
    # max_budget is the user's budget (user_max_budget unset) and the key's: both of jdoe's change, nothing else.
    assert ops(steps(project)) == {
        f"Stack::litellm-access-{unique}": "same", "Ledger::ledger": "same",
        f"UserWithKey::{jdoe}": "same", f"User::{jdoe}": "update", f"Key::{jdoe}": "update",
        f"UserWithKey::{asmith}": "same", f"User::{asmith}": "same", f"Key::{asmith}": "same",
    }
    project.up()

    after = keys(project)
    assert sorted(after) == sorted([jdoe, asmith]) and after == before
    assert api.user_info(jdoe)["user_info"]["max_budget"] == 12.0
    assert api.key_info(token_hash(after[jdoe]))["info"]["max_budget"] == 12.0
    assert api.user_info(asmith)["user_info"]["max_budget"] == 5.0
    assert works(litellm.url, after[jdoe]) == 200


def test_drift_on_the_proxy_shows_in_preview_refresh_and_up_refresh_restores_it(
    project: Project, api: LiteLLMClient, unique: str
) -> None:
    jdoe = f"jdoe-{unique}@example.edu"
    project.configure({"litellm:users": [person(jdoe)]})
    project.up()
    key_hash = token_hash(keys(project)[jdoe])
    api.user_update({"user_id": jdoe, "max_budget": 99})
    api.key_update(key_hash, {"max_budget": 77})

    shown = diff_changes(project.run("preview", "--refresh", "--diff").stdout)
    assert ("max_budget", "10", "99") in shown[(f"User::{jdoe}", "refresh")]
    assert ("max_budget", "10", "77") in shown[(f"Key::{jdoe}", "refresh")]
    assert sorted(step for step in shown if step[1] not in ("refresh", "same")) == [
        (f"Key::{jdoe}", "update"), (f"User::{jdoe}", "update")]

    project.up("--refresh")
    assert api.user_info(jdoe)["user_info"]["max_budget"] == 10.0
    assert api.key_info(key_hash)["info"]["max_budget"] == 10.0


@pytest.fixture
def blocker(api: LiteLLMClient, unique: str) -> Any:
    """A user made outside the stack: a user_id change to its id fails at /user/new (it exists)."""
    user_id = f"taken-{unique}@example.edu"
    api.user_new({"user_id": user_id, "user_email": user_id, "auto_create_key": False})
    yield user_id
    api.user_delete(user_id)


def test_a_user_id_change_replaces_in_place_and_a_failed_one_reverted_keeps_the_user(
    project: Project, api: LiteLLMClient, litellm: Any, unique: str, users: list[str], blocker: str
) -> None:
    first, second = f"jdoe-{unique}@example.edu", f"john.doe-{unique}@example.edu"
    email = f"jdoe-{unique}@example.org"
    users += [first, second]
    # `name` keeps the resources' names: the change replaces them in place (delete first: the email is unique).
    project.configure({"litellm:users": [person(first, name="jdoe", user_email=email)]})
    project.up()
    first_key = keys(project)[first]

    project.configure({"litellm:users": [person(second, name="jdoe", user_email=email)]})
    found = steps(project)
    # The deletion guard's list of user_ids changes too (providers/ledger.py).
    assert ops(found) == {f"Stack::litellm-access-{unique}": "same", "Ledger::ledger": "update",
                          "UserWithKey::jdoe": "same", "User::jdoe": "replace", "Key::jdoe": "replace"}
    assert replace_reasons(found, "User::jdoe") == ["user_id"]
    # The Key depends on the User, so the engine deletes it before the User (calculateDependentReplacements)
    # and then recreates it with no Diff: its replace step carries no keys (step_generator.go), none is named.
    assert replace_reasons(found, "Key::jdoe") == []
    project.up()
    with pytest.raises(NotFound):
        api.user_info(first)
    second_key = keys(project)[second]
    assert api.key_info(token_hash(second_key))["info"]["user_id"] == second
    assert works(litellm.url, second_key) == 200 and works(litellm.url, first_key) == 401

    # A change to a user_id that exists already: the user and its key are deleted first, then /user/new fails.
    project.configure({"litellm:users": [person(blocker, name="jdoe", user_email=email)]})
    failed = project.up(check=False)
    assert failed.returncode != 0 and "already exists" in failed.stdout + failed.stderr
    assert not user_exists(api, second) and works(litellm.url, second_key) == 401
    pending = [r["type"].split(":")[-1] for r in project.resources() if r.get("pendingReplacement")]
    assert pending == ["User", "Key"]  # deleted, kept in the state until their replacements exist

    project.configure({"litellm:users": [person(second, name="jdoe", user_email=email)]})  # revert
    project.up()
    state_users = [r for r in project.resources() if r["type"].endswith(":User")]
    assert [(r["id"], r.get("pendingReplacement", False), r.get("delete", False)) for r in state_users] == [
        (second, False, False)]
    raw = keys(project)[second]
    assert [row["token"] for row in keys_of(api, second)] == [token_hash(raw)]
    assert works(litellm.url, raw) == 200
    project.up("--expect-no-changes")

    project.run("destroy", "--yes", "--skip-preview")
    assert not user_exists(api, second) and not key_alive(api, token_hash(raw))
    assert user_exists(api, blocker)  # never touched
