"""Teams, memberships and team keys through the stack program (`litellm:teams`, per-user `teams`, a key's
`team_id`), driven like `pulumi preview / up / refresh / destroy` (tests/harness: the real plugin over
gRPC) against the real proxy behind a counting pass-through. Every scenario checks the proxy itself.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Iterator

import pulumi
import pytest
import requests

from harness import EngineError, Stack
from providers import Team, TeamArgs, TeamMember, TeamMemberArgs, TeamMemberProvider, TeamProvider
from providers.client import LiteLLMClient, LiteLLMError
from support.passthrough import PassThrough
from support.proxy_state import destroy_or_delete, key_alive, team_exists, user_exists

# The owner mark of what the stack creates (providers/owner.py; the harness runs litellm-access/test).
MARK = {"pulumi_managed_by": "litellm-access/test"}


def team_spec(team_id: str, **overrides: Any) -> dict[str, Any]:
    """One entry of `litellm:teams`: every input set."""
    values: dict[str, Any] = dict(
        team_id=team_id, team_alias=f"{team_id} alias", models=["fake-mock", "fake-gpt-4o"], max_budget=50,
        budget_duration="30d", tpm_limit=5000, rpm_limit=60, max_parallel_requests=4, metadata={"cost_center": "42"},
    )
    values.update(overrides)
    return values


def user_spec(user_id: str, **overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = dict(
        user_id=user_id, user_email=f"{user_id}@example.org", user_role="internal_user",
        models=["fake-mock"], user_models=["fake-mock"], max_budget=5, metadata={}, tpm_limit=1000, rpm_limit=50,
    )
    values.update(overrides)
    return values


def team_row(api: LiteLLMClient, team_id: str) -> dict[str, Any]:
    return api.team_info(team_id)["team_info"]


def members(api: LiteLLMClient, team_id: str) -> dict[str, str]:
    """{user_id: role} of the team's members, without the proxy admin LiteLLM adds to every new team."""
    rows = team_row(api, team_id)["members_with_roles"]
    return {m["user_id"]: m["role"] for m in rows if m["user_id"] != "default_user_id"}


def chat(url: str, raw_key: str) -> int:
    """The status of one completion with `fake-mock` (answered by the proxy, no upstream)."""
    response = requests.post(f"{url}/chat/completions", headers={"Authorization": f"Bearer {raw_key}"},
                             json={"model": "fake-mock", "messages": [{"role": "user", "content": "hi"}]}, timeout=60)
    return response.status_code


def calls(tap: PassThrough) -> Counter[str]:
    return Counter(f"{c.method} {c.path}" for c in tap.calls)


@pytest.fixture
def stacks(tmp_path: Path, litellm: Any, tap: PassThrough, api: LiteLLMClient) -> Iterator[Callable[..., Stack]]:
    """Stacks of the stack program through the pass-through; whatever a test leaves is destroyed after it,
    its users and teams deleted directly if that fails."""
    made: list[Stack] = []

    def make(teams: list[dict[str, Any]], users: list[dict[str, Any]], program: Any = None) -> Stack:
        stack = Stack(tmp_path / "state", {"litellm:url": tap.url, "litellm:token": litellm.master_key,
                                           "litellm:teams": teams, "litellm:users": users}, program=program)
        made.append(stack)
        return stack

    yield make
    destroy_or_delete(made, api)


