"""A renamed resource keeps the object it manages (issue 19, 3.4): a new resource name is a new URN, so the
engine creates the new resource, which takes the existing object over, and deletes the old resource at
the end of the run; that Delete releases the object instead of deleting it (providers/claims.py). Through
the stack program (an entry's `name`, a team's) and bare resources, the real plugin and the real proxy.
"""

from __future__ import annotations

from typing import Any, Callable

import pulumi
import pytest
import requests

from harness import EngineError, PluginError, Stack, clean_env
from providers import TeamMember, TeamMemberArgs
from providers.client import LiteLLMClient, LiteLLMError, token_hash
from support.proxy_state import key_alive, keys_of, user_exists


def declared(uid: str, **overrides: Any) -> dict[str, Any]:
    return {"user_id": uid, "user_email": f"{uid}@example.org", "user_role": "internal_user",
            "models": ["fake-mock"], "user_models": ["fake-mock"], **overrides}


def members(api: LiteLLMClient, team_id: str) -> list[str]:
    rows = api.team_info(team_id)["team_info"]["members_with_roles"]
    return sorted(m["user_id"] for m in rows if m["user_id"] != "default_user_id")


def chat(url: str, raw_key: str) -> int:
    answer = requests.post(f"{url}/chat/completions", headers={"Authorization": f"Bearer {raw_key}"}, timeout=60,
                           json={"model": "fake-mock", "messages": [{"role": "user", "content": "hi"}]})
    return answer.status_code


def names(stack: Stack, kind: str) -> list[str]:
    return sorted(r.name for r in stack.resources() if r.custom and r.type.endswith(f":{kind}") and not r.delete)


@pytest.fixture
def cleanup(api: LiteLLMClient) -> Any:
    made: dict[str, list[str]] = {"users": [], "teams": []}
    yield made
    for user_id in made["users"]:
        try:
            api.user_delete(user_id)
        except LiteLLMError:
            pass
    for team_id in made["teams"]:
        try:
            api.team_delete(team_id)
        except LiteLLMError:
            pass


def test_renaming_an_adopted_user_and_a_team_keeps_them_their_key_and_membership(tmp_path, litellm, api, tap, unique,
                                                                                 cleanup):
    """The issue's measurement: an adopted user renamed lost its user and key."""
    team = f"{unique}-team"
    cleanup["users"].append(unique)
    cleanup["teams"].append(team)
    raw = f"sk-{unique}-made-by-hand-0123456789"
    api.user_new({"user_id": unique, "user_email": f"{unique}@example.org", "auto_create_key": False})
    api.key_generate({"key": raw, "user_id": unique, "key_alias": unique, "models": ["fake-mock"]})
    entry = declared(unique, adopt_existing=True, teams=[team], team_id=team)
    team_entry = {"team_id": team, "models": ["fake-mock"], "adopt_existing": True}
    stack = Stack(tmp_path / "state", {"litellm:url": tap.url, "litellm:token": litellm.master_key,
                                       "litellm:teams": [team_entry], "litellm:users": [entry]},
                  plugin_env=clean_env())
    stack.up()
    assert names(stack, "User") == [unique] and names(stack, "Team") == [team]

    stack.config["litellm:users"] = [{**entry, "name": "renamed-user"}]
    stack.config["litellm:teams"] = [{**team_entry, "name": "renamed-team"}]
    tap.reset()
    up = stack.up()
    assert sorted(s.key for s in up.steps if s.op == "delete") == sorted([
        f"UserWithKey/{unique}", f"User/{unique}", f"Key/{unique}", f"TeamMember/{unique}/{team}", f"Team/{team}"])
    assert names(stack, "User") == ["renamed-user"] and names(stack, "Team") == ["renamed-team"]
    assert tap.count(path="/user/delete") == tap.count(path="/key/delete") == 0
    assert tap.count(path="/team/delete") == tap.count(path="/team/member_delete") == 0
    assert user_exists(api, unique) and key_alive(api, token_hash(raw))
    assert [k["token"] for k in keys_of(api, unique)] == [token_hash(raw)]
    assert members(api, team) == [unique]
    assert chat(litellm.url, raw) == 200
    assert set(stack.preview().ops().values()) == {"same"}  # the new resources hold them

    stack.destroy()  # and the new resources delete them
    assert not user_exists(api, unique) and not key_alive(api, token_hash(raw))


