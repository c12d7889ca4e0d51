"""The fault matrix: every fault the pass-through can inject, across create, read, update and delete of the
user, the key, the team and the team membership, against the real proxy. After each scenario, and after the retry or the next `up`, the
proxy holds exactly what is declared: no orphan, no duplicate, no lost update.

The table below is the specification; docs/faults.md is generated from it (UPDATE_DOCS=1 rewrites it, and
`test_docs_match_the_table` fails when they differ).

Each scenario drives a UserWithKey (or a Team with one member) through its providers (tests/support/stack.py: the component's own
wiring, the engine's order of calls) with the props' url pointing at the pass-through, and small timeouts
from the environment: read timeout 1 s, retry budget 2 s, back-off 0.1 s. Counts are calls that reached the pass-through
for the faulted endpoint (a dropped or refused call counts), after every delayed call has landed.
"""

from __future__ import annotations

import dataclasses
import re
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Optional

import pytest

from harness import Stack
from providers import TeamMemberProvider, TeamProvider
from providers.client import ClientSettings, LiteLLMClient, LiteLLMError, NotFound, token_hash
from support import stack
from support.generated_docs import assert_section_current
from support.passthrough import PassThrough
from support.proxy_state import key_alive, keys_of, user_exists

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "faults.md"

READ_TIMEOUT = 1.0
RETRY_BUDGET = 2.0
RETRY_ATTEMPTS = 3
RETRY_BACKOFF = 0.1
DELAY = 2.5  # past the read timeout, and past a create's look-up and back-off: the retry lands first
RETRY_AFTER = 1
FOREVER = 1000
TEAMS, MEMBERS = TeamProvider(), TeamMemberProvider()


@dataclasses.dataclass(frozen=True)
class Fault:
    label: str
    kind: str
    options: dict[str, Any]
    simulates: str


FAULTS: dict[str, Fault] = {
    "drop_before": Fault("drop before forwarding", "drop_before", {},
                         "the connection closes before the proxy sees the request"),
    "drop_after": Fault("drop after forwarding", "drop_after", {},
                        "the proxy acts, then the connection closes: the answer is lost"),
    "delay": Fault(f"delay {DELAY} s", "delay", {"delay": DELAY},
                   f"the request reaches the proxy {DELAY} s late, after the client's {READ_TIMEOUT:g} s read timeout"),
    "429": Fault(f"429 + Retry-After: {RETRY_AFTER}", "status", {"status": 429, "retry_after": RETRY_AFTER},
                 "rate limited, not forwarded"),
    "502": Fault("502", "status", {"status": 502}, "bad gateway, not forwarded"),
    "503": Fault("503", "status", {"status": 503}, "unavailable, not forwarded"),
    "504": Fault("504", "status", {"status": 504}, "gateway timeout, not forwarded"),
    "truncate": Fault("truncated body", "truncate", {}, "the proxy acts; its answer is cut off half-way"),
}


@dataclasses.dataclass(frozen=True)
class Op:
    label: str
    phase: str  # create | read | update | delete
    method: str
    path: str
    auto: bool = False  # auto_create_key
    team: bool = False  # a Team and a TeamMember (TeamWorld), not a UserWithKey

    @property
    def endpoint(self) -> str:
        return f"{self.method} {self.path}"