# ------------------------------------------------------------ preview, up, no-op
def test_up_creates_teams_memberships_and_team_keys_as_declared_and_a_noop_makes_no_call(stacks, tap, api, litellm, unique):
    red, blue = team_spec(f"{unique}red"), team_spec(f"{unique}blue", models=[], max_budget=None, metadata=None)
    alice = user_spec(f"{unique}a", teams=[red["team_id"], blue["team_id"]], team_id=red["team_id"])
    bob = user_spec(f"{unique}b", teams=[red["team_id"]])
    stack = stacks([red, blue], [alice, bob])

    preview = stack.preview()
    assert tap.calls == []
    assert {k: v for k, v in preview.ops().items() if k.startswith("Team")} == {
        f"Team/{red['team_id']}": "create", f"Team/{blue['team_id']}": "create",
        f"TeamMember/{alice['user_id']}/{red['team_id']}": "create",
        f"TeamMember/{alice['user_id']}/{blue['team_id']}": "create",
        f"TeamMember/{bob['user_id']}/{red['team_id']}": "create",
    }

    stack.up()
    row = team_row(api, red["team_id"])
    assert {k: row[k] for k in ("team_alias", "models", "max_budget", "budget_duration", "tpm_limit", "rpm_limit",
                                "metadata")} == {
        "team_alias": f"{unique}red alias", "models": ["fake-mock", "fake-gpt-4o"], "max_budget": 50.0,
        "budget_duration": "30d", "tpm_limit": 5000, "rpm_limit": 60, "metadata": {"cost_center": "42", **MARK}}
    blue_row = team_row(api, blue["team_id"])
    assert (blue_row["models"], blue_row["max_budget"], blue_row["metadata"]) == ([], None, MARK)
    assert members(api, red["team_id"]) == {alice["user_id"]: "user", bob["user_id"]: "user"}
    assert members(api, blue["team_id"]) == {alice["user_id"]: "user"}
    key = api.key_info(stack.resource("Key", alice["user_id"]).id)["info"]
    assert key["team_id"] == red["team_id"]
    assert chat(litellm.url, stack.outputs["key"][alice['user_id']]) == 200
    # The key of a stack team depends on it: LiteLLM deletes a team's keys with the team.
    assert stack.resource("Team", red["team_id"]).urn in stack.resource("Key", alice["user_id"]).depends_on()
    data = stack.outputs[f"{red['team_id']}_team_data"]
    assert data["team_info"]["team_alias"] == f"{unique}red alias" and f"{red['team_id']}_team_data" not in stack.secret_outputs
    assert stack.plaintext_secrets(extra=[litellm.master_key, stack.outputs["key"][alice['user_id']]]) == []

    tap.reset()
    assert set(stack.preview().ops().values()) == {"same"}
    assert set(stack.up().ops().values()) == {"same"}
    assert tap.count() == 0


# ------------------------------------------------------------ updates: only what changed
def test_a_team_change_sends_only_the_changed_fields_and_a_removed_membership_is_deleted(stacks, tap, api, unique):
    red = team_spec(f"{unique}red")
    alice = user_spec(f"{unique}a", teams=[red["team_id"]])
    stack = stacks([red], [alice])
    stack.up()
    # Someone raises the team's tpm limit on the proxy; the stack changes only the alias and the budget.
    api.team_update({"team_id": red["team_id"], "tpm_limit": 7777})
    stack.config["litellm:teams"] = [{**red, "team_alias": "renamed", "max_budget": 80}]
    stack.config["litellm:users"] = [{**alice, "teams": []}]

    preview = stack.preview()
    assert preview.ops()[f"Team/{red['team_id']}"] == "update"
    assert preview.ops()[f"TeamMember/{alice['user_id']}/{red['team_id']}"] == "delete"
    tap.reset()
    up = stack.up()
    assert up.ops()[f"Team/{red['team_id']}"] == "update"
    assert calls(tap)["POST /team/update"] == 1 and calls(tap)["POST /team/member_delete"] == 1
    row = team_row(api, red["team_id"])
    assert (row["team_alias"], row["max_budget"]) == ("renamed", 80.0)
    assert row["tpm_limit"] == 7777  # not declared as changed, so not sent
    assert members(api, red["team_id"]) == {}


