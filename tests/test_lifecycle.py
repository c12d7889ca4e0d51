"""The stack's whole life the way `pulumi preview / up / refresh / destroy` runs it: the program under the
SDK's runtime, the providers in the real dynamic-provider plugin process over gRPC (tests/harness), the
real LiteLLM proxy behind a counting pass-through. Every scenario checks what is really on the proxy.

Scenarios (issue 3): 1 preview of a new stack; 2 up from empty, both auto-key modes; 3 no-op preview and
up; 4 each kind of change: preview, then up; 5 out-of-band edit and delete, refresh, up; 6 token rotation
then destroy with the new token; 7 destroy, twice; 8 the provider modules import in a fresh plugin
process with no stack config and no network. Also: a user removed from the config, a failed up, and the
figures of docs/lifecycle.md.
"""

from __future__ import annotations

import base64
import pickletools
import re
import shutil
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Iterator

import pulumi
import pytest

from components import UserWithKey, UserWithKeyArgs
from harness import UNKNOWN, EngineError, Plugin, PluginError, Stack, clean_env, is_secret, strip_secrets
from providers.client import LiteLLMClient, NotFound, token_hash
from support.passthrough import PassThrough
from support.proxy_state import key_alive, keys_of, user_exists

ROOT = Path(__file__).resolve().parents[1]

OUTPUTS = ("user_response", "user_data", "key", "key_data", "key_response")
SECRET_OUTPUTS = {"user_response", "key", "key_response"}
PROVIDER_LIMIT = 200  # bytes of `__provider` per resource (issue 3)


# ------------------------------------------------------------------ helpers
def spec(user_id: str, auto: bool = False, **overrides: Any) -> dict[str, Any]:
    """One entry of `litellm:users`: every module input set to something that is not its default."""
    values: dict[str, Any] = dict(
        user_id=user_id, user_email=f"{user_id}@example.org", auto_create_key=auto, key_alias=f"{user_id}-key",
        user_alias=f"{user_id} alias", user_role="internal_user", user_models=["fake-gpt-4o", "fake-gpt-4o-mini"],
        user_max_budget=20, max_budget=5, models=["fake-gpt-4o"], budget_duration="30d", duration="365d",
        metadata={"team": "research"}, max_parallel_requests=7, tpm_limit=1234, rpm_limit=56, spend=0,
    )
    values.update(overrides)
    return values


def calls(tap: PassThrough) -> Counter[str]:
    return Counter(f"{c.method} {c.path}" for c in tap.calls)


def writes(tap: PassThrough) -> int:
    return tap.count(writes=True)


def expected_user(s: dict[str, Any]) -> dict[str, Any]:
    role = {"app_user": "internal_user_viewer"}.get(s.get("user_role", "app_user"), s.get("user_role", "app_user"))
    budget = s["user_max_budget"] if s.get("user_max_budget", 0) > 0 else (s.get("max_budget") or None)
    return dict(user_email=s["user_email"], user_alias=s.get("user_alias") or s["user_id"], user_role=role,
                models=s["user_models"], max_budget=budget, tpm_limit=s["tpm_limit"], rpm_limit=s["rpm_limit"])


MARK = {"pulumi_managed_by": "litellm-access/test"}  # the owner mark of what the stack (harness: test) creates


def expected_key(s: dict[str, Any]) -> dict[str, Any]:
    return dict(user_id=s["user_id"], key_alias=s.get("key_alias") or s["user_id"], models=s["models"],
                max_budget=s.get("max_budget") or None, budget_duration=s["budget_duration"],
                metadata={**(s.get("metadata") or {}), **MARK}, max_parallel_requests=s["max_parallel_requests"],
                tpm_limit=s["tpm_limit"], rpm_limit=s["rpm_limit"], spend=float(s.get("spend", 0)))


def assert_on_proxy(api: LiteLLMClient, stack: Stack, s: dict[str, Any], name: str | None = None) -> dict[str, Any]:
    """The user and its one key exist on the proxy with every declared value; returns the key row."""
    name = name or s["user_id"]
    user = api.user_info(s["user_id"])["user_info"]
    assert {k: user[k] for k in expected_user(s)} == expected_user(s)
    key_hash = stack.resource("Key", name).id
    key = api.key_info(key_hash)["info"]
    assert key.get("status") != "deleted"
    assert {k: key[k] for k in expected_key(s)} == expected_key(s)
    assert [row["token"] for row in keys_of(api, s["user_id"])] == [key_hash]  # one key, no orphan
    return key


