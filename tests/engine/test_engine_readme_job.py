"""The README's main job for real: `scripts/up` against a proxy you run (LITELLM_URL, LITELLM_MASTER_KEY), in
a copy of the checkout, creates every user, key, team and membership of Pulumi.dev.yaml; a key read with
`pulumi stack output --show-secrets` answers /chat/completions; `scripts/down` leaves nothing of the stack.

The copy has its own state folder (scripts/up's default, .pulumi-state in the copy) and the shared .venv and
.tools; its Pulumi.dev.yaml ids get the test's unique suffix so parallel runs on one proxy never collide."""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml

from providers.client import LiteLLMClient, NotFound
from support.project_copy import PROGRAM, copy_project

from .conftest import CLI, ROOT
from .test_engine_lifecycle import chat, key_status

CHECKOUT = (*PROGRAM, "rosters", "scripts", "policy", "deploy", "tools", "Pulumi.yaml", "Pulumi.dev.yaml")


def suffixed(value: str, unique: str) -> str:
    """`dev-alice` -> `dev-alice-<unique>`, `jdoe@example.edu` -> `jdoe-<unique>@example.edu`."""
    local, at, domain = value.partition("@")
    return f"{local}-{unique}{at}{domain}"


def rename_ids(config_file: Path, unique: str) -> None:
    """Give every id of the dev stack (users, emails, key aliases, teams) the test's suffix."""
    document = yaml.safe_load(config_file.read_text())
    config = document["config"]
    for team in config.get("litellm:teams", []):
        team["team_id"] = suffixed(team["team_id"], unique)
    for user in config["litellm:users"]:
        for name in ("user_id", "user_email", "key_alias", "team_id"):
            if user.get(name):
                user[name] = suffixed(user[name], unique)
        user["teams"] = [suffixed(team, unique) for team in user.get("teams", [])]
    config_file.write_text(yaml.safe_dump(document, sort_keys=False))


@pytest.fixture
def checkout(tmp_path: Path, cli: Path, litellm: Any, unique: str) -> Iterator[Path]:
    """The copy; whatever its stack still holds at the end is destroyed (scripts/down is idempotent)."""
    copy = copy_project(tmp_path / "checkout", CHECKOUT)
    (copy / ".tools").symlink_to(ROOT / ".tools")  # the pinned CLI scripts/setup --dev installed
    rename_ids(copy / "Pulumi.dev.yaml", unique)
    yield copy
    run(copy, script_env(copy, litellm), "scripts/down")


def script_env(copy: Path, litellm: Any) -> dict[str, str]:
    """The user's shell: no PULUMI_* of ours (scripts/up picks the state folder and the passphrase), the proxy."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PULUMI_", "LITELLM_"))}
    return {**env, "LITELLM_URL": litellm.url, "LITELLM_MASTER_KEY": litellm.master_key,
            "PULUMI_HOME": str(copy.parent / "pulumi-home")}


def run(copy: Path, env: dict[str, str], *command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(command), cwd=copy, env=env, text=True, capture_output=True, timeout=900,
                          stdin=subprocess.DEVNULL)


def test_scripts_up_creates_the_dev_stack_and_scripts_down_removes_it(
    checkout: Path, litellm: Any, api: LiteLLMClient, unique: str
) -> None:
    env = script_env(checkout, litellm)
    up = run(checkout, env, "scripts/up")
    assert up.returncode == 0, up.stdout + up.stderr
    assert "using a development passphrase" in up.stderr
    assert litellm.master_key not in up.stdout + up.stderr

    alice, bob, jdoe = f"dev-alice-{unique}", f"dev-bob-{unique}", f"jdoe-{unique}@example.edu"
    team = f"dev-platform-{unique}"
    expected_users = {
        alice: (f"alice-{unique}@example.org", "internal_user", 10.0),
        bob: (f"bob-{unique}@example.org", "internal_user_viewer", 5.0),
        jdoe: (f"jdoe-{unique}@example.edu", "internal_user", 10.0),
    }
    for user_id, (email, role, budget) in expected_users.items():
        row = api.user_info(user_id)["user_info"]
        assert (row["user_email"], row["user_role"], row["max_budget"]) == (email, role, budget), user_id
    assert api.team_info(team)["team_info"]["team_alias"] == "Platform"
    members = api.team_info(team)["team_info"]["members_with_roles"]
    # LiteLLM makes the admin who creates a team (the master key: default_user_id) its first member.
    assert sorted((m["user_id"], m["role"]) for m in members) == sorted(
        [("default_user_id", "admin"), (alice, "user"), (bob, "user")])

    # The keys, as the README says to read them: same state folder, same (development) passphrase.
    shown = run(checkout, {**env, "PULUMI_BACKEND_URL": f"file://{checkout}/.pulumi-state",
                           "PULUMI_CONFIG_PASSPHRASE": "dev-only-passphrase"},
                str(CLI), "stack", "output", "--stack", "dev", "--show-secrets", "--json")
    assert shown.returncode == 0, shown.stderr
    outputs = yaml.safe_load(shown.stdout)
    expected_keys = {alice: (alice, ["fake-gpt-4o"], team), bob: (f"dev-bob-key-{unique}", ["fake-gpt-4o-mini"], None),
                     jdoe: (f"jdoe-key-{unique}", ["fake-mock"], None)}
    raw_keys = {}
    for user_id, (alias, models, team_id) in expected_keys.items():
        raw_keys[user_id] = raw = outputs["key"][user_id]
        row = api.key_info(hashlib.sha256(raw.encode()).hexdigest())["info"]
        assert (row["user_id"], row["key_alias"], row["models"], row["team_id"]) == (user_id, alias, models, team_id)
    assert chat(litellm.url, raw_keys[jdoe]) == 200  # fake-mock answers without an upstream

    down = run(checkout, env, "scripts/down")
    assert down.returncode == 0, down.stdout + down.stderr
    for user_id, raw in raw_keys.items():
        with pytest.raises(NotFound):
            api.user_info(user_id)
        assert key_status(api, raw) == "deleted", user_id
    with pytest.raises(NotFound):
        api.team_info(team)
    assert chat(litellm.url, raw_keys[jdoe]) == 401
    left = run(checkout, {**env, "PULUMI_BACKEND_URL": f"file://{checkout}/.pulumi-state",
                          "PULUMI_CONFIG_PASSPHRASE": "dev-only-passphrase"},
               str(CLI), "stack", "export", "--stack", "dev")
    assert yaml.safe_load(left.stdout)["deployment"].get("resources", []) == []
