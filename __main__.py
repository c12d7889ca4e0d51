"""The stack program: one Team per entry of `litellm:teams`, one UserWithKey per entry of `litellm:users`,
the module's five outputs as five exports, each a map by user_id, and `<team>_team_data` per team.

Config (Pulumi.<stack>.yaml):
  litellm:url     the proxy's root URL (else the LITELLM_URL environment variable)
  litellm:token   secret admin token (else LITELLM_MASTER_KEY)
  litellm:users   a list of objects with the module's input names (user_id and user_email required), and
                  optionally `name`: the resource name, which defaults to the user_id; `teams` lists the
                  ids of the teams the user is a member of; a `team_id` that names a team of the stack
                  makes the key depend on that team
  litellm:teams   a list of objects with TeamArgs' names (team_id required), and optionally `name`
  litellm:users_file, litellm:teams_file   roster files (CSV, YAML or JSON) with more entries (docs/rosters.md)
  litellm:user_defaults   inputs applied under every user entry (an entry's own value wins)
  litellm:max_deletions   how many users (and teams) one run may delete (default 10; see providers/ledger.py)
  litellm:stack_traces    true: store each resource's Python stack trace in the state (default false: the
                          same few lines per user, ~1.2 KB per resource; components/sdk_tuning.py)
  litellm:fast_output_wait   true: the SDK's end-of-program wait for Outputs in linear time (default false;
                          components/sdk_tuning.py)
  litellm:sdk_debug_logs  false: the SDK sends no debug message to the engine (one synchronous call each,
                          ~18 per user, shown only by `pulumi up --debug`; default true)
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any, Callable, Mapping, Optional

import pulumi

import roster
from components import UserWithKey, UserWithKeyArgs, outputs, sdk_tuning
from components.user_with_key import INPUTS, PLACEHOLDER_MODEL, admin_warning, legacy_member_name, member_name, placeholder_warning
from providers import Team, TeamArgs
from providers import fields as f
from providers.ledger import Ledger, LedgerArgs
from providers.team import TEAM_FIELDS
from roster import Entry, Roster

OUTPUTS = ("user_response", "user_data", "key", "key_data", "key_response")
# The program's switches of the SDK's runtime (components/sdk_tuning.py) and their defaults.
SWITCHES = {"litellm:stack_traces": False, "litellm:fast_output_wait": False, "litellm:sdk_debug_logs": True}
CONFIG_KEYS = ("litellm:url", "litellm:token", "litellm:users", "litellm:teams", "litellm:users_file",
               "litellm:teams_file", "litellm:user_defaults", "litellm:max_deletions", *SWITCHES)  # what it reads
# A user entry: the component's inputs (the credentials come from litellm:url/litellm:token), and `name`
# (default: the user_id), which names the stack's resources and outputs. Keep it when changing a user_id, so
# the change replaces the user in place instead of creating a new one before the old is gone (its email
# would still be taken).
USER_INPUTS: dict[str, f.Field] = {
    **{name: field for name, field in INPUTS.items() if name not in ("url", "token")},
    "name": f.Field("name", f.text()),
}
# Identities LiteLLM requires to be unique, with how a user entry yields each (None: the entry has none).
UNIQUE: dict[str, Callable[[dict[str, Any]], Any]] = {
    "user_id": lambda user: user.get("user_id"),
    "user_email": lambda user: user["user_email"].lower() if isinstance(user.get("user_email"), str) else None,
    "key_alias": lambda user: user.get("key_alias") or user.get("user_id"),
    "name": lambda user: user.get("name") or user.get("user_id"),
}
# A team entry: TeamArgs' names but the credentials, and `name` (default: the team_id).
TEAM_INPUTS: dict[str, f.Field] = {
    **{field.name: field for field in TEAM_FIELDS if field.name not in ("url", "token")},
    "name": f.Field("name", f.text()),
}
MODULE_DEFAULTS = {field.name: field.default for field in dataclasses.fields(UserWithKeyArgs)}
TEAM_UNIQUE: dict[str, Callable[[dict[str, Any]], Any]] = {
    "team_id": lambda team: team.get("team_id"),
    "name": lambda team: team.get("name") or team.get("team_id"),
}


def resource_name(entry: dict[str, Any]) -> str:
    return entry.get("name") or entry.get("user_id") or entry["team_id"]


def default_name(entry: dict[str, Any]) -> str:
    """The resource name an entry has without `name`: its user_id, or a team's team_id."""
    return entry.get("user_id") or entry["team_id"]