OPS: dict[str, Op] = {
    "create_user": Op("create: the user", "create", "POST", "/user/new"),
    "create_user_auto": Op("create (auto key): the user and its key", "create", "POST", "/user/new", auto=True),
    "create_key": Op("create: the key", "create", "POST", "/key/generate"),
    "create_key_auto": Op("create (auto key): applying the key's settings", "create", "POST", "/key/update", auto=True),
    "read_user": Op("refresh: the user", "read", "GET", "/user/info"),
    "read_key": Op("refresh: the key", "read", "GET", "/key/info"),
    "update_user": Op("update: the user", "update", "POST", "/user/update"),
    "update_key": Op("update: the key", "update", "POST", "/key/update"),
    "delete_key": Op("destroy: the key", "delete", "POST", "/key/delete"),
    "delete_user": Op("destroy: the user", "delete", "POST", "/user/delete"),
    "create_team": Op("create: the team", "create", "POST", "/team/new", team=True),
    "create_member": Op("create: the membership", "create", "POST", "/team/member_add", team=True),
    "read_team": Op("refresh: the team and the membership", "read", "GET", "/team/info", team=True),
    "update_team": Op("update: the team", "update", "POST", "/team/update", team=True),
    "update_member": Op("update: the membership's budget", "update", "POST", "/team/member_update", team=True),
    "delete_member": Op("destroy: the membership", "delete", "POST", "/team/member_delete", team=True),
    "delete_team": Op("destroy: the team", "delete", "POST", "/team/delete", team=True),
}
CREATES = ("/user/new", "/key/generate", "/team/new", "/team/member_add")


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What must happen. `calls`: calls to the faulted endpoint (an int, or a (min, max) range when a
    time budget decides); `also`: exact counts of other endpoints during the operation."""

    calls: int | tuple[int, int]
    outcome: str
    succeeds: bool = True
    also: dict[str, int] = dataclasses.field(default_factory=dict)


# One transient fault (the first matching call only) -> the operation succeeds, exactly once on the proxy.
RETRIED = {
    "drop_before": Outcome(2, "retried at once"),
    "drop_after": Outcome(2, "retried at once (deletes: the retry's 404 means done)"),
    "delay": Outcome(2, "timed out, retried; the late call lands too, harmlessly"),
    "429": Outcome(2, "waited Retry-After, retried"),
    "502": Outcome(2, "retried after back-off"),
    "503": Outcome(2, "retried after back-off"),
    "504": Outcome(2, "retried after back-off"),
    "truncate": Outcome(2, "retried (the body was cut off)"),
}
CREATE_USER = {
    "drop_before": Outcome(2, "looked up user_id: absent; created again", also={"GET /user/info": 2}),
    "drop_after": Outcome(1, "looked up user_id: found as declared; kept, not created again", also={"GET /user/info": 2}),
    "delay": Outcome(2, "looked up: absent; created again; the late create gets 409", also={"GET /user/info": 2}),
    "429": Outcome(2, "waited Retry-After, created again (429: nothing happened, no look-up)", also={"GET /user/info": 1}),
    "502": Outcome(2, "looked up: absent; created again", also={"GET /user/info": 2}),
    "503": Outcome(2, "looked up: absent; created again", also={"GET /user/info": 2}),
    "504": Outcome(2, "looked up: absent; created again", also={"GET /user/info": 2}),
    "truncate": Outcome(1, "looked up: found as declared; kept", also={"GET /user/info": 2}),
}
_KEPT_AUTO = {"POST /key/update": 1, "POST /key/generate": 0, "POST /key/delete": 0}
_LOST_AUTO = {"POST /key/delete": 1, "POST /key/generate": 1, "POST /key/update": 0}
CREATE_USER_AUTO = {
    "drop_before": dataclasses.replace(CREATE_USER["drop_before"], also=_KEPT_AUTO),
    "drop_after": Outcome(1, "found the user; its minted key's raw value was lost: deleted it, the Key generated a new one",
                          also=_LOST_AUTO),
    "delay": dataclasses.replace(CREATE_USER["delay"], also=_KEPT_AUTO),
    "429": dataclasses.replace(CREATE_USER["429"], also=_KEPT_AUTO),
    "502": dataclasses.replace(CREATE_USER["502"], also=_KEPT_AUTO),
    "503": dataclasses.replace(CREATE_USER["503"], also=_KEPT_AUTO),
    "504": dataclasses.replace(CREATE_USER["504"], also=_KEPT_AUTO),
    "truncate": Outcome(1, "as drop after: minted key deleted, a new one generated", also=_LOST_AUTO),
}
CREATE_KEY = {
    "drop_before": Outcome(2, "looked up the alias: absent; generated again", also={"GET /key/list": 1, "POST /key/delete": 0}),
    "drop_after": Outcome(2, "looked up the alias: found, raw value lost: deleted it, generated again",
                          also={"GET /key/list": 1, "POST /key/delete": 1}),
    "delay": Outcome(2, "looked up: absent; generated again; the late one is refused (alias taken)",
                     also={"GET /key/list": 1, "POST /key/delete": 0}),
    "429": Outcome(2, "waited Retry-After, generated again (no look-up)", also={"GET /key/list": 0, "POST /key/delete": 0}),
    "502": Outcome(2, "looked up: absent; generated again", also={"GET /key/list": 1, "POST /key/delete": 0}),
    "503": Outcome(2, "looked up: absent; generated again", also={"GET /key/list": 1, "POST /key/delete": 0}),
    "504": Outcome(2, "looked up: absent; generated again", also={"GET /key/list": 1, "POST /key/delete": 0}),
    "truncate": Outcome(2, "as drop after: deleted the key, generated again", also={"GET /key/list": 1, "POST /key/delete": 1}),
}
# The create of a team and its member, as the engine runs it. /team/info: the team's create reads the team
# back once (after a look-up by team_id when it was ambiguous); the member's create reads the membership
# once, sets its budget, reads it back (after a look-up in the team when it was ambiguous).
_TEAM_LOOKED, _TEAM_NOT_LOOKED = {"GET /team/info": 4}, {"GET /team/info": 3}
CREATE_TEAM = {
    "drop_before": Outcome(2, "looked up team_id: absent; created again", also=_TEAM_LOOKED),
    "drop_after": Outcome(1, "looked up team_id: found with the pending marker, ours; kept, not created again", also=_TEAM_LOOKED),
    "delay": Outcome(2, "looked up: absent; created again; the late create is refused (team_id taken)", also=_TEAM_LOOKED),
    "429": Outcome(2, "waited Retry-After, created again (no look-up)", also=_TEAM_NOT_LOOKED),
    "502": Outcome(2, "looked up: absent; created again", also=_TEAM_LOOKED),
    "503": Outcome(2, "looked up: absent; created again", also=_TEAM_LOOKED),
    "504": Outcome(2, "looked up: absent; created again", also=_TEAM_LOOKED),
    "truncate": Outcome(1, "looked up: found with the pending marker, ours; kept", also=_TEAM_LOOKED),
}
_MEMBER_LOOKED = {"GET /team/info": 4, "POST /team/member_update": 1}
_MEMBER_NOT_LOOKED = {"GET /team/info": 3, "POST /team/member_update": 1}
CREATE_MEMBER = {
    "drop_before": Outcome(2, "looked the user up in the team: absent; added again", also=_MEMBER_LOOKED),
    "drop_after": Outcome(1, "looked up: a member now, not before the first add, so ours; kept, not added again", also=_MEMBER_LOOKED),
    "delay": Outcome(2, "looked up: absent; added again; the late add is refused (already in team)", also=_MEMBER_LOOKED),
    "429": Outcome(2, "waited Retry-After, added again (no look-up)", also=_MEMBER_NOT_LOOKED),
    "502": Outcome(2, "looked up: absent; added again", also=_MEMBER_LOOKED),
    "503": Outcome(2, "looked up: absent; added again", also=_MEMBER_LOOKED),
    "504": Outcome(2, "looked up: absent; added again", also=_MEMBER_LOOKED),
    "truncate": Outcome(1, "looked up: a member; kept", also=_MEMBER_LOOKED),
}
# A refresh reads /team/info twice (the team, then the membership); the first read meets the fault.
READ_TEAM = {fault: dataclasses.replace(outcome, calls=3) for fault, outcome in RETRIED.items()}
TRANSIENT = {
    "create_user": CREATE_USER, "create_user_auto": CREATE_USER_AUTO, "create_key": CREATE_KEY,
    "create_team": CREATE_TEAM, "create_member": CREATE_MEMBER, "read_team": READ_TEAM,
    **{op: RETRIED for op in OPS if (OPS[op].phase != "create" or op == "create_key_auto") and op != "read_team"},
}

# The fault on every matching call: the operation runs out of its retry budget. Then the error must say what
# failed, and the next `up` (or refresh, or destroy) converges; nothing is left behind in between.
SPENT = (2, RETRY_ATTEMPTS + 1)
FAILS = "fails clearly; the next run converges"
PERSISTENT = {
    "503": {op: Outcome(SPENT, FAILS + (", nothing was created" if OPS[op].path in CREATES else ""),
                        succeeds=False) for op in OPS},
    "drop_after": {
        "create_user": Outcome(1, "first create landed: found with the pending marker, kept (succeeds)"),
        "create_user_auto": Outcome(1, "first create landed: kept; its minted key deleted, a new one generated (succeeds)"),
        "create_key": Outcome(SPENT, "every key made is deleted (raw value lost); fails clearly, no key left; next run converges",
                              succeeds=False),
        "create_team": Outcome(1, "first create landed: found with the pending marker, kept (succeeds)"),
        "create_member": Outcome(1, "first add landed: found in the team (absent before), kept (succeeds)"),
        **{op: Outcome(SPENT, FAILS + (" (done already: the proxy answers 404)" if OPS[op].phase == "delete" else ""),
                       succeeds=False)
           for op in OPS if OPS[op].phase in ("read", "update", "delete") or op == "create_key_auto"},
    },
}


@dataclasses.dataclass(frozen=True)
class Scenario:
    fault: str
    op: str
    times: int
    expect: Outcome

    @property
    def id(self) -> str:
        return f"{self.fault}{'-forever' if self.times == FOREVER else ''}-{self.op}"


SCENARIOS = [Scenario(fault, op, 1, TRANSIENT[op][fault]) for op in OPS for fault in FAULTS] + [
    Scenario(fault, op, FOREVER, expect) for fault, table in PERSISTENT.items() for op, expect in table.items()
]


# ------------------------------------------------------------------------------------------ the run
def updated(args: Any) -> Any:
    """New values for every field an update sends to both resources."""
    return dataclasses.replace(args, max_budget=8.0, tpm_limit=50000, rpm_limit=500, user_models=["fake-gpt-4o-mini"],
                               models=["fake-gpt-4o-mini"], metadata={"owner": args.user_id, "v": 2})


def assert_holds_exactly(api: LiteLLMClient, deployed: stack.Deployed) -> None:
    """The proxy holds the declared user with exactly one key, the declared one, usable (raw value known)."""
    u, k = deployed.user_inputs, deployed.key_inputs
    live = api.user_info(u["user_id"])["user_info"]
    assert (live["user_email"], live["user_alias"], live["user_role"], live["models"], live["max_budget"],
            live["tpm_limit"], live["rpm_limit"]) == (u["user_email"], u["user_alias"], u["user_role"], u["models"],
                                                      u["max_budget"], u["tpm_limit"], u["rpm_limit"])
    assert [row["token"] for row in keys_of(api, u["user_id"])] == [deployed.key_id], "orphan or missing key"
    assert [row["token"] for row in api.keys_with_alias(k["key_alias"])] == [deployed.key_id]
    info = api.key_info(deployed.key_id)["info"]
    assert (info["models"], info["max_budget"], info["budget_duration"], info["tpm_limit"], info["rpm_limit"],
            info["max_parallel_requests"], info["metadata"]) == (
        k["models"], k["max_budget"], k["budget_duration"], k["tpm_limit"], k["rpm_limit"],
        k["max_parallel_requests"], k["metadata"])
    assert deployed.key["key"] and token_hash(deployed.key["key"]) == deployed.key_id, "the key is not usable"


def assert_nothing_left(api: LiteLLMClient, user_id: str, alias: str, key_id: str = "") -> None:
    assert not user_exists(api, user_id)
    assert api.keys_with_alias(alias) == []
    assert not key_id or not key_alive(api, key_id)


def assert_clear_error(err: LiteLLMError, op: Op, fault: Fault, secrets: list[str]) -> None:
    operation = {"/user/new": "create user", "/key/generate": "generate key", "/user/info": "read user",
                 "/key/info": "read key", "/user/update": "update user", "/key/update": "update key",
                 "/key/delete": "delete key", "/user/delete": "delete user", "/team/new": "create team",
                 "/team/info": "read team", "/team/update": "update team", "/team/delete": "delete team",
                 "/team/member_add": "add user '[^']+' to team", "/team/member_update": "update user '[^']+' in team",
                 "/team/member_delete": "remove user '[^']+' from team"}[op.path]
    text = str(err)
    assert re.match(rf"{operation} ('[^']+'|[0-9a-f]{{12}}\.\.\.) failed \(", text), text  # what, on which one
    if fault.kind == "status":
        assert f"HTTP {fault.options['status']}" in text and f"injected {fault.options['status']}" in text, text
    else:
        assert "no response" in text and op.path in text, text
    for secret in secrets:
        assert secret not in text


class World:
    """One scenario's user, its deployment, and the pass-through every call goes through."""

    def __init__(self, api: LiteLLMClient, tap: PassThrough, unique: str, token: str, op: Op) -> None:
        self.api, self.tap, self.op, self.token = api, tap, op, token
        self.args = stack.declare(tap.url, token, unique, auto_create_key=op.auto)
        self.deployed: Optional[stack.Deployed] = None

    def setup(self) -> None:
        """What exists before the operation: nothing for a create, else the deployed UserWithKey."""
        if self.op.phase != "create":
            self.deployed = stack.up(self.args)
        self.tap.reset()

    def run(self) -> None:
        """The operation, as the next engine step would do it (also the retry after a failure)."""
        phase, op = self.op.phase, self.op
        if phase == "create":
            if self.deployed is None:
                self.deployed = stack.Deployed(*stack.wire(self.args))
            stack.up(self.args, self.deployed)
        elif phase == "read":
            assert self.deployed is not None
            provider, id_, outs = ((stack.USERS, self.deployed.user_id, self.deployed.user) if op.path == "/user/info"
                                   else (stack.KEYS, self.deployed.key_id, self.deployed.key))
            result = provider.read(id_, outs)
            assert result.id == id_ and provider.diff(id_, result.outs, outs).changes is False, "drift after read"
        elif phase == "update":
            assert self.deployed is not None
            self.args = updated(self.args)
            stack.update(self.deployed, self.args)
        else:
            assert self.deployed is not None
            stack.down(self.deployed)

    def check_state(self) -> None:
        assert self.tap.wait_idle(), "a delayed call never finished"
        if self.op.phase == "delete":
            assert self.deployed is not None
            assert_nothing_left(self.api, self.args.user_id, self.args.user_id)
        else:
            assert self.deployed is not None
            assert_holds_exactly(self.api, self.deployed)

    def secrets(self) -> list[str]:
        raw = self.deployed.key.get("key") if self.deployed else None
        return [self.token] + ([raw] if raw else [])

    def cleanup(self) -> None:
        self.tap.clear_faults()
        self.tap.wait_idle()
        uid = str(self.args.user_id)
        try:
            self.api.user_delete(uid)
        except LiteLLMError:
            pass
        for row in self.api.keys_with_alias(uid):
            self.api.key_delete(row["token"])