def days_until_expiry(key_row: dict[str, Any]) -> float:
    expires = datetime.fromisoformat(key_row["expires"].replace("Z", "+00:00"))
    created = datetime.fromisoformat(key_row["created_at"].replace("Z", "+00:00"))
    return (expires - created).total_seconds() / 86400


def provider_string(stack_result: Any, type_name: str) -> str:
    return next(r.inputs["__provider"] for r in stack_result.registrations if r.type.endswith(f":{type_name}"))


def named_program() -> None:
    """A test program using UserWithKey: one component per `litellm:users` entry, named by position, so a
    changed user_id keeps the URN (in __main__.py the name is the user_id, so it would be a new resource)."""
    config = pulumi.Config("litellm")
    for index, user in enumerate(config.require_object("users")):
        managed = UserWithKey(f"svc{index}", UserWithKeyArgs(url=config.require("url"),
                                                             token=config.require_secret("token"), **user))
        for name in OUTPUTS:
            pulumi.export(f"svc{index}_{name}", getattr(managed, name))


# ----------------------------------------------------------------- fixtures
@pytest.fixture
def stacks(tmp_path: Path, litellm: Any, tap: PassThrough, api: LiteLLMClient) -> Iterator[Callable[..., Stack]]:
    """Stacks pointed at the proxy through the pass-through; whatever a test leaves is destroyed after it,
    and its users deleted directly if that fails."""
    made: list[tuple[Stack, list[str]]] = []

    def make(users: list[dict[str, Any]], *, token: str | None = None, program: Any = None, name: str = "test") -> Stack:
        stack = Stack(tmp_path / "state", {"litellm:url": tap.url, "litellm:token": token or litellm.master_key,
                                           "litellm:users": users}, program=program, name=name)
        made.append((stack, [u["user_id"] for u in users]))
        return stack

    yield make
    for stack, user_ids in made:
        stack.config["litellm:token"] = litellm.master_key
        try:
            stack.destroy()
        except Exception:  # noqa: BLE001 - fall back to the API below
            pass
        for user_id in {*user_ids, *(u["user_id"] for u in stack.config.get("litellm:users", []))}:
            try:
                api.user_delete(user_id)
            except NotFound:
                pass


# ------------------------------------------------------- 1. preview, new stack
def test_preview_of_a_new_stack_calls_check_and_diff_only_and_nothing_on_the_proxy(stacks, tap, unique):
    a, b = spec(f"{unique}a"), spec(f"{unique}b", auto=True, user_role="app_user")
    stack = stacks([a, b])

    result = stack.preview()

    assert tap.calls == []  # zero calls to the proxy
    # What pulumi 3.274 sends: nothing to diff against yet, and no provider in the state for DiffConfig.
    assert result.methods() == {"Handshake", "GetPluginInfo", "CheckConfig", "Configure", "Check", "Cancel"}
    assert result.ops() == {"Ledger/ledger": "create", **{f"{t}/{u}": "create" for u in (a["user_id"], b["user_id"])
                                                          for t in ("UserWithKey", "User", "Key")}}
    assert not stack.state_file.exists()
    # The auto-created key is not known at preview: the Key was checked with an unknown existing_key.
    key_b = next(r for r in result.registrations if r.type.endswith(":Key") and r.name == b["user_id"])
    assert is_secret(key_b.inputs["existing_key"]) and strip_secrets(key_b.inputs["existing_key"]) == UNKNOWN
    # The legacy role was mapped with a warning, at preview.
    assert any("app_user" in m and "internal_user_viewer" in m for m in result.messages)


