"""Proxy calls per team and per membership, for the same lifecycle steps as the users' benchmark.

Two stacks through the lifecycle harness (the real plugin over gRPC), counted at a pass-through: T teams
alone, then the same T teams with M memberships each (of users made beforehand through the API, so no user
or key call is counted). Calls per team = the first stack's counts / T; calls per membership = the
difference between the two / (T x M). The one-field change raises every team's `max_budget` (and, in the
second stack, every membership's `max_budget_in_team`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import pulumi

from benchmarks.stats import STEP_TITLES, STEPS
from harness import Stack
from providers import LiteLLMClient, Team, TeamArgs, TeamMember, TeamMemberArgs
from support.passthrough import PassThrough

def program() -> None:
    """Teams and memberships declared directly (config `litellm:bench`: {"teams": [...], "members": [...]})."""
    config = pulumi.Config("litellm")
    url, token, spec = config.require("url"), config.require_secret("token"), config.require_object("bench")
    teams = {t["team_id"]: Team(t["team_id"], TeamArgs(url=url, token=token, **t)) for t in spec["teams"]}
    for m in spec["members"]:
        TeamMember(f"{m['user_id']}-{m['team_id']}", TeamMemberArgs(
            url=url, token=token, team_id=teams[m["team_id"]].team_id, user_id=m["user_id"],
            max_budget_in_team=m["max_budget_in_team"]))


def _lifecycle(url: str, token: str, spec: dict[str, Any], changed: dict[str, Any], state: Path,
               parallel: int) -> dict[str, int]:
    """Calls of each step for one stack."""
    calls: dict[str, int] = {}
    with PassThrough(url) as tap:
        stack = Stack(state, {"litellm:url": tap.url, "litellm:token": token, "litellm:bench": spec},
                      program=program, name="bench-teams", parallel=parallel)
        try:
            for step in STEPS:
                if step == "change-up":
                    stack.config["litellm:bench"] = changed
                tap.reset()
                {"preview": stack.preview, "refresh": stack.refresh, "destroy": stack.destroy}.get(step, stack.up)()
                calls[step] = len(tap.calls)
        finally:
            if stack.resources():
                stack.destroy()
    return calls


def measure(url: str, token: str, api: LiteLLMClient, prefix: str, n_teams: int, per_team: int, workdir: Path,
            parallel: int, log: Callable[[str], None]) -> dict[str, dict[str, float]]:
    """{"team": {step: calls per team}, "membership": {step: calls per membership}}."""
    teams = [{"team_id": f"{prefix}-t{i:03d}", "models": ["fake-mock"], "max_budget": 100, "tpm_limit": 10000,
              "rpm_limit": 100} for i in range(n_teams)]
    users = [f"{prefix}-m{i:04d}" for i in range(n_teams * per_team)]
    members = [{"team_id": teams[i // per_team]["team_id"], "user_id": u, "max_budget_in_team": 5}
               for i, u in enumerate(users)]

    def changed(with_members: bool) -> dict[str, Any]:
        return {"teams": [{**t, "max_budget": 200} for t in teams],
                "members": [{**m, "max_budget_in_team": 6} for m in members] if with_members else []}

    for user_id in users:
        api.user_new({"user_id": user_id, "user_email": f"{user_id}@example.org", "auto_create_key": False})
    try:
        log(f"teams: {n_teams} teams alone")
        alone = _lifecycle(url, token, {"teams": teams, "members": []}, changed(False), workdir / "teams", parallel)
        log(f"teams: {n_teams} teams with {len(members)} memberships")
        both = _lifecycle(url, token, {"teams": teams, "members": members}, changed(True), workdir / "members",
                          parallel)
    finally:
        for user_id in users:
            api.user_delete(user_id)
        for team in teams:
            api.team_delete(team["team_id"])
    return {"team": {s: alone[s] / n_teams for s in STEPS},
            "membership": {s: (both[s] - alone[s]) / len(members) for s in STEPS}}


def table(result: dict[str, dict[str, float]]) -> str:
    lines = ["| step | proxy calls / team | proxy calls / membership |", "|---|---|---|"]
    for step in STEPS:
        lines.append(f"| teams: {STEP_TITLES[step]} | {result['team'][step]:.2f} | {result['membership'][step]:.2f} |")
    return "\n".join(lines)
