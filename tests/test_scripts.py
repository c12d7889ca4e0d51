"""The README's commands: the main job says clearly what is missing, CI runs the README's test command,
and the dev stack's own config is valid input for the program."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml  # installed with pulumi

ROOT = Path(__file__).resolve().parents[1]


def run_up(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    # PATH without a pulumi CLI; this machine has no Docker engine either.
    base = {"PATH": "/usr/bin:/bin", "HOME": os.environ.get("HOME", "/tmp")}
    return subprocess.run(["bash", "scripts/up"], cwd=ROOT, env={**base, **env}, text=True,
                          capture_output=True, stdin=subprocess.DEVNULL, timeout=60)


def test_main_job_names_every_missing_prerequisite() -> None:
    done = run_up({})
    assert done.returncode == 2
    assert "missing" in done.stderr and "pulumi CLI" in done.stderr
    assert "Docker" in done.stderr and "LITELLM_URL" in done.stderr
    assert "installing" not in done.stderr  # it stopped before doing anything


def test_main_job_with_a_proxy_url_needs_its_token() -> None:
    done = run_up({"LITELLM_URL": "http://127.0.0.1:9"})
    assert done.returncode == 2
    assert "LITELLM_MASTER_KEY" in done.stderr and "Docker" not in done.stderr


def test_ci_runs_the_readme_test_command() -> None:
    readme = (ROOT / "README.md").read_text()
    commands = re.findall(r"^(scripts/\w+)\s*$", readme, flags=re.M)
    assert commands[:2] == ["scripts/up", "scripts/test"], commands
    assert re.search(r"^scripts/test\b", (ROOT / ".ci" / "run").read_text(), flags=re.M)


def test_dev_stack_config_is_valid_program_input() -> None:
    from components.user_with_key import UserWithKeyArgs, validate
    from support.stack import program_namespace

    config = yaml.safe_load((ROOT / "Pulumi.dev.yaml").read_text())["config"]
    assert config["litellm:url"].startswith("http://127.0.0.1")
    users = program_namespace()["validate_users"](config["litellm:users"])
    assert {u["user_id"] for u in users} == {"dev-alice", "dev-bob"}
    for user in users:
        validate(UserWithKeyArgs(url=config["litellm:url"], token="sk-dev", **user))


@pytest.mark.parametrize("name", ["setup", "test", "up", "down"])
def test_scripts_are_strict_bash(name: str) -> None:
    text = (ROOT / "scripts" / name).read_text()
    assert text.startswith("#!/usr/bin/env bash") and "set -euo pipefail" in text
    subprocess.run(["bash", "-n", str(ROOT / "scripts" / name)], check=True)


def test_a_stable_name_keeps_the_resources_when_a_user_id_changes() -> None:
    """`name` names the resources (default: the user_id), so changing a user_id replaces that user in place
    instead of creating a second one beside it, whose email would still be taken."""
    from support.stack import program_namespace

    program = program_namespace()
    users = [{"name": "ann", "user_id": "ann-2", "user_email": "ann@example.org"},
             {"user_id": "bob", "user_email": "bob@example.org"}]
    program["validate_users"](users)  # accepted: raises nothing
    assert [program["resource_name"](u) for u in users] == ["ann", "bob"]
    with pytest.raises(ValueError, match=r"litellm:users\[1\]\.name 'ann' is already used by litellm:users\[0\]"):
        program["validate_users"]([users[0], {"name": "ann", "user_id": "x", "user_email": "x@example.org"}])
    with pytest.raises(ValueError, match=r"litellm:users\[0\]\.name must be a non-blank string"):
        program["validate_users"]([{"name": " ", "user_id": "x", "user_email": "x@example.org"}])