# ------------------------------------------------------------ drift, gone, recreate
def test_refresh_finds_drift_on_every_team_field_and_gone_objects_and_up_restores_them(stacks, api, litellm, unique):
    red = team_spec(f"{unique}red")
    alice = user_spec(f"{unique}a", teams=[red["team_id"]], team_id=red["team_id"])
    stack = stacks([red], [alice])
    stack.up()
    team_name, member_name = red["team_id"], f"{alice['user_id']}/{red['team_id']}"

    api.team_update({"team_id": red["team_id"], "team_alias": "edited", "models": ["fake-gpt-4o"], "max_budget": 1,
                     "budget_duration": "7d", "tpm_limit": 1, "rpm_limit": 2, "metadata": {"x": "y"}})
    api.team_member_delete(red["team_id"], alice["user_id"])
    refresh = stack.refresh()
    assert refresh.ops()[f"TeamMember/{member_name}"] == "delete"
    assert refresh.ops()[f"Team/{team_name}"] == "update"
    outs = stack.resource("Team", team_name).outputs
    assert {k: outs[k] for k in ("team_alias", "models", "max_budget", "budget_duration", "tpm_limit", "rpm_limit",
                                 "metadata")} == {
        "team_alias": "edited", "models": ["fake-gpt-4o"], "max_budget": 1.0, "budget_duration": "7d",
        "tpm_limit": 1.0, "rpm_limit": 2.0, "metadata": {"x": "y"}}

    up = stack.up()
    assert up.ops()[f"Team/{team_name}"] == "update" and up.ops()[f"TeamMember/{member_name}"] == "create"
    row = team_row(api, red["team_id"])
    assert {k: row[k] for k in ("team_alias", "models", "max_budget", "budget_duration", "tpm_limit", "rpm_limit",
                                "metadata")} == {
        "team_alias": f"{unique}red alias", "models": ["fake-mock", "fake-gpt-4o"], "max_budget": 50.0,
        "budget_duration": "30d", "tpm_limit": 5000, "rpm_limit": 60, "metadata": {"cost_center": "42", **MARK}}
    assert members(api, red["team_id"]) == {alice["user_id"]: "user"}

    # The team deleted outside Pulumi (LiteLLM deletes its key with it): all gone at refresh, back after up.
    api.team_delete(red["team_id"])
    refresh = stack.refresh()
    assert {refresh.ops()[k] for k in (f"Team/{team_name}", f"TeamMember/{member_name}", f"Key/{alice['user_id']}")} == {"delete"}
    up = stack.up()
    assert {up.ops()[k] for k in (f"Team/{team_name}", f"TeamMember/{member_name}", f"Key/{alice['user_id']}")} == {"create"}
    assert members(api, red["team_id"]) == {alice["user_id"]: "user"}
    assert chat(litellm.url, stack.outputs["key"][alice['user_id']]) == 200


# ------------------------------------------------------------ membership names
def rename_in_state(stack: Stack, renames: dict[str, str]) -> None:
    """The state as an older version of the program wrote it: memberships under their old names (and every
    reference to those URNs), with no `resource_name` (which it did not register)."""
    def urn(value: str) -> str:
        head, _, name = value.rpartition("::")
        return f"{head}::{renames.get(name, name)}" if "litellm:TeamMember" in head else value

    data = json.loads(stack.state_file.read_text())
    for row in data["deployment"]["resources"]:
        row["inputs"].pop("resource_name", None)
        row["outputs"].pop("resource_name", None)
        row["urn"], row["parent"] = urn(row["urn"]), urn(row["parent"])
        row["dependencies"] = [urn(u) for u in row["dependencies"]]
        row["property_dependencies"] = {k: [urn(u) for u in v] for k, v in row["property_dependencies"].items()}
    stack.state_file.write_text(json.dumps(data))


