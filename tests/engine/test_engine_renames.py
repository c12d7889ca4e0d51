"""An entry given a `name` it did not have (its resources were named by its user_id, a team's by its team_id)
is a pure rename on the real engine: the old name is an alias of the component and of the team, the
component's children (User, Key, the `<name>/<team>` membership) inherit it, so the engine moves every
resource to its new URN: no create, no delete, no write to the proxy, and the key's raw value stays in the
outputs (issue 19, 3.4)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from providers.client import LiteLLMClient, token_hash
from support.proxy_state import key_alive, team_exists, user_exists

from .checks import keys, ops, person, steps, works
from .conftest import new_project


def test_naming_an_unnamed_user_and_team_only_renames_their_resources(
        tmp_path: Path, cli: Path, litellm: Any, tap: Any, api: LiteLLMClient, unique: str) -> None:
    project = new_project(tmp_path, cli, tap.url, litellm.master_key, unique)
    jdoe, research = f"jdoe-{unique}@example.edu", f"research-{unique}"
    team = {"team_id": research, "models": ["fake-mock"]}
    user = person(jdoe, teams=[research])
    project.configure({"litellm:teams": [team], "litellm:users": [user]})
    try:
        project.up()
        raw = keys(project)[jdoe]

        project.configure({"litellm:teams": [{**team, "name": "research"}],
                           "litellm:users": [{**user, "name": "jdoe"}]})
        tap.reset()
        planned = ops(steps(project))
        assert planned == {
            f"Stack::litellm-access-{unique}": "same", "Ledger::ledger": "same", "Team::research": "same",
            "UserWithKey::jdoe": "same", "User::jdoe": "same", "Key::jdoe": "same",
            f"TeamMember::jdoe/{research}": "same",
        }
        project.up()
        assert tap.count(writes=True) == 0  # nothing created, changed or deleted on the proxy
        assert keys(project) == {jdoe: raw}  # the same raw key, still in the outputs
        names = sorted(r["urn"].split("::")[-1] for r in project.resources() if "dynamic/litellm:" in r["type"])
        assert names == sorted(["ledger", "research", "jdoe", "jdoe", f"jdoe/{research}"])
        assert user_exists(api, jdoe) and key_alive(api, token_hash(raw)) and team_exists(api, research)
        assert works(litellm.url, raw) == 200
        project.run("preview", "--expect-no-changes")
    finally:
        project.run("destroy", "--yes", "--skip-preview", check=False)
    assert not user_exists(api, jdoe) and not team_exists(api, research)
