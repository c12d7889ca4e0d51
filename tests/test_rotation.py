"""Key rotation, expiry and hand-over (issue 10), the way `pulumi preview / up / refresh / destroy` runs it:
the real plugin over gRPC (tests/harness), the real proxy behind a counting pass-through. A key works when
/chat/completions with the test proxy's `fake-mock` model answers 200 for it, and not when it answers 401.

Three shapes: a plain `Key` (a program declaring one Key per `litellm:keys` entry, its user made directly),
and the stack program (`__main__.py`: its `litellm:users` config, one `UserWithKey` each) with a generated
key and with the key /user/new auto-created. Durations are seconds (`WINDOW`), so the tests wait a few.
"""

from __future__ import annotations

import dataclasses
import time
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Iterator

import pulumi
import pytest
from pulumi.dynamic import ConfigureRequest
import requests

from harness import EngineError, Stack, strip_secrets
from providers import Key, KeyArgs
from providers.key import KeyProvider
from providers.client import LiteLLMClient, NotFound, token_hash
from providers.rotation import when
from support.generated_docs import assert_section_current
from support.passthrough import PassThrough
from support.stack import program_namespace
from support.proxy_state import key_alive, keys_of

ROOT = Path(__file__).resolve().parents[1]
SHAPES = ("key", "generated", "auto")
# How long a key stays "not yet due" or "in its grace" in the tests that check it is, then wait it out: long
# enough for the steps before the check on a loaded machine (the suite runs tests in parallel), so the check
# never races the clock. Measured: 3 s was too short at a load of 14.
WINDOW = 15
EACH_SHAPE = pytest.mark.parametrize("shape", SHAPES, ids=["plain-Key", "UserWithKey-generated", "UserWithKey-auto"])


def key_program() -> None:
    """One plain Key per `litellm:keys` entry, exporting `key` and `key_data` by user_id."""
    config = pulumi.Config("litellm")
    keys = {entry["user_id"]: Key(entry["user_id"], KeyArgs(url=config.require("url"), token=config.require_secret("token"), **entry))
            for entry in config.require_object("keys")}
    pulumi.export("key", {user_id: key.key for user_id, key in keys.items()})  # maps by user_id, as __main__.py
    pulumi.export("key_data", {user_id: key.key_data for user_id, key in keys.items()})


class Rotating:
    """One user's key in one shape, with the stack that manages it."""

    def __init__(self, stack: Stack, shape: str, uid: str, entry: dict[str, Any]) -> None:
        self.stack, self.shape, self.uid, self.entry = stack, shape, uid, entry
        self.alias = entry["key_alias"]

    def declare(self, **changes: Any) -> None:
        self.entry = {**self.entry, **changes}
        self.stack.config["litellm:keys" if self.shape == "key" else "litellm:users"] = [self.entry]

    @property
    def raw(self) -> str:
        return self.stack.outputs["key"][self.uid]

    @property
    def key_hash(self) -> str:
        return self.stack.resource("Key", self.uid).id

    def created_at(self) -> float:
        return when(self.stack.outputs["key_data"][self.uid]["info"]["created_at"]).timestamp()

    def expires(self) -> float:
        return when(self.stack.outputs["key_data"][self.uid]["info"]["expires"]).timestamp()


@pytest.fixture
def rotating(tmp_path: Path, litellm: Any, tap: PassThrough, api: LiteLLMClient, unique: str) -> Iterator[Callable[..., Rotating]]:
    made: list[Rotating] = []

    def make(shape: str, **rotation: Any) -> Rotating:
        uid = f"{unique}{shape[0]}"
        entry: dict[str, Any] = dict(user_id=uid, key_alias=f"{uid}-key", models=["fake-mock"], **rotation)
        if shape == "key":
            api.user_new({"user_id": uid, "user_email": f"{uid}@example.org", "auto_create_key": False})
        else:
            entry.update(user_email=f"{uid}@example.org", user_role="internal_user", user_models=["fake-mock"],
                         auto_create_key=shape == "auto")
        stack = Stack(tmp_path / "state", {"litellm:url": tap.url, "litellm:token": litellm.master_key},
                      program=key_program if shape == "key" else None)
        made.append(Rotating(stack, shape, uid, entry))
        made[-1].declare()
        return made[-1]

    yield make
    for one in made:
        try:
            one.stack.destroy()
        finally:
            try:
                api.user_delete(one.uid)
            except NotFound:
                pass


def works(url: str, raw: str) -> int:
    """The status /chat/completions answers for this key (200: it works; 401: it does not)."""
    answer = requests.post(f"{url}/chat/completions", headers={"Authorization": f"Bearer {raw}"},
                           json={"model": "fake-mock", "messages": [{"role": "user", "content": "hi"}]}, timeout=30)
    return answer.status_code


