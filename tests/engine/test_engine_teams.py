"""Teams, memberships and team keys on the real engine: `litellm:teams`, a user's `teams` and a key's
`team_id` are created as declared; a team field change is an update of the team alone; a member without a key
in the team is removed by deleting its membership alone; destroy leaves nothing on the proxy."""

from __future__ import annotations

from typing import Any

from providers.client import LiteLLMClient, token_hash
from support.proxy_state import key_alive, team_exists, user_exists

from .checks import keys, ops, person, steps, works
from .conftest import Project


def team(team_id: str, **overrides: Any) -> dict[str, Any]:
    return {"team_id": team_id, "team_alias": "Research", "models": ["fake-mock"], "max_budget": 50,
            "budget_duration": "30d", "tpm_limit": 5000, "rpm_limit": 60, **overrides}


def members(api: LiteLLMClient, team_id: str) -> dict[str, str]:
    """{user_id: role} of the team's members, without the proxy admin LiteLLM adds to every new team."""
    rows = api.team_info(team_id)["team_info"]["members_with_roles"]
    return {m["user_id"]: m["role"] for m in rows if m["user_id"] != "default_user_id"}


def test_teams_memberships_and_a_team_key_are_created_changed_and_destroyed(
    project: Project, api: LiteLLMClient, litellm: Any, unique: str
) -> None:
    research = f"research-{unique}"
    jdoe, asmith = f"jdoe-{unique}@example.edu", f"asmith-{unique}@example.edu"
    limits = {"max_budget": 5, "tpm_limit": 1000, "rpm_limit": 50}  # a team key's limits are within its team's
    users = [person(jdoe, teams=[research], team_id=research, **limits),
             person(asmith, teams=[research], **limits)]
    project.configure({"litellm:teams": [team(research)], "litellm:users": users})
    project.up()

    row = api.team_info(research)["team_info"]
    assert {k: row[k] for k in ("team_alias", "models", "max_budget", "budget_duration", "tpm_limit", "rpm_limit")} == {
        "team_alias": "Research", "models": ["fake-mock"], "max_budget": 50.0, "budget_duration": "30d",
        "tpm_limit": 5000, "rpm_limit": 60}
    assert members(api, research) == {jdoe: "user", asmith: "user"}
    raw = keys(project)
    jdoe_hash, asmith_hash = (token_hash(raw[u]) for u in (jdoe, asmith))
    assert api.key_info(jdoe_hash)["info"]["team_id"] == research
    assert api.key_info(asmith_hash)["info"]["team_id"] is None
    assert works(litellm.url, raw[jdoe]) == 200

    # A team field changes and asmith (no key in the team) leaves it: one update, one membership deleted.
    project.configure({"litellm:teams": [team(research, max_budget=80)],
                       "litellm:users": [users[0], person(asmith, teams=[], **limits)]})
    assert ops(steps(project)) == {
        f"Stack::litellm-access-{unique}": "same", "Ledger::ledger": "same", f"Team::{research}": "update",
        f"UserWithKey::{jdoe}": "same", f"User::{jdoe}": "same", f"Key::{jdoe}": "same",
        f"TeamMember::{jdoe}/{research}": "same",
        f"UserWithKey::{asmith}": "same", f"User::{asmith}": "same", f"Key::{asmith}": "same",
        f"TeamMember::{asmith}/{research}": "delete",
    }
    project.up()
    assert api.team_info(research)["team_info"]["max_budget"] == 80.0
    assert members(api, research) == {jdoe: "user"}
    assert api.key_info(jdoe_hash)["info"]["team_id"] == research and works(litellm.url, raw[jdoe]) == 200

    project.run("destroy", "--yes", "--skip-preview")
    assert not team_exists(api, research)
    assert not user_exists(api, jdoe) and not user_exists(api, asmith)
    assert not key_alive(api, jdoe_hash) and not key_alive(api, asmith_hash)
    assert project.resources() == []
