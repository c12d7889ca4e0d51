"""UserWithKey under Pulumi's mocks: the module's defaults, the wiring to User and Key, the conditional
key, and which values are secret. The Pulumi engine cannot run here, so this is the one place mocks stand
in for it; the providers themselves are tested against the real proxy and the real plugin elsewhere."""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import pulumi
import pytest
from pulumi.runtime import rpc
from pulumi.runtime.sync_await import _sync_await

from components import UserWithKey, UserWithKeyArgs
from harness.values import SECRET_SIG, SIG
from providers import Key, Team, TeamMember, User
from support.mocks import RecordingMonitor

AUTO_KEY = "sk-auto-minted-by-user-new"
GENERATED_KEY = "sk-generated-by-key-generate"


class FakeProxy(pulumi.runtime.Mocks):
    """Answers registrations the way the providers would: inputs echoed, plus computed outputs."""

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        outs = {name: rpc.unwrap_rpc_secret(value) for name, value in args.inputs.items()}
        if args.typ.endswith("litellm:User"):
            minted = AUTO_KEY if outs.get("auto_create_key") else ""
            outs["user_response"] = {"user_id": outs["user_id"], "key": minted}
            outs["user_data"] = {"user_id": outs["user_id"], "user_info": {"user_role": outs.get("user_role")}}
            return outs["user_id"], outs
        if args.typ.endswith("litellm:Key"):
            raw = outs.get("existing_key") or GENERATED_KEY
            outs.update(key=raw, key_response={"key": raw}, key_data={"info": {"key_alias": outs["key_alias"]}})
            return "hash-of-" + raw, outs
        return args.name + "-id", outs

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict[str, Any]:
        return {}


@pytest.fixture
def monitor() -> RecordingMonitor:
    fake = FakeProxy()
    recording = RecordingMonitor(fake)
    pulumi.runtime.set_mocks(fake, preview=False, monitor=recording)
    return recording


def resolve(output: pulumi.Output[Any]) -> tuple[Any, bool]:
    return _sync_await(output.future()), _sync_await(output.is_secret())


def inputs_of(resource: pulumi.CustomResource) -> dict[str, Any]:
    """What the resource registered, as the provider will receive it."""
    names = [n for n in dir(resource) if not n.startswith("_")]
    return {n: resolve(getattr(resource, n))[0] for n in names if isinstance(getattr(resource, n), pulumi.Output)}


def make(**overrides: Any) -> UserWithKey:
    args = UserWithKeyArgs(url="http://proxy.test:4000", token="sk-admin-token-1234", user_id="alice",
                           user_email="alice@example.org", **overrides)
    return UserWithKey("alice", args)


def test_defaults_are_the_modules() -> None:
    args = UserWithKeyArgs(url="u", token="t", user_id="i", user_email="e")
    expected = dict(auto_create_key=False, budget_duration="30d", duration="365d", key_alias=None, max_budget=0,
                    max_parallel_requests=100, metadata={}, model_max_budget={}, models=["fake_model"],
                    rpm_limit=1000, spend=0, team_id=None, tpm_limit=100000, user_alias=None, user_max_budget=0,
                    user_models=["fake_model"], user_role="app_user", adopt_existing=False,
                    rotate_after=None, rotation_trigger=None, rotation_grace=None, teams=[], blocked=False)
    assert {k: getattr(args, k) for k in expected} == expected
    assert {f.name for f in dataclasses.fields(args)} == set(expected) | {"url", "token", "user_id", "user_email"}


def test_type_tokens() -> None:
    assert User._resource_type_name == "dynamic/litellm:User"
    assert Key._resource_type_name == "dynamic/litellm:Key"
    assert Team._resource_type_name == "dynamic/litellm:Team"
    assert TeamMember._resource_type_name == "dynamic/litellm:TeamMember"


def test_user_wiring_fixes_the_modules_dead_inputs(monitor: RecordingMonitor) -> None:
    component = make(user_max_budget=25, max_budget=5, user_models=["m-user"], models=["m-key"],
                     tpm_limit=7, rpm_limit=3, user_role="internal_user")
    user = inputs_of(component.user)
    assert monitor.registered("UserWithKey").type == "litellm:index:UserWithKey"
    assert user["user_id"] == "alice" and user["user_email"] == "alice@example.org"
    assert user["user_alias"] == "alice"  # defaults to user_id
    assert user["max_budget"] == 25  # user_max_budget wins when > 0 (the module dropped it)
    assert user["models"] == ["m-user"]
    assert (user["tpm_limit"], user["rpm_limit"], user["user_role"]) == (7, 3, "internal_user")
    assert user["auto_create_key"] is False


def test_user_budget_falls_back_to_max_budget(monitor: RecordingMonitor) -> None:
    assert inputs_of(make(max_budget=5).user)["max_budget"] == 5


def test_key_wiring(monitor: RecordingMonitor) -> None:
    component = make(models=["m-key"], max_budget=5, budget_duration="7d", duration="30d", team_id="t-1",
                     metadata={"team": "x"}, max_parallel_requests=4, tpm_limit=9, rpm_limit=8, spend=1.5,
                     model_max_budget={"m-key": "2"}, key_alias="alice-key")
    key = inputs_of(component.key_resource)
    expected = dict(user_id="alice", key_alias="alice-key", models=["m-key"], max_budget=5, budget_duration="7d",
                    duration="30d", team_id="t-1", metadata={"team": "x"}, max_parallel_requests=4,
                    tpm_limit=9, rpm_limit=8, spend=1.5, model_max_budget={"m-key": "2"})
    assert {k: key[k] for k in expected} == expected
    assert key["existing_key"] is None