def renamed_from(entry: dict[str, Any], names: set[str]) -> list[pulumi.Alias]:
    """An entry given a `name` it did not have keeps its resources: the name it had (the default) is an
    alias, so the engine moves the resources to the new URNs, no create and no delete. The component's
    children (User, Key, `<name>/<team>` memberships) are named from it, so they inherit the alias. None
    when another entry of the same kind is named so (the engine refuses an alias that is another URN)."""
    old = default_name(entry)
    return [pulumi.Alias(name=old)] if resource_name(entry) != old and old not in names else []


def where(place: str, entry: Any, label: str) -> str:
    """`litellm:users[3] (user_id 'carol')`, `users.csv:17 (user_id 'jdoe@example.edu')`: an entry by where
    it is written and by its own name."""
    named = isinstance(entry, dict) and isinstance(entry.get(label), str)
    return place + (f" ({label} {entry[label]!r})" if named else "")


def places_of(key: str, entries: Any, places: Optional[list[str]]) -> list[str]:
    """Where each entry is written: as given (roster files), else its index in the config list."""
    return places if places is not None else [f"{key}[{index}]" for index in range(len(entries))]


def entry_errors(key: str, entries: Any, table: Mapping[str, f.Field], label: str,
                 places: Optional[list[str]] = None) -> list[str]:
    """Every problem of a config list (`litellm:users`, ...), each naming its entry:
    `litellm:users[3] (user_id 'carol'): max_budget must be a number >= 0; got -5`."""
    if not isinstance(entries, list):
        return [f"{key} must be a list of objects with these names: {', '.join(sorted(table))}"]
    errors = []
    for entry, place in zip(entries, places_of(key, entries, places)):
        if not isinstance(entry, dict):
            errors.append(f"{place} must be an object with these names: {', '.join(sorted(table))}")
            continue
        errors += [f"{where(place, entry, label)}: {problem}" for problem in f.problems(table, entry)]
    return errors


def collisions(key: str, entries: list[Any], unique: Mapping[str, Callable[[dict[str, Any]], Any]], label: str,
               places: Optional[list[str]] = None) -> list[str]:
    """Entries that share an identity LiteLLM requires to be unique: it would refuse them only at apply time."""
    errors: list[str] = []
    seen: dict[str, dict[str, str]] = {name: {} for name in unique}
    for entry, place in zip(entries, places_of(key, entries, places)):
        reported = set()  # one message per entry and clash: a user_id twice is not also a key_alias twice
        for name, identity in unique.items():
            value = identity(entry) if isinstance(entry, dict) else None
            if not isinstance(value, str) or not value.strip():
                continue
            if value in seen[name] and (value, seen[name][value]) not in reported:
                reported.add((value, seen[name][value]))
                errors.append(
                    f"{where(place, entry, label)}: {name} {value!r} is already used by {seen[name][value]}; "
                    f"each {name} must be unique in the stack (LiteLLM rejects duplicates at apply time)"
                )
            seen[name].setdefault(value, place)
    return errors


def user_errors(users: Any, places: Optional[list[str]] = None) -> list[str]:
    errors = entry_errors("litellm:users", users, USER_INPUTS, "user_id", places)
    return errors + (collisions("litellm:users", users, UNIQUE, "user_id", places) if isinstance(users, list) else [])


def memberships(users: Any) -> list[tuple[int, dict[str, Any], str]]:
    """(index, entry, team_id) of every membership the users' `teams` declare, as far as they are valid."""
    if not isinstance(users, list):
        return []
    return [(index, user, team) for index, user in enumerate(users)
            if isinstance(user, dict) and isinstance(user.get("name") or user.get("user_id"), str)
            and isinstance(user.get("teams"), list)
            for team in user["teams"] if isinstance(team, str)]


def member_errors(users: Any, places: Optional[list[str]] = None) -> list[str]:
    """Two memberships with one resource name (`<name>/<team_id>`, so a '/' in a name or a team id): the
    engine would refuse the second at apply time."""
    if not isinstance(users, list):
        return []
    at = places_of("litellm:users", users, places)
    seen: dict[str, tuple[int, str]] = {}
    errors = []
    for index, user, team in memberships(users):
        name = member_name(resource_name(user), team)
        if name in seen and seen[name][0] != index:
            other, other_team = seen[name]
            errors.append(f"{where(at[index], user, 'user_id')}: its membership of team {team!r} would "
                          f"be named {name!r}, as {at[other]}'s membership of team {other_team!r}; "
                          "resource names must be unique in the stack: give one of the two users a `name` without '/'")
        seen.setdefault(name, (index, team))
    return errors