# ----------------------------------------------------- 2. up from empty, both modes
def test_up_from_empty_creates_users_and_keys_as_declared_with_the_five_outputs_and_no_plain_secret(
    stacks, tap, api, litellm, unique
):
    a, b = spec(f"{unique}a"), spec(f"{unique}b", auto=True, user_role="app_user", user_max_budget=0, max_budget=3, metadata={})
    stack = stacks([a, b])

    result = stack.up()

    assert set(result.ops().values()) == {"create"} and len(result.ops()) == 7  # and the ledger
    # 6 calls per UserWithKey in each mode (docs/lifecycle.md): each create replaces its pending marker
    # (/user/update, /key/update), and the auto-created key's alias is checked first (/key/list).
    assert calls(tap) == Counter({"POST /user/new": 2, "POST /user/update": 2, "GET /user/info": 2,
                                  "POST /key/generate": 1, "POST /key/update": 2, "GET /key/info": 2,
                                  "GET /key/list": 1})
    for s in (a, b):
        uid = s["user_id"]
        key_row = assert_on_proxy(api, stack, s)
        assert round(days_until_expiry(key_row)) == 365
        out = {name: stack.outputs[name][uid] for name in OUTPUTS}  # one export per output, by user_id
        assert {n for n in OUTPUTS if n in stack.secret_outputs} == SECRET_OUTPUTS
        assert out["user_response"]["user_id"] == uid
        assert out["user_data"]["user_info"]["user_email"] == s["user_email"]
        assert out["key"].startswith("sk-") and token_hash(out["key"]) == stack.resource("Key", uid).id
        assert out["key_data"]["info"]["key_alias"] == s["key_alias"]
        assert out["key_data"]["info"]["user_id"] == uid
        assert out["key_response"]["key_alias"] == s["key_alias"]
        if s["auto_create_key"]:
            assert out["user_response"]["key"] == out["key"]  # the minted key was adopted, not a second one
        else:
            assert out["user_response"]["key"] == ""
        # The raw key is stored once per resource, in `key`; key_response names the key by its hash.
        assert "key" not in out["key_response"] and out["key_response"]["token"] == token_hash(out["key"])

    # The component registers no outputs of its own (its five attributes would be a third copy in the state).
    for s in (a, b):
        assert stack.resource("UserWithKey", s["user_id"]).outputs == {}

    # No raw key or token in plain text anywhere in the state, though both are in it (as secrets).
    raw_keys = [stack.outputs["key"][s['user_id']] for s in (a, b)]
    assert stack.plaintext_secrets(extra=[litellm.master_key, *raw_keys]) == []
    state_text = stack.state_file.read_text()
    assert all(raw not in state_text for raw in [litellm.master_key, *raw_keys])
    for s in (a, b):
        user, key = stack.resource("User", s["user_id"]), stack.resource("Key", s["user_id"])
        # The admin token is the configured one: the provider config saved with the state holds it, and
        # neither the inputs nor the outputs of a resource.
        assert all("token" not in props for props in (user.inputs, user.outputs, key.inputs, key.outputs))
        assert is_secret(user.outputs["user_response"]) and "existing_key" not in key.outputs
        assert all(is_secret(key.outputs[n]) for n in ("key", "key_response"))
        assert not is_secret(key.outputs["key_data"]) and not is_secret(user.outputs["user_data"])
    assert is_secret(stack.resource("Key", b["user_id"]).inputs["existing_key"])


# -------------------------------------------------- 3. no-op preview and no-op up
def test_noop_preview_and_noop_up_make_no_call_that_changes_anything(stacks, tap, api, unique):
    a, b = spec(f"{unique}a"), spec(f"{unique}b", auto=True, metadata={})
    stack = stacks([a, b])
    stack.up()
    assert tap.count() > 0  # the pass-through is in the path
    before = {r.urn: r.outputs for r in stack.resources()}

    tap.reset()
    preview = stack.preview()
    assert set(preview.ops().values()) == {"same"}
    assert preview.methods() == {"Handshake", "GetPluginInfo", "CheckConfig", "DiffConfig", "Configure", "Check",
                                 "Diff", "Cancel"}
    assert tap.count() == 0

    tap.reset()
    up = stack.up()
    assert set(up.ops().values()) == {"same"}
    assert up.methods() == {"Handshake", "GetPluginInfo", "CheckConfig", "DiffConfig", "Configure", "Check",
                            "Diff", "Cancel"}  # no Create/Update/Delete/Read
    assert tap.count() == 0 and writes(tap) == 0  # not a single call, so none that changes anything
    assert {r.urn: r.outputs for r in stack.resources()} == before
    for s in (a, b):
        assert_on_proxy(api, stack, s)



