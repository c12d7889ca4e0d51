"""scripts/review against the real proxy: objects made outside the stack (with the API client) are found,
each kind of finding on a seeded proxy, and a clean stack exits 0.

The proxy is shared with tests running at the same time, so each review here is scoped with
`--only-prefix <the test's unique prefix>`: it sees every object this test made (its stack's and its
out-of-band ones), and none of another test's.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path
from typing import Any, Iterator

import pytest
import requests

from harness import Stack, clean_env
from providers import client as client_module
from providers.client import LiteLLMClient, LiteLLMError, token_hash
from scripts import review

ROOT = Path(__file__).resolve().parents[1]


def user(uid: str, **overrides: Any) -> dict[str, Any]:
    return {"user_id": uid, "user_email": f"{uid}@example.org", "user_role": "internal_user",
            "models": ["fake-gpt-4o"], "user_models": ["fake-gpt-4o"], **overrides}


@pytest.fixture
def teams(api: LiteLLMClient) -> Iterator[list[str]]:
    made: list[str] = []
    yield made
    for team_id in made:
        try:
            api.team_delete(team_id)
        except LiteLLMError:
            pass


@pytest.fixture
def proxy_env(litellm, monkeypatch) -> None:
    """The proxy as the review finds it when the stack's config names none: LITELLM_URL/LITELLM_MASTER_KEY."""
    monkeypatch.setenv("LITELLM_URL", litellm.url)
    monkeypatch.setenv("LITELLM_MASTER_KEY", litellm.master_key)