class TeamWorld:
    """One scenario's team with one member (a user made directly), driven through the Team and TeamMember
    providers in the engine's order: the team, then the membership; destroy in reverse."""

    def __init__(self, api: LiteLLMClient, tap: PassThrough, unique: str, token: str, op: Op) -> None:
        self.api, self.tap, self.op, self.token = api, tap, op, token
        self.team_id, self.user_id = f"{unique}-team", unique
        self.team_inputs = TEAMS.check({}, {"url": tap.url, "token": token, "team_id": self.team_id, "team_alias": unique,
                                            "models": ["fake-mock"], "max_budget": 20, "tpm_limit": 900,
                                            "metadata": {"v": 1}}).inputs
        self.member_inputs = MEMBERS.check({}, {"url": tap.url, "token": token, "team_id": self.team_id,
                                                "user_id": self.user_id, "max_budget_in_team": 4}).inputs
        self.team: dict[str, Any] = {}
        self.member: dict[str, Any] = {}

    def setup(self) -> None:
        self.api.user_new({"user_id": self.user_id, "user_email": f"{self.user_id}@example.org", "auto_create_key": False})
        if self.op.phase != "create":
            self._up()
        self.tap.reset()

    def _up(self) -> None:
        if not self.team:
            self.team = TEAMS.create(self.team_inputs).outs
        if not self.member:
            self.member = MEMBERS.create(self.member_inputs).outs

    def run(self) -> None:
        phase = self.op.phase
        if phase == "create":
            self._up()
        elif phase == "read":
            for provider, outs, id_ in ((TEAMS, self.team, self.team_id), (MEMBERS, self.member, f"{self.team_id}/{self.user_id}")):
                result = provider.read(id_, outs)
                assert result.id == id_ and provider.diff(id_, result.outs, outs).changes is False, "drift after read"
        elif phase == "update":
            news = {**self.team_inputs, "max_budget": 30.0, "tpm_limit": 800, "metadata": {"v": 2}}
            if TEAMS.diff(self.team_id, self.team, news).changes:
                self.team = TEAMS.update(self.team_id, self.team, news).outs
            self.team_inputs = news
            news = {**self.member_inputs, "max_budget_in_team": 6.0}
            if MEMBERS.diff("", self.member, news).changes:
                self.member = MEMBERS.update("", self.member, news).outs
            self.member_inputs = news
        else:
            if self.member:
                MEMBERS.delete("", self.member)
                self.member = {}
            if self.team:
                TEAMS.delete(self.team_id, self.team)
                self.team = {}

    def check_state(self) -> None:
        assert self.tap.wait_idle(), "a delayed call never finished"
        if self.op.phase == "delete":
            with pytest.raises(NotFound):
                self.api.team_info(self.team_id)
            return
        info = self.api.team_info(self.team_id)
        row, t = info["team_info"], self.team_inputs
        assert (row["team_alias"], row["models"], row["max_budget"], row["tpm_limit"], row["metadata"]) == (
            t["team_alias"], t["models"], t["max_budget"], t["tpm_limit"], t["metadata"])
        members = [m["user_id"] for m in row["members_with_roles"] if m["user_id"] != "default_user_id"]
        assert members == [self.user_id], "a lost or duplicated membership"
        budget = next(m for m in info["team_memberships"] if m["user_id"] == self.user_id)["litellm_budget_table"]
        assert budget["max_budget"] == self.member_inputs["max_budget_in_team"]

    def secrets(self) -> list[str]:
        return [self.token]

    def cleanup(self) -> None:
        self.tap.clear_faults()
        self.tap.wait_idle()
        self.api.team_delete(self.team_id)
        self.api.user_delete(self.user_id)


