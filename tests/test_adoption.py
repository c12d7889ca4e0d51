"""Adopting what already exists (`pulumi import` does not work for dynamic providers, pulumi/pulumi#16175):
with `adopt_existing=True`, creating a UserWithKey whose user (and key, by alias) already exists on the proxy
takes them over and reconciles them to the declared values; without it, that is an error saying how to
adopt, and nothing on the proxy changes. Both key modes, against the real proxy, through the stack program
and the real plugin; expected values are the declaration's, written here."""

from __future__ import annotations

from typing import Any

import pytest

from harness import EngineError, PluginError, Stack, clean_env
from providers.client import LiteLLMClient, token_hash
from support.proxy_state import key_alive, keys_of, user_exists

MODES = pytest.mark.parametrize("auto", [False, True], ids=["generated-key", "auto-created-key"])


def existing_user(api: LiteLLMClient, user_id: str, with_key: bool = True) -> str | None:
    """A user (and a key with alias = user_id) made outside the stack, with values that differ from the
    declaration. Returns the key's hash."""
    api.user_new({"user_id": user_id, "user_email": f"{user_id}@example.org", "user_role": "internal_user_viewer",
                  "models": ["fake-gpt-4o-mini"], "max_budget": 1.0, "tpm_limit": 10, "rpm_limit": 1,
                  "auto_create_key": False})
    if not with_key:
        return None
    made = api.key_generate({"user_id": user_id, "key_alias": user_id, "models": ["fake-gpt-4o-mini"],
                             "max_budget": 1.0, "metadata": {"made": "by hand"}, "tpm_limit": 10, "rpm_limit": 1})
    return made["token"]


def snapshot(api: LiteLLMClient, user_id: str) -> tuple[Any, ...]:
    info = api.user_info(user_id)
    user = info["user_info"]
    keys = sorted((k["token"], k.get("key_alias"), tuple(k.get("models") or []), k.get("max_budget"))
                  for k in info.get("keys") or [])
    return (user["user_role"], user["models"], user["max_budget"], user["tpm_limit"], user["rpm_limit"], keys)


def declared(uid: str, auto: bool = False, **overrides: Any) -> dict[str, Any]:
    """The user as the stack config declares it."""
    return {"user_id": uid, "user_email": f"{uid}@example.org", "user_role": "internal_user", "auto_create_key": auto,
            "models": ["fake-gpt-4o"], "user_models": ["fake-gpt-4o"], "max_budget": 5, "metadata": {"owner": uid},
            **overrides}


def stack_for(tmp_path, url: str, token: str, *users: dict[str, Any]) -> Stack:
    """The stack program with these users, through the real plugin (the engine's environment)."""
    return Stack(tmp_path, {"litellm:url": url, "litellm:token": token, "litellm:users": list(users)},
                 plugin_env=clean_env())


def failure(err: BaseException) -> str:
    return str(getattr(err, "details", "")) + str(err)


def assert_reconciled(api: LiteLLMClient, uid: str, key_hash: str) -> None:
    """The live user and its one key hold exactly what `declared` says (with the module's defaults)."""
    live = api.user_info(uid)["user_info"]
    assert {n: live[n] for n in ("user_role", "models", "max_budget", "tpm_limit", "rpm_limit", "user_alias")} == {
        "user_role": "internal_user", "models": ["fake-gpt-4o"], "max_budget": 5.0, "tpm_limit": 100000,
        "rpm_limit": 1000, "user_alias": uid}
    assert [row["token"] for row in keys_of(api, uid)] == [key_hash]
    assert [row["token"] for row in api.keys_with_alias(uid)] == [key_hash]
    info = api.key_info(key_hash)["info"]
    assert {n: info[n] for n in ("models", "max_budget", "metadata", "tpm_limit", "rpm_limit", "budget_duration",
                                 "max_parallel_requests")} == {
        "models": ["fake-gpt-4o"], "max_budget": 5.0,
        "metadata": {"owner": uid, "pulumi_managed_by": "litellm-access/test"},  # the stack now manages it
        "tpm_limit": 100000,
        "rpm_limit": 1000, "budget_duration": "30d", "max_parallel_requests": 100}


# ------------------------------------------------------------------------------------------ off
@MODES
def test_without_adopt_an_existing_user_is_an_error_that_says_how(auto, tmp_path, litellm, api, tap, unique,
                                                                  users) -> None:
    users.append(unique)
    existing_user(api, unique)
    before = snapshot(api, unique)
    tap.reset()

    with pytest.raises((EngineError, PluginError)) as caught:
        stack_for(tmp_path, tap.url, litellm.master_key, declared(unique, auto)).up()

    message = failure(caught.value)
    assert "create user failed (HTTP 409)" in message and repr(unique) in message
    assert "already exists" in message and "adopt_existing=True" in message
    assert litellm.master_key not in message
    assert snapshot(api, unique) == before, "the existing user or its key changed"
    assert [c.path for c in tap.calls if c.method == "POST"] == ["/user/new"], "something else was written"


def test_without_adopt_an_existing_key_alias_is_an_error_that_says_how(tmp_path, litellm, api, tap, unique,
                                                                       users) -> None:
    """The user is new, but a key of it (made between the user's and the key's create) holds the alias.
    (In auto-key mode the user's create mints the key with the alias itself, so this is generated-key only.)"""
    users.append(unique)
    state = stack_for(tmp_path, tap.url, litellm.master_key, declared(unique, key_alias=unique + "-key"))
    tap.inject("status", method="POST", path="/key/generate", status=422)  # the first up stops after the User
    with pytest.raises((EngineError, PluginError)):
        state.up()
    foreign = api.key_generate({"user_id": unique, "key_alias": unique + "-key", "models": ["fake-gpt-4o-mini"]})

    with pytest.raises((EngineError, PluginError)) as caught:
        state.up()

    message = failure(caught.value)
    assert "generate key failed (HTTP 400)" in message and "adopt_existing=True" in message
    assert f"key_alias '{unique}-key' is already used" in message
    assert [row["token"] for row in keys_of(api, unique)] == [foreign["token"]]
    assert foreign["key"] not in message and litellm.master_key not in message