def test_memberships_that_shared_a_resource_name_are_both_made(stacks, tap, api, unique):
    """User `a-b` in team `c` and user `a` in team `b-c` were both `a-b-c`: the engine refused the second."""
    c, bc = team_spec(f"{unique}c"), team_spec(f"b-{unique}c")
    ab, a = user_spec(f"{unique}a-b", teams=[c["team_id"]]), user_spec(f"{unique}a", teams=[bc["team_id"]])
    stack = stacks([c, bc], [ab, a])
    stack.up()
    assert members(api, c["team_id"]) == {f"{unique}a-b": "user"}
    assert members(api, bc["team_id"]) == {f"{unique}a": "user"}
    assert sorted(r.name for r in stack.resources() if r.type.endswith("TeamMember")) == [
        f"{unique}a-b/{unique}c", f"{unique}a/b-{unique}c"]

    # A stack made before held one of them under the shared old name: that name is no alias (it would be
    # one for both), so the membership is made under its new name and the old entry's delete leaves it.
    rename_in_state(stack, {f"{unique}a-b/{unique}c": f"{unique}a-b-{unique}c"})
    tap.reset()
    up = stack.up()
    assert {k: op for k, op in up.ops().items() if k.startswith("TeamMember/") and op != "same"} == {
        f"TeamMember/{unique}a-b/{unique}c": "create", f"TeamMember/{unique}a-b-{unique}c": "delete"}
    assert tap.count(path="/team/member_delete") == 0
    assert members(api, c["team_id"]) == {f"{unique}a-b": "user"}


def test_a_stack_with_the_old_membership_names_keeps_them_with_no_replacement(stacks, tap, api, unique):
    red, blue = team_spec(f"{unique}red"), team_spec(f"{unique}blue")
    alice = user_spec(f"{unique}a", teams=[red["team_id"], blue["team_id"]], team_id=red["team_id"])
    stack = stacks([red, blue], [alice])
    stack.up()
    old = {f"{unique}a/{t}": f"{unique}a-{t}" for t in (red["team_id"], blue["team_id"])}
    rename_in_state(stack, old)  # as the previous version named them
    assert sorted(r.name for r in stack.resources() if r.type.endswith("TeamMember")) == sorted(old.values())

    tap.reset()
    preview = stack.preview()
    assert {op for key, op in preview.ops().items() if key.startswith("TeamMember/")} == {"same"}
    assert [s for s in preview.steps if s.op not in ("same", "update")] == []
    up = stack.up()
    assert [s for s in up.steps if s.op not in ("same", "update")] == []
    assert tap.count(writes=True) == 0
    assert sorted(r.name for r in stack.resources() if r.type.endswith("TeamMember")) == sorted(old)
    assert members(api, red["team_id"]) == members(api, blue["team_id"]) == {alice["user_id"]: "user"}
    assert stack.preview().ops() == up.ops()


# ------------------------------------------------------------ order: destroy, team_id change
def test_destroy_of_teams_users_memberships_and_team_keys_leaves_nothing_and_twice_is_fine(stacks, tap, api, litellm,
                                                                                            unique):
    red, blue = team_spec(f"{unique}red"), team_spec(f"{unique}blue")
    alice = user_spec(f"{unique}a", teams=[red["team_id"], blue["team_id"]], team_id=red["team_id"])
    bob = user_spec(f"{unique}b", teams=[blue["team_id"]], team_id=blue["team_id"], auto_create_key=True)
    stack = stacks([red, blue], [alice, bob])
    stack.up()
    hashes = [stack.resource("Key", u["user_id"]).id for u in (alice, bob)]

    tap.reset()
    destroy = stack.destroy()
    assert set(destroy.ops().values()) == {"delete"}
    # Each team and each of the 3 memberships asks /team/info first whether it still holds a key.
    team_calls = {k: v for k, v in calls(tap).items() if "/team/" in k}
    assert team_calls == {"GET /team/info": 5, "POST /team/delete": 2, "POST /team/member_delete": 3}
    assert not any(team_exists(api, t["team_id"]) for t in (red, blue))
    assert not any(user_exists(api, u["user_id"]) for u in (alice, bob))
    assert not any(key_alive(api, h) for h in hashes)
    assert stack.resources() == []
    # Deleting twice is fine: every provider's delete of something already gone succeeds.
    props = {"url": litellm.url, "token": litellm.master_key, "team_id": red["team_id"], "user_id": alice["user_id"]}
    TeamProvider().delete(red["team_id"], props)
    TeamMemberProvider().delete(f"{red['team_id']}/{alice['user_id']}", props)