def shared_legacy_names(users: Any) -> set[str]:
    """Legacy membership names (`<name>-<team_id>`) that two memberships share: aliasing both would be
    refused, so neither is aliased (a delete of the old entry then releases what the new one holds)."""
    names = [legacy_member_name(resource_name(user), team) for _, user, team in memberships(users)]
    return {name for name in names if names.count(name) > 1}


def report(errors: list[str]) -> str:
    """One message for every error of the config, so a single run shows them all."""
    if len(errors) == 1:
        return errors[0]
    return f"{len(errors)} errors in the stack config:\n" + "\n".join(f"  {error}" for error in errors)


def validate_users(users: Any) -> list[dict[str, Any]]:
    """Stop at preview what LiteLLM would only reject at apply time: unknown input names, bad values, and
    two users with the same user_id, email (case-insensitive) or key alias in one stack; every one at once."""
    errors = user_errors(users)
    if errors:
        raise ValueError(report(errors))
    return users


def team_errors(teams: Any, places: Optional[list[str]] = None) -> list[str]:
    errors = entry_errors("litellm:teams", teams, TEAM_INPUTS, "team_id", places)
    return errors + (collisions("litellm:teams", teams, TEAM_UNIQUE, "team_id", places) if isinstance(teams, list) else [])


def validate_teams(teams: Any) -> list[dict[str, Any]]:
    """Stop at preview bad `litellm:teams` entries and two teams with the same team_id; every one at once."""
    errors = team_errors(teams)
    if errors:
        raise ValueError(report(errors))
    return teams


def team_key_errors(teams: Any, users: Any, places: Optional[list[str]] = None) -> list[str]:
    """LiteLLM puts a key into a team with /key/update (an auto-created key, a changed team_id) only when the
    key's user is a member of the team and the key's limits are within the team's (403 otherwise): a key in
    a team of the stack whose user is not in it, or whose tpm/rpm limit is above the team's, is an error."""
    if not isinstance(teams, list) or not isinstance(users, list):
        return []
    by_id = {team.get("team_id"): team for team in teams if isinstance(team, dict)}
    errors = []
    for user, place in zip(users, places_of("litellm:users", users, places)):
        team = by_id.get(user.get("team_id")) if isinstance(user, dict) and isinstance(user.get("team_id"), str) else None
        if team is None:
            continue
        at, team_id = where(place, user, "user_id"), team["team_id"]
        if team_id not in (user.get("teams") or []):
            errors.append(f"{at}: the key's team_id {team_id!r} is a team of this stack the user is not a member of; "
                          f"add {team_id!r} to the user's teams (LiteLLM refuses to put a key in a team its user is not in)")
        for limit in ("tpm_limit", "rpm_limit"):
            mine, cap = user.get(limit, MODULE_DEFAULTS[limit]), team.get(limit)
            if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (mine, cap)) and mine > cap:
                errors.append(f"{at}: the key's {limit} {mine} is above its team {team_id!r}'s {limit} {cap}; set the "
                              f"user's {limit} to at most {cap} (LiteLLM refuses a key above its team's limits)")
    return errors


def validate_team_keys(teams: Any, users: Any) -> None:
    errors = team_key_errors(teams, users)
    if errors:
        raise ValueError(report(errors))


def url_errors(url: Any) -> list[str]:
    if not url:
        return ["set litellm:url (pulumi config set litellm:url http://host:4000) or LITELLM_URL"]
    return f.problems({"litellm:url": INPUTS["url"]}, {"litellm:url": url})


# What `litellm:user_defaults` may set: any user input but the identities, which are each user's own.
DEFAULTABLE = {name: field for name, field in USER_INPUTS.items() if name not in UNIQUE}


def deletion_limit(value: Any) -> tuple[Optional[int], list[str]]:
    """`litellm:max_deletions`: a whole number >= 0 (a string from `--config`, a number from YAML)."""
    if value is None:
        return None, []
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value, []
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip()), []
    return None, [f"litellm:max_deletions must be a whole number >= 0; got {value!r}"]


