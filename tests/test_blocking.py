"""The kill switch (`blocked`, issue 19) through the stack program and the real plugin (tests/harness),
against the real proxy behind a counting pass-through. A key works when /chat/completions with the test
proxy's `fake-mock` model answers 200 for it; a blocked key answers 401 saying it is blocked.

A blocked key is refused at once. A blocked team's keys are refused only once the proxy's cache of the team
expires (measured on LiteLLM 1.108.7: tens of seconds), so that test polls up to a bounded deadline and
reports how long it took.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
import requests

from harness import Stack
from providers.client import LiteLLMClient, NotFound, token_hash
from providers.rotation import when
from support.passthrough import PassThrough
from support.proxy_state import destroy_or_delete, key_alive

TEAM_CACHE_DEADLINE = 180.0  # seconds; measured 20-65 s on 1.108.7, so this leaves room for a loaded machine
POLL = 3.0


def chat(url: str, raw_key: str) -> tuple[int, str]:
    """Status and error message of one completion with `fake-mock` (answered by the proxy itself)."""
    answer = requests.post(f"{url}/chat/completions", headers={"Authorization": f"Bearer {raw_key}"},
                           json={"model": "fake-mock", "messages": [{"role": "user", "content": "hi"}]}, timeout=30)
    message = "" if answer.status_code == 200 else str((answer.json().get("error") or {}).get("message"))
    return answer.status_code, message


def blocked_answer(url: str, raw_key: str) -> bool:
    status, message = chat(url, raw_key)
    return status == 401 and "blocked" in message.lower()


def poll(check: Callable[[], bool], deadline: float) -> float | None:
    """Seconds until `check` holds, polled every POLL s; None when it did not by `deadline` seconds."""
    start = time.monotonic()
    while time.monotonic() - start < deadline:
        if check():
            return time.monotonic() - start
        time.sleep(POLL)
    return None


def calls(tap: PassThrough) -> Counter[str]:
    return Counter(f"{c.method} {c.path}" for c in tap.calls)


def user_spec(user_id: str, **overrides: Any) -> dict[str, Any]:
    return {"user_id": user_id, "user_email": f"{user_id}@example.org", "user_role": "internal_user",
            "models": ["fake-mock"], "user_models": ["fake-mock"], "max_budget": 5, **overrides}


def live_blocked(api: LiteLLMClient, key_hash: str) -> Any:
    return api.key_info(key_hash)["info"]["blocked"]


@pytest.fixture
def stacks(tmp_path: Path, litellm: Any, tap: PassThrough, api: LiteLLMClient) -> Iterator[Callable[..., Stack]]:
    """Stacks of the stack program through the pass-through, destroyed after the test (their users and
    teams deleted directly if that fails)."""
    made: list[Stack] = []

    def make(users: list[dict[str, Any]], teams: list[dict[str, Any]] | None = None) -> Stack:
        stack = Stack(tmp_path / f"state{len(made)}", {"litellm:url": tap.url, "litellm:token": litellm.master_key,
                                                        "litellm:teams": teams or [], "litellm:users": users})
        made.append(stack)
        return stack

    yield make
    destroy_or_delete(made, api)


def declare(stack: Stack, user: dict[str, Any]) -> None:
    stack.config["litellm:users"] = [user]


# ------------------------------------------------------------------ a key: at once, the same key back
@pytest.mark.parametrize("auto", [False, True], ids=["generated", "auto-created"])
def test_a_blocked_key_is_refused_at_once_and_unblocking_restores_the_same_key(auto, stacks, tap, api, litellm, unique):
    user = user_spec(unique, auto_create_key=auto)
    stack = stacks([user])
    stack.up()
    raw, key_hash = stack.outputs["key"][unique], stack.resource("Key", unique).id
    assert chat(litellm.url, raw) == (200, "")

    declare(stack, {**user, "blocked": True})
    tap.reset()
    preview = stack.preview()
    assert preview.ops()[f"Key/{unique}"] == "update" and preview.step("Key", unique).changed == ["blocked"]
    assert tap.count() == 0
    up = stack.up()
    assert up.ops() == {"Ledger/ledger": "same", f"UserWithKey/{unique}": "same", f"User/{unique}": "same",
                        f"Key/{unique}": "update"}
    assert calls(tap) == Counter({"POST /key/block": 1, "GET /key/info": 1})  # the switch, the read-back
    assert blocked_answer(litellm.url, raw)  # at once: no wait
    assert live_blocked(api, key_hash) is True
    assert stack.resource("Key", unique).outputs["key_data"]["info"]["blocked"] is True

    tap.reset()
    assert set(stack.up().ops().values()) == {"same"} and tap.count() == 0  # blocked as declared: a no-op

    declare(stack, {**user, "blocked": False})
    tap.reset()
    stack.up()
    assert calls(tap) == Counter({"POST /key/unblock": 1, "GET /key/info": 1})
    assert (stack.outputs["key"][unique], stack.resource("Key", unique).id) == (raw, key_hash)  # the same key
    assert chat(litellm.url, raw) == (200, "")
    assert live_blocked(api, key_hash) is False


@pytest.mark.parametrize("auto", [False, True], ids=["generated", "auto-created"])
def test_a_key_declared_blocked_from_the_start_never_works(auto, stacks, tap, api, litellm, unique):
    stack = stacks([user_spec(unique, auto_create_key=auto, blocked=True)])
    stack.up()
    raw, key_hash = stack.outputs["key"][unique], stack.resource("Key", unique).id
    assert blocked_answer(litellm.url, raw) and live_blocked(api, key_hash) is True
    if auto:  # /user/new minted it unblocked: the Key blocks it when it takes it over
        assert tap.count(path="/key/block") == 1
    else:  # generated blocked: no moment unblocked, no extra call
        assert tap.count(path="/key/block") == 0
        assert [body["blocked"] for body in tap.bodies(path="/key/generate")] == [True]
    tap.reset()
    assert set(stack.preview().ops().values()) == {"same"} and tap.count() == 0


def test_a_block_or_unblock_made_out_of_band_is_drift_and_up_restores_the_declared_state(stacks, tap, api, litellm,
                                                                                        unique):
    user = user_spec(unique)
    stack = stacks([user])
    stack.up()
    raw, key_hash = stack.outputs["key"][unique], stack.resource("Key", unique).id

    api.key_blocked(key_hash, True)  # someone blocks it by hand
    refresh = stack.refresh()
    assert refresh.ops()[f"Key/{unique}"] == "update" and refresh.step("Key", unique).changed == ["blocked", "key_data"]
    assert stack.preview().ops()[f"Key/{unique}"] == "update"  # the provider's Diff: live blocked, declared not
    tap.reset()
    stack.up()
    assert calls(tap)["POST /key/unblock"] == 1
    assert chat(litellm.url, raw) == (200, "") and live_blocked(api, key_hash) is False

    declare(stack, {**user, "blocked": True})
    stack.up()
    api.key_blocked(key_hash, False)  # someone unblocks it by hand
    assert chat(litellm.url, raw) == (200, "")
    refresh = stack.refresh()
    assert refresh.ops()[f"Key/{unique}"] == "update" and "blocked" in refresh.step("Key", unique).changed
    assert stack.preview().ops()[f"Key/{unique}"] == "update"
    stack.up()
    assert blocked_answer(litellm.url, raw) and live_blocked(api, key_hash) is True


# ------------------------------------------------------------------ rotation and expiry keep it blocked
def test_a_rotation_of_a_blocked_key_yields_a_blocked_key(stacks, tap, api, litellm, unique):
    user = user_spec(unique, blocked=True, rotation_trigger="first")
    stack = stacks([user])
    stack.up()
    old_hash = stack.resource("Key", unique).id

    declare(stack, {**user, "rotation_trigger": "leaked"})
    assert stack.preview().ops()[f"Key/{unique}"] == "replace"
    tap.reset()
    stack.up()
    new_raw, new_hash = stack.outputs["key"][unique], stack.resource("Key", unique).id
    assert new_hash != old_hash and token_hash(new_raw) == new_hash
    assert [body.get("blocked") for body in tap.bodies(path="/key/generate")] == [True]  # generated blocked
    assert blocked_answer(litellm.url, new_raw) and live_blocked(api, new_hash) is True
    assert not key_alive(api, old_hash)


def test_blocking_also_stops_the_old_key_a_rotation_keeps_for_a_grace(stacks, tap, api, litellm, unique):
    """An offboarded user's old key in its rotation grace must stop too; unblocking restores both."""
    user = user_spec(unique, rotation_trigger="first", rotation_grace="1h")
    stack = stacks([user])
    stack.up()
    old_raw, old_hash = stack.outputs["key"][unique], stack.resource("Key", unique).id
    declare(stack, {**user, "rotation_trigger": "second"})
    stack.up()
    new_raw = stack.outputs["key"][unique]
    assert stack.resource("Key", unique).outputs["retired_keys"] == [old_hash]
    assert chat(litellm.url, old_raw) == (200, "") == chat(litellm.url, new_raw)  # both in the grace

    declare(stack, {**user, "rotation_trigger": "second", "blocked": True})
    tap.reset()
    stack.up()
    assert calls(tap) == Counter({"POST /key/block": 2, "GET /key/info": 1})
    assert blocked_answer(litellm.url, new_raw) and blocked_answer(litellm.url, old_raw)

    declare(stack, {**user, "rotation_trigger": "second", "blocked": False})
    stack.up()
    assert chat(litellm.url, old_raw) == (200, "") == chat(litellm.url, new_raw)


