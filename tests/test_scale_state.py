"""Issue 18, sections 3 and 4, against the real proxy through the engine harness:
- an existing stack upgrades with an ordinary `up`: no replace, no create, no key changed, no proxy call;
- the state stores each value once (small per user);
- a refresh reads users and keys from one paged listing, a team's memberships from one /team/info, and
  still reports drift exactly; paging over more than 3 pages finds every row once.
"""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import sys
import tarfile
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from harness import Stack
from providers.client import PAGE_SIZE, LiteLLMClient
from support.passthrough import PassThrough
from support.proxy_state import key_alive

ROOT = Path(__file__).resolve().parents[1]
# main as it was before the state was trimmed: the version whose stacks must upgrade in place.
BEFORE = "27e4a92e99b71f5b0a5fc777ce41c2a8f81e6a38"
# main as it was before the owner mark (providers/owner.py): its objects must stay as they are.
BEFORE_MARK = "a09d9b674c81272521de18ffb01e4ae991ae1fda"
# main before the answers were stored beside their reads and the configured token left out of the inputs
# (the same commit).
TRIMMED = BEFORE_MARK


def calls(tap: PassThrough) -> Counter[str]:
    return Counter(f"{c.method} {c.path}" for c in tap.calls)


def users_for(prefix: str, n: int, **extra: Any) -> list[dict[str, Any]]:
    return [{"user_id": f"{prefix}-{i:03d}@example.edu", "name": f"{prefix}-{i:03d}",
             "user_email": f"{prefix}-{i:03d}@example.edu", "user_role": "internal_user",
             "auto_create_key": i % 2 == 0, "models": ["fake-gpt-4o"], "user_models": ["fake-gpt-4o"],
             "max_budget": 5.0, "metadata": {"cohort": "2026"}, **extra} for i in range(n)]


def holds(new: Any, old: Any) -> bool:
    """True when `new` has every value `old` has (maps may have gained fields)."""
    if isinstance(old, dict):
        return isinstance(new, dict) and all(name in new and holds(new[name], value) for name, value in old.items())
    return new == old


def old_checkout(target: Path, commit: str = BEFORE) -> Path:
    """The project's files at `commit` (git archive), sharing this checkout's .venv."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", commit], check=True,
                             capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(target)
    return target


def up_with_old_code(old: Path, state_dir: Path, config: dict[str, Any]) -> None:
    """`pulumi up` by the old version: its program and its plugin (cwd = its tree), in a process of its own."""
    script = ("import json, sys; from pathlib import Path; sys.path[:0] = [sys.argv[1], sys.argv[1] + '/tests'];"
              "from harness import Stack;"
              "Stack(Path(sys.argv[2]), json.loads(sys.stdin.read()), project_dir=Path(sys.argv[1])).up()")
    subprocess.run([sys.executable, "-c", script, str(old), str(state_dir)], input=json.dumps(config), text=True,
                   check=True, cwd=old, capture_output=True, timeout=600)


def stack_written_by(commit: str, tmp_path: Path, url: str, token: str, cleanup: dict[str, list[str]],
                     team: dict[str, Any], users: list[dict[str, Any]]) -> Stack:
    """The state of `users` and `team` brought up by the project at `commit` (its program and plugin), opened
    by today's harness; the objects are deleted after the test."""
    cleanup["users"] += [u["user_id"] for u in users]
    cleanup["teams"].append(team["team_id"])
    config = {"litellm:url": url, "litellm:token": token, "litellm:users": users, "litellm:teams": [team]}
    up_with_old_code(old_checkout(tmp_path / "old", commit), tmp_path / "state", config)
    return Stack(tmp_path / "state", config)


@pytest.fixture
def cleanup(api: LiteLLMClient):
    made: dict[str, list[str]] = {"users": [], "teams": []}
    yield made
    for user_id in made["users"]:
        api.user_delete(user_id)
    for team_id in made["teams"]:
        api.team_delete(team_id)