def test_a_team_id_change_on_a_team_with_keys_ends_with_every_declared_key_working(stacks, api, litellm, unique):
    """The team keeps its resource name (`name`), so the new team_id replaces it in place; its keys move
    to the new team in the same `up` and none is lost to LiteLLM's cascade."""
    red = team_spec(f"{unique}red", name="red")
    alice = user_spec(f"{unique}a", teams=[red["team_id"]], team_id=red["team_id"])
    bob = user_spec(f"{unique}b", teams=[red["team_id"]], team_id=red["team_id"], auto_create_key=True)
    stack = stacks([red], [alice, bob])
    stack.up()

    new_id = f"{unique}green"
    stack.config["litellm:teams"] = [{**red, "team_id": new_id}]
    stack.config["litellm:users"] = [{**u, "teams": [new_id], "team_id": new_id} for u in (alice, bob)]
    preview = stack.preview()
    assert preview.ops()["Team/red"] == "replace"
    stack.up()

    assert not team_exists(api, red["team_id"]) and team_exists(api, new_id)
    assert members(api, new_id) == {alice["user_id"]: "user", bob["user_id"]: "user"}
    for user in (alice, bob):
        info = api.key_info(stack.resource("Key", user["user_id"]).id)["info"]
        assert info.get("status") != "deleted" and info["team_id"] == new_id
        assert chat(litellm.url, stack.outputs["key"][user['user_id']]) == 200


# ------------------------------------------------------------ the resources on their own
def membership_program() -> None:
    """A Team and a TeamMember declared directly, with a budget in the team and adopt_existing from config."""
    config = pulumi.Config("litellm")
    spec = config.require_object("direct")
    url, token = config.require("url"), config.require_secret("token")
    team = Team("team", TeamArgs(url=url, token=token, **spec["team"]))
    TeamMember("member", TeamMemberArgs(url=url, token=token, team_id=team.team_id, **spec["member"]))


def test_a_membership_budget_is_set_changed_and_cleared_and_drift_on_it_is_found(stacks, api, unique):
    team_id, user_id = f"{unique}red", f"{unique}a"
    stack = stacks([], [user_spec(user_id)])
    stack.up()  # the user
    direct = Stack(stack.state_file.parent / "direct", {**stack.config, "litellm:direct": {
        "team": {"team_id": team_id}, "member": {"user_id": user_id, "max_budget_in_team": 3}}},
        program=membership_program, name="direct")
    try:
        direct.up()
        budget = lambda: api.team_info(team_id)["team_memberships"]  # noqa: E731
        row = next(m for m in budget() if m["user_id"] == user_id)
        assert row["litellm_budget_table"]["max_budget"] == 3.0
        api.team_member_update({"team_id": team_id, "user_id": user_id, "max_budget_in_team": 9})
        assert direct.refresh().ops()["TeamMember/member"] == "update"
        assert direct.resource("TeamMember", "member").outputs["max_budget_in_team"] == 9.0
        direct.config["litellm:direct"]["member"]["max_budget_in_team"] = None
        assert direct.up().ops()["TeamMember/member"] == "update"
        row = next(m for m in budget() if m["user_id"] == user_id)
        assert (row.get("litellm_budget_table") or {}).get("max_budget") is None
    finally:
        direct.destroy()
    assert not team_exists(api, team_id)


def test_an_existing_team_is_refused_without_adopt_existing_and_reconciled_with_it(stacks, api, unique):
    red = team_spec(f"{unique}red")
    api.team_new({"team_id": red["team_id"], "team_alias": "made by hand", "max_budget": 1})
    stack = stacks([red], [])
    with pytest.raises(EngineError, match=r"team_id '.*red' already exists on the proxy.*adopt_existing=True"):
        stack.up()
    assert team_row(api, red["team_id"])["team_alias"] == "made by hand"

    stack.config["litellm:teams"] = [{**red, "adopt_existing": True}]
    stack.up()
    row = team_row(api, red["team_id"])
    assert (row["team_alias"], row["max_budget"], row["tpm_limit"]) == (f"{unique}red alias", 50.0, 5000)


