"""Adopting what already exists (`pulumi import` does not work for dynamic providers, pulumi/pulumi#16175):
with `adopt_existing=True`, creating a UserWithKey whose user (and key, by alias) already exists on the proxy
takes them over and reconciles them to the declared values; without it, that is an error saying how to
adopt, and nothing on the proxy changes. Both key modes, against the real proxy."""

from __future__ import annotations

from typing import Any

import pytest

from providers.client import LiteLLMClient, LiteLLMError, token_hash
from support import stack
from support.proxy_state import key_alive, keys_of, user_exists

MODES = pytest.mark.parametrize("auto", [False, True], ids=["generated-key", "auto-created-key"])


@pytest.fixture
def users(api: LiteLLMClient):
    """User ids to delete after the test, whatever happened (their keys go with them)."""
    made: list[str] = []
    yield made
    for user_id in made:
        try:
            api.user_delete(user_id)
        except LiteLLMError:
            pass


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


def assert_reconciled(api: LiteLLMClient, deployed: stack.Deployed) -> None:
    """The live user and its one key hold exactly the declared values."""
    u, k = deployed.user_inputs, deployed.key_inputs
    live = api.user_info(u["user_id"])["user_info"]
    assert (live["user_role"], live["models"], live["max_budget"], live["tpm_limit"], live["rpm_limit"],
            live["user_alias"]) == (u["user_role"], u["models"], u["max_budget"], u["tpm_limit"], u["rpm_limit"],
                                    u["user_alias"])
    assert [row["token"] for row in keys_of(api, u["user_id"])] == [deployed.key_id]
    assert [row["token"] for row in api.keys_with_alias(k["key_alias"])] == [deployed.key_id]
    info = api.key_info(deployed.key_id)["info"]
    assert (info["models"], info["max_budget"], info["metadata"], info["tpm_limit"], info["rpm_limit"],
            info["budget_duration"], info["max_parallel_requests"]) == (
        k["models"], k["max_budget"], k["metadata"], k["tpm_limit"], k["rpm_limit"], k["budget_duration"],
        k["max_parallel_requests"])


# ------------------------------------------------------------------------------------------ off
@MODES
def test_without_adopt_an_existing_user_is_an_error_that_says_how(auto, litellm, api, tap, unique, users) -> None:
    users.append(unique)
    existing_user(api, unique)
    before = snapshot(api, unique)
    tap.reset()

    with pytest.raises(LiteLLMError) as caught:
        stack.up(stack.declare(tap.url, litellm.master_key, unique, auto_create_key=auto))

    message = str(caught.value)
    assert message.startswith("create user failed (HTTP 409)") and repr(unique) in message
    assert "already exists" in message and "adopt_existing=True" in message
    assert litellm.master_key not in message
    assert snapshot(api, unique) == before, "the existing user or its key changed"
    assert [c.path for c in tap.calls if c.method == "POST"] == ["/user/new"], "something else was written"


def test_without_adopt_an_existing_key_alias_is_an_error_that_says_how(litellm, api, tap, unique, users) -> None:
    """The user is new, but a key of it (made between the user's and the key's create) holds the alias.
    (In auto-key mode the user's create mints the key with the alias itself, so this is generated-key only.)"""
    users.append(unique)
    args = stack.declare(tap.url, litellm.master_key, unique, key_alias=unique + "-key")
    deployed = stack.Deployed(*stack.wire(args))
    created = stack.USERS.create(deployed.user_inputs)
    deployed.user_id, deployed.user = created.id, created.outs
    foreign = api.key_generate({"user_id": unique, "key_alias": unique + "-key", "models": ["fake-gpt-4o-mini"]})

    with pytest.raises(LiteLLMError) as caught:
        stack.up(args, deployed)

    message = str(caught.value)
    assert message.startswith("generate key failed (HTTP 400)") and "adopt_existing=True" in message
    assert f"key_alias '{unique}-key' is already used" in message
    assert [row["token"] for row in keys_of(api, unique)] == [foreign["token"]]
    assert foreign["key"] not in message and litellm.master_key not in message