def test_an_expired_blocked_key_is_not_recreated_unblocked(stacks, api, litellm, unique):
    user = user_spec(unique, blocked=True, duration="3s")
    stack = stacks([user])
    stack.up()
    old_raw, old_hash = stack.outputs["key"][unique], stack.resource("Key", unique).id
    expires = when(stack.outputs["key_data"][unique]["info"]["expires"]).timestamp()
    time.sleep(max(0.0, expires - time.time()) + 0.5)

    declare(stack, {**user, "duration": "30d"})
    preview = stack.preview()
    assert preview.ops()[f"Key/{unique}"] == "replace" and preview.step("Key", unique).replaces == ["expires"]
    stack.up()
    new_raw, new_hash = stack.outputs["key"][unique], stack.resource("Key", unique).id
    assert new_hash != old_hash
    assert blocked_answer(litellm.url, new_raw) and live_blocked(api, new_hash) is True
    assert chat(litellm.url, old_raw)[0] == 401 and not key_alive(api, old_hash)


# ------------------------------------------------------------------ a team: once the proxy's cache expires
@pytest.mark.long  # waits about a minute for the proxy's cache
def test_a_blocked_teams_keys_are_refused_once_the_proxy_cache_expires_and_work_again_after_unblock(
        stacks, tap, api, litellm, unique):
    team = {"team_id": f"{unique}red", "models": ["fake-mock"], "max_budget": 10}
    user = user_spec(f"{unique}a", teams=[team["team_id"]], team_id=team["team_id"])
    stack = stacks([user], [team])
    stack.up()
    raw = stack.outputs["key"][user['user_id']]
    assert chat(litellm.url, raw) == (200, "")

    stack.config["litellm:teams"] = [{**team, "blocked": True}]
    preview = stack.preview()
    assert preview.ops()[f"Team/{team['team_id']}"] == "update"
    assert preview.step("Team", team["team_id"]).changed == ["blocked"]
    tap.reset()
    stack.up()
    blocked_at = time.monotonic()
    assert calls(tap) == Counter({"POST /team/block": 1, "GET /team/info": 1})
    assert api.team_info(team["team_id"])["team_info"]["blocked"] is True
    took = poll(lambda: chat(litellm.url, raw)[0] == 401, TEAM_CACHE_DEADLINE - (time.monotonic() - blocked_at))
    assert took is not None, f"the blocked team's key still answered after {TEAM_CACHE_DEADLINE:g} s"
    status, message = chat(litellm.url, raw)
    assert status == 401 and f"Team={team['team_id']} is blocked" in message, message
    print(f"team block took effect after {took:.0f} s")

    stack.config["litellm:teams"] = [team]
    tap.reset()
    stack.up()
    assert calls(tap) == Counter({"POST /team/unblock": 1, "GET /team/info": 1})
    took = poll(lambda: chat(litellm.url, raw)[0] == 200, TEAM_CACHE_DEADLINE)
    assert took is not None, f"the unblocked team's key still refused after {TEAM_CACHE_DEADLINE:g} s"
    print(f"team unblock took effect after {took:.0f} s")
    assert stack.outputs["key"][user['user_id']] == raw  # the same key