# ------------------------------------------------------------------------------------------- on
@MODES
def test_adopt_takes_over_the_user_and_its_key_and_reconciles_them(auto, tmp_path, litellm, api, tap, unique,
                                                                   users) -> None:
    users.append(unique)
    key_hash = existing_user(api, unique)
    state = stack_for(tmp_path, tap.url, litellm.master_key, declared(unique, auto, adopt_existing=True))

    state.up()

    assert (state.resource("User", unique).id, state.resource("Key", unique).id) == (unique, key_hash)
    assert_reconciled(api, unique, key_hash)
    assert not state.outputs["key"][unique], "an adopted key's raw value was never seen by the stack"
    assert state.outputs["user_response"][unique]["adopted"] is True
    assert state.outputs["key_response"][unique]["adopted"] is True
    # From now on it is managed like any other: no drift on refresh, a no-op up, and destroy removes both.
    refresh = state.refresh()
    assert [n for s in refresh.steps for n in s.changed if n not in ("user_data", "key_data")] == []
    assert set(state.up().ops().values()) == {"same"}
    state.destroy()
    assert not user_exists(api, unique) and not key_alive(api, key_hash)


def test_adopt_keeps_the_keys_spend(tmp_path, litellm, api, tap, unique, users) -> None:
    """An adopted key's spend is the proxy's accounting of real use: taking it over never resets it."""
    users.append(unique)
    key_hash = existing_user(api, unique)
    api.key_update(key_hash, {"spend": 3.25})
    state = stack_for(tmp_path, tap.url, litellm.master_key, declared(unique, adopt_existing=True))

    state.up()

    assert state.resource("Key", unique).id == key_hash
    assert api.key_info(key_hash)["info"]["spend"] == 3.25
    state.refresh()
    assert set(state.up().ops().values()) == {"same"} and api.key_info(key_hash)["info"]["spend"] == 3.25


@MODES
def test_adopt_a_user_without_the_key_mints_the_key(auto, tmp_path, litellm, api, tap, unique, users) -> None:
    users.append(unique)
    existing_user(api, unique, with_key=False)
    state = stack_for(tmp_path, tap.url, litellm.master_key, declared(unique, auto, adopt_existing=True))

    state.up()

    raw = state.outputs["key"][unique]
    assert raw and state.resource("Key", unique).id == token_hash(raw)
    assert_reconciled(api, unique, token_hash(raw))


@MODES
def test_adopt_when_nothing_exists_is_a_plain_create(auto, tmp_path, litellm, api, tap, unique, users) -> None:
    users.append(unique)
    state = stack_for(tmp_path, tap.url, litellm.master_key, declared(unique, auto, adopt_existing=True))
    state.up()
    raw = state.outputs["key"][unique]
    assert_reconciled(api, unique, token_hash(raw))
    assert "adopted" not in state.outputs["user_response"][unique]
    # One /user/update: the create's own, replacing its pending marker; no reconciliation.
    assert tap.count(path="/user/new") == 1 and tap.count(path="/user/update") == 1


def test_adopt_never_takes_another_users_key(tmp_path, litellm, api, unique, users) -> None:
    users.extend([unique, unique + "-other"])
    existing_user(api, unique, with_key=False)
    api.user_new({"user_id": unique + "-other", "user_email": f"{unique}-other@example.org", "auto_create_key": False})
    theirs = api.key_generate({"user_id": unique + "-other", "key_alias": unique})

    with pytest.raises((EngineError, PluginError)) as caught:
        stack_for(tmp_path, litellm.url, litellm.master_key, declared(unique, adopt_existing=True)).up()
    assert f"key_alias '{unique}' belongs to a key of another user" in failure(caught.value)

    assert key_alive(api, theirs["token"]) and api.key_info(theirs["token"])["info"]["user_id"] == unique + "-other"
    assert keys_of(api, unique) == []


def test_adopt_never_takes_a_user_with_another_id(tmp_path, litellm, api, unique, users) -> None:
    """The email is taken by a user with another user_id: that is not the declared user."""
    users.append(unique + "-other")
    api.user_new({"user_id": unique + "-other", "user_email": f"{unique}@example.org", "auto_create_key": False})
    with pytest.raises((EngineError, PluginError)) as caught:
        stack_for(tmp_path, litellm.url, litellm.master_key, declared(unique, adopt_existing=True)).up()
    assert "belongs to another user_id" in failure(caught.value)

    assert not user_exists(api, unique)


def test_the_stack_program_passes_adopt_existing_per_user(tmp_path) -> None:
    """Through the stack program and the real plugin's Check (a preview: the proxy is never called)."""
    users = [{"user_id": "ann", "user_email": "ann@example.org", "adopt_existing": True},
             {"user_id": "bob", "user_email": "bob@example.org"}]
    preview = Stack(tmp_path, {"litellm:url": "http://127.0.0.1:9", "litellm:token": "sk-unused",
                               "litellm:users": users}, plugin_env=clean_env()).preview()
    adopt = {(r.type.split(":")[-1], r.name): r.inputs["adopt_existing"] for r in preview.registrations
             if r.type.startswith("pulumi-python:dynamic") and not r.type.endswith(":Ledger")}
    assert adopt == {("User", "ann"): True, ("Key", "ann"): True, ("User", "bob"): False, ("Key", "bob"): False}