def test_a_team_left_pending_by_a_create_that_lost_its_answer_is_taken_over_by_the_next_up(stacks, api, unique):
    """An attempt that landed after its run gave up carries the create protocol's pending marker: ours."""
    red = team_spec(f"{unique}red")
    api.team_new({"team_id": red["team_id"], "metadata": {"pulumi_create": "pending"}})
    stack = stacks([red], [])
    assert stack.up().ops()[f"Team/{red['team_id']}"] == "create"
    row = team_row(api, red["team_id"])
    assert (row["metadata"], row["team_alias"], row["max_budget"]) == ({"cost_center": "42", **MARK}, f"{unique}red alias",
                                                                       50.0)


def test_a_membership_with_a_budget_of_its_own_needs_adopt_existing_and_a_bare_one_is_carried_on_with(
        stacks, api, unique):
    team_id, user_id = f"{unique}red", f"{unique}a"
    stack = stacks([], [user_spec(user_id)])
    stack.up()  # the user
    api.team_new({"team_id": team_id})
    api.team_member_add(team_id, user_id, "user")
    api.team_member_update({"team_id": team_id, "user_id": user_id, "max_budget_in_team": 1})  # its own state
    direct = Stack(stack.state_file.parent / "direct", {**stack.config, "litellm:direct": {
        "team": {"team_id": team_id, "adopt_existing": True}, "member": {"user_id": user_id, "max_budget_in_team": 2}}},
        program=membership_program, name="direct")
    try:
        with pytest.raises(EngineError, match=rf"user '{user_id}' is already in team '{team_id}' with a role or "
                                              r"budget of its own.*adopt_existing=True"):
            direct.up()
        direct.config["litellm:direct"]["member"]["adopt_existing"] = True
        assert direct.up().ops()["TeamMember/member"] == "create"
        assert members(api, team_id) == {user_id: "user"}
        row = next(m for m in api.team_info(team_id)["team_memberships"] if m["user_id"] == user_id)
        assert row["litellm_budget_table"]["max_budget"] == 2.0
        # A bare membership (what /team/member_add makes: a late add of ours, or the same by hand) is ours.
        direct.destroy()
        api.team_new({"team_id": team_id})
        api.team_member_add(team_id, user_id, "user")
        direct.config["litellm:direct"]["member"]["adopt_existing"] = False
        assert direct.up().ops()["TeamMember/member"] == "create"
        assert members(api, team_id) == {user_id: "user"}
    finally:
        direct.destroy()
    assert not team_exists(api, team_id)


# ------------------------------------------------------------ what LiteLLM would delete with a team or a membership
def test_removing_a_team_that_a_key_still_names_fails_naming_the_key_and_deletes_nothing(stacks, tap, api, litellm,
                                                                                         unique):
    """LiteLLM deletes a team's keys with it: the Team's Delete refuses while the team holds one."""
    red = team_spec(f"{unique}red")
    alice = user_spec(f"{unique}a", teams=[red["team_id"]], team_id=red["team_id"])
    stack = stacks([red], [alice])
    stack.up()
    raw, key_hash = stack.outputs["key"][alice['user_id']], stack.resource("Key", alice["user_id"]).id

    stack.config["litellm:teams"] = []  # the key (and the membership) still name the team
    stack.config["litellm:max_deletions"] = 1  # removing the stack's only team (and user) is meant here
    assert stack.preview().ops()[f"Team/{red['team_id']}"] == "delete"
    tap.reset()
    with pytest.raises(EngineError) as refused:
        stack.up()
    message = str(refused.value)
    assert (f"team '{red['team_id']}' still holds 1 key(s): key alias '{alice['user_id']}' of user "
            f"'{alice['user_id']}'. LiteLLM deletes a team's keys with it, so nothing was deleted") in message
    assert raw not in message and litellm.master_key not in message
    assert tap.count(method="POST") == 0  # nothing sent: no /team/delete
    assert team_exists(api, red["team_id"]) and key_alive(api, key_hash)
    assert members(api, red["team_id"]) == {alice["user_id"]: "user"}
    assert chat(litellm.url, raw) == 200

    # The order the message asks for: the key first (here: the user goes), then the team.
    stack.config["litellm:teams"], stack.config["litellm:users"] = [red], []
    stack.up()
    assert not key_alive(api, key_hash) and team_exists(api, red["team_id"])
    stack.config["litellm:teams"] = []
    stack.up()
    assert not team_exists(api, red["team_id"])


