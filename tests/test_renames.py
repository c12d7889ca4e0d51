"""A renamed resource keeps the object it manages (issue 19, 3.4): a new resource name is a new URN, so the
engine creates the new resource, which takes the existing object over, and deletes the old resource at
the end of the run; that Delete releases the object instead of deleting it (providers/claims.py). Through
the stack program (an entry's `name`, a team's) and bare resources, the real plugin and the real proxy.
"""

from __future__ import annotations

from typing import Any

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
    # Explicit names: an entry given a name it did not have is only an alias (test_naming_an_unnamed_...).
    entry = declared(unique, adopt_existing=True, teams=[team], team_id=team, name="first-user")
    team_entry = {"team_id": team, "models": ["fake-mock"], "adopt_existing": True, "name": "first-team"}
    stack = Stack(tmp_path / "state", {"litellm:url": tap.url, "litellm:token": litellm.master_key,
                                       "litellm:teams": [team_entry], "litellm:users": [entry]},
                  plugin_env=clean_env())
    stack.up()
    assert names(stack, "User") == ["first-user"] and names(stack, "Team") == ["first-team"]

    stack.config["litellm:users"] = [{**entry, "name": "renamed-user"}]
    stack.config["litellm:teams"] = [{**team_entry, "name": "renamed-team"}]
    tap.reset()
    up = stack.up()
    assert sorted(s.key for s in up.steps if s.op == "delete") == sorted([
        "UserWithKey/first-user", "User/first-user", "Key/first-user", f"TeamMember/first-user/{team}",
        "Team/first-team"])
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
    entry = declared(unique, name="first")
    stack = Stack(tmp_path / "state", {"litellm:url": tap.url, "litellm:token": litellm.master_key,
                                       "litellm:users": [entry]}, plugin_env=clean_env(), parallel=1)
    stack.up()
    raw = stack.outputs["key"][unique]

    # The rename, with adopt_existing (the user is this stack's: its mark would do too). The new key's create (it
    # takes the old key over by alias with /key/update) is refused, after the new user was created: this
    # up ends before its deletes. The key depends on the user, so the order is the same every run.
    stack.config["litellm:users"] = [{**entry, "name": "renamed", "adopt_existing": True}]
    tap.reset()
    tap.inject("status", method="POST", path="/key/update", status=400)
    with pytest.raises((EngineError, PluginError)):
        stack.up()
    assert tap.count(path="/key/update") == 1
    users = sorted(r.name for r in stack.resources() if r.type.endswith(":User"))
    assert users == sorted(["first", "renamed"])  # both in the state: the old one was not deleted yet
    assert sorted(r.name for r in stack.resources() if r.type.endswith(":Key")) == ["first"]

    up = stack.up()
    assert "User/first" in [s.key for s in up.steps if s.op == "delete"]
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


# ----------------------------------------------------------------------------------- the owner mark
MARK = {"pulumi_managed_by": "litellm-access/test"}  # the harness runs project litellm-access, stack test


def program_stack(tmp_path, tap, litellm, users, teams=()) -> Stack:
    return Stack(tmp_path / "state", {"litellm:url": tap.url, "litellm:token": litellm.master_key,
                                      "litellm:users": users, "litellm:teams": list(teams)}, plugin_env=clean_env())


def test_renaming_a_created_user_key_and_team_takes_them_over_by_the_stack_mark(tmp_path, litellm, api, tap, unique,
                                                                                 cleanup):
    """Without adopt_existing: the stack made them, its mark says so, the new resources take them over and
    the old resources' Deletes release them. The taken-over key's raw value cannot be read back: `key` is
    empty (docs/recovery.md); the key itself still works."""
    team = f"{unique}-team"
    cleanup["users"].append(unique)
    cleanup["teams"].append(team)
    entry = declared(unique, name="first", teams=[team], team_id=team)
    team_entry = {"team_id": team, "models": ["fake-mock"], "metadata": {"dept": "physics"}, "name": "first-team"}
    stack = program_stack(tmp_path, tap, litellm, [entry], [team_entry])
    stack.up()
    raw = stack.outputs["key"][unique]
    assert api.user_info(unique)["user_info"]["metadata"] == {"pulumi_create": "done", **MARK}
    assert api.key_info(token_hash(raw))["info"]["metadata"] == MARK
    assert api.team_info(team)["team_info"]["metadata"] == {"dept": "physics", **MARK}
    stack.refresh()  # reads the live metadata, mark included
    assert set(stack.preview().ops().values()) == {"same"}  # the mark is no drift

    stack.config["litellm:users"] = [{**entry, "name": "second"}]
    stack.config["litellm:teams"] = [{**team_entry, "name": "second-team"}]
    tap.reset()
    up = stack.up()
    assert {k: v for k, v in up.ops().items() if v != "same"} == {
        "UserWithKey/second": "create", "User/second": "create", "Key/second": "create",
        f"TeamMember/second/{team}": "create", "Team/second-team": "create",
        "UserWithKey/first": "delete", "User/first": "delete", "Key/first": "delete",
        f"TeamMember/first/{team}": "delete", "Team/first-team": "delete"}
    assert tap.count(path="/user/delete") == tap.count(path="/key/delete") == 0
    assert tap.count(path="/team/delete") == tap.count(path="/team/member_delete") == 0
    assert [k["token"] for k in keys_of(api, unique)] == [token_hash(raw)]
    assert members(api, team) == [unique]
    assert chat(litellm.url, raw) == 200
    assert stack.outputs["key"][unique] is None  # taken over: its raw value is not readable from LiteLLM
    assert api.key_info(token_hash(raw))["info"]["metadata"] == MARK  # still marked, metadata as declared
    assert api.team_info(team)["team_info"]["metadata"] == {"dept": "physics", **MARK}
    stack.refresh()
    assert set(stack.preview().ops().values()) == {"same"}

    stack.destroy()
    assert not user_exists(api, unique) and not key_alive(api, token_hash(raw))