def test_refresh_with_nothing_changed_on_the_proxy_reports_nothing_changed(stacks, tap, unique):
    """A refresh right after up changes nothing but the user's own record of its new key, and a second
    refresh changes nothing at all: the responses in state survive the plugin's round trip unchanged."""
    stack = stacks([spec(f"{unique}a"), spec(f"{unique}b", auto=True)])
    stack.up()
    tap.reset()

    first = stack.refresh()
    changed = {step.key: step.changed for step in first.steps if step.key in first.ops() and step.op != "same"}
    # Only the users' own record of the key created after them; every key and every response is as it was.
    assert all(key.startswith("User/") and names == ["user_data"] for key, names in changed.items()), changed
    assert set(stack.refresh().ops().values()) == {"same"}
    assert tap.count(writes=True) == 0

# ------------------------------------------------ 4. each kind of change, then up
CHANGES = {
    # kind of input: (change, expected op of User and Key, names in the User's and Key's diffs)
    "user fields": (dict(user_email="{u}-new@example.org", user_alias="renamed", user_role="internal_user_viewer",
                         user_models=["fake-gpt-4o-mini"], user_max_budget=30),
                    ("update", "same"), {"user_email", "user_alias", "user_role", "models", "max_budget"}, set()),
    "key fields": (dict(models=["fake-gpt-4o-mini"], max_budget=6, budget_duration="7d", duration="30d",
                        metadata={"team": "ops"}, max_parallel_requests=8, spend=1.5, key_alias="{u}-key2"),
                   ("same", "update"), set(),
                   {"models", "max_budget", "budget_duration", "duration", "metadata", "max_parallel_requests",
                    "spend", "key_alias"}),
    "limits on both": (dict(tpm_limit=4321, rpm_limit=65), ("update", "update"), {"tpm_limit", "rpm_limit"},
                       {"tpm_limit", "rpm_limit"}),
    "creation-time only": (dict(auto_create_key=True), ("same", "same"), None, None),
}


def test_each_kind_of_change_previews_as_update_or_replace_then_up_applies_it(stacks, tap, api, litellm, unique):
    uid = unique
    base = spec(uid)
    stack = stacks([base], program=named_program)
    stack.up()

    for kind, (change, (user_op, key_op), user_names, key_names) in CHANGES.items():
        stack.config["litellm:users"] = [{**base, **{k: v.format(u=uid) if isinstance(v, str) else v
                                                     for k, v in change.items()}}]
        tap.reset()
        preview = stack.preview()
        assert tap.count() == 0, kind
        assert preview.ops() == {"UserWithKey/svc0": "same", "User/svc0": user_op, "Key/svc0": key_op}, kind
        # The names in each diff: what changed; for the Key of an auto_create_key user, while its User is
        # being updated, also existing_key, which depends on the User's outputs and so is unknown at
        # preview (not a change: the Key's diff ignores it). Without auto_create_key it is plainly None.
        if user_op != "same":
            assert set(preview.step("User", "svc0").changed) == user_names, kind
        if key_op != "same":
            unknown = {"existing_key"} if user_op == "update" and base.get("auto_create_key") else set()
            assert set(preview.step("Key", "svc0").changed) == key_names | unknown, kind
        assert preview.step("User", "svc0").replaces == [] and preview.step("Key", "svc0").replaces == [], kind

    # Token: nothing to do (scenario 6 applies one). Neither the inputs nor the outputs hold the configured
    # token (the provider config does), so a new one changes no resource.
    stack.config["litellm:users"] = [base]
    stack.config["litellm:token"] = "sk-another-admin-token-0000"
    preview = stack.preview()
    assert preview.ops() == {"UserWithKey/svc0": "same", "User/svc0": "same", "Key/svc0": "same"}
    assert preview.step("User", "svc0").changed == []
    assert preview.step("Key", "svc0").changed == []  # the User is `same`: existing_key stays known
    stack.config["litellm:token"] = litellm.master_key

    # user_id: the only replacement, of the user and (its user_id changes) of the key.
    stack.config["litellm:users"] = [{**base, "user_id": f"{uid}r", "user_email": f"{uid}r@example.org"}]
    preview = stack.preview()
    assert preview.ops() == {"UserWithKey/svc0": "same", "User/svc0": "replace", "Key/svc0": "replace"}
    assert preview.step("User", "svc0").replaces == ["user_id"] == preview.step("Key", "svc0").replaces
    assert tap.count() == 0

    # Apply every update-kind change at once: only what changed is sent, and the proxy shows it.
    changed = {**base}
    for kind in ("user fields", "key fields", "limits on both"):
        changed.update({k: v.format(u=uid) if isinstance(v, str) else v for k, v in CHANGES[kind][0].items()})
    stack.config["litellm:users"] = [changed]
    expiry_before = days_until_expiry(api.key_info(stack.resource("Key", "svc0").id)["info"])
    tap.reset()
    up = stack.up()
    assert up.ops() == {"UserWithKey/svc0": "same", "User/svc0": "update", "Key/svc0": "update"}
    assert calls(tap) == Counter({"GET /user/info": 2, "POST /user/update": 1, "POST /key/update": 1,
                                  "GET /key/info": 1})
    key_row = assert_on_proxy(api, stack, changed, name="svc0")
    assert round(expiry_before) == 365 and days_until_expiry(key_row) < 31  # duration re-sent: 30d from now
    assert stack.outputs["svc0_key_data"]["info"]["key_alias"] == f"{uid}-key2"

    # Then the replacement: the old user and key are deleted first (the alias is reused), then created.
    old_hash = stack.resource("Key", "svc0").id
    replaced = {**changed, "user_id": f"{uid}r", "user_email": f"{uid}r@example.org"}
    stack.config["litellm:users"] = [replaced]
    tap.reset()
    up = stack.up()
    assert up.ops() == {"UserWithKey/svc0": "same", "User/svc0": "replace", "Key/svc0": "replace"}
    assert calls(tap) == Counter({"POST /key/delete": 1, "POST /user/delete": 1, "POST /user/new": 1,
                                  "POST /user/update": 1, "GET /user/info": 1, "POST /key/generate": 1,
                                  "POST /key/update": 1, "GET /key/info": 1})
    assert not user_exists(api, uid) and not key_alive(api, old_hash)
    assert_on_proxy(api, stack, replaced, name="svc0")