@pytest.fixture
def small_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LITELLM_CONNECT_TIMEOUT", "1")
    monkeypatch.setenv("LITELLM_READ_TIMEOUT", str(READ_TIMEOUT))
    monkeypatch.setenv("LITELLM_RETRY_MAX_SECONDS", str(RETRY_BUDGET))
    monkeypatch.setenv("LITELLM_RETRY_ATTEMPTS", str(RETRY_ATTEMPTS))
    monkeypatch.setenv("LITELLM_RETRY_BACKOFF", str(RETRY_BACKOFF))


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.id)
def test_fault(scenario: Scenario, litellm, api, tap, unique, small_budget) -> None:
    op, fault, expect = OPS[scenario.op], FAULTS[scenario.fault], scenario.expect
    world = (TeamWorld if op.team else World)(api, tap, unique, litellm.master_key, op)
    try:
        world.setup()
        tap.inject(fault.kind, method=op.method, path=op.path, times=scenario.times, **fault.options)
        error: Optional[LiteLLMError] = None
        try:
            world.run()
        except LiteLLMError as err:
            error = err
        assert tap.wait_idle()

        calls = tap.count(method=op.method, path=op.path)
        low, high = expect.calls if isinstance(expect.calls, tuple) else (expect.calls, expect.calls)
        assert low <= calls <= high, f"{calls} calls to {op.endpoint}, expected {expect.calls}"
        for endpoint, count in expect.also.items():
            method, path = endpoint.split(" ")
            assert tap.count(method=method, path=path) == count, f"{endpoint}: {tap.calls}"

        if expect.succeeds:
            assert error is None, f"expected success, got: {error}"
        else:
            assert error is not None, "expected the operation to fail once its retry budget was spent"
            assert_clear_error(error, op, fault, world.secrets())
            if op.phase == "create" and isinstance(world, TeamWorld):  # no team, or the user not in it
                assert world.team == {} or world.member == {}
                if op.path == "/team/new":
                    with pytest.raises(NotFound):
                        api.team_info(world.team_id)
                else:
                    assert [m["user_id"] for m in api.team_info(world.team_id)["team_info"]["members_with_roles"]
                            if m["user_id"] == unique] == []
            elif op.phase == "create":  # nothing half-made is left behind by the failed run
                if world.deployed and world.deployed.user_id:  # the user made it into state; the key did not
                    assert [r["token"] for r in keys_of(api, unique)] == ([] if not op.auto else
                                                                         [token_hash(world.deployed.key_inputs["existing_key"])])
                else:
                    assert_nothing_left(api, unique, unique)
            tap.clear_faults()
            world.run()  # the next `up` / refresh / destroy
        world.check_state()
    finally:
        world.cleanup()