def test_leaving_a_team_while_the_users_key_names_it_is_refused_before_anything_is_sent(stacks, tap, api, litellm,
                                                                                        unique):
    """/team/member_delete deletes the member's keys in the team: the TeamMember's Delete refuses first.
    (For a team of the stack the config check already refuses it; this team was made outside the stack.)"""
    outside = f"{unique}ext"
    api.team_new({"team_id": outside})
    try:
        alice = user_spec(f"{unique}a", teams=[outside], team_id=outside)
        stack = stacks([], [alice])
        stack.up()
        raw, key_hash = stack.outputs["key"][alice['user_id']], stack.resource("Key", alice["user_id"]).id

        stack.config["litellm:users"] = [{**alice, "teams": []}]
        tap.reset()
        with pytest.raises(EngineError) as refused:
            stack.up()
        message = str(refused.value)
        assert (f"user '{alice['user_id']}' still holds 1 key(s) in team '{outside}': key alias '{alice['user_id']}' "
                f"of user '{alice['user_id']}'. LiteLLM deletes a member's keys in the team when it leaves, so "
                "nothing was sent") in message
        assert raw not in message
        assert tap.count(path="/team/member_delete") == 0 and tap.count(method="POST") == 0
        assert members(api, outside) == {alice["user_id"]: "user"} and key_alive(api, key_hash)
        assert chat(litellm.url, raw) == 200
    finally:
        api.team_delete(outside)


def test_our_own_retired_rotation_keys_do_not_hold_a_team(litellm, api, unique):
    """An old key of one of our rotations (`<alias>.retired-<its hash>`) goes with the team; any other key
    (even one whose alias only looks retired) holds it."""
    team_id, user_id = f"{unique}red", f"{unique}a"
    api.user_new({"user_id": user_id, "user_email": f"{user_id}@example.org", "auto_create_key": False})
    api.team_new({"team_id": team_id})
    api.team_member_add(team_id, user_id, "user")
    props = {"url": litellm.url, "token": litellm.master_key, "team_id": team_id, "user_id": user_id}
    try:
        retired = api.key_generate({"user_id": user_id, "team_id": team_id, "key_alias": f"{user_id}.tmp"})
        api.key_update(retired["token"], {"key_alias": f"{user_id}.retired-{retired['token'][:8]}"})
        lookalike = api.key_generate({"user_id": user_id, "team_id": team_id, "key_alias": f"{user_id}.retired-0000abcd"})
        with pytest.raises(LiteLLMError, match=rf"still holds 1 key\(s\)( in team '{team_id}')?: key alias "
                                               rf"'{user_id}.retired-0000abcd' of user '{user_id}'"):
            TeamMemberProvider().delete(f"{team_id}/{user_id}", props)
        with pytest.raises(LiteLLMError, match=r"team '.*' still holds 1 key\(s\): key alias '.*\.retired-0000abcd'"):
            TeamProvider().delete(team_id, props)
        api.key_delete(lookalike["token"])
        TeamMemberProvider().delete(f"{team_id}/{user_id}", props)
        assert members(api, team_id) == {}
        TeamProvider().delete(team_id, props)
        assert not team_exists(api, team_id) and not key_alive(api, retired["token"])
    finally:
        api.team_delete(team_id)
        api.user_delete(user_id)
