"""Config and component errors say where: which entry of `litellm:users` (or which UserWithKey), which input,
what was given and what is accepted; every error in one run; a misspelt name gets the closest accepted one.
The legacy-role warning comes once per run and names its users. Expected messages are written out here."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pulumi
import pytest
import yaml  # installed with pulumi

from components import UserWithKey, UserWithKeyArgs
from harness.engine import EngineError, Stack
from providers import fields as f
from support.mocks import RecordingMonitor
from support.stack import _Echo, program_namespace

ROOT = Path(__file__).resolve().parents[1]
URL = "http://127.0.0.1:9"  # preview never calls the proxy


def user(user_id: str, **extra: object) -> dict[str, object]:
    return {"user_id": user_id, "user_email": f"{user_id}@example.org", "user_role": "internal_user", **extra}


def stack_error(users: object) -> str:
    with pytest.raises(ValueError) as caught:
        program_namespace()["validate_users"](users)
    return str(caught.value)


def test_an_error_names_the_entry_by_index_and_user_id() -> None:
    users = [user("ann"), user("bob"), user("dan"), user("carol", max_budget=-5)]
    assert stack_error(users) == "litellm:users[3] (user_id 'carol'): max_budget must be a number >= 0; got -5"


def test_every_error_of_the_config_is_reported_in_one_run() -> None:
    users = [
        user("ann", max_budgt=5),
        user("bob", user_role="root", tpm_limit=1.5),
        {"user_email": "not-an-email"},
        user("ann", user_email="ANN@example.org"),
    ]
    assert stack_error(users).splitlines() == [
        "7 errors in the stack config:",
        "  litellm:users[0] (user_id 'ann'): unknown input 'max_budgt'; did you mean 'max_budget'?",
        "  litellm:users[1] (user_id 'bob'): tpm_limit must be a whole number >= 0; got 1.5",
        "  litellm:users[1] (user_id 'bob'): user_role must be one of proxy_admin, proxy_admin_viewer, internal_user, "
        "internal_user_viewer, or the legacy admin (= proxy_admin), app_owner (= internal_user), "
        "app_user (= internal_user_viewer); got 'root'",
        "  litellm:users[2]: user_id is required: a string of 1 to 256 characters",
        "  litellm:users[2]: user_email must be an email address such as 'name@example.org'; got 'not-an-email'",
        "  litellm:users[3] (user_id 'ann'): user_id 'ann' is already used by litellm:users[0]; each user_id must be "
        "unique in the stack (LiteLLM rejects duplicates at apply time)",
        "  litellm:users[3] (user_id 'ann'): user_email 'ann@example.org' is already used by litellm:users[0]; "
        "each user_email must be unique in the stack (LiteLLM rejects duplicates at apply time)",
    ]


def test_a_name_far_from_any_input_lists_the_accepted_ones() -> None:
    message = stack_error([user("ann", frobnicate=1)])
    assert message.startswith("litellm:users[0] (user_id 'ann'): unknown input 'frobnicate'; accepted: "
                              "adopt_existing, auto_create_key, blocked, budget_duration, duration, key_alias, "), message
    assert message.endswith(", user_max_budget, user_models, user_role"), message


def test_the_program_reports_url_and_user_errors_together(tmp_path: Path) -> None:
    """The real program under the engine stand-in: one failed preview shows every config error."""
    stack = Stack(tmp_path, {"litellm:url": "ftp://proxy.example.org", "litellm:token": "sk-config-errors-token",
                             "litellm:users": [user("ann", max_budget=-5), user("bob", modles=["gpt-4o"])]})
    with pytest.raises(EngineError) as caught:
        stack.preview()
    text = str(caught.value) + "\n".join(caught.value.result.messages)
    for line in (
        "3 errors in the stack config:",
        "litellm:url must be the proxy's root URL, http(s)://host[:port] with no path, query or credentials; "
        "got 'ftp://proxy.example.org'",
        "litellm:users[0] (user_id 'ann'): max_budget must be a number >= 0; got -5",
        "litellm:users[1] (user_id 'bob'): unknown input 'modles'; did you mean 'models'?",
    ):
        assert line in text, text
    assert "sk-config-errors-token" not in text
    assert [r for r in caught.value.result.registrations if r.type.startswith("pulumi-python:dynamic")] == []


def test_the_same_messages_for_any_config_list_and_field_table() -> None:
    """Derived from the table: a list added later (teams, say) gets these messages without code of its own."""
    table = {"team_alias": f.Field("team_alias", f.text(), required=True), "max_budget": f.Field("max_budget", f.budget)}
    errors = program_namespace()["entry_errors"](
        "litellm:teams", [{"team_alias": "research", "max_budgt": 1}, {"max_budget": -1}], table, "team_alias")
    assert errors == [
        "litellm:teams[0] (team_alias 'research'): unknown input 'max_budgt'; did you mean 'max_budget'?",
        "litellm:teams[1]: team_alias is required: a string of 1 to 256 characters",
        "litellm:teams[1]: max_budget must be a number >= 0; got -1",
    ]


# ------------------------------------------------------------------------------ the component itself
def construct(name: str, **overrides: object) -> tuple[str, list[str]]:
    """The message UserWithKey raises for these args, and the custom resources registered before it."""
    mocks = _Echo()
    monitor = RecordingMonitor(mocks)
    pulumi.runtime.set_mocks(mocks, preview=True, monitor=monitor)
    args = UserWithKeyArgs(url="http://proxy.test:4000", token="sk-component-token", user_id=name,
                           user_email=f"{name}@example.org", user_role="internal_user")
    with pytest.raises(ValueError) as caught:
        UserWithKey(name, dataclasses.replace(args, **overrides))
    return str(caught.value), [r.type for r in monitor.requests if r.type.startswith("pulumi-python:dynamic")]


def test_the_component_reports_every_problem_naming_the_resource() -> None:
    message, registered = construct("carol", max_budget=-5, user_email="carol", duration="forever")
    assert message.splitlines() == [
        "UserWithKey 'carol': user_email must be an email address such as 'name@example.org'; got 'carol'",
        "UserWithKey 'carol': duration must be a LiteLLM duration: <number><s|m|h|d|w|mo> such as '30d', or "
        "hourly/daily/weekly/monthly; got 'forever'",
        "UserWithKey 'carol': max_budget must be a number >= 0; got -5",
    ]
    assert "sk-component-token" not in message
    assert registered == []


def test_a_misspelt_component_input_gets_the_closest_name() -> None:
    with pytest.raises(TypeError) as caught:
        UserWithKeyArgs(url="http://proxy.test:4000", token="t", user_id="a", user_email="a@example.org",
                        max_budgt=5, user_modles=["gpt-4o"])
    assert str(caught.value) == ("UserWithKeyArgs: unknown input 'max_budgt'; did you mean 'max_budget'?; "
                                 "unknown input 'user_modles'; did you mean 'user_models'?")


# ------------------------------------------------------------------------------------- legacy roles
def test_the_legacy_role_warning_comes_once_per_run_naming_its_users(tmp_path: Path) -> None:
    users = [{"user_id": "ann", "user_email": "ann@example.org"},           # the module's default: app_user
             user("bob", user_role="admin"), user("cid"),                     # cid: a current role, no warning
             {"user_id": "dee", "user_email": "dee@example.org", "user_role": "app_owner"}]
    stack = Stack(tmp_path, {"litellm:url": URL, "litellm:token": "sk-legacy-token", "litellm:users": users})
    for _ in range(2):  # and again on the next run, once
        result = stack.preview()
        legacy = [m for m in result.messages if "legacy LiteLLM role" in m]
        assert len(legacy) == 1, result.messages
        assert "'ann' (app_user), 'bob' (admin), 'dee' (app_owner)" in legacy[0], legacy[0]
        assert "'cid'" not in legacy[0]
        assert "app_user -> internal_user_viewer" in legacy[0]


def test_a_legacy_admin_warns_at_preview_that_it_is_proxy_admin_naming_the_users(tmp_path: Path) -> None:
    users = [user("ann", user_role="admin"), user("bob", user_role="proxy_admin"), user("cid", user_role="admin",
                                                                                        name="cid-ops")]
    stack = Stack(tmp_path, {"litellm:url": URL, "litellm:token": "sk-legacy-token", "litellm:users": users})
    result = stack.preview()
    admin = [m for m in result.messages if "full administration of the proxy" in m]
    assert admin == [
        "warning: user_role 'admin' (the module's legacy name) is proxy_admin, full administration of the proxy (every "
        "user, key and team, and the proxy's settings), for 2 user(s): 'ann', 'cid-ops'; write user_role: "
        "proxy_admin if that is meant, else a lesser role"], result.messages


def test_the_dev_stack_sets_every_role_explicitly() -> None:
    users = yaml.safe_load((ROOT / "Pulumi.dev.yaml").read_text())["config"]["litellm:users"]
    assert [u.get("user_role") for u in users] == ["internal_user", "internal_user_viewer", "internal_user"]