def test_a_rename_whose_up_failed_before_its_deletes_keeps_the_object_at_the_next_up(tmp_path, litellm, api, tap,
                                                                                      unique, cleanup):
    """The old resource is deleted by the next up, in another plugin process: the new resource's Diff there
    says it holds the user."""
    cleanup["users"].append(unique)
    entry = declared(unique)
    stack = Stack(tmp_path / "state", {"litellm:url": tap.url, "litellm:token": litellm.master_key,
                                       "litellm:users": [entry]}, plugin_env=clean_env(), parallel=1)
    stack.up()
    raw = stack.outputs["key"][unique]

    # The rename, with adopt_existing for the one up that takes the user over. The new key's create (it
    # takes the old key over by alias with /key/update) is refused, after the new user was created: this
    # up ends before its deletes. The key depends on the user, so the order is the same every run.
    stack.config["litellm:users"] = [{**entry, "name": "renamed", "adopt_existing": True}]
    tap.reset()
    tap.inject("status", method="POST", path="/key/update", status=400)
    with pytest.raises((EngineError, PluginError)):
        stack.up()
    assert tap.count(path="/key/update") == 1
    users = sorted(r.name for r in stack.resources() if r.type.endswith(":User"))
    assert users == sorted([unique, "renamed"])  # both in the state: the old one was not deleted yet
    assert sorted(r.name for r in stack.resources() if r.type.endswith(":Key")) == [unique]

    up = stack.up()
    assert f"User/{unique}" in [s.key for s in up.steps if s.op == "delete"]
    assert names(stack, "User") == ["renamed"] and names(stack, "Key") == ["renamed"]
    assert user_exists(api, unique) and key_alive(api, token_hash(raw)) and chat(litellm.url, raw) == 200
    stack.destroy()
    assert not user_exists(api, unique)


def test_renaming_a_bare_membership_keeps_it(tmp_path, litellm, api, unique, cleanup):
    """A TeamMember renamed without adopt_existing: the new one carries on with the membership (as
    /team/member_add would make it), and the old one's Delete leaves it; LiteLLM would also delete the
    member's keys in that team with it."""
    team = f"{unique}-team"
    cleanup["users"].append(unique)
    cleanup["teams"].append(team)
    api.user_new({"user_id": unique, "user_email": f"{unique}@example.org", "auto_create_key": False})
    api.team_new({"team_id": team})
    name = {"current": "first"}

    def program() -> None:
        config = pulumi.Config("litellm")
        TeamMember(name["current"], TeamMemberArgs(url=config.require("url"), token=config.require_secret("token"),
                                                   team_id=team, user_id=unique))

    stack = Stack(tmp_path / "state", {"litellm:url": litellm.url, "litellm:token": litellm.master_key},
                  program=program, plugin_env=clean_env())
    stack.up()
    api.key_generate({"user_id": unique, "team_id": team, "key_alias": f"{unique}-in-team", "models": []})
    assert members(api, team) == [unique]
    name["current"] = "second"
    up = stack.up()
    assert up.ops() == {"TeamMember/second": "create", "TeamMember/first": "delete"}
    assert members(api, team) == [unique]
    kept = keys_of(api, unique)
    assert [k["key_alias"] for k in kept] == [f"{unique}-in-team"]
    api.key_delete(kept[0]["token"])  # the member's key in the team first: the Delete refuses while it is there
    stack.destroy()
    assert members(api, team) == []