def test_objects_a_killed_up_made_are_taken_over_by_the_next_up(tmp_path, litellm, api, tap, unique, cleanup):
    """An `up` killed after the proxy made the objects (marks done) and before the state recorded them: what
    it left is made here as it would have, and the next `up` of an empty state carries on with it."""
    team = f"{unique}-team"
    cleanup["users"].append(unique)
    cleanup["teams"].append(team)
    raw = f"sk-{unique}-from-the-killed-run-0123"
    api.team_new({"team_id": team, "models": ["fake-mock"], "metadata": MARK})
    api.user_new({"user_id": unique, "user_email": f"{unique}@example.org", "auto_create_key": False,
                  "user_role": "internal_user", "models": ["fake-mock"],
                  "metadata": {"pulumi_create": "done", **MARK}})
    api.key_generate({"key": raw, "user_id": unique, "key_alias": unique, "models": ["fake-mock"], "metadata": MARK})
    stack = program_stack(tmp_path, tap, litellm, [declared(unique)], [{"team_id": team, "models": ["fake-mock"]}])
    tap.reset()
    stack.up()
    assert tap.count(path="/user/new") == tap.count(path="/team/new") == 1  # refused: they exist
    assert tap.count(path="/user/delete") == tap.count(path="/key/delete") == tap.count(path="/team/delete") == 0
    assert [k["token"] for k in keys_of(api, unique)] == [token_hash(raw)]
    assert chat(litellm.url, raw) == 200
    assert set(stack.preview().ops().values()) == {"same"}
    stack.destroy()
    assert not user_exists(api, unique) and not key_alive(api, token_hash(raw))


def failure(err: BaseException) -> str:
    return str(getattr(err, "details", "")) + str(err)


@pytest.mark.parametrize("metadata, who", [
    ({"pulumi_managed_by": "litellm-access/other"}, "it was created by stack 'litellm-access/other'"),
    ({}, "it carries no stack's mark"),
])
@pytest.mark.parametrize("kind", ["user", "team"])
def test_a_user_or_team_another_stack_or_a_person_made_still_needs_adopt_existing(tmp_path, litellm, api, tap,
                                                                                   unique, cleanup, kind, metadata,
                                                                                   who):
    team = f"{unique}-team"
    if kind == "user":
        cleanup["users"].append(unique)
        api.user_new({"user_id": unique, "user_email": f"{unique}@example.org", "auto_create_key": False,
                      "metadata": metadata})
        stack = program_stack(tmp_path, tap, litellm, [declared(unique)])
    else:
        cleanup["teams"].append(team)
        api.team_new({"team_id": team, "metadata": metadata})
        stack = program_stack(tmp_path, tap, litellm, [], [{"team_id": team, "models": ["fake-mock"]}])
    tap.reset()
    with pytest.raises((EngineError, PluginError)) as failed:
        stack.up()
    assert "set adopt_existing=True" in failure(failed.value) and who in failure(failed.value), failure(failed.value)
    assert tap.count(path=f"/{kind}/update") == 0  # nothing taken over
    row = api.user_info(unique)["user_info"] if kind == "user" else api.team_info(team)["team_info"]
    assert row["metadata"] == metadata


def test_a_key_another_stack_made_still_needs_adopt_existing(tmp_path, litellm, api, tap, unique, cleanup):
    cleanup["users"].append(unique)
    api.user_new({"user_id": unique, "user_email": f"{unique}@example.org", "auto_create_key": False,
                  "metadata": MARK})  # the user is this stack's, its key another's
    other = api.key_generate({"user_id": unique, "key_alias": unique, "metadata": {"pulumi_managed_by": "x/y"}})
    stack = program_stack(tmp_path, tap, litellm, [declared(unique)])
    with pytest.raises((EngineError, PluginError)) as failed:
        stack.up()
    assert "it was created by stack 'x/y'" in failure(failed.value) and "adopt_existing=True" in failure(failed.value)
    assert api.key_info(other["token"])["info"]["metadata"] == {"pulumi_managed_by": "x/y"}


def test_declared_metadata_may_not_use_the_mark_s_entry() -> None:
    """The mark is the providers' own: a declaration that sets it is refused at check, naming the entry."""
    from providers.key import KeyProvider
    from providers.team import TeamProvider

    for provider, props in ((KeyProvider(), {"user_id": "u", "key_alias": "u"}), (TeamProvider(), {"team_id": "t"})):
        result = provider.check({}, {"url": "http://127.0.0.1:9", "token": "sk-unused-000000", **props,
                                     "metadata": {"pulumi_managed_by": "me/mine"}})
        assert [(f.property, f.reason) for f in result.failures] == [(
            "metadata", "metadata must be a map without 'pulumi_managed_by': that entry is the mark of the stack "
                        "that created the object; got {'pulumi_managed_by': 'me/mine'}")]