def test_an_existing_stack_upgrades_in_place_with_no_proxy_call(tmp_path, litellm, tap, api, unique, cleanup):
    team = {"team_id": f"{unique}-team", "models": ["fake-gpt-4o"], "tpm_limit": 1000000, "rpm_limit": 100000}
    users = users_for(unique, 4, teams=[team["team_id"]])
    stack = stack_written_by(BEFORE, tmp_path, tap.url, litellm.master_key, cleanup, team, users)
    old_state = stack.state_file.stat().st_size
    old_keys = {u["user_id"]: stack.outputs[f"{u['name']}_key"] for u in users}
    old_ids = {r.urn: r.id for r in stack.resources() if r.custom}
    assert len(old_ids) == 13 and all(k.startswith("sk-") for k in old_keys.values())

    tap.reset()
    preview = stack.preview()
    # The deletion guard's ledger is new (a create that calls nothing).
    assert Counter(preview.ops().values()) == Counter({"update": 13, "same": 4, "create": 1}) and tap.count() == 0
    up = stack.up()
    # Every User, Key, Team and TeamMember rewrites its outputs (an update that calls nothing); no create
    # but the ledger's, no replace or delete; the components and the stack are the same.
    assert Counter(up.ops().values()) == Counter({"update": 13, "same": 4, "create": 1})
    assert up.ops()["Ledger/ledger"] == "create"
    assert tap.count() == 0
    # The same objects (memberships are renamed, with aliases, since: compare the ids, not the URNs).
    assert sorted(r.id for r in stack.resources() if r.custom and not r.type.endswith(":Ledger")) == sorted(old_ids.values())
    assert stack.outputs["key"] == old_keys  # no key value changed; the exports are maps by user_id now
    assert stack.state_file.stat().st_size < old_state * 0.6  # 87.9 KB -> 44.7 KB when written

    tap.reset()
    assert set(stack.up().ops().values()) == {"same"} and tap.count() == 0  # then a no-op
    assert {s.op for s in stack.refresh().steps} == {"same"}  # and nothing drifted
    stack.destroy()
    assert tap.count(writes=True) > 0


def test_a_stack_from_before_the_owner_mark_upgrades_with_nothing_written(tmp_path, litellm, tap, api, unique,
                                                                          cleanup):
    """The mark is written by creates, never onto the objects of an existing stack by an upgrade."""
    team = {"team_id": f"{unique}-team", "models": ["fake-gpt-4o"], "metadata": {"dept": "physics"}}
    users = users_for(unique, 2, teams=[team["team_id"]])
    stack = stack_written_by(BEFORE_MARK, tmp_path, tap.url, litellm.master_key, cleanup, team, users)
    keys = stack.outputs["key"]

    tap.reset()
    # Users and Keys rewrite their stored answers (test_a_stack_of_the_trimmed_state_upgrades...), sending
    # nothing; the mark is never written.
    assert set(stack.preview().ops().values()) == {"same", "update"}
    assert set(stack.up().ops().values()) == {"same", "update"}
    assert set(stack.up().ops().values()) == {"same"}
    assert tap.count() == 0
    assert stack.outputs["key"] == keys
    assert {s.op for s in stack.refresh().steps} == {"same"}
    assert tap.count(writes=True) == 0
    assert api.team_info(team["team_id"])["team_info"]["metadata"] == {"dept": "physics"}  # not marked
    for user in users:
        assert api.user_info(user["user_id"])["user_info"]["metadata"] == {"pulumi_create": "done"}
        assert api.key_info(hashlib.sha256(keys[user["user_id"]].encode()).hexdigest())["info"]["metadata"] == {
            "cohort": "2026"}
    stack.destroy()


def test_a_stack_of_the_trimmed_state_upgrades_with_no_proxy_call(tmp_path, litellm, tap, api, unique, cleanup):
    """From the version that already trimmed the answers: Users and Keys rewrite their answers (stored
    beside their reads now) in an update that calls nothing; the token leaves every resource's inputs."""
    team = {"team_id": f"{unique}-team", "models": ["fake-gpt-4o"], "tpm_limit": 1000000, "rpm_limit": 100000}
    users = users_for(unique, 4, teams=[team["team_id"]])
    stack = stack_written_by(TRIMMED, tmp_path, tap.url, litellm.master_key, cleanup, team, users)
    old_state = stack.state_file.stat().st_size
    old_outputs = stack.outputs
    old_ids = {r.urn: r.id for r in stack.resources() if r.custom}
    assert len(old_ids) == 14 and all("token" in r.inputs for r in stack.resources() if r.custom and "Ledger" not in r.type)

    tap.reset()
    up = stack.up()
    # 4 Users and 4 Keys rewrite their answers; the Team, the 4 memberships, the ledger and the components
    # are the same (the token leaving the inputs is no change: it is the configured one either way).
    assert Counter(up.ops().values()) == Counter({"update": 8, "same": 10}), up.ops()
    assert tap.count() == 0
    assert {r.urn: r.id for r in stack.resources() if r.custom} == old_ids
    # Every value users read is the same, the raw keys included; user_response may gain the read's
    # created_at (the user's), where /user/new gave none.
    assert holds(stack.outputs, old_outputs) and stack.outputs["key"] == old_outputs["key"]
    assert all("token" not in r.inputs and "token" not in r.outputs for r in stack.resources() if r.custom)
    assert stack.state_file.stat().st_size < old_state

    tap.reset()
    assert set(stack.up().ops().values()) == {"same"} and tap.count() == 0  # then a no-op
    assert {s.op for s in stack.refresh().steps} == {"same"}  # and nothing drifted
    assert holds(stack.outputs, old_outputs)
    stack.destroy()