def switch(values: Mapping[str, Any], key: str) -> tuple[bool, list[str]]:
    """A true/false key of SWITCHES (a bool from YAML, a string from `--config`); a bad value: the default."""
    value = values.get(key)
    if value is None or isinstance(value, bool):
        return (SWITCHES[key] if value is None else value), []
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true", []
    return SWITCHES[key], [f"{key} must be true or false; got {value!r}"]


def tune_sdk(values: Mapping[str, Any]) -> None:
    """Before the first resource: stack traces are not stored unless litellm:stack_traces is true (they are
    the same few lines for every user), the linear wait for Outputs when litellm:fast_output_wait is true,
    and no SDK debug message when litellm:sdk_debug_logs is false."""
    if not switch(values, "litellm:stack_traces")[0]:
        sdk_tuning.drop_stack_traces()
    if switch(values, "litellm:fast_output_wait")[0]:
        sdk_tuning.fast_output_wait()
    if not switch(values, "litellm:sdk_debug_logs")[0]:
        sdk_tuning.drop_debug_logs()


def user_defaults(value: Any) -> tuple[dict[str, Any], list[str]]:
    """`litellm:user_defaults` and its problems; with any problem none of it applies (reported once, not
    once per user)."""
    key = "litellm:user_defaults"
    if value is None:
        return {}, []
    if not isinstance(value, dict):
        return {}, [f"{key} must be an object of user inputs, such as {{models: [gpt-4o], max_budget: 10}}"]
    errors = [f"{key}: {name} is each user's own; it cannot have a default" for name in value if name in UNIQUE]
    rest = {name: v for name, v in value.items() if name not in UNIQUE}
    errors += [f"{key}: {problem}" for problem in f.problems(DEFAULTABLE, rest)]
    return ({} if errors else value), errors


def listed(kind: str, values: Mapping[str, Any], root: Path, table: Mapping[str, f.Field],
           limit_given: bool) -> tuple[list[Entry], list[str]]:
    """`litellm:<kind>` and then the entries of `litellm:<kind>_file`. A roster file that is missing,
    unreadable or empty is an error: it must never read as "delete everyone"."""
    key = f"litellm:{kind}"
    given = values.get(key)
    if given is not None and not isinstance(given, list):
        return [], [f"{key} must be a list of objects with these names: {', '.join(sorted(table))}"]
    entries = roster.inline(key, given or [])
    path = values.get(f"{key}_file")
    if path is None:
        return entries, []
    found, errors = roster.read(f"{key}_file", path, root, table)
    if not found and not errors and not limit_given:
        errors = [f"{key}_file: {path} has no entries; an empty roster would delete every {kind[:-1]} of the stack. "
                  f"To remove them all, run `pulumi destroy`, or give litellm:max_deletions for this run"]
    return entries + found, errors


def read_config(values: Mapping[str, Any], root: Path) -> Roster:
    """The stack's users (over `litellm:user_defaults`) and teams, from the config and its roster files
    (their paths relative to `root`, the project folder)."""
    limit, errors = deletion_limit(values.get("litellm:max_deletions"))
    errors += [error for key in SWITCHES for error in switch(values, key)[1]]
    given = values.get("litellm:max_deletions") is not None
    defaults, problems = user_defaults(values.get("litellm:user_defaults"))
    users, user_problems = listed("users", values, root, USER_INPUTS, given)
    teams, team_problems = listed("teams", values, root, TEAM_INPUTS, given)
    return Roster(roster.with_defaults(users, defaults), teams, limit, errors + problems + user_problems + team_problems)


def stack_errors(url: Any, stack: Roster) -> list[str]:
    """Every error of the stack's config as this program reads it (the token aside: a secret it never shows)."""
    users, teams = stack.user_values(), stack.team_values()
    user_places, team_places = [e.place for e in stack.users], [e.place for e in stack.teams]
    return (url_errors(url) + stack.errors + team_errors(teams, team_places) + user_errors(users, user_places)
            + member_errors(users, user_places) + team_key_errors(teams, users, user_places))


def config_errors(url: Any, users: Any, teams: Any = None) -> list[str]:
    """`stack_errors` for inline lists only."""
    return stack_errors(url, read_config({"litellm:users": users, "litellm:teams": teams}, Path(".")))


