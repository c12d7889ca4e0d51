"""The deletion guard on the real engine, with a CSV roster of EPPN users on a file backend: a preview and an
up that would delete 11 users stop before anything is deleted; `--config litellm:max_deletions=11` allows it
(and pulumi keeps that value in the stack file, as docs/rosters.md warns); an empty or missing roster is an
error; a no-op preview asks the proxy nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from providers.client import LiteLLMClient
from support.proxy_state import user_exists

from .conftest import Project, new_project


def write_roster(path: Path, user_ids: list[str]) -> None:
    path.write_text("user_id,user_email,models,user_models\n"
                    + "".join(f"{uid},{uid},fake-mock,fake-mock\n" for uid in user_ids))


def failed(project: Project, *args: str) -> str:
    done = project.run(*args, check=False)
    assert done.returncode != 0, done.stdout
    return done.stdout + done.stderr


def test_the_guard_stops_preview_and_up_until_max_deletions_allows_it(
        tmp_path: Path, cli: Path, litellm: Any, tap: Any, api: LiteLLMClient, unique: str) -> None:
    project = new_project(tmp_path, cli, tap.url, litellm.master_key, unique)
    ids = [f"u{n:02d}-{unique}@example.edu" for n in range(12)]
    roster = project.dir / "cohort.csv"
    write_roster(roster, ids)
    project.configure({"litellm:users_file": "cohort.csv", "litellm:user_defaults": {"user_role": "internal_user"}})
    try:
        project.up()
        assert all(user_exists(api, uid) for uid in ids)
        tap.reset()
        project.run("preview", "--expect-no-changes")
        assert tap.count() == 0  # the ledger knows the last deployment from the state

        write_roster(roster, ids[11:])
        for args in (("preview",), ("up", "--yes", "--skip-preview"), ("up", "--yes")):
            output = failed(project, *args)
            assert (f"deletion guard: it would delete 11 users ({ids[0]}, {ids[1]}, {ids[2]}, {ids[3]}, {ids[4]} and "
                    "6 more), more than litellm:max_deletions (10). Nothing has been deleted.") in output, output
            assert "--config litellm:max_deletions=11" in output, output
        assert tap.count(writes=True) == 0
        assert all(user_exists(api, uid) for uid in ids)

        # An empty roster and a missing one: errors, nothing deleted.
        roster.write_text("user_id,user_email\n")
        assert "litellm:users_file: cohort.csv has no entries" in failed(project, "up", "--yes", "--skip-preview")
        roster.unlink()
        assert "litellm:users_file: cohort.csv does not exist" in failed(project, "up", "--yes", "--skip-preview")
        assert all(user_exists(api, uid) for uid in ids)

        write_roster(roster, ids[11:])
        project.up("--config", "litellm:max_deletions=11")
        assert [uid for uid in ids if user_exists(api, uid)] == ids[11:]
        saved = yaml.safe_load((project.dir / f"Pulumi.{unique}.yaml").read_text())["config"]
        assert saved["litellm:max_deletions"] == "11"  # `--config` is saved: remove it after the run
    finally:
        project.run("destroy", "--yes", "--skip-preview", check=False)
        for uid in ids:
            if user_exists(api, uid):
                api.user_delete(uid)
