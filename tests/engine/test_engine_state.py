"""What the state holds per user on the real engine, read decrypted (`pulumi stack export --show-secrets`):
each raw key once among the resources, the admin token only in the provider config, and the five exports
still carrying what users read (docs/state.md)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from .conftest import Project


def occurrences(value: Any, secret: str) -> int:
    return json.dumps(value).count(secret)


def test_each_raw_key_once_among_the_resources_and_the_token_only_in_the_provider_config(
    project: Project, litellm: Any, unique: str
) -> None:
    users = [{"user_id": f"u{i}-{unique}@example.edu", "user_email": f"u{i}-{unique}@example.edu",
              "user_role": "internal_user", "max_budget": 10 + i, "models": ["fake-mock"],
              "user_models": ["fake-mock"]} for i in range(3)]
    project.configure({"litellm:users": users})
    project.set_secret("litellm:token", litellm.master_key)  # as the README says: the token once, here
    project.up()

    plain = json.loads(project.run("stack", "export", "--show-secrets").stdout)["deployment"]["resources"]
    ours = [r for r in plain if r["type"].endswith((":User", ":Key"))]
    keys = project.outputs(secrets=True)["key"]
    assert sorted(keys) == sorted(u["user_id"] for u in users) and len(ours) == 6
    for user in users:
        raw = keys[user["user_id"]]
        # Once among the resources: the Key's `key` output (not in key_response, user_response, inputs).
        assert sum(occurrences(r, raw) for r in ours) == 1, user["user_id"]
        key = next(r for r in ours if r["type"].endswith(":Key") and r["inputs"]["user_id"] == user["user_id"])
        assert occurrences(key["outputs"]["key"], raw) == 1
        # No key to take over from /user/new: existing_key is not an input made from the User's outputs.
        assert "existing_key" not in key["inputs"] and "existing_key" not in key["propertyDependencies"]
        # And once among the stack's exports: the `key` map (a generated key is not in user_response).
        stack = next(r for r in plain if r["type"] == "pulumi:pulumi:Stack")
        assert {name: occurrences(value, raw) for name, value in stack["outputs"].items()} == {
            "key": 1, "user_response": 0, "user_data": 0, "key_data": 0, "key_response": 0}
    # The admin token: only in the provider config saved with the state (its inputs and outputs), which
    # refresh and destroy configure the plugin with; no User or Key holds it.
    holders = {r["type"] for r in plain if occurrences(r, litellm.master_key)}
    assert holders == {"pulumi:providers:pulumi-python"}

    # The exports still carry what users read, secret where they were.
    outputs = project.outputs(secrets=True)
    assert {name for name, value in project.outputs().items() if value == "[secret]"} == {
        "user_response", "key", "key_response"}
    for i, user in enumerate(users):
        uid, raw = user["user_id"], keys[user["user_id"]]
        user_response, key_response = outputs["user_response"][uid], outputs["key_response"][uid]
        assert (user_response["user_id"], user_response["user_email"], user_response["key"]) == (uid, uid, "")
        assert (user_response["max_budget"], user_response["models"]) == (10 + i, ["fake-mock"])
        assert (key_response["user_id"], key_response["key_alias"], key_response["max_budget"]) == (uid, uid, 10 + i)
        assert key_response["token"] == hashlib.sha256(raw.encode()).hexdigest()
        assert key_response["models"] == ["fake-mock"] and key_response["key_name"].startswith("sk-...")
        assert key_response["expires"] and key_response["created_at"]
        assert outputs["key_data"][uid]["info"]["key_alias"] == uid
        assert outputs["user_data"][uid]["user_info"]["user_email"] == uid

    # Refresh reads the same; a no-op stays a no-op.
    project.run("refresh", "--yes", "--skip-preview", "--expect-no-changes")
    project.run("preview", "--expect-no-changes")
    assert project.outputs(secrets=True) == outputs