# ------------------------------------------------------------------------------------------- on
@MODES
def test_adopt_takes_over_the_user_and_its_key_and_reconciles_them(auto, litellm, api, tap, unique, users) -> None:
    users.append(unique)
    key_hash = existing_user(api, unique)
    args = stack.declare(tap.url, litellm.master_key, unique, auto_create_key=auto, adopt_existing=True)

    deployed = stack.up(args)

    assert deployed.user_id == unique and deployed.key_id == key_hash, "not the existing user and key"
    assert_reconciled(api, deployed)
    assert deployed.key["key"] is None, "an adopted key's raw value was never seen by the stack"
    assert deployed.user["user_response"]["adopted"] is True and deployed.key["key_response"]["adopted"] is True
    # From now on it is managed like any other: no drift on refresh, and destroy removes both.
    user_read = stack.USERS.read(unique, deployed.user)
    assert stack.USERS.diff(unique, user_read.outs, deployed.user_inputs).changes is False
    key_read = stack.KEYS.read(deployed.key_id, deployed.key)
    assert stack.KEYS.diff(deployed.key_id, key_read.outs, deployed.key_inputs).changes is False
    stack.down(deployed)
    assert not user_exists(api, unique) and not key_alive(api, key_hash)


def test_adopt_keeps_the_keys_spend(litellm, api, tap, unique, users) -> None:
    """An adopted key's spend is the proxy's accounting of real use: taking it over never resets it."""
    users.append(unique)
    key_hash = existing_user(api, unique)
    api.key_update(key_hash, {"spend": 3.25})

    deployed = stack.up(stack.declare(tap.url, litellm.master_key, unique, adopt_existing=True))

    assert deployed.key_id == key_hash and deployed.key_inputs["spend"] == 0
    assert api.key_info(key_hash)["info"]["spend"] == 3.25
    key_read = stack.KEYS.read(deployed.key_id, deployed.key)
    assert stack.KEYS.diff(deployed.key_id, key_read.outs, deployed.key_inputs).changes is False


@MODES
def test_adopt_a_user_without_the_key_mints_the_key(auto, litellm, api, tap, unique, users) -> None:
    users.append(unique)
    existing_user(api, unique, with_key=False)
    args = stack.declare(tap.url, litellm.master_key, unique, auto_create_key=auto, adopt_existing=True)

    deployed = stack.up(args)

    assert_reconciled(api, deployed)
    assert deployed.key["key"] and token_hash(deployed.key["key"]) == deployed.key_id


@MODES
def test_adopt_when_nothing_exists_is_a_plain_create(auto, litellm, api, tap, unique, users) -> None:
    users.append(unique)
    deployed = stack.up(stack.declare(tap.url, litellm.master_key, unique, auto_create_key=auto, adopt_existing=True))
    assert_reconciled(api, deployed)
    assert deployed.key["key"] and "adopted" not in deployed.user["user_response"]
    # One /user/update: the create's own, replacing its pending marker; no reconciliation.
    assert tap.count(path="/user/new") == 1 and tap.count(path="/user/update") == 1


def test_adopt_never_takes_another_users_key(litellm, api, unique, users) -> None:
    users.extend([unique, unique + "-other"])
    existing_user(api, unique, with_key=False)
    api.user_new({"user_id": unique + "-other", "user_email": f"{unique}-other@example.org", "auto_create_key": False})
    theirs = api.key_generate({"user_id": unique + "-other", "key_alias": unique})
    args = stack.declare(litellm.url, litellm.master_key, unique, adopt_existing=True)

    with pytest.raises(LiteLLMError, match=f"key_alias '{unique}' belongs to a key of another user"):
        stack.up(args)

    assert key_alive(api, theirs["token"]) and api.key_info(theirs["token"])["info"]["user_id"] == unique + "-other"
    assert keys_of(api, unique) == []


def test_adopt_never_takes_a_user_with_another_id(litellm, api, unique, users) -> None:
    """The email is taken by a user with another user_id: that is not the declared user."""
    users.append(unique + "-other")
    api.user_new({"user_id": unique + "-other", "user_email": f"{unique}@example.org", "auto_create_key": False})
    args = stack.declare(litellm.url, litellm.master_key, unique, adopt_existing=True)

    with pytest.raises(LiteLLMError, match="belongs to another user_id"):
        stack.up(args)

    assert not user_exists(api, unique)


def test_the_stack_program_accepts_adopt_existing_per_user() -> None:
    users = [{"user_id": "ann", "user_email": "ann@example.org", "adopt_existing": True}]
    assert stack.program_namespace()["validate_users"](users) == users