# ------------------------------------------- 5. out-of-band edit and delete, refresh, up
def test_out_of_band_edits_and_deletes_are_found_by_refresh_and_undone_by_up(stacks, tap, api, unique):
    users = [spec(f"{unique}a"), spec(f"{unique}b", auto=True, metadata={})]
    stack = stacks(users)
    stack.up()

    # Edit both users and keys behind the stack's back.
    for s in users:
        api.user_update({"user_id": s["user_id"], "max_budget": 999.0, "user_alias": "edited"})
        api.key_update(stack.resource("Key", s["user_id"]).id, {"max_budget": 999.0, "models": ["fake-mock"],
                                                                 "metadata": {"edited": True}})
    tap.reset()
    refresh = stack.refresh()
    # No program runs: no CheckConfig/DiffConfig; the engine diffs after Read.
    assert refresh.methods() == {"Handshake", "GetPluginInfo", "Configure", "Read", "Diff", "Cancel"}
    assert calls(tap) == Counter({"GET /user/info": 2, "GET /key/info": 2})  # 2 per UserWithKey
    for s in users:
        uid = s["user_id"]
        assert {"max_budget", "user_alias"} <= set(refresh.step("User", uid).changed)
        assert {"max_budget", "models", "metadata"} <= set(refresh.step("Key", uid).changed)
        assert strip_secrets(stack.resource("Key", uid).outputs["max_budget"]) == 999.0
    up = stack.up()
    assert {op for key, op in up.ops().items() if key.startswith(("User/", "Key/"))} == {"update"}
    for s in users:
        assert_on_proxy(api, stack, s)

    # Delete the keys behind the stack's back: refresh drops them from the state, up makes new ones.
    old_hashes = {s["user_id"]: stack.resource("Key", s["user_id"]).id for s in users}
    for key_hash in old_hashes.values():
        api.key_delete(key_hash)
    refresh = stack.refresh()
    assert {refresh.step("Key", uid).op for uid in old_hashes} == {"delete"}
    assert not [r for r in stack.resources() if r.type.endswith(":Key")]
    up = stack.up()
    assert {up.step("Key", uid).op for uid in old_hashes} == {"create"}
    assert {up.step("User", uid).op for uid in old_hashes} == {"same"}
    for s in users:
        assert stack.resource("Key", s["user_id"]).id != old_hashes[s["user_id"]]
        assert_on_proxy(api, stack, s)

    # Delete the users (LiteLLM deletes their keys too): refresh drops both, up recreates both.
    for s in users:
        api.user_delete(s["user_id"])
    refresh = stack.refresh()
    gone = [s.op for s in refresh.steps if not s.type.endswith(":Ledger")]  # the ledger reads nothing: same
    assert set(gone) == {"delete"} and len(gone) == 4
    up = stack.up()
    assert {op for key, op in up.ops().items() if key.startswith(("User/", "Key/"))} == {"create"}
    for s in users:
        assert_on_proxy(api, stack, s)
    assert stack.preview().ops() == {key: "same" for key in up.ops()}  # and the state agrees with the program


