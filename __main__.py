"""The stack program: one Team per entry of `litellm:teams`, one UserWithKey per entry of `litellm:users`,
the module's five outputs per user and `<team>_team_data` per team.

Config (Pulumi.<stack>.yaml):
  litellm:url     the proxy's root URL (else the LITELLM_URL environment variable)
  litellm:token   secret admin token (else LITELLM_MASTER_KEY)
  litellm:users   a list of objects with the module's input names (user_id and user_email required), and
                  optionally `name`: the resource name, which defaults to the user_id; `teams` lists the
                  ids of the teams the user is a member of; a `team_id` that names a team of the stack
                  makes the key depend on that team
  litellm:teams   a list of objects with TeamArgs' names (team_id required), and optionally `name`
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import pulumi

from components import UserWithKey, UserWithKeyArgs
from providers import Team, TeamArgs

OUTPUTS = ("user_response", "user_data", "key", "key_data", "key_response")
# `name` (default: the user_id) names the stack's resources and outputs. Keep it when changing a user_id, so
# the change replaces the user in place instead of creating a new one before the old is gone (its email
# would still be taken).
USER_KEYS = {f.name for f in dataclasses.fields(UserWithKeyArgs)} - {"url", "token"} | {"name"}
TEAM_KEYS = {f.name for f in dataclasses.fields(TeamArgs)} - {"url", "token"} | {"name"}


def resource_name(entry: dict[str, Any]) -> str:
    return entry.get("name") or entry.get("user_id") or entry["team_id"]


def entries(value: Any, key: str, accepted: set[str], what: str) -> list[dict[str, Any]]:
    """A config list of objects whose names are all `accepted`; errors name the entry."""
    if not isinstance(value, list):
        raise ValueError(f"{key} must be a list of objects with {what}")
    for index, entry in enumerate(value):
        if not isinstance(entry, dict):
            raise ValueError(f"{key}[{index}] must be an object with {what}")
        unknown = sorted(set(entry) - accepted)
        if unknown:
            raise ValueError(f"{key}[{index}]: unknown input {', '.join(unknown)}; accepted: {', '.join(sorted(accepted))}")
    return value


def claim(seen: dict[str, dict[Any, int]], key: str, index: int, identities: dict[str, Any]) -> None:
    """Record an entry's identities; one an earlier entry holds is an error naming both entries."""
    for name, value in identities.items():
        taken = seen.setdefault(name, {})
        if value in taken:
            raise ValueError(
                f"{key}[{index}].{name} {value!r} is already used by {key}[{taken[value]}]; "
                f"each {name} must be unique in the stack (LiteLLM rejects duplicates at apply time)"
            )
        taken[value] = index


def validate_teams(teams: Any) -> list[dict[str, Any]]:
    """Stop at preview what LiteLLM would only reject at apply time: unknown input names, a missing
    team_id, and two teams with the same team_id (or name) in one stack."""
    seen: dict[str, dict[Any, int]] = {}
    for index, team in enumerate(entries(teams, "litellm:teams", TEAM_KEYS, "TeamArgs' names (team_id required)")):
        where = f"litellm:teams[{index}]"
        for name in ("team_id", "name"):
            if (name == "team_id" or name in team) and (not isinstance(team.get(name), str) or not team[name].strip()):
                raise ValueError(f"{where}.{name} must be a non-blank string" + (" (required)" if name == "team_id" else ""))
        claim(seen, "litellm:teams", index, {"team_id": team["team_id"], "name": resource_name(team)})
    return teams


