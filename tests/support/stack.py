"""A UserWithKey driven through its two providers the way the engine drives them, without the engine.

`wire` runs the real component under Pulumi's mocks and returns what it registers for its User and Key
(so the wiring under test is the component's own, not a copy), after the providers' `check`. `up` then
creates the User and the Key in dependency order; `down` deletes them in reverse; `update` applies new
args to both. A `Deployed` holds the outputs the engine would keep in state.
"""

from __future__ import annotations

import dataclasses
import threading
from pathlib import Path
from typing import Any

import pulumi
from pulumi.runtime import rpc
from pulumi.runtime.sync_await import _sync_await

from components import UserWithKey, UserWithKeyArgs
from components.user_with_key import _auto_key
from providers.key import KEY_FIELDS, KeyProvider
from providers.user import USER_FIELDS, UserProvider

USERS, KEYS = UserProvider(), KeyProvider()
ROOT = Path(__file__).resolve().parents[2]
_MOCKS = threading.Lock()  # Pulumi's mock runtime is process-global


def declare(url: str, token: str, user_id: str, **overrides: Any) -> UserWithKeyArgs:
    """Module-style args for one user: real model names, a LiteLLM role, a key that is not the default."""
    values: dict[str, Any] = dict(user_email=f"{user_id}@example.org", user_role="internal_user",
                                  models=["fake-gpt-4o"], user_models=["fake-gpt-4o"], max_budget=5.0,
                                  metadata={"owner": user_id})
    values.update(overrides)
    return UserWithKeyArgs(url=url, token=token, user_id=user_id, **values)


class _Echo(pulumi.runtime.Mocks):
    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        outs = {name: rpc.unwrap_rpc_secret(value) for name, value in args.inputs.items()}
        if args.typ.endswith("litellm:User"):
            outs["user_response"] = {"key": "sk-placeholder-minted" if outs.get("auto_create_key") else ""}
        return str(outs.get("user_id") or args.name), outs

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict[str, Any]:
        return {}


def _registered(resource: pulumi.CustomResource, names: list[str]) -> dict[str, Any]:
    return {n: _sync_await(getattr(resource, n).future()) for n in names if isinstance(getattr(resource, n, None), pulumi.Output)}


def checked(provider: Any, raw: dict[str, Any], olds: dict[str, Any] | None = None) -> dict[str, Any]:
    result = provider.check(olds or {}, raw)
    assert result.failures == [], [(f.property, f.reason) for f in result.failures]
    return result.inputs


def wire(args: UserWithKeyArgs) -> tuple[dict[str, Any], dict[str, Any]]:
    """The checked inputs UserWithKey gives its User and its Key (the Key's existing_key is filled in by
    `up` from the real /user/new answer, as the component does)."""
    with _MOCKS:
        pulumi.runtime.set_mocks(_Echo(), preview=False)
        component = UserWithKey(str(args.user_id), args)
        user = _registered(component.user, [f.name for f in USER_FIELDS])
        key = _registered(component.key_resource, [f.name for f in KEY_FIELDS if f.name != "existing_key"])
    return checked(USERS, user), checked(KEYS, {**key, "existing_key": None})


@dataclasses.dataclass
class Deployed:
    """What the engine keeps in state for one UserWithKey."""

    user_inputs: dict[str, Any]
    key_inputs: dict[str, Any]
    user_id: str = ""
    user: dict[str, Any] = dataclasses.field(default_factory=dict)
    key_id: str = ""
    key: dict[str, Any] = dataclasses.field(default_factory=dict)


def up(args: UserWithKeyArgs, deployed: Deployed | None = None) -> Deployed:
    """`pulumi up` for a new UserWithKey, or for one whose earlier `up` failed part-way (`deployed` holds
    what that run got into state: the User, when only the Key failed)."""
    if deployed is None:
        deployed = Deployed(*wire(args))
    if not deployed.user_id:
        created = USERS.create(deployed.user_inputs)
        deployed.user_id, deployed.user = created.id, created.outs
    if not deployed.key_id:
        existing = _auto_key(deployed.user["user_response"]) if deployed.user_inputs["auto_create_key"] else None
        deployed.key_inputs = {**deployed.key_inputs, "existing_key": existing}
        created = KEYS.create(deployed.key_inputs)
        deployed.key_id, deployed.key = created.id, created.outs
    return deployed


def update(deployed: Deployed, args: UserWithKeyArgs) -> Deployed:
    """`pulumi up` after the args changed (no replacement: user_id is the same)."""
    user_inputs, key_inputs = wire(args)
    key_inputs["existing_key"] = deployed.key_inputs.get("existing_key")
    if USERS.diff(deployed.user_id, deployed.user, user_inputs).changes:
        deployed.user = USERS.update(deployed.user_id, deployed.user, user_inputs).outs
    deployed.user_inputs = user_inputs
    if KEYS.diff(deployed.key_id, deployed.key, key_inputs).changes:
        deployed.key = KEYS.update(deployed.key_id, deployed.key, key_inputs).outs
    deployed.key_inputs = key_inputs
    return deployed


def down(deployed: Deployed) -> None:
    """`pulumi destroy`: the Key first (it depends on the User), then the User."""
    if deployed.key_id:
        KEYS.delete(deployed.key_id, deployed.key)
        deployed.key_id = ""
    if deployed.user_id:
        USERS.delete(deployed.user_id, deployed.user)
        deployed.user_id = ""


def program_namespace() -> dict[str, Any]:
    """The stack program's (`__main__.py`) functions, without running it."""
    source = (ROOT / "__main__.py").read_text().replace("\nmain()\n", "\n")
    namespace: dict[str, Any] = {"__name__": "stack_program"}
    exec(compile(source, str(ROOT / "__main__.py"), "exec"), namespace)
    return namespace