# ------------------------------------------------------------ 6. token rotation
@pytest.fixture
def admin_keys(api: LiteLLMClient, unique: str) -> Iterator[list[str]]:
    """Three admin keys (keys of a proxy_admin user), as a team rotating its token would have."""
    admin = f"{unique}adm"
    api.user_new({"user_id": admin, "user_email": f"{admin}@example.org", "user_role": "proxy_admin",
                  "auto_create_key": False})
    try:
        yield [api.key_generate({"user_id": admin, "key_alias": f"{admin}-{i}"})["key"] for i in range(3)]
    finally:
        api.user_delete(admin)


def test_token_rotation_in_the_documented_order_set_up_then_revoke(stacks, tap, api, admin_keys, unique):
    """README, "Applying changes": set the new token, `pulumi up`, then revoke the old one. refresh and
    destroy run no program: the engine configures the plugin with the config saved at the last up."""
    token_a, token_b, _ = admin_keys
    users = [spec(f"{unique}a"), spec(f"{unique}b", auto=True, metadata={})]
    stack = stacks(users, token=token_a)
    stack.up()

    # Rotate to B and apply: nothing changes but the inputs and the saved provider config; no proxy call.
    stack.config["litellm:token"] = token_b
    tap.reset()
    up = stack.up()
    assert set(up.ops().values()) == {"same"}  # the ledger included
    assert tap.count() == 0
    # No resource holds the token (the configured one): the provider config saved with the state does.
    assert [r.urn for r in stack.resources() if r.custom and ("token" in r.inputs or "token" in r.outputs)] == []
    api.key_delete(token_hash(token_a))  # A is revoked, after the up
    refresh = stack.refresh()
    assert {s.op for s in refresh.steps} == {"same"} and len(refresh.steps) == 5  # and the ledger
    assert all(c.status == 200 for c in tap.calls)

    tap.reset()
    destroy = stack.destroy()
    assert {s.op for s in destroy.steps} == {"delete"}
    assert calls(tap) == Counter({"POST /key/delete": 2, "POST /user/delete": 2})
    assert all(c.status == 200 for c in tap.calls)
    for s in users:
        assert not user_exists(api, s["user_id"]) and keys_of(api, s["user_id"]) == []
    assert stack.resources() == []
    assert stack.plaintext_secrets(extra=admin_keys) == []


def test_a_token_revoked_before_the_up_fails_refresh_and_destroy_until_run_program(
    stacks, tap, api, admin_keys, unique
):
    """The wrong order: the new token is set but not applied by an up, and the old one is revoked. The
    engine configures refresh and destroy from the state (the revoked token), so both fail with 401 and
    change nothing; `--run-program` configures the plugin from the current config, and works."""
    token_a, token_b, _ = admin_keys
    users = [spec(f"{unique}a")]
    stack = stacks(users, token=token_a)
    stack.up()
    stack.config["litellm:token"] = token_b
    api.key_delete(token_hash(token_a))

    with pytest.raises(PluginError, match="HTTP 401"):
        stack.refresh()
    with pytest.raises((PluginError, EngineError), match="HTTP 401"):
        stack.destroy()
    assert user_exists(api, users[0]["user_id"])  # nothing was lost, nothing deleted
    assert [r.type.split(":")[-1] for r in stack.resources() if r.custom] == ["Ledger", "User", "Key"]

    stack.refresh(run_program=True)
    stack.destroy(run_program=True)
    assert not user_exists(api, users[0]["user_id"]) and keys_of(api, users[0]["user_id"]) == []
    assert stack.resources() == []


