"""Changes to a running stack on the real engine: a budget change updates only that user's resources, drift
made on the proxy shows in `pulumi preview --refresh` and `up --refresh` restores it, and a user_id change
replaces the user and its key in place (also after a failed attempt that was reverted)."""

from __future__ import annotations

from typing import Any

import pytest

from providers.client import LiteLLMClient, NotFound, token_hash
from support.proxy_state import key_alive, keys_of, user_exists

from .checks import diff_changes, ops, replace_reasons, steps, works
from .conftest import Project


def person(user_id: str, **overrides: Any) -> dict[str, Any]:
    """One `litellm:users` entry with a generated key on `fake-mock`."""
    return {"user_id": user_id, "user_email": user_id, "user_role": "internal_user", "max_budget": 10,
            "models": ["fake-mock"], "user_models": ["fake-mock"], **overrides}


def test_a_budget_change_updates_only_that_users_resources_and_keeps_the_key(
    project: Project, api: LiteLLMClient, litellm: Any, unique: str
) -> None:
    jdoe, asmith = f"jdoe-{unique}@example.edu", f"asmith-{unique}@example.edu"
    project.configure({"litellm:users": [person(jdoe), person(asmith, max_budget=5)]})
    project.up()
    before = project.outputs(secrets=True)

    project.configure({"litellm:users": [person(jdoe, max_budget=12), person(asmith, max_budget=5)]})
    # max_budget is the user's budget (user_max_budget unset) and the key's: both of jdoe's change, nothing else.
    assert ops(steps(project)) == {
        f"Stack::litellm-access-{unique}": "same",
        f"UserWithKey::{jdoe}": "same", f"User::{jdoe}": "update", f"Key::{jdoe}": "update",
        f"UserWithKey::{asmith}": "same", f"User::{asmith}": "same", f"Key::{asmith}": "same",
    }
    project.up()

    after = project.outputs(secrets=True)
    assert after[f"{jdoe}_key"] == before[f"{jdoe}_key"] and after[f"{asmith}_key"] == before[f"{asmith}_key"]
    assert api.user_info(jdoe)["user_info"]["max_budget"] == 12.0
    assert api.key_info(token_hash(after[f"{jdoe}_key"]))["info"]["max_budget"] == 12.0
    assert api.user_info(asmith)["user_info"]["max_budget"] == 5.0
    assert works(litellm.url, after[f"{jdoe}_key"]) == 200


def test_drift_on_the_proxy_shows_in_preview_refresh_and_up_refresh_restores_it(
    project: Project, api: LiteLLMClient, unique: str
) -> None:
    jdoe = f"jdoe-{unique}@example.edu"
    project.configure({"litellm:users": [person(jdoe)]})
    project.up()
    key_hash = token_hash(project.outputs(secrets=True)[f"{jdoe}_key"])
    api.user_update({"user_id": jdoe, "max_budget": 99})
    api.key_update(key_hash, {"max_budget": 77})

    shown = diff_changes(project.run("preview", "--refresh", "--diff").stdout)
    assert ("max_budget", "10", "99") in shown[(f"User::{jdoe}", "refresh")]
    assert ("max_budget", "10", "77") in shown[(f"Key::{jdoe}", "refresh")]
    assert {name: op for name, op in ops(steps(project, "--refresh")).items() if op != "same"} == {
        f"User::{jdoe}": "update", f"Key::{jdoe}": "update"}

    project.up("--refresh")
    assert api.user_info(jdoe)["user_info"]["max_budget"] == 10.0
    assert api.key_info(key_hash)["info"]["max_budget"] == 10.0