def config_values(config: pulumi.Config) -> dict[str, Any]:
    """The roster keys as `read_config` takes them: objects parsed from their JSON, the rest as given."""
    values: dict[str, Any] = {f"litellm:{name}": config.get_object(name) for name in ("users", "teams", "user_defaults")}
    values.update({key: config.get(key.removeprefix("litellm:"))
                   for key in ("litellm:users_file", "litellm:teams_file", "litellm:max_deletions", *SWITCHES)})
    return values


def _placeholder_models(user: dict[str, Any]) -> bool:
    models = user.get("models", [PLACEHOLDER_MODEL])  # unset: the module's default
    return isinstance(models, list) and PLACEHOLDER_MODEL in models


def config_warnings(users: Any) -> list[str]:
    """What is valid but most likely not meant, naming the users (by resource name): the legacy role
    `admin`, which is proxy_admin, and keys left at the module's placeholder models, which call nothing."""
    entries = [u for u in users if isinstance(u, dict) and (u.get("name") or u.get("user_id"))] \
        if isinstance(users, list) else []
    admins = [resource_name(u) for u in entries if u.get("user_role") == "admin"]
    idle = [resource_name(u) for u in entries if _placeholder_models(u)]
    return ([admin_warning(admins)] if admins else []) + ([placeholder_warning(idle)] if idle else [])


def main() -> None:
    config = pulumi.Config("litellm")
    url = config.get("url") or os.environ.get("LITELLM_URL")
    token = config.get_secret("token") or (
        pulumi.Output.secret(os.environ["LITELLM_MASTER_KEY"]) if os.environ.get("LITELLM_MASTER_KEY") else None
    )
    values = config_values(config)
    stack = read_config(values, Path(pulumi.get_root_directory() or "."))  # Pulumi.yaml's folder
    errors = stack_errors(url, stack)
    if token is None:
        errors.insert(0, "set litellm:token (pulumi config set --secret litellm:token sk-...) or LITELLM_MASTER_KEY")
    if errors:
        raise ValueError(report(errors))
    size = roster.environment_bytes()
    if size >= roster.ENV_WARN:
        pulumi.log.warn(roster.size_message(size))
    tune_sdk(values)
    users, team_entries = stack.user_values(), stack.team_values()
    # The deletion guard: registered first, and everything else waits for it (providers/ledger.py).
    ledger = Ledger("ledger", LedgerArgs([u["user_id"] for u in users], [t["team_id"] for t in team_entries],
                                         stack.max_deletions))
    teams: dict[str, Team] = {}
    team_names = {resource_name(team) for team in team_entries}
    for team in team_entries:
        inputs = {key: value for key, value in team.items() if key != "name"}
        teams[team["team_id"]] = Team(resource_name(team), TeamArgs(url=url, token=token, **inputs),
                                      pulumi.ResourceOptions(depends_on=[ledger], aliases=renamed_from(team, team_names)))
        pulumi.export(f"{resource_name(team)}_team_data", teams[team["team_id"]].team_data)
    managed: dict[str, UserWithKey] = {}
    shared = shared_legacy_names(users)
    user_names = {resource_name(user) for user in users}
    for user in users:
        inputs = {key: value for key, value in user.items() if key != "name"}
        # A key or membership of a team of this stack depends on that team: LiteLLM deletes a team's keys
        # with it, so they must be deleted or moved first, and a membership needs its team.
        key_team = teams.get(inputs.get("team_id")) if isinstance(inputs.get("team_id"), str) else None
        if key_team is not None:
            inputs["team_id"] = key_team.team_id
        needed = [teams[t] for t in inputs.get("teams") or [] if isinstance(t, str) and t in teams]
        opts = pulumi.ResourceOptions(depends_on=[ledger, *needed], aliases=renamed_from(user, user_names))
        managed[user["user_id"]] = UserWithKey(resource_name(user), UserWithKeyArgs(url=url, token=token, **inputs), opts,
                                               shared_legacy_names=shared)
    # One export per output, a map by user_id (`pulumi stack output key --show-secrets --json`): five exports
    # whatever the number of users, and a map with a secret inside is stored as one secret.
    for output in OUTPUTS:
        by_user = {uid: getattr(component, output) for uid, component in managed.items()}
        pulumi.export(output, outputs.gather(by_user) if by_user else {})


if __name__ == "__main__":  # the language host runs the program as __main__; scripts/check imports it
    main()
