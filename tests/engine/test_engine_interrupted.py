"""An interrupted run on the real engine: `pulumi up` killed (SIGKILL) while the users are being created, then
the recovery docs/recovery.md gives: `pulumi cancel` (the killed run's lock), `pulumi refresh
--clear-pending-creates` (the engine's pending creates), `pulumi up`, which carries on with every user the
killed run created after all (the plugin outlives the engine and finishes its calls): they carry this stack's
owner mark, so no `adopt_existing` is needed. Nothing duplicated, nothing orphaned, the next up a no-op,
destroy leaves nothing."""

from __future__ import annotations

import signal
import subprocess
from typing import Any

import pytest

from providers.client import LiteLLMClient, NotFound
from support.proxy_state import user_exists

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

    left = [u["user_id"] for u in users if user_exists(api, u["user_id"])]
    assert left  # the killed run's plugin created them after the engine was gone, marked as this stack's
    taken = {u["user_id"] for u in users if api.keys_with_alias(u["user_id"])}  # keys it made too, if any
    project.up()  # takes them over: no adopt_existing
    project.up("--expect-no-changes")

    for user in users:
        info = api.user_info(user["user_id"])
        assert info["user_info"]["user_email"] == user["user_id"]
        assert len(info["keys"]) == 1, (user["user_id"], info["keys"])  # one key each: none duplicated
    outputs = project.outputs(secrets=True)
    # A key taken over has no raw value in the outputs (docs/recovery.md); every other is the one minted.
    assert all(outputs["key"][u["user_id"]].startswith("sk-") for u in users if u["user_id"] not in taken)
    assert all(not outputs["key"][u["user_id"]] for u in users if u["user_id"] in taken)

    project.run("destroy", "--yes", "--skip-preview")
    for user in users:
        with pytest.raises(NotFound):
            api.user_info(user["user_id"])
    assert project.resources() == []
