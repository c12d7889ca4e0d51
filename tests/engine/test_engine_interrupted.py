"""An interrupted run on the real engine: `pulumi up` killed (SIGKILL) while the users are being created, then
the recovery docs/recovery.md gives: `pulumi cancel` (the killed run's lock), `pulumi refresh
--clear-pending-creates` (the engine's pending creates), `pulumi up`, which names every user the killed run
created after all (the plugin outlives the engine and finishes its calls), `adopt_existing: true` on them and
`pulumi up` again. Nothing duplicated, nothing orphaned, the next up a no-op, destroy leaves nothing."""

from __future__ import annotations

import signal
import subprocess
from typing import Any

import pytest

from providers.client import LiteLLMClient, NotFound

from .conftest import Project


def users_of(unique: str) -> list[dict[str, Any]]:
    return [{"user_id": f"{name}-{unique}@example.edu", "user_email": f"{name}-{unique}@example.edu",
             "user_role": "internal_user", "max_budget": 5, "models": ["fake-mock"], "user_models": ["fake-mock"]}
            for name in ("jdoe", "asmith", "bkim")]


def up_killed_at_first_user(project: Project) -> None:
    """`pulumi up`, SIGKILLed as soon as it reports the first User created."""
    command = [str(project.cli), "up", "--yes", "--skip-preview", "--non-interactive", "--stack", project.stack]
    run = subprocess.Popen(command, cwd=project.dir, env=project.env, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
    assert run.stdout is not None
    for line in run.stdout:
        if "dynamic/litellm:User" in line and "created" in line:
            run.send_signal(signal.SIGKILL)
            break
    assert run.wait(timeout=60) == -signal.SIGKILL


def test_a_killed_up_recovers_with_nothing_duplicated_or_orphaned(
    project: Project, api: LiteLLMClient, unique: str
) -> None:
    users = users_of(unique)
    project.configure({"litellm:users": users})
    up_killed_at_first_user(project)
    pending = project.export()["deployment"].get("pending_operations") or []
    assert pending and {op["type"] for op in pending} == {"creating"}

    locked = project.up(check=False)
    assert "the stack is currently locked" in locked.stdout + locked.stderr
    project.run("cancel", "--yes")
    project.run("refresh", "--yes", "--clear-pending-creates")
    assert project.export()["deployment"].get("pending_operations") in (None, [])

    collided = project.up(check=False)
    assert collided.returncode != 0
    named = [u["user_id"] for u in users if f"user_id {u['user_id']!r} or user_email already exists" in collided.stdout]
    assert named, collided.stdout  # the killed run's plugin created them after the engine was gone
    for user in users:
        if user["user_id"] in named:
            user["adopt_existing"] = True
    project.configure({"litellm:users": users})
    project.up()
    project.up("--expect-no-changes")

    for user in users:
        info = api.user_info(user["user_id"])
        assert info["user_info"]["user_email"] == user["user_id"]
        assert len(info["keys"]) == 1, (user["user_id"], info["keys"])  # one key each: none duplicated
    outputs = project.outputs(secrets=True)
    assert all(outputs["key"][u["user_id"]].startswith("sk-") for u in users)

    project.run("destroy", "--yes", "--skip-preview")
    for user in users:
        with pytest.raises(NotFound):
            api.user_info(user["user_id"])
    assert project.resources() == []
