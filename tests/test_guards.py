"""What LiteLLM would get wrong without the providers' guards, through the stack program and the real
plugin: a second key with a taken alias from /user/new, objects the state has that a new `litellm:url`
does not, and a user's `models` that /user/update cannot empty."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from harness import Stack
from harness.engine import EngineError
from harness.plugin import PluginError, clean_env
from providers.client import token_hash
from support.passthrough import PassThrough
from support.proxy_state import key_alive, keys_of, user_exists


def user(uid: str, **overrides: Any) -> dict[str, Any]:
    return {"user_id": uid, "user_email": f"{uid}@example.org", "user_role": "internal_user",
            "models": ["fake-gpt-4o"], "user_models": ["fake-gpt-4o"], **overrides}


def stack_of(tmp_path, url: str, token: str, *users: dict[str, Any], name: str = "test") -> Stack:
    return Stack(tmp_path / name, {"litellm:url": url, "litellm:token": token, "litellm:users": list(users)},
                 name=name, plugin_env=clean_env())


def test_an_auto_created_key_with_a_taken_alias_is_refused_before_user_new(tmp_path, litellm, api, tap, unique,
                                                                           users) -> None:
    """/user/new does not check that the alias is free and would mint a second key with it."""
    owner, second = f"{unique}-a", f"{unique}-b"
    users.extend([owner, second])
    stack_of(tmp_path, tap.url, litellm.master_key, user(owner, key_alias=f"{unique}-shared"), name="first").up()
    tap.reset()
    other = stack_of(tmp_path, tap.url, litellm.master_key,
                     user(second, auto_create_key=True, key_alias=f"{unique}-shared"), name="second")
    with pytest.raises((EngineError, PluginError)) as caught:
        other.up()
    message = str(getattr(caught.value, "details", "")) + str(caught.value)
    assert f"key_alias '{unique}-shared' is already used by a key of another user" in message
    assert f"user '{second}' was not created" in message
    assert tap.count(path="/user/new") == 0 and not user_exists(api, second)
    assert [row["user_id"] for row in api.keys_with_alias(f"{unique}-shared")] == [owner]


def test_a_url_change_is_checked_at_the_next_up(tmp_path, litellm, api, tap, unique, users) -> None:
    users.append(unique)
    state = stack_of(tmp_path, tap.url, litellm.master_key, user(unique))
    state.up()
    key_hash = token_hash(state.outputs["key"][unique])

    # The same proxy at a new address: each object is found there, and the state follows the url.
    with PassThrough(litellm.url) as renamed:
        state.config["litellm:url"] = previous = renamed.url
        result = state.up()
        assert (result.step("User", unique).op, result.step("Key", unique).op) == ("update", "update")
        assert sorted(f"{c.method} {c.path}" for c in renamed.calls) == ["GET /key/info", "GET /user/info"]
        assert key_alive(api, key_hash)

    # A url where the objects are not (here: deleted out of band behind a new address): the next up fails
    # and says what to do; a refresh keeps them (a 404 from another url proves nothing) until told that the
    # proxy moved; then it drops them, and up creates them again.
    api.user_delete(unique)
    api.key_delete(key_hash)
    with PassThrough(litellm.url) as moved:
        state.config["litellm:url"] = moved.url
        with pytest.raises((EngineError, PluginError)) as caught:
            state.up()
        message = str(getattr(caught.value, "details", "")) + str(caught.value)
        assert (f"does not exist at {moved.url} (litellm:url changed; the state has it at {previous}). If "
                f"litellm:url is wrong, set it back. If the proxy really moved to {moved.url} without these objects, "
                f"run `LITELLM_MOVED_FROM={previous} pulumi refresh`") in message
        assert moved.count(method="POST") == 0
        with pytest.raises((EngineError, PluginError)):
            state.refresh()
        assert len([r for r in state.resources() if r.custom and not r.type.endswith(":Ledger")]) == 2
        state.plugin_env["LITELLM_MOVED_FROM"] = previous
        refresh = state.refresh()
        del state.plugin_env["LITELLM_MOVED_FROM"]
        assert sorted(s.op for s in refresh.steps if not s.type.endswith(":Ledger")) == ["delete", "delete"]
        state.up()
        raw = state.outputs["key"][unique]
        assert [row["token"] for row in keys_of(api, unique)] == [token_hash(raw)]


def test_emptying_a_users_models_is_refused_at_preview(tmp_path, litellm, api, tap, unique, users) -> None:
    """/user/update ignores an empty list: the user would keep its models while the state says none."""
    users.append(unique)
    state = stack_of(tmp_path, tap.url, litellm.master_key, user(unique))
    state.up()
    tap.reset()
    state.config["litellm:users"] = [user(unique, user_models=[])]
    with pytest.raises((EngineError, PluginError)) as caught:
        state.preview()
    message = str(caught.value)
    assert "models cannot be emptied once set: LiteLLM ignores an empty list on /user/update" in message
    assert "no response" not in message and tap.count() == 0
    assert api.user_info(unique)["user_info"]["models"] == ["fake-gpt-4o"]

    # A new user_id is a new user: starting it with no models is what the message advises, and is accepted.
    renamed = f"{unique}-new"
    users.append(renamed)
    state.config["litellm:users"] = [user(renamed, name=unique, user_models=[])]
    assert state.preview().step("User", unique).op == "replace"


@pytest.mark.long
def test_a_lost_answer_to_the_create_markers_clearing_strands_nothing(tmp_path, litellm, api, tap, unique,
                                                                      users) -> None:
    """/user/new answers, then every answer to the /user/update that clears the create's pending marker is
    lost although the proxy applies it: the user is ours all the same, in the state, with its one key."""
    users.append(unique)
    state = stack_of(tmp_path, tap.url, litellm.master_key, user(unique))
    tap.inject("drop_after", method="POST", path="/user/update", times=20)
    state.up()
    assert state.resource("User", unique).id == unique and user_exists(api, unique)
    raw = state.outputs["key"][unique]
    assert [row["token"] for row in keys_of(api, unique)] == [token_hash(raw)]
    tap.clear_faults()
    assert {op for op in state.preview().ops().values()} == {"same"}


def user_in_a_team_up(tmp_path: Path, url: str, token: str, user_id: str, team: str) -> Stack:
    """A stack of one user, member of one team of the stack, brought up at `url`."""
    config = {"litellm:url": url, "litellm:token": token, "litellm:teams": [{"team_id": team, "models": ["fake-gpt-4o"]}],
              "litellm:users": [user(user_id, teams=[team])]}
    state = Stack(tmp_path / "state", config, plugin_env=clean_env())
    state.up()
    return state


def test_a_url_change_is_checked_for_teams_and_memberships_too(tmp_path, litellm, api, tap, unique, users) -> None:
    """A team and a membership the new url does not have: the up fails and says so, refresh told that the
    proxy moved drops them, and up creates them there again."""
    team = f"{unique}-team"
    users.append(unique)
    state = user_in_a_team_up(tmp_path, tap.url, litellm.master_key, unique, team)
    api.team_delete(team)  # gone behind the new address (the membership goes with it)
    with PassThrough(litellm.url) as moved:
        try:
            state.config["litellm:url"] = moved.url
            with pytest.raises((EngineError, PluginError)) as caught:
                state.up()
            message = str(getattr(caught.value, "details", "")) + str(caught.value)
            # The Team's own step says so (the membership, which waits for the team, never starts).
            assert re.search(rf"Update \S+litellm:Team::\S+: .*: team {team!r} does not exist at {re.escape(moved.url)}",
                             message)
            assert moved.count(method="POST") == 0
            state.plugin_env["LITELLM_MOVED_FROM"] = tap.url
            refresh = state.refresh()
            del state.plugin_env["LITELLM_MOVED_FROM"]
            assert {s.key.split("/")[0] for s in refresh.steps if s.op == "delete"} == {"Team", "TeamMember"}
            state.up()
            assert api.team_info(team)["team_info"]["team_id"] == team
            members = api.team_info(team)["team_info"]["members_with_roles"]
            assert [m["user_id"] for m in members if m.get("user_id") == unique] == [unique]
        finally:
            state.destroy()


def test_refresh_against_another_proxy_keeps_the_state(tmp_path, litellm, api, tap, unique, users) -> None:
    """litellm:url pointed at another proxy, where every read answers 404: refresh fails naming both urls
    and what to do, and the state keeps every resource (the objects are still where they were made)."""
    team = f"{unique}-team"
    users.append(unique)
    state = user_in_a_team_up(tmp_path, tap.url, litellm.master_key, unique, team)
    before = sorted((r.type.split(":")[-1], r.id) for r in state.resources() if r.custom)
    try:
        with PassThrough(litellm.url) as other:
            other.inject("status", status=404, times=10_000)
            state.config["litellm:url"] = other.url
            for refresh in (lambda: state.refresh(run_program=True), state.up, state.refresh):
                with pytest.raises((EngineError, PluginError)) as caught:
                    refresh()
                assert sorted((r.type.split(":")[-1], r.id) for r in state.resources() if r.custom) == before
            message = str(getattr(caught.value, "details", "")) + str(caught.value)
            assert re.search(rf"(user '{unique}'|team '{team}'|key \S+ \(alias '{unique}'\)|membership of user "
                             rf"'{unique}' in team '{team}') was not found at {re.escape(other.url)} \(litellm:url\), "
                             rf"but the state has it at {re.escape(tap.url)}, where it was made", message)
            assert (f"If the proxy really moved to {other.url} without these objects, run "
                    f"`LITELLM_MOVED_FROM={tap.url} pulumi refresh`") in message
            assert other.count(method="POST") == 0
        assert user_exists(api, unique) and api.team_info(team)["team_info"]["team_id"] == team
        assert [t["token"] for t in keys_of(api, unique)] == [r[1] for r in before if r[0] == "Key"]
    finally:
        state.config["litellm:url"] = tap.url
        state.up()
        state.destroy()