def wait_until(moment: float) -> None:
    time.sleep(max(0.0, moment - time.time()) + 0.5)


def calls(tap: PassThrough) -> Counter[str]:
    return Counter(f"{c.method} {c.path}" for c in tap.calls)


def holders(api: LiteLLMClient, alias: str) -> list[str]:
    return [row["token"] for row in api.keys_with_alias(alias)]


def user_op(one: Rotating, result: Any) -> str:
    return "none" if one.shape == "key" else result.ops()[f"User/{one.uid}"]


# ---------------------------------------------------------------------- age
@pytest.mark.long
@EACH_SHAPE
def test_a_key_older_than_rotate_after_is_replaced_and_the_old_one_stops_working(shape, rotating, tap, api, litellm):
    one = rotating(shape, rotate_after=f"{WINDOW}s")
    one.stack.up()
    old_raw, old_hash = one.raw, one.key_hash
    assert works(litellm.url, old_raw) == 200

    tap.reset()
    assert one.stack.preview().ops()[f"Key/{one.uid}"] == "same"  # right after up: not due yet
    assert tap.count() == 0

    wait_until(one.created_at() + WINDOW)
    preview = one.stack.preview()
    assert preview.ops()[f"Key/{one.uid}"] == "replace"
    assert preview.step("Key", one.uid).replaces == ["rotate_after"]
    assert tap.count() == 0  # decided from the state, with no call

    tap.reset()
    up = one.stack.up()
    assert up.ops()[f"Key/{one.uid}"] == "replace"
    assert user_op(one, up) in ("none", "same")  # a rotation never touches the user
    new_raw, new_hash = one.raw, one.key_hash
    assert new_hash != old_hash and token_hash(new_raw) == new_hash
    assert works(litellm.url, new_raw) == 200
    assert works(litellm.url, old_raw) == 401
    assert not key_alive(api, old_hash)
    assert holders(api, one.alias) == [new_hash]
    assert [row["token"] for row in keys_of(api, one.uid)] == [new_hash]
    # Rename, generate, the create protocol's marker update, read-back, the old key's delete (docs/lifecycle.md).
    assert calls(tap) == Counter({"POST /key/update": 2, "POST /key/generate": 1, "GET /key/info": 1,
                                  "POST /key/delete": 1})


# ------------------------------------------------------- trigger and grace
@pytest.mark.long
@EACH_SHAPE
def test_a_new_trigger_rotates_with_a_grace_and_nothing_is_left_after_the_next_rotation_and_destroy(
    shape, rotating, tap, api, litellm
):
    one = rotating(shape, rotation_trigger="first", rotation_grace=f"{WINDOW}s")
    one.stack.up()
    first_raw, first_hash = one.raw, one.key_hash

    tap.reset()  # an unchanged trigger: nothing to do, no call
    assert set(one.stack.preview().ops().values()) == {"same"}
    assert set(one.stack.up().ops().values()) == {"same"}
    assert tap.count() == 0

    one.declare(rotation_trigger="leaked")
    preview = one.stack.preview()
    assert preview.ops()[f"Key/{one.uid}"] == "replace"
    assert preview.step("Key", one.uid).replaces == ["rotation_trigger"]
    tap.reset()
    up = one.stack.up()
    rotated_at = time.time()
    assert user_op(one, up) in ("none", "same")
    second_raw, second_hash = one.raw, one.key_hash
    assert works(litellm.url, second_raw) == 200 and works(litellm.url, first_raw) == 200  # both during the grace
    assert holders(api, one.alias) == [second_hash]
    assert holders(api, f"{one.alias}.retired-{first_hash[:8]}") == [first_hash]
    assert one.stack.resource("Key", one.uid).outputs["retired_keys"] == [first_hash]
    # Rename, generate, marker update, read-back, and the grace on the old key; no delete.
    assert calls(tap) == Counter({"POST /key/update": 3, "POST /key/generate": 1, "GET /key/info": 1})

    wait_until(rotated_at + WINDOW)
    assert works(litellm.url, first_raw) == 401 and works(litellm.url, second_raw) == 200

    one.declare(rotation_trigger="routine")
    one.stack.up()
    third_hash = one.key_hash
    assert not key_alive(api, first_hash)  # the next rotation deleted the key the last one retired
    assert key_alive(api, second_hash) and works(litellm.url, one.raw) == 200
    assert sorted(row["token"] for row in keys_of(api, one.uid)) == sorted([second_hash, third_hash])

    one.stack.destroy()
    assert not key_alive(api, second_hash) and not key_alive(api, third_hash)