def test_key_alias_defaults_to_user_id(monitor: RecordingMonitor) -> None:
    component = make()
    assert inputs_of(component.key_resource)["key_alias"] == "alice"
    assert inputs_of(component.user)["user_alias"] == "alice"


@pytest.mark.parametrize("legacy, role", [("app_user", "internal_user_viewer"), ("app_owner", "internal_user"),
                                          ("admin", "proxy_admin")])
def test_legacy_roles_are_mapped_with_a_warning(monitor: RecordingMonitor, caplog: pytest.LogCaptureFixture,
                                                legacy: str, role: str) -> None:
    with caplog.at_level(logging.WARNING):
        component = make(user_role=legacy)
        assert inputs_of(component.user)["user_role"] == role
    assert any(legacy in r.message and role in r.message for r in caplog.records)


def test_without_auto_key_the_key_is_generated(monitor: RecordingMonitor) -> None:
    component = make(auto_create_key=False)
    assert inputs_of(component.key_resource)["existing_key"] is None
    assert resolve(component.key) == (GENERATED_KEY, True)


def test_with_auto_key_the_key_adopts_what_user_new_minted(monitor: RecordingMonitor) -> None:
    component = make(auto_create_key=True)
    user = inputs_of(component.user)
    assert user["auto_create_key"] is True and user["key_alias"] == "alice"
    assert inputs_of(component.key_resource)["existing_key"] == AUTO_KEY
    assert resolve(component.key) == (AUTO_KEY, True)


@pytest.mark.parametrize("auto", [False, True])
def test_five_outputs_same_shape_in_both_modes(monitor: RecordingMonitor, auto: bool) -> None:
    component = make(auto_create_key=auto)
    user_response, user_response_secret = resolve(component.user_response)
    key_response, key_response_secret = resolve(component.key_response)
    user_data, user_data_secret = resolve(component.user_data)
    key_data, key_data_secret = resolve(component.key_data)
    assert user_response["user_id"] == "alice" and user_data["user_id"] == "alice"
    assert key_data["info"]["key_alias"] == "alice" and key_response["key"] == resolve(component.key)[0]
    assert (user_response_secret, key_response_secret) == (True, True)
    assert (user_data_secret, key_data_secret) == (False, False)


def test_token_and_key_outputs_are_registered_secret(monitor: RecordingMonitor) -> None:
    resolve(make(auto_create_key=True).key)  # waits until both resources are registered
    for suffix, secret_outputs in (("litellm:User", {"token", "user_response"}),
                                   ("litellm:Key", {"token", "key", "key_response", "existing_key"})):
        request = monitor.registered(suffix)
        token = request.object.fields["token"]
        assert token.struct_value.fields[SIG].string_value == SECRET_SIG
        assert "sk-admin-token-1234" not in str(request.object.fields["__provider"])
        assert secret_outputs <= set(request.additionalSecretOutputs)


def test_provider_is_pickled_by_reference_and_small(monitor: RecordingMonitor) -> None:
    resolve(make().key)
    for suffix in ("litellm:User", "litellm:Key"):
        provider = monitor.registered(suffix).object.fields["__provider"].string_value
        assert 0 < len(provider) <= 200, len(provider)


def test_plain_bad_values_are_rejected_naming_the_module_input(monitor: RecordingMonitor) -> None:
    with pytest.raises(ValueError, match=r"^UserWithKey 'alice': user_max_budget must be a number >= 0; got -1$"):
        make(user_max_budget=-1)
    with pytest.raises(ValueError, match=r"^UserWithKey 'alice': duration must be a LiteLLM duration"):
        make(duration="forever")


def test_outputs_inside_lists_and_maps_are_left_to_check(monitor: RecordingMonitor) -> None:
    """models=[config.require("model")] is a valid Input: construction must not reject it."""
    component = make(models=[pulumi.Output.from_input("m-from-config")],
                     metadata={"team": pulumi.Output.from_input("research")})
    key = inputs_of(component.key_resource)
    assert key["models"] == ["m-from-config"] and key["metadata"] == {"team": "research"}


def test_teams_make_one_membership_each_and_the_key_waits_for_them(monitor: RecordingMonitor) -> None:
    component = make(teams=["red", "blue"], team_id="red")
    assert [inputs_of(m)["team_id"] for m in component.memberships] == ["red", "blue"]
    assert [inputs_of(m)["user_id"] for m in component.memberships] == ["alice", "alice"]
    inputs_of(component.key_resource)
    members = [r for r in monitor.requests if r.type.endswith("litellm:TeamMember")]
    assert sorted(r.name for r in members) == ["alice/blue", "alice/red"]
    assert all(r.parent.endswith("UserWithKey::alice") for r in members)
    # The names they had before are aliases: a stack made with them keeps its memberships.
    assert sorted([a.spec.name for a in r.aliases] for r in members) == [["alice-blue"], ["alice-red"]]
    # LiteLLM moves a key into a team only for a member: the Key depends on every membership.
    key = monitor.registered("litellm:Key")
    assert sorted(d.rsplit("::", 1)[-1] for d in key.dependencies if "TeamMember" in d) == ["alice/blue", "alice/red"]


@pytest.mark.parametrize("teams", ["red", [""], ["red", "red"], [7]])
def test_bad_teams_are_refused_at_construction(monitor: RecordingMonitor, teams: Any) -> None:
    with pytest.raises(ValueError, match=r"^UserWithKey 'alice': teams must be a list of distinct team ids"):
        make(teams=teams)
    assert not [r for r in monitor.requests if r.type.startswith("pulumi-python:dynamic")]