def test_a_team_blocked_out_of_band_is_drift_and_a_team_declared_blocked_is_created_blocked(stacks, tap, api, unique):
    red, blue = {"team_id": f"{unique}red"}, {"team_id": f"{unique}blue", "blocked": True}
    stack = stacks([], [red, blue])
    stack.up()
    assert [body.get("blocked") for body in tap.bodies(path="/team/new")].count(True) == 1  # blue, in /team/new
    assert tap.count(path="/team/block") == 0
    assert api.team_info(blue["team_id"])["team_info"]["blocked"] is True

    api.team_blocked(red["team_id"], True)
    api.team_blocked(blue["team_id"], False)
    refresh = stack.refresh()
    assert {refresh.ops()[f"Team/{t['team_id']}"] for t in (red, blue)} == {"update"}
    assert "blocked" in refresh.step("Team", red["team_id"]).changed
    tap.reset()
    stack.up()
    assert calls(tap)["POST /team/unblock"] == 1 and calls(tap)["POST /team/block"] == 1
    assert api.team_info(red["team_id"])["team_info"]["blocked"] is False
    assert api.team_info(blue["team_id"])["team_info"]["blocked"] is True


def test_blocking_a_key_that_is_gone_says_to_refresh(stacks, api, unique):
    user = user_spec(unique)
    stack = stacks([user])
    stack.up()
    api.key_delete(stack.resource("Key", unique).id)
    declare(stack, {**user, "blocked": True})
    with pytest.raises(Exception, match=r"no longer exists on the proxy \(deleted outside Pulumi\); run `pulumi refresh`"):
        stack.up()
    with pytest.raises(NotFound):
        api.key_blocked(stack.resource("Key", unique).id, True)