# ------------------------------------------------------------------ expiry
@EACH_SHAPE
def test_an_expired_key_is_reported_by_refresh_and_replaced_by_the_next_up(shape, rotating, tap, api, litellm):
    one = rotating(shape, duration="3s", rotation_grace="1h")
    one.stack.up()
    old_raw, old_hash = one.raw, one.key_hash
    wait_until(one.expires())
    assert works(litellm.url, old_raw) == 401

    refresh = one.stack.refresh()
    assert refresh.ops()[f"Key/{one.uid}"] == "update"
    assert refresh.step("Key", one.uid).replaces == ["expires"]

    one.declare(duration="30d")
    preview = one.stack.preview()
    assert preview.ops()[f"Key/{one.uid}"] == "replace"
    assert preview.step("Key", one.uid).replaces == ["expires"]
    one.stack.up()
    assert works(litellm.url, one.raw) == 200
    assert works(litellm.url, old_raw) == 401  # an expired key gets no grace: it is not brought back to life
    assert not key_alive(api, old_hash)
    assert holders(api, one.alias) == [one.key_hash]


def test_a_delete_without_the_rotations_note_asks_the_proxy_whether_the_key_is_in_its_grace(rotating, api, litellm):
    """The old key's Delete in another process than its rotation (the next `up` after a failed one): no note,
    so it reads the key. In its grace (retired alias, future `expires`): kept. Declared without a grace: deleted."""
    one = rotating("key", rotation_trigger="first", rotation_grace="1h")
    one.stack.up()
    old = one.stack.resource("Key", one.uid)
    old_id, old_props, old_raw = old.id, strip_secrets(old.outputs), one.raw
    one.declare(rotation_trigger="second")
    one.stack.up()
    assert key_alive(api, old_id)

    # As the engine starts the next operation's plugin: configured from the saved config (the token is there,
    # not in the outputs), in a process that never saw the rotation.
    provider = KeyProvider()
    provider.configure(ConfigureRequest({"litellm:url": one.stack.config["litellm:url"],
                                         "litellm:token": litellm.master_key}))
    try:
        provider.delete(old_id, old_props)
        assert key_alive(api, old_id) and works(litellm.url, old_raw) == 200
        provider.delete(one.key_hash, {**strip_secrets(one.stack.resource("Key", one.uid).outputs), "retired_keys": []})
        assert not key_alive(api, one.key_hash)  # a key holding its alias is no key in a grace
        provider.delete(old_id, {**old_props, "rotation_grace": None})
        assert not key_alive(api, old_id) and works(litellm.url, old_raw) == 401
    finally:
        provider.configure(ConfigureRequest({}))  # this process's module state, as it was


# ------------------------------------------------------------------ faults
# A failure at each step of a rotation (a plain Key, `rotation_trigger` changed), through the pass-through.
# Afterwards exactly one key holds the declared alias, the old key still works when the new one was not
# created, no unusable key is left behind, and the next `up` (faults cleared) converges. docs/faults.md shows
# this table (UPDATE_DOCS=1 rewrites it).
@dataclasses.dataclass(frozen=True)
class Cell:
    step: str
    method: str
    path: str
    skip: int  # matching calls let through first: the rotation's calls are rename, generate, marker, read-back, expire
    kind: str  # the pass-through's fault
    times: int
    grace: str | None
    up_succeeds: bool
    outcome: str


EVERY = 1000
FAULT_CELLS = {
    "rename": Cell("rename the old key", "POST", "/key/update", 0, "status", EVERY, None, False,
                   "the up fails; no new key; the old key keeps its alias and works; the next up rotates"),
    "rename_lost": Cell("rename the old key (answer lost once)", "POST", "/key/update", 0, "drop_after", 1, None, True,
                        "the rename is retried (it is idempotent) and the rotation completes; the old key is deleted"),
    "generate": Cell("generate the new key", "POST", "/key/generate", 0, "status", EVERY, None, False,
                     "the up fails; the old key gets its alias back and works; no new key; the next up rotates"),
    "generate_lost": Cell("generate the new key (answer lost once)", "POST", "/key/generate", 0, "drop_after", 1, None,
                          True, "the create protocol finds the new key by its hash and keeps it; the old key is deleted"),
    "read_back": Cell("read the new key back", "GET", "/key/info", 0, "status", EVERY, None, True,
                      "the up succeeds without `key_data`; the old key is deleted; the next refresh fills `key_data`"),
    "expire": Cell("give the old key its grace", "POST", "/key/update", 2, "status", EVERY, "1h", True,
                   "the up succeeds; the old key gets no grace and is deleted at the end of the up"),
    "delete": Cell("delete the old key (end of the up)", "POST", "/key/delete", 0, "status", EVERY, None, False,
                   "the up fails after the new key took over; the old key stays in state and the next up deletes it"),
}
BEGIN, END = "<!-- rotation faults: generated by tests/test_rotation.py -->", "<!-- end of rotation faults -->"