def run_review(capsys, *args: str) -> tuple[int, str, str]:
    code = review.main(["--stack", "no-such-stack", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def call(litellm, path: str, body: dict[str, Any]) -> dict[str, Any]:
    answer = requests.post(f"{litellm.url}{path}", json=body, timeout=30,
                           headers={"Authorization": f"Bearer {litellm.master_key}"})
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_each_kind_is_found_on_a_seeded_proxy(tmp_path, litellm, api, unique, users, teams, proxy_env, capsys):
    managed, team = f"{unique}-managed", f"{unique}-team"
    users.append(managed)
    teams.append(team)
    stack = Stack(tmp_path / "stack", {"litellm:url": litellm.url, "litellm:token": litellm.master_key,
                                       "litellm:teams": [{"team_id": team, "models": ["fake-gpt-4o"]}],
                                       "litellm:users": [user(managed, rotate_after="1s")]},
                  plugin_env=clean_env())
    stack.up()
    managed_key = token_hash(stack.outputs["key"][managed])

    # Made outside the stack, with the API client.
    stray, stranded = f"{unique}-stray", f"{unique}-stranded"
    users.extend([stray, stranded])
    teams.extend([f"{unique}-stray-team", f"{unique}-stranded-team"])
    api.user_new({"user_id": stray, "user_email": f"{stray}@example.org", "auto_create_key": False})
    api.user_new({"user_id": stranded, "user_email": f"{stranded}@example.org", "auto_create_key": False,
                  "metadata": {"pulumi_create": "pending"}})
    api.team_new({"team_id": f"{unique}-stray-team"})
    api.team_new({"team_id": f"{unique}-stranded-team", "metadata": {"pulumi_create": "pending"}})
    raws = {name: f"sk-{unique}-{name}-0123456789abcdef" for name in ("extra", "expired", "blocked", "stranded")}
    api.key_generate({"key": raws["extra"], "user_id": managed, "key_alias": f"{unique}-extra"})
    api.key_generate({"key": raws["expired"], "user_id": stray, "key_alias": f"{unique}-expired", "duration": "1s"})
    api.key_generate({"key": raws["blocked"], "user_id": stray, "key_alias": f"{unique}-blocked"})
    api.key_generate({"key": raws["stranded"], "user_id": stray, "key_alias": f"{unique}-stranded",
                      "metadata": {"pulumi_create": "pending"}})
    call(litellm, "/key/block", {"key": token_hash(raws["blocked"])})
    time.sleep(1.5)  # the 1s key expires; the managed key is past its rotate_after of 1s

    code, out, err = run_review(capsys, "--state", str(stack.state_file), "--json", "--only-prefix", unique)
    assert code == 1, err
    found = sorted((f["kind"], f["id"]) for f in map(json.loads, out.splitlines()))
    h = {name: token_hash(raw) for name, raw in raws.items()}
    assert found == sorted([
        ("unmanaged_user", stray), ("unmanaged_user", stranded), ("stranded_create", stranded),
        ("unmanaged_team", f"{unique}-stray-team"), ("unmanaged_team", f"{unique}-stranded-team"),
        ("stranded_create", f"{unique}-stranded-team"),
        ("unmanaged_key", h["extra"]), ("unmanaged_key", h["expired"]), ("unmanaged_key", h["blocked"]),
        ("unmanaged_key", h["stranded"]), ("stranded_create", h["stranded"]),
        ("expired_key", h["expired"]), ("blocked_key", h["blocked"]), ("rotation_due", managed_key),
    ])
    details = {(f["kind"], f["id"]): f["detail"] for f in map(json.loads, out.splitlines())}
    assert details[("unmanaged_key", h["extra"])] == (
        f"alias '{unique}-extra' of user '{managed}' (an extra key of a user the stack manages): no Key resource "
        "of the stack manages it")
    assert details[("rotation_due", managed_key)].endswith("rotate_after 1s: the next `pulumi up` rotates it")
    assert "sk-" not in out + err  # never a raw key, nor LiteLLM's masked key names

    # The table for people: one line per finding, a key by the start of its hash.
    code, out, _ = run_review(capsys, "--state", str(stack.state_file), "--only-prefix", unique)
    assert code == 1 and out.splitlines()[0].split() == ["KIND", "ID", "DETAIL"]
    assert len(out.splitlines()) == 15
    assert re.search(rf"^blocked_key +{h['blocked'][:16]}\.\.\. +alias '{unique}-blocked' of user '{stray}' is "
                     "blocked$", out, re.M)
    stack.destroy()


def test_a_clean_stack_exits_0(tmp_path, litellm, api, unique, users, teams, proxy_env, capsys):
    team = f"{unique}-team"
    users.append(unique)
    teams.append(team)
    stack = Stack(tmp_path / "stack", {"litellm:url": litellm.url, "litellm:token": litellm.master_key,
                                       "litellm:teams": [{"team_id": team, "models": ["fake-gpt-4o"]}],
                                       "litellm:users": [user(unique, teams=[team], team_id=team, rotate_after="30d")]},
                  plugin_env=clean_env())
    stack.up()
    try:
        code, out, err = run_review(capsys, "--state", str(stack.state_file), "--only-prefix", unique)
        assert (code, out, err) == (0, "review of stack no-such-stack: nothing found\n", "")
        code, out, _ = run_review(capsys, "--state", str(stack.state_file), "--json", "--only-prefix", unique)
        assert (code, out) == (0, "")
        # The same proxy reviewed against an empty state: everything the stack made is unmanaged.
        empty = tmp_path / "empty.json"
        empty.write_text('{"version": 3, "deployment": {"resources": []}}')
        code, out, _ = run_review(capsys, "--state", str(empty), "--json", "--only-prefix", unique)
        assert code == 1
        assert sorted(json.loads(line)["kind"] for line in out.splitlines()) == [
            "unmanaged_key", "unmanaged_team", "unmanaged_user"]
    finally:
        stack.destroy()


@pytest.mark.serial  # LiteLLM pages by offset: rows others add or delete meanwhile shift pages
def test_the_listing_reads_every_page_in_a_stable_order(litellm, api, unique, users, tap, monkeypatch):
    ids = [f"{unique}-{n}" for n in ("e", "a", "d", "b", "c")]
    users.extend(ids)
    for user_id in ids:
        api.user_new({"user_id": user_id, "user_email": f"{user_id}@example.org", "auto_create_key": False})
    monkeypatch.setattr(client_module, "PAGE_SIZE", 2)
    tap.reset()
    listed = [row["user_id"] for row in LiteLLMClient(tap.url, litellm.master_key).list_users()]
    assert [i for i in listed if i.startswith(unique)] == [f"{unique}-{n}" for n in "abcde"]
    assert len(listed) == len(set(listed))
    queries = [c.query for c in tap.calls if c.path == "/user/list"]
    assert len(queries) >= 3 and all("sort_by=user_id" in q and "sort_order=asc" in q and "page_size=2" in q
                                     for q in queries)


def test_it_exits_2_when_it_cannot_run(tmp_path, litellm, capsys, monkeypatch):
    monkeypatch.setenv("LITELLM_URL", litellm.url)
    monkeypatch.setenv("LITELLM_MASTER_KEY", litellm.master_key)
    code, out, err = run_review(capsys, "--state", str(tmp_path / "missing.json"))
    assert code == 2 and out == ""
    assert err.startswith(f"review: cannot read the state file {tmp_path / 'missing.json'}")
    state = tmp_path / "state.json"
    state.write_text('{"version": 3, "deployment": {"resources": []}}')
    monkeypatch.setenv("LITELLM_URL", "http://127.0.0.1:9")  # nothing listens on the discard port
    monkeypatch.setenv("LITELLM_RETRY_MAX_SECONDS", "0")
    code, out, err = run_review(capsys, "--state", str(state))
    assert code == 2 and out == ""
    assert "review: cannot list the proxy's objects at http://127.0.0.1:9: list users (page 1) failed" in err
    assert litellm.master_key not in err
    monkeypatch.delenv("LITELLM_MASTER_KEY")
    code, _, err = run_review(capsys, "--state", str(state))
    assert (code, err) == (2, "review: no admin token: set litellm:token of stack no-such-stack (pulumi config "
                              "set --secret) or LITELLM_MASTER_KEY\n")


def test_the_wrapper_runs_the_review(tmp_path):
    """scripts/review (the bash wrapper the pipelines call) passes its arguments on and keeps the exit code."""
    done = subprocess.run([str(ROOT / "scripts" / "review"), "--stack", "no-such-stack", "--state",
                           str(tmp_path / "missing.json")], capture_output=True, text=True,
                          env={**clean_env(), "LITELLM_URL": "http://127.0.0.1:9", "LITELLM_MASTER_KEY": "sk-x"})
    assert done.returncode == 2 and "review: cannot read the state file" in done.stderr