# --------------------------------------------------------------------------------- the documentation
BEGIN, END = "<!-- fault matrix: generated by tests/test_faults.py -->", "<!-- end of fault matrix -->"


def _calls(expect: Outcome) -> str:
    if isinstance(expect.calls, tuple):
        return f"{expect.calls[0]}-{expect.calls[1]} calls"
    return f"{expect.calls} call{'s' if expect.calls != 1 else ''}"


def _short(expect: Outcome) -> str:
    return ("ok" if expect.succeeds else "fails, next run ok") + f", {_calls(expect)}"


def matrix_markdown() -> str:
    columns = [(fault, 1) for fault in FAULTS] + [(fault, FOREVER) for fault in PERSISTENT]

    def expect(op: str, fault: str, times: int) -> Outcome:
        return TRANSIENT[op][fault] if times == 1 else PERSISTENT[fault][op]

    def label(fault: str, times: int) -> str:
        return FAULTS[fault].label + (", every call" if times == FOREVER else "")

    lines = [BEGIN, "",
             f"Settings: read timeout {READ_TIMEOUT:g} s, retry budget {RETRY_BUDGET:g} s, at most {RETRY_ATTEMPTS} "
             f"retries, back-off {RETRY_BACKOFF:g} s doubling. Calls: calls that reached the faulted endpoint "
             "(dropped ones included). \"ok\": the operation succeeded and the proxy holds exactly what is "
             "declared; \"fails, next run ok\": the retry budget ran out, the error says what failed, nothing "
             "half-made is left, and the next `up`/refresh/destroy converges.", ""]
    lines += ["Faults:", ""] + [f"- **{f.label}**: {f.simulates}" for f in FAULTS.values()]
    lines += ["- **..., every call**: the same fault on every matching call, so the retry budget runs out", ""]
    lines += ["| operation (endpoint) | " + " | ".join(label(f, t) for f, t in columns) + " |",
              "|---" * (len(columns) + 1) + "|"]
    for key, op in OPS.items():
        lines.append(f"| {op.label} (`{op.endpoint}`) | "
                     + " | ".join(_short(expect(key, f, t)) for f, t in columns) + " |")
    lines += ["", "### What the provider did", ""]
    for key, op in OPS.items():
        lines += [f"**{op.label}** (`{op.endpoint}`)", "", "| fault | outcome | what happened |", "|---|---|---|"]
        lines += [f"| {label(f, t)} | {_short(expect(key, f, t))} | {expect(key, f, t).outcome} |" for f, t in columns]
        lines.append("")
    return "\n".join(lines + [END])