def validate_users(users: Any) -> list[dict[str, Any]]:
    """Stop at preview what LiteLLM would only reject at apply time: unknown input names, and two users
    with the same user_id, email (case-insensitive) or key alias in one stack."""
    seen: dict[str, dict[Any, int]] = {}
    for index, user in enumerate(entries(users, "litellm:users", USER_KEYS, "the module's input names")):
        where = f"litellm:users[{index}]"
        for name in ("user_id", "user_email"):
            if not isinstance(user.get(name), str) or not user[name].strip():
                raise ValueError(f"{where}.{name} is required (a non-blank string)")
        if "name" in user and (not isinstance(user["name"], str) or not user["name"].strip()):
            raise ValueError(f"{where}.name must be a non-blank string (it defaults to the user_id)")
        claim(seen, "litellm:users", index, {
            "user_id": user["user_id"],
            "user_email": user["user_email"].lower(),
            "key_alias": user.get("key_alias") or user["user_id"],
            "name": resource_name(user),
        })
    return users


def validate_team_keys(teams: list[dict[str, Any]], users: list[dict[str, Any]]) -> None:
    """LiteLLM moves a key into a team (/key/update: an auto-created key, a changed team_id) only when the
    key's user is a member of the team and the key's limits are within the team's (403 otherwise): stop at
    preview a key of a stack team whose user is not in it or whose limits are above the team's."""
    by_id = {team["team_id"]: team for team in teams}
    defaults = {f.name: f.default for f in dataclasses.fields(UserWithKeyArgs) if f.name in ("tpm_limit", "rpm_limit")}
    for index, user in enumerate(users):
        team = by_id.get(user.get("team_id")) if isinstance(user.get("team_id"), str) else None
        if team is None:
            continue
        where = f"litellm:users[{index}] (user_id {user['user_id']!r})"
        if team["team_id"] not in (user.get("teams") or []):
            raise ValueError(
                f"{where}: the key's team_id {team['team_id']!r} is a team of this stack the user is not a member "
                f"of; add {team['team_id']!r} to the user's teams (LiteLLM refuses to put a key in a team its "
                "user is not in)"
            )
        for limit, default in defaults.items():
            mine, cap = user.get(limit, default), team.get(limit)
            if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (mine, cap)) and mine > cap:
                raise ValueError(
                    f"{where}: the key's {limit} {mine} is above its team {team['team_id']!r}'s {limit} {cap}; "
                    f"set the user's {limit} to at most {cap} (LiteLLM refuses a key above its team's limits)"
                )


def main() -> None:
    config = pulumi.Config("litellm")
    url = config.get("url") or os.environ.get("LITELLM_URL")
    token = config.get_secret("token") or (
        pulumi.Output.secret(os.environ["LITELLM_MASTER_KEY"]) if os.environ.get("LITELLM_MASTER_KEY") else None
    )
    if not url:
        raise ValueError("set litellm:url (pulumi config set litellm:url http://host:4000) or LITELLM_URL")
    if token is None:
        raise ValueError("set litellm:token (pulumi config set --secret litellm:token sk-...) or LITELLM_MASTER_KEY")
    team_entries = validate_teams(config.get_object("teams") or [])
    users = validate_users(config.get_object("users") or [])
    validate_team_keys(team_entries, users)
    teams: dict[str, Team] = {}
    for team in team_entries:
        inputs = {key: value for key, value in team.items() if key != "name"}
        teams[team["team_id"]] = Team(resource_name(team), TeamArgs(url=url, token=token, **inputs))
        pulumi.export(f"{resource_name(team)}_team_data", teams[team["team_id"]].team_data)
    for user in users:
        inputs = {key: value for key, value in user.items() if key != "name"}
        # A key or membership of a team of this stack depends on that team: LiteLLM deletes a team's keys
        # with it, so they must be deleted or moved first, and a membership needs its team.
        key_team = teams.get(inputs.get("team_id")) if isinstance(inputs.get("team_id"), str) else None
        if key_team is not None:
            inputs["team_id"] = key_team.team_id
        needed = [teams[t] for t in inputs.get("teams") or [] if isinstance(t, str) and t in teams]
        opts = pulumi.ResourceOptions(depends_on=needed) if needed else None
        managed = UserWithKey(resource_name(user), UserWithKeyArgs(url=url, token=token, **inputs), opts)
        for output in OUTPUTS:
            pulumi.export(f"{resource_name(user)}_{output}", getattr(managed, output))


main()