def rotation_faults_markdown() -> str:
    lines = [BEGIN, "", "| step of the rotation | fault | grace | outcome |", "|---|---|---|---|"]
    for cell in FAULT_CELLS.values():
        fault = "503 on every call" if cell.kind == "status" else "connection dropped after forwarding, once"
        lines.append(f"| {cell.step} (`{cell.method} {cell.path}`) | {fault} | {cell.grace or 'none'} | {cell.outcome} |")
    return "\n".join(lines + ["", END])


def test_the_rotation_fault_table_is_in_the_docs() -> None:
    assert_section_current(ROOT / "docs" / "faults.md", rotation_faults_markdown(), BEGIN, END, Path(__file__).name)


@pytest.fixture
def small_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    """A small back-off for the plugin (it inherits the environment), so a persistent fault fails fast: the
    cells inject 503s and dropped connections, which end an attempt at once, so the read timeout and budget
    stay long enough that a loaded machine's real answers (tests run in parallel) never time out."""
    for name, value in {"LITELLM_CONNECT_TIMEOUT": "1", "LITELLM_READ_TIMEOUT": "15", "LITELLM_RETRY_MAX_SECONDS": "15",
                        "LITELLM_RETRY_ATTEMPTS": "3", "LITELLM_RETRY_BACKOFF": "0.1"}.items():
        monkeypatch.setenv(name, value)


@pytest.mark.parametrize("cell", FAULT_CELLS, ids=str)
def test_a_fault_during_a_rotation_leaves_one_key_with_the_alias(cell, small_budget, rotating, tap, api, litellm):
    spec = FAULT_CELLS[cell]
    one = rotating("key", rotation_trigger="first", rotation_grace=spec.grace)
    one.stack.up()
    old_raw, old_hash = one.raw, one.key_hash
    one.declare(rotation_trigger="second")

    tap.reset()
    tap.inject(spec.kind, method=spec.method, path=spec.path, times=spec.times, skip=spec.skip)
    failure = None
    try:
        one.stack.up()
    except EngineError as err:
        failure = str(err)
    assert tap.wait_idle()
    assert (failure is None) == spec.up_succeeds, failure
    assert tap.count(method=spec.method, path=spec.path) >= spec.skip + 1  # the fault was met
    if failure:
        assert old_raw not in failure and litellm.master_key not in failure

    [holder] = holders(api, one.alias)  # exactly one key holds the declared alias
    new_created = holder != old_hash
    assert works(litellm.url, one.raw if new_created else old_raw) == 200
    if not new_created:
        assert [row["token"] for row in keys_of(api, one.uid)] == [old_hash]  # nothing half-made
    elif spec.up_succeeds:
        assert works(litellm.url, old_raw) == 401 and not key_alive(api, old_hash)  # no grace: gone
        assert [row["token"] for row in keys_of(api, one.uid)] == [holder]
    else:  # the delete failed: the old key still works and is still in state, to be deleted next time
        assert works(litellm.url, old_raw) == 200 and key_alive(api, old_hash)

    tap.reset()
    one.stack.up()
    if cell == "read_back":
        assert one.stack.resource("Key", one.uid).outputs.get("key_data") is None
        one.stack.refresh()
        assert one.stack.resource("Key", one.uid).outputs["key_data"]["info"]["key_alias"] == one.alias
    [holder] = holders(api, one.alias)
    assert holder == one.key_hash != old_hash and works(litellm.url, one.raw) == 200
    assert works(litellm.url, old_raw) == 401 and not key_alive(api, old_hash)
    assert [row["token"] for row in keys_of(api, one.uid)] == [one.key_hash]


# ------------------------------------------------------------------ config
def test_bad_rotation_inputs_in_the_stack_config_name_their_entry() -> None:
    validate = program_namespace()["validate_users"]
    entry = {"user_id": "ann", "user_email": "ann@example.org", "rotate_after": "90", "rotation_grace": "soon",
             "rotation_trigger": ""}
    with pytest.raises(ValueError) as refused:
        validate([entry])
    message = str(refused.value)
    for name, value in (("rotate_after", "'90'"), ("rotation_grace", "'soon'")):
        assert f"litellm:users[0] (user_id 'ann'): {name} must be a LiteLLM duration" in message
        assert f"got {value}" in message
    assert "litellm:users[0] (user_id 'ann'): rotation_trigger must be a non-blank string; got ''" in message
    assert validate([{**entry, "rotate_after": "90d", "rotation_grace": "1h", "rotation_trigger": "2026-12-01"}])