def test_state_bytes_per_auto_key_user(tmp_path, litellm, tap, unique, cleanup):
    """Each value once: the answers trimmed, not repeated by the component, the admin token in the provider
    config only. Measured here at 10 users; docs/benchmarks.md has 1,000."""
    users = users_for(unique, 10, auto_create_key=True)
    cleanup["users"] += [u["user_id"] for u in users]
    stack = Stack(tmp_path, {"litellm:url": tap.url, "litellm:token": litellm.master_key, "litellm:users": users})
    stack.up()
    per_user = stack.state_file.stat().st_size / len(users)
    assert per_user < 9000, per_user  # 20,500 bytes before (today's main, same users)
    custom = [r for r in stack.resources() if r.custom and not r.type.endswith(":Ledger")]  # the guard's ledger
    # The admin token is the configured one: in the provider config, in no resource's inputs or outputs.
    assert len(custom) == 20 and all("token" not in r.inputs and "token" not in r.outputs for r in custom)
    assert all("existing_key" not in r.outputs for r in custom)  # the raw key is the Key's `key` output
    assert all(component.outputs == {} for component in stack.resources() if component.type.endswith("UserWithKey"))
    assert set(stack.outputs) == {"user_response", "user_data", "key", "key_data", "key_response"}
    assert set(stack.outputs["key"]) == {u["user_id"] for u in users}
    assert stack.secret_outputs == {"user_response", "key", "key_response"}
    row = stack.outputs["user_response"][users[0]["user_id"]]
    assert set(row) == {"created_at", "key", "key_alias", "key_name", "max_budget", "models", "spend",
                        "user_email", "user_id"}
    assert row["key"] == stack.outputs["key"][users[0]["user_id"]]
    stack.destroy()


