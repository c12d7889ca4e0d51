"""Secrets on the real engine: no raw key and no admin token in `pulumi stack export`, in the state files, in
any command's output (`preview --diff`, `preview --json`, `up -v=9 --logtostderr`, which carries the plugin's
own log lines) or in the files the engine writes under PULUMI_HOME; `stack output --show-secrets` gives keys
that work."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .conftest import RAW_KEY, Project
from .test_engine_lifecycle import chat, eppn_users

VERBOSE = ("-v=9", "--logtostderr")


def files_under(folder: Path) -> str:
    """The text of every file under `folder` (state, backups, history, logs)."""
    return "\n".join(p.read_text(errors="replace") for p in sorted(folder.rglob("*")) if p.is_file())


def test_no_raw_key_or_admin_token_anywhere_but_show_secrets(project: Project, litellm: Any, unique: str) -> None:
    users = eppn_users(unique)
    project.configure({"litellm:users": users})
    project.up(*VERBOSE)
    users[0]["max_budget"] = 20  # a change, so the diff and the steps show the key and user resources
    project.configure({"litellm:users": users})
    diff = project.run("preview", "--diff", *VERBOSE)
    assert "max_budget" in diff.stdout, diff.stdout
    steps = json.loads(project.run("preview", "--json").stdout)["steps"]
    assert {s["op"] for s in steps} == {"same", "update"}
    project.up(*VERBOSE)
    exported = json.dumps(project.export())
    assert "max_budget" in exported

    base = project.dir.parent
    seen = "\n".join(project.log) + exported + files_under(base / "state") + files_under(base / "home")
    # Counted, not shown: a failing assertion must not print the secret it found.
    token_leaks, key_leaks = seen.count(litellm.master_key), len(RAW_KEY.findall(seen))
    assert (token_leaks, key_leaks) == (0, 0), "an admin token or a raw key is in the output or the state"

    keys = project.outputs(secrets=True)["key"]  # one map by user_id
    for user in users:
        raw = keys[user["user_id"]]
        assert RAW_KEY.fullmatch(raw), user["user_id"]
        assert chat(litellm.url, raw) == 200, user["user_id"]