def test_a_user_removed_from_the_config_is_deleted_by_up_and_only_that_user(stacks, tap, api, unique):
    keep, drop = spec(f"{unique}a"), spec(f"{unique}b", auto=True, metadata={})
    stack = stacks([keep, drop])
    stack.up()
    dropped_key = stack.resource("Key", drop["user_id"]).id
    stack.config["litellm:users"] = [keep]

    tap.reset()
    preview = stack.preview()
    assert tap.count() == 0 and "Delete" not in preview.methods()
    assert preview.ops() == {"Ledger/ledger": "update",
                             **{f"{t}/{keep['user_id']}": "same" for t in ("UserWithKey", "User", "Key")},
                             **{f"{t}/{drop['user_id']}": "delete" for t in ("UserWithKey", "User", "Key")}}
    up = stack.up()
    assert up.ops() == preview.ops()
    assert calls(tap) == Counter({"POST /key/delete": 1, "POST /user/delete": 1})
    assert not user_exists(api, drop["user_id"]) and not key_alive(api, dropped_key)
    assert_on_proxy(api, stack, keep)
    assert {r.name for r in stack.resources() if r.custom} == {"ledger", keep["user_id"]}
    assert not any(name.startswith(drop["user_id"]) for name in stack.outputs)


# ------------------------------------------------------------------ 7. destroy
def test_destroy_leaves_nothing_on_the_proxy_and_destroying_twice_is_safe(stacks, tap, api, tmp_path, unique):
    users = [spec(f"{unique}a"), spec(f"{unique}b", auto=True, metadata={})]
    stack = stacks(users)
    stack.up()
    hashes = [stack.resource("Key", s["user_id"]).id for s in users]
    saved = tmp_path / "before-destroy.json"
    shutil.copy(stack.state_file, saved)

    deployed = stack.resources()
    tap.reset()
    destroy = stack.destroy()
    # Everything goes, each resource after all that depend on it or are its children (Key, User,
    # UserWithKey, then the stack).
    position = {step.urn: i for i, step in enumerate(destroy.steps)}
    assert set(position) == {r.urn for r in deployed} and {s.op for s in destroy.steps} == {"delete"}
    for resource in deployed:
        assert all(position[resource.urn] < position[dep] for dep in resource.depends_on()), resource.urn
    assert calls(tap) == Counter({"POST /key/delete": 2, "POST /user/delete": 2})  # 2 per UserWithKey
    assert stack.resources() == [] and stack.outputs == {}
    for s, key_hash in zip(users, hashes):
        assert not user_exists(api, s["user_id"])
        assert not key_alive(api, key_hash)
        assert keys_of(api, s["user_id"]) == []
        assert api.keys_with_alias(s["key_alias"]) == []

    # Destroy again: nothing left to do.
    tap.reset()
    again = stack.destroy()
    assert again.steps == [] and tap.count() == 0
    # Destroy from the state as it was (a destroy interrupted after its calls): every Delete is sent
    # again, to objects that are gone, and succeeds.
    shutil.copy(saved, stack.state_file)
    tap.reset()
    replay = stack.destroy()
    assert [m for m, _ in replay.rpcs].count("Delete") == 5  # and the ledger's, which calls no proxy
    assert calls(tap) == Counter({"POST /key/delete": 2, "POST /user/delete": 2})
    assert stack.resources() == []


# ------------------------------------------ 8. import in a fresh plugin, no config, no network
NO_NETWORK = '''
import socket
def _refuse(*args, **kwargs):
    raise OSError("network disabled for this test")
socket.socket.connect = _refuse
socket.socket.connect_ex = _refuse
socket.create_connection = _refuse
socket.getaddrinfo = _refuse
'''