@pytest.mark.serial  # LiteLLM pages by offset: rows others add or delete meanwhile shift pages
def test_refresh_reads_from_one_listing_and_finds_drift_exactly(tmp_path, litellm, tap, api, unique, cleanup):
    users = users_for(unique, 12)
    cleanup["users"] += [u["user_id"] for u in users]
    stack = Stack(tmp_path, {"litellm:url": tap.url, "litellm:token": litellm.master_key, "litellm:users": users})
    stack.up()
    drifted, user_gone = users[4]["user_id"], users[9]["user_id"]
    api.user_update({"user_id": drifted, "max_budget": 9.0})
    api.key_delete(stack.resource("Key", users[7]["name"]).id)
    api.user_delete(user_gone)
    orphan_alive = key_alive(api, stack.resource("Key", users[9]["name"]).id)  # LiteLLM may keep its key

    tap.reset()
    refresh = stack.refresh()
    got = calls(tap)
    # 3 single reads of each kind (whichever come first), then one listing (pages of 100: the proxy's other
    # users and keys too), then a single read for each id the listing lacks (the deleted user and key(s)).
    user_pages = -(-api._call("count", "GET", "/user/list", params={"page_size": 1})["total"] // PAGE_SIZE)
    assert got["GET /user/list"] == user_pages and got["GET /key/list"] >= 1
    assert 3 <= got["GET /user/info"] <= 3 + 1 and 3 <= got["GET /key/info"] <= 3 + (1 if orphan_alive else 2)
    assert set(got) == {"GET /user/list", "GET /key/list", "GET /user/info", "GET /key/info"}
    by_name = {(s.type.split(":")[-1], s.urn.split("::")[-1]): s for s in refresh.steps}
    drift = by_name[("User", users[4]["name"])]
    assert drift.op == "update" and drift.changed == ["max_budget", "user_data"]  # user_data: its max_budget
    assert by_name[("Key", users[7]["name"])].op == "delete"
    assert by_name[("User", users[9]["name"])].op == "delete"
    assert by_name[("Key", users[9]["name"])].op == ("same" if orphan_alive else "delete")
    others = [s for key, s in by_name.items() if key[1] not in {users[i]["name"] for i in (4, 7, 9)}]
    assert len(others) == 19 and {s.op for s in others} == {"same"}
    assert stack.resource("User", users[4]["name"]).outputs["max_budget"] == 9.0
    stack.destroy()


def test_memberships_of_a_team_share_one_team_read(tmp_path, litellm, tap, unique, cleanup):
    team = {"team_id": f"{unique}-team", "models": ["fake-gpt-4o"], "tpm_limit": 1000000, "rpm_limit": 100000}
    users = users_for(unique, 6, teams=[team["team_id"]])
    cleanup["users"] += [u["user_id"] for u in users]
    cleanup["teams"].append(team["team_id"])
    stack = Stack(tmp_path, {"litellm:url": tap.url, "litellm:token": litellm.master_key, "litellm:users": users,
                             "litellm:teams": [team]})
    stack.up()
    tap.reset()
    refresh = stack.refresh()
    assert {s.op for s in refresh.steps} == {"same"} and len(refresh.steps) == 20  # and the ledger
    assert calls(tap)["GET /team/info"] == 2  # the Team's own read, and one for its 6 memberships
    stack.destroy()


@pytest.mark.serial  # LiteLLM pages by offset: rows others add or delete meanwhile shift pages
def test_paging_finds_every_row_once(litellm, api, unique):
    """More than 3 pages of users and of keys: every row exactly once, in user_id (token) order."""
    made = [f"{unique}-{i:03d}" for i in range(3 * PAGE_SIZE + 5)]
    try:
        with ThreadPoolExecutor(4) as pool:  # the proxy to itself (serial): a few at a time
            list(pool.map(lambda user_id: api.user_new({"user_id": user_id, "auto_create_key": True}), made))
        check_pages(litellm, made, unique)
    finally:  # /user/delete takes many ids (and deletes their keys): a hundred per call
        for start in range(0, len(made), 100):
            api._delete("delete the paging test's users", "/user/delete", {"user_ids": made[start:start + 100]})


def check_pages(litellm: Any, made: list[str], unique: str) -> None:
    """Every row of users and keys once, in order, in as many pages as the rows need."""
    with PassThrough(litellm.url) as tap:
        client = LiteLLMClient(tap.url, litellm.master_key)
        users = [row["user_id"] for row in client.list_users()]
        keys = [row for row in client.list_keys()]
    assert [u for u in users if u.startswith(unique)] == made  # each once, in order
    assert len(users) == len(set(users)) and users == sorted(users)
    mine = [row["token"] for row in keys if str(row.get("user_id")).startswith(unique)]
    assert len(mine) == len(made) == len(set(mine))
    tokens = [row["token"] for row in keys]
    assert len(tokens) == len(set(tokens)) and tokens == sorted(tokens)
    pages = Counter(c.path for c in tap.calls)
    assert pages["/user/list"] == -(-len(users) // PAGE_SIZE) >= 4
    assert pages["/key/list"] == -(-len(keys) // PAGE_SIZE) >= 4
    assert all("page_size=100" in c.query for c in tap.calls if c.path == "/user/list")


def test_paging_drops_a_row_a_busy_proxy_repeats_across_pages(monkeypatch):
    """A user added meanwhile before the cursor shifts the offset pages: the last row of one page comes
    again first on the next. The listing keeps each id once, in order; rows without an id all stay."""
    pages = {"1": [{"user_id": "a"}, {"user_id": "b"}], "2": [{"user_id": "b"}, {"user_id": "c"}],
             "3": [{"user_id": "d"}, {"nothing": 1}, {"nothing": 2}]}

    def answer(operation: str, method: str, path: str, params: dict[str, str]) -> dict[str, Any]:
        return {"users": pages[params["page"]], "total_pages": 3}

    client = LiteLLMClient("http://127.0.0.1:9", "sk-x")
    monkeypatch.setattr(client, "_call", answer)
    assert client.list_users() == [{"user_id": "a"}, {"user_id": "b"}, {"user_id": "c"}, {"user_id": "d"},
                                   {"nothing": 1}, {"nothing": 2}]