def test_docs_match_the_table() -> None:
    assert_section_current(DOC, matrix_markdown(), BEGIN, END, Path(__file__).name)


def test_every_fault_meets_every_operation() -> None:
    """The matrix is complete: each fault once on each operation, and both failure modes on every operation."""
    pairs = {(s.fault, s.op) for s in SCENARIOS if s.times == 1}
    assert pairs == {(fault, op) for fault in FAULTS for op in OPS}
    for fault in PERSISTENT:
        assert {s.op for s in SCENARIOS if s.times == FOREVER and s.fault == fault} == set(OPS)
    assert re.fullmatch(r"[a-z_0-9]+", "".join(OPS)), "operation ids are used in test ids"


# ------------------------------------------------------------------------------- retry policy, directly
@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Every back-off and Retry-After wait the client makes (still waited for real)."""
    recorded: list[float] = []
    real = time.sleep

    def sleep(seconds: float) -> None:
        recorded.append(seconds)
        real(seconds)

    monkeypatch.setattr(time, "sleep", sleep)
    return recorded


def client_via(tap: PassThrough, token: str) -> LiteLLMClient:
    return LiteLLMClient(tap.url, token, ClientSettings.from_env())


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 422, 500])
def test_other_statuses_are_never_retried(status, litellm, tap, small_budget) -> None:
    tap.inject("status", method="GET", path="/user/info", status=status, times=FOREVER)
    with pytest.raises(LiteLLMError) as caught:
        client_via(tap, litellm.master_key).user_info("nobody")
    assert caught.value.status == status and tap.count(path="/user/info") == 1


def test_a_read_waits_retry_after(litellm, tap, small_budget, monkeypatch, sleeps) -> None:
    monkeypatch.setenv("LITELLM_RETRY_MAX_SECONDS", "10")
    tap.inject("status", path="/user/info", status=429, retry_after=1)
    with pytest.raises(LiteLLMError, match="404"):
        client_via(tap, litellm.master_key).user_info("nobody")  # the retry reaches the proxy: no such user
    assert tap.count(path="/user/info") == 2 and 1.0 in sleeps


def test_a_create_waits_retry_after_then_creates_once(litellm, api, tap, unique, small_budget, monkeypatch,
                                                       sleeps) -> None:
    monkeypatch.setenv("LITELLM_RETRY_MAX_SECONDS", "10")
    tap.inject("status", path="/user/new", status=429, retry_after=1)
    user_inputs, _ = stack.wire(stack.declare(tap.url, litellm.master_key, unique))
    try:
        assert stack.USERS.create(user_inputs).id == unique
        assert tap.count(path="/user/new") == 2 and tap.count(path="/user/info") == 1  # no look-up after a 429
        assert 1.0 in sleeps and user_exists(api, unique)
    finally:
        api.user_delete(unique)


def test_retry_after_never_outlasts_the_budget(litellm, tap, small_budget, sleeps) -> None:
    tap.inject("status", path="/user/info", status=503, retry_after=120, times=FOREVER)
    with pytest.raises(LiteLLMError, match="HTTP 503"):
        client_via(tap, litellm.master_key).user_info("nobody")
    assert sleeps and max(sleeps) <= RETRY_BUDGET


def test_a_malformed_retry_after_falls_back_to_the_backoff(litellm, tap, small_budget) -> None:
    tap.inject("status", path="/user/info", status=429, retry_after="soon")  # type: ignore[arg-type]
    with pytest.raises(LiteLLMError, match="404"):
        client_via(tap, litellm.master_key).user_info("nobody")
    assert tap.count(path="/user/info") == 2


@pytest.mark.parametrize("name, value", [("LITELLM_READ_TIMEOUT", "0"), ("LITELLM_READ_TIMEOUT", "abc"),
                                         ("LITELLM_CONNECT_TIMEOUT", "-1"), ("LITELLM_RETRY_MAX_SECONDS", "inf"),
                                         ("LITELLM_RETRY_ATTEMPTS", "2.5"), ("LITELLM_RETRY_BACKOFF", "nan")])
def test_bad_settings_name_the_variable(name, value) -> None:
    with pytest.raises(ValueError, match=f"{name} must be .*got '{value}'"):
        ClientSettings.from_env({name: value})


def test_settings_come_from_the_environment() -> None:
    env = {"LITELLM_CONNECT_TIMEOUT": "2", "LITELLM_READ_TIMEOUT": "7.5", "LITELLM_RETRY_MAX_SECONDS": "0",
           "LITELLM_RETRY_ATTEMPTS": "0", "LITELLM_RETRY_BACKOFF": "0.25"}
    assert ClientSettings.from_env(env) == ClientSettings(2.0, 7.5, 0.0, 0, 0.25)
    assert ClientSettings.from_env({}) == ClientSettings(5.0, 30.0, 30.0, 5, 0.5)


# ------------------------------------------------------------------------------------- concurrency
def test_fifty_in_parallel(litellm, api, tap, unique) -> None:
    """50 UserWithKey created 10 at a time (`pulumi up --parallel 10`), then destroyed 10 at a time."""
    args = [stack.declare(tap.url, litellm.master_key, f"{unique}-{i:02d}", auto_create_key=i % 2 == 1)
            for i in range(50)]
    planned = [stack.Deployed(*stack.wire(a)) for a in args]  # the component runs once, in the program
    try:
        with ThreadPoolExecutor(10) as pool:
            deployed = list(pool.map(stack.up, args, planned))
        for one in deployed:
            assert_holds_exactly(api, one)
        assert tap.count(path="/user/new") == 50  # created once each: no retry, no duplicate
        assert tap.count(path="/key/generate") == 25 and tap.count(path="/key/update") == 25
        assert len({one.key_id for one in deployed}) == 50

        with ThreadPoolExecutor(10) as pool:
            list(pool.map(stack.down, deployed))
        for a, one in zip(args, deployed):
            assert_nothing_left(api, str(a.user_id), str(a.user_id), one.key_id)
    finally:
        for a in args:
            try:
                api.user_delete(str(a.user_id))
            except LiteLLMError:
                pass


def test_fifty_in_parallel_through_the_plugin(tmp_path, litellm, api, tap, unique) -> None:
    """The same through the real dynamic-provider plugin and the stack program, `up --parallel 10` and
    `destroy --parallel 10` as the engine stand-in runs them (tests/harness)."""
    users = [{"user_id": f"{unique}-{i:02d}", "user_email": f"{unique}-{i:02d}@example.org", "user_role": "internal_user",
              "auto_create_key": i % 2 == 1, "models": ["fake-gpt-4o"], "user_models": ["fake-gpt-4o"]}
             for i in range(50)]
    state = Stack(tmp_path / "state", {"litellm:url": tap.url, "litellm:token": litellm.master_key,
                                       "litellm:users": users}, parallel=10)
    try:
        state.up()
        assert tap.count(path="/user/new") == 50 and tap.count(path="/key/generate") == 25
        hashes = set()
        for user in users:
            uid = user["user_id"]
            raw = state.outputs[f"{uid}_key"]
            assert [row["token"] for row in keys_of(api, uid)] == [token_hash(raw)]
            assert [row["token"] for row in api.keys_with_alias(uid)] == [token_hash(raw)]
            hashes.add(token_hash(raw))
        assert len(hashes) == 50

        state.destroy()
        assert state.resources() == []
        for user in users:
            assert_nothing_left(api, user["user_id"], user["user_id"])
    finally:
        for user in users:
            try:
                api.user_delete(user["user_id"])
            except LiteLLMError:
                pass