def test_provider_modules_import_in_a_fresh_plugin_with_no_stack_config_and_no_network(tmp_path, unique):
    # The program's real registrations, from a preview (no proxy is needed, none is reachable).
    stack = Stack(tmp_path / "state", {"litellm:url": "http://127.0.0.1:9", "litellm:token": "sk-unused-000000",
                                       "litellm:users": [spec(unique)]})
    result = stack.preview()
    user_reg = next(r for r in result.registrations if r.type.endswith(":User"))
    key_reg = next(r for r in result.registrations if r.type.endswith(":Key"))

    for reg, module, cls in ((user_reg, "providers.user", "UserProvider"), (key_reg, "providers.key", "KeyProvider")):
        provider = reg.inputs["__provider"]
        assert not is_secret(provider) and len(provider) <= PROVIDER_LIMIT  # plain and small
        pickled = base64.b64decode(provider)
        # Pickled by reference (module + class name): no code, no instance state travels.
        strings = [arg for op, arg, _ in pickletools.genops(pickled) if isinstance(arg, str)]
        assert strings == [module, cls]

    guard = tmp_path / "guard"
    guard.mkdir()
    (guard / "sitecustomize.py").write_text(NO_NETWORK)
    with Plugin(stack.project_dir, env=clean_env({"PYTHONPATH": str(guard), "LITELLM_RETRY_ATTEMPTS": "0"})) as plugin:
        plugin.get_plugin_info()
        plugin.configure({}, set())  # no stack config at all
        checked_inputs: dict[str, dict[str, Any]] = {}
        for reg in (user_reg, key_reg):
            known = {k: v for k, v in strip_secrets(reg.inputs).items() if v != UNKNOWN}
            checked, failures = plugin.check(reg.urn, reg.type, reg.name, {}, known)
            assert failures == [] and checked["__provider"] == reg.inputs["__provider"]
            assert checked["url"] == "http://127.0.0.1:9"
            diff = plugin.diff(reg.urn, reg.type, reg.name, "some-id", checked, checked, checked)
            assert diff.changes is False and diff.replaces == []
            checked_inputs[reg.urn] = checked
        # The guard is real: the first call that needs the network fails inside the plugin.
        with pytest.raises(PluginError, match="create user"):
            plugin.create(user_reg.urn, user_reg.type, user_reg.name, checked_inputs[user_reg.urn])


# ------------------------------------------------------------ figures (docs/lifecycle.md)
@pytest.mark.parametrize("auto", [False, True], ids=["generated-key", "auto-created-key"])
def test_calls_per_step_for_one_user_with_key(stacks, tap, unique, auto):
    """The figures in docs/lifecycle.md, read from the doc: proxy calls per step for one UserWithKey, and
    `__provider` sizes."""
    figures, documented_sizes = documented_figures(auto)
    stack = stacks([spec(unique, auto=auto)])
    measured: dict[str, int] = {}
    for step in ("preview", "up", "noop_preview", "noop_up", "refresh", "destroy"):
        tap.reset()
        result = getattr(stack, step.removeprefix("noop_"))()
        measured[step] = tap.count()
        if step == "preview":
            sizes = {t: len(provider_string(result, t)) for t in ("User", "Key")}
    assert measured == figures
    assert sizes == documented_sizes and max(sizes.values()) <= PROVIDER_LIMIT


FIGURE_ROWS = {"preview of a new stack": "preview", "up (create)": "up", "no-op preview": "noop_preview",
               "no-op up": "noop_up", "refresh": "refresh", "destroy": "destroy"}


def documented_figures(auto: bool) -> tuple[dict[str, int], dict[str, int]]:
    """The bold figures of docs/lifecycle.md's tables: calls per step (the generated-key or the
    auto-created-key column) and `__provider` bytes per resource."""
    calls_per_step: dict[str, int] = {}
    sizes: dict[str, int] = {}
    for line in (ROOT / "docs" / "lifecycle.md").read_text().splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if cells[0] in FIGURE_ROWS and len(cells) >= 3:
            calls_per_step[FIGURE_ROWS[cells[0]]] = int(re.match(r"\*\*(\d+)\*\*", cells[2 if auto else 1]).group(1))
        size = re.fullmatch(r"`pulumi-python:dynamic/litellm:(\w+)`", cells[0])
        if size and len(cells) >= 2:
            sizes[size.group(1)] = int(re.match(r"\*\*(\d+) bytes\*\*", cells[1]).group(1))
    assert set(calls_per_step) == set(FIGURE_ROWS.values()) and set(sizes) == {"User", "Key"}, "doc tables moved"
    return calls_per_step, sizes


def test_a_failed_up_keeps_what_was_done_and_the_next_up_finishes(stacks, tap, api, unique):
    """The engine keeps the steps of a failed update: a Key whose create fails leaves its User in the
    state (not orphaned on the proxy), and the next up creates only the Key."""
    s = spec(unique)
    stack = stacks([s])
    tap.inject("status", method="POST", path="/key/generate", status=422, times=1)
    with pytest.raises(EngineError, match="generate key"):
        stack.up()
    assert [r.type.split(":")[-1] for r in stack.resources() if r.custom] == ["Ledger", "User"]
    assert user_exists(api, unique)
    tap.clear_faults()
    up = stack.up()
    assert up.ops()[f"User/{unique}"] == "same" and up.ops()[f"Key/{unique}"] == "create"
    assert_on_proxy(api, stack, s)
