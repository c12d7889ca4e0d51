"""The fault matrix: every fault the pass-through can inject, plus a persistently slow proxy and an
unreachable one, across create, read, update and delete of the user, the key, the team and the team
membership, against the real proxy
and through the real dynamic-provider plugin (tests/harness: the stack program, Configure, values on the
wire, the engine's environment). After each scenario, and after the next `up` (or refresh, or destroy)
when it failed, the proxy holds exactly what is declared here: no orphan, no duplicate, exactly one usable
key, no lost update.

The table below is the specification; docs/faults.md is generated from it (UPDATE_DOCS=1 rewrites it, and
`test_docs_match_the_table` fails when they differ).

Timings have margins for a loaded machine: a delayed call arrives three read timeouts late, and call
counts that depend on time are ranges. Counts are calls that reached the pass-through for the faulted
endpoint (a dropped or refused call counts), after every delayed call has landed.
"""

from __future__ import annotations

import dataclasses
import re
import time
from pathlib import Path
from typing import Any, Optional

import pulumi
import pytest

from harness import Stack
from harness.engine import EngineError
from harness.plugin import PluginError, clean_env
from providers import Team, TeamArgs, TeamMember, TeamMemberArgs
from providers.client import ClientSettings, LiteLLMClient, LiteLLMError, NotFound, token_hash
from support import stack
from support.generated_docs import assert_section_current
from support.passthrough import PassThrough
from support.proxy_state import key_alive, keys_of, user_exists

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "faults.md"

CONNECT_TIMEOUT = 1.0
READ_TIMEOUT = 3.0  # a real answer under the suite's load has taken 2 s; the delay cells must see only the fault
RETRY_BUDGET = 4.5
RETRY_ATTEMPTS = 3
RETRY_BACKOFF = 0.1
DELAY = 3 * READ_TIMEOUT  # surely past the read timeout, a create's look-up and back-off: the retry lands first
RETRY_AFTER = 1
FOREVER = 1000
ENV = {"LITELLM_CONNECT_TIMEOUT": str(CONNECT_TIMEOUT), "LITELLM_READ_TIMEOUT": str(READ_TIMEOUT),
       "LITELLM_RETRY_MAX_SECONDS": str(RETRY_BUDGET), "LITELLM_RETRY_ATTEMPTS": str(RETRY_ATTEMPTS),
       "LITELLM_RETRY_BACKOFF": str(RETRY_BACKOFF)}
# Only the delay fault needs the short read timeout. Every other fault runs with a read timeout and a budget
# no real answer comes near, so that only the injected fault makes a call fail, however slowly a loaded
# machine answers (the suite runs tests in parallel; at a load of 14 a real answer took over 2 s). Their
# retries stop at RETRY_ATTEMPTS, in well under a second, as with the short budget.
CALM_READ_TIMEOUT = 15.0
CALM_RETRY_BUDGET = 15.0
CALM_ENV = {**ENV, "LITELLM_READ_TIMEOUT": str(CALM_READ_TIMEOUT), "LITELLM_RETRY_MAX_SECONDS": str(CALM_RETRY_BUDGET)}


def env_for(fault: str) -> dict[str, str]:
    return ENV if fault == "delay" else CALM_ENV


@dataclasses.dataclass(frozen=True)
class Fault:
    label: str
    kind: str  # a pass-through fault, or "unreachable" (every connection times out while connecting)
    options: dict[str, Any]
    simulates: str


FAULTS: dict[str, Fault] = {
    "drop_before": Fault("drop before forwarding", "drop_before", {},
                         "the connection closes before the proxy sees the request"),
    "drop_after": Fault("drop after forwarding", "drop_after", {},
                        "the proxy acts, then the connection closes: the answer is lost"),
    "delay": Fault(f"delay {DELAY:g} s", "delay", {"delay": DELAY},
                   f"the request reaches the proxy {DELAY:g} s late, after the client's {READ_TIMEOUT:g} s read timeout"),
    "429": Fault(f"429 + Retry-After: {RETRY_AFTER}", "status", {"status": 429, "retry_after": RETRY_AFTER},
                 "rate limited, not forwarded"),
    "502": Fault("502", "status", {"status": 502}, "bad gateway, not forwarded"),
    "503": Fault("503", "status", {"status": 503}, "unavailable, not forwarded"),
    "504": Fault("504", "status", {"status": 504}, "gateway timeout, not forwarded"),
    "truncate": Fault("truncated body", "truncate", {}, "the proxy acts; its answer is cut off half-way"),
    "unreachable": Fault("connect timeout", "unreachable", {},
                         f"no connection can be made: every connect times out after {CONNECT_TIMEOUT:g} s"),
}


@dataclasses.dataclass(frozen=True)
class Op:
    label: str
    phase: str  # create | read | update | delete
    method: str
    path: str
    auto: bool = False  # auto_create_key
    team: bool = False  # a Team with one TeamMember (TeamWorld), not a UserWithKey
    after: Optional[str] = None  # the call that ends the steps before this one (an unreachable proxy starts there)

    @property
    def endpoint(self) -> str:
        return f"{self.method} {self.path}"


OPS: dict[str, Op] = {
    "create_user": Op("create: the user", "create", "POST", "/user/new"),
    "create_user_auto": Op("create (auto key): the user and its key", "create", "POST", "/user/new", auto=True),
    "create_key": Op("create: the key", "create", "POST", "/key/generate", after="GET /user/info"),
    "create_key_auto": Op("create (auto key): applying the key's settings", "create", "POST", "/key/update", auto=True,
                          after="GET /user/info"),
    "read_user": Op("refresh: the user", "read", "GET", "/user/info"),
    "read_key": Op("refresh: the key", "read", "GET", "/key/info"),  # refresh reads both at once
    "update_user": Op("update: the user", "update", "POST", "/user/update"),
    "update_key": Op("update: the key", "update", "POST", "/key/update"),
    "delete_key": Op("destroy: the key", "delete", "POST", "/key/delete"),
    "delete_user": Op("destroy: the user", "delete", "POST", "/user/delete", after="POST /key/delete"),
    "create_team": Op("create: the team", "create", "POST", "/team/new", team=True),
    "create_member": Op("create: the membership", "create", "POST", "/team/member_add", team=True,
                        after="GET /team/info"),
    "read_team": Op("refresh: the team and the membership", "read", "GET", "/team/info", team=True),
    "update_team": Op("update: the team", "update", "POST", "/team/update", team=True),
    "update_member": Op("update: the membership's budget", "update", "POST", "/team/member_update", team=True,
                        after="GET /team/info"),
    "delete_member": Op("destroy: the membership", "delete", "POST", "/team/member_delete", team=True),
    "delete_team": Op("destroy: the team", "delete", "POST", "/team/delete", team=True,
                      after="POST /team/member_delete"),
}


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What must happen. `calls`: calls to the faulted endpoint (an int, or a (min, max) range when a
    time budget decides); `also`: counts of other endpoints during the operation (ranges allowed)."""

    calls: int | tuple[int, int]
    outcome: str
    succeeds: bool = True
    also: dict[str, int | tuple[int, int]] = dataclasses.field(default_factory=dict)


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
_LOOKED = {"GET /user/info": 2, "POST /user/update": 1}  # look-up + read-back; the marker replaced once
CREATE_USER = {
    "drop_before": Outcome(2, "looked up user_id: absent; created again", also=_LOOKED),
    "drop_after": Outcome(1, "looked up user_id: found, pending: ours, kept (marker replaced), not created again",
                          also=_LOOKED),
    "delay": Outcome(2, "looked up: absent; created again; the late create gets 409", also=_LOOKED),
    "429": Outcome(2, "waited Retry-After, created again (429: nothing happened, no look-up)",
                   also={"GET /user/info": 1, "POST /user/update": 1}),
    "502": Outcome(2, "looked up: absent; created again", also=_LOOKED),
    "503": Outcome(2, "looked up: absent; created again", also=_LOOKED),
    "504": Outcome(2, "looked up: absent; created again", also=_LOOKED),
    "truncate": Outcome(1, "looked up: found, pending: ours, kept", also=_LOOKED),
}
_KEPT_AUTO = {"POST /key/update": 1, "POST /key/generate": 0, "POST /key/delete": 0}
_LOST_AUTO = {"POST /key/delete": 1, "POST /key/generate": 1, "POST /key/update": 1}
CREATE_USER_AUTO = {
    **{fault: dataclasses.replace(expect, also=_KEPT_AUTO) for fault, expect in CREATE_USER.items()},
    "drop_after": Outcome(1, "found the user, ours; its minted key's raw value was lost: deleted it, the Key "
                             "generated one", also=_LOST_AUTO),
    "truncate": Outcome(1, "as drop after: minted key deleted, a new one generated", also=_LOST_AUTO),
}
_ABSENT = {"GET /key/info": 2, "GET /key/list": 1, "POST /key/delete": 0}  # by hash, by alias; read-back
_FOUND = {"GET /key/info": 2, "GET /key/list": 0, "POST /key/delete": 0}  # found by its hash at once
CREATE_KEY = {
    "drop_before": Outcome(2, "looked up the minted key's hash, then the alias: absent; generated again", also=_ABSENT),
    "drop_after": Outcome(1, "looked up the minted key's hash: found, kept (its raw value was minted here)",
                          also=_FOUND),
    "delay": Outcome(2, "looked up: absent; generated again with the same raw key; the late one is refused "
                        "(alias taken)", also=_ABSENT),
    "429": Outcome(2, "waited Retry-After, generated again (no look-up)", also={"GET /key/list": 0, "GET /key/info": 1}),
    "502": Outcome(2, "looked up: absent; generated again", also=_ABSENT),
    "503": Outcome(2, "looked up: absent; generated again", also=_ABSENT),
    "504": Outcome(2, "looked up: absent; generated again", also=_ABSENT),
    "truncate": Outcome(1, "as drop after: found by its hash, kept", also=_FOUND),
}
# The team and its member created in one `up`. /team/info: the team's read-back, the member's read-back,
# plus one look-up after an ambiguous create; /team/update: the team's marker replaced once; the member's
# budget set once with /team/member_update (/team/member_add ignores it).
_TEAM_LOOKED = {"GET /team/info": 3, "POST /team/update": 1, "POST /team/member_update": 1}
_TEAM_NOT_LOOKED = {"GET /team/info": 2, "POST /team/update": 1, "POST /team/member_update": 1}
CREATE_TEAM = {
    "drop_before": Outcome(2, "looked up team_id: absent; created again", also=_TEAM_LOOKED),
    "drop_after": Outcome(1, "looked up team_id: found, pending: ours, kept (marker replaced), not created again",
                          also=_TEAM_LOOKED),
    "delay": Outcome(2, "looked up: absent; created again; the late create is refused (team_id taken)",
                     also=_TEAM_LOOKED),
    "429": Outcome(2, "waited Retry-After, created again (no look-up)", also=_TEAM_NOT_LOOKED),
    "502": Outcome(2, "looked up: absent; created again", also=_TEAM_LOOKED),
    "503": Outcome(2, "looked up: absent; created again", also=_TEAM_LOOKED),
    "504": Outcome(2, "looked up: absent; created again", also=_TEAM_LOOKED),
    "truncate": Outcome(1, "looked up: found, pending: ours, kept", also=_TEAM_LOOKED),
}
CREATE_MEMBER = {
    "drop_before": Outcome(2, "looked the user up in the team: absent; added again", also=_TEAM_LOOKED),
    "drop_after": Outcome(1, "looked up: a member as /team/member_add makes one (no budget): ours, kept",
                          also=_TEAM_LOOKED),
    "delay": Outcome(2, "looked up: absent; added again; the late add is refused (already in team)",
                     also=_TEAM_LOOKED),
    "429": Outcome(2, "waited Retry-After, added again (no look-up)", also=_TEAM_NOT_LOOKED),
    "502": Outcome(2, "looked up: absent; added again", also=_TEAM_LOOKED),
    "503": Outcome(2, "looked up: absent; added again", also=_TEAM_LOOKED),
    "504": Outcome(2, "looked up: absent; added again", also=_TEAM_LOOKED),
    "truncate": Outcome(1, "looked up: a member, no budget: ours, kept", also=_TEAM_LOOKED),
}
# A refresh reads /team/info twice (the team, then the membership); the first read meets the fault.
READ_TEAM = {fault: dataclasses.replace(expect, calls=3) for fault, expect in RETRIED.items()}
TRANSIENT = {
    "create_user": CREATE_USER, "create_user_auto": CREATE_USER_AUTO, "create_key": CREATE_KEY,
    "create_team": CREATE_TEAM, "create_member": CREATE_MEMBER, "read_team": READ_TEAM,
    **{op: RETRIED for op in OPS if op not in ("create_user", "create_user_auto", "create_key", "create_team",
                                               "create_member", "read_team")},
}

# The fault on every matching call: the operation runs out of its retry budget (or, for a lost answer to a
# create, finds its object at once). A failure must say what failed and what the next run does; the next
# `up` (or refresh, or destroy) converges, taking over as ours whatever a late attempt made.
SPENT = (2, RETRY_ATTEMPTS + 1)
SLOW = (1, RETRY_ATTEMPTS + 1)  # each attempt costs a read timeout: the budget may allow only one
FAILS = "fails clearly; the next run converges"
LANDS = "fails, saying an attempt may still land; it does (pending): the next `up` takes it over as ours"
_CREATES = ("create_user", "create_user_auto", "create_key", "create_team", "create_member")
PERSISTENT = {
    "503": {op: Outcome(SPENT, FAILS + (", nothing was created" if op in _CREATES else ""), succeeds=False)
            for op in OPS},
    "drop_after": {
        "create_user": Outcome(1, "the first create landed: found pending, ours, kept (succeeds)"),
        "create_user_auto": Outcome(1, "the first create landed: kept; its minted key deleted, a new one generated "
                                       "(succeeds)"),
        "create_key": Outcome(1, "the first generate landed: found by the minted key's hash, kept (succeeds)"),
        "create_team": Outcome(1, "the first create landed: found pending, ours, kept (succeeds)"),
        "create_member": Outcome(1, "the first add landed: found with no budget, ours, kept (succeeds)"),
        **{op: Outcome(SPENT, FAILS + (" (done already: the proxy answers 404)" if OPS[op].phase == "delete" else ""),
                       succeeds=False)
           for op in OPS if op not in _CREATES},
    },
    "delay": {
        "create_user": Outcome(SLOW, LANDS, succeeds=False),
        "create_user_auto": Outcome(SLOW, LANDS + "; its minted key (raw value lost) deleted, the Key generates one",
                                    succeeds=False),
        "create_key": Outcome(SLOW, LANDS + ": that key (raw value lost) is deleted and the key generated again",
                              succeeds=False),
        "create_team": Outcome(SLOW, LANDS, succeeds=False),
        "create_member": Outcome(SLOW, "fails, saying an attempt may still land; it does (a bare membership): the "
                                       "next `up` carries on with it", succeeds=False),
        **{op: Outcome(SLOW, FAILS + "; the late calls land, harmlessly", succeeds=False)
           for op in OPS if op not in _CREATES},
    },
    "unreachable": {op: Outcome(0, FAILS + (": the request never reached the proxy, nothing was created"
                                            if op in _CREATES else ""), succeeds=False) for op in OPS},
}


# A refresh reads the team and the membership at once, each /team/info meeting the fault on every attempt.
for _table in PERSISTENT.values():
    _calls = _table["read_team"].calls
    _low, _high = _calls if isinstance(_calls, tuple) else (_calls, _calls)
    _table["read_team"] = dataclasses.replace(_table["read_team"], calls=(2 * _low, 2 * _high))


@dataclasses.dataclass(frozen=True)
class Scenario:
    fault: str
    op: str
    times: int
    expect: Outcome

    @property
    def id(self) -> str:
        return f"{self.fault}{'-forever' if self.times == FOREVER else ''}-{self.op}"


SCENARIOS = [Scenario(fault, op, 1, TRANSIENT[op][fault]) for op in OPS for fault in FAULTS if fault != "unreachable"]
SCENARIOS += [Scenario(fault, op, FOREVER, expect) for fault, table in PERSISTENT.items() for op, expect in table.items()]


# ------------------------------------------------------------------------------------------ the run
def declared(uid: str, auto: bool) -> dict[str, Any]:
    """The user as the stack config declares it (the module's other inputs keep their defaults)."""
    return {"user_id": uid, "user_email": f"{uid}@example.org", "user_role": "internal_user", "auto_create_key": auto,
            "models": ["fake-gpt-4o"], "user_models": ["fake-gpt-4o"], "max_budget": 5, "metadata": {"owner": uid}}


# What the proxy must hold, as literals: the declaration above in LiteLLM's terms, with the module's defaults
# (tpm_limit 100000, rpm_limit 1000, max_parallel_requests 100, budget_duration 30d; the alias = user_id).
USER_HOLDS = {"user_role": "internal_user", "models": ["fake-gpt-4o"], "max_budget": 5.0, "tpm_limit": 100000,
              "rpm_limit": 1000}
KEY_HOLDS = {"models": ["fake-gpt-4o"], "max_budget": 5.0, "budget_duration": "30d", "tpm_limit": 100000,
             "rpm_limit": 1000, "max_parallel_requests": 100}
# The one-resource changes of the update cells, and what the proxy holds after them.
USER_CHANGE, USER_CHANGED = {"user_role": "internal_user_viewer", "user_models": ["fake-gpt-4o-mini"]}, {
    "user_role": "internal_user_viewer", "models": ["fake-gpt-4o-mini"]}
KEY_CHANGE, KEY_CHANGED = {"models": ["fake-gpt-4o-mini"], "budget_duration": "7d"}, {
    "models": ["fake-gpt-4o-mini"], "budget_duration": "7d"}


# Every object the stack creates carries its owner mark (the harness runs project litellm-access, stack test).
MARK = {"pulumi_managed_by": "litellm-access/test"}
TEAM_HOLDS = {"models": ["fake-mock"], "max_budget": 20.0, "tpm_limit": 900, "metadata": MARK}


def team_program() -> None:
    """A Team and one TeamMember declared directly (config `litellm:team`), as another program would."""
    config = pulumi.Config("litellm")
    url, token, spec = config.require("url"), config.require_secret("token"), config.require_object("team")
    team = Team("team", TeamArgs(url=url, token=token, **spec["team"]))
    TeamMember("member", TeamMemberArgs(url=url, token=token, team_id=team.team_id, **spec["member"]))


class StackWorld:
    """What both worlds do: the operation, as the engine runs it (also the next run after a failure)."""

    DATA: tuple[str, ...] = ()  # outputs holding the server's own values (not drift)
    op: Op
    stack: Stack

    def run(self) -> None:
        phase = self.op.phase
        if phase == "create":
            self.stack.up()
        elif phase == "read":
            refresh = self.stack.refresh()
            steps = [s for s in refresh.steps if not s.type.endswith(":Ledger")]  # the deletion guard reads nothing
            assert len(steps) == 2, steps  # neither resource dropped
            drift = [name for s in steps for name in s.changed if name not in self.DATA]
            assert drift == [], f"drift after refresh: {drift}"
        elif phase == "update":
            self.change()
            self.stack.config = self._config()
            self.stack.up()
        else:
            self.stack.destroy()

    def change(self) -> None:
        raise NotImplementedError

    def _config(self) -> dict[str, Any]:
        raise NotImplementedError


class TeamWorld(StackWorld):
    """One scenario's team with one member (a user made through the API beforehand), through the real
    plugin: the team, then the membership; destroy in reverse."""

    def __init__(self, api: LiteLLMClient, tap: PassThrough, uid: str, token: str, op: Op, state_dir: Path,
                 env: dict[str, str]) -> None:
        self.api, self.tap, self.op, self.uid, self.token = api, tap, op, uid, token
        self.team_id = f"{uid}-team"
        self.spec = {"team": {"team_id": self.team_id, "team_alias": uid, "models": ["fake-mock"], "max_budget": 20,
                              "tpm_limit": 900},
                     "member": {"user_id": uid, "max_budget_in_team": 4}}
        self.stack = Stack(state_dir, self._config(), program=team_program, plugin_env=clean_env(env))
        self.team_holds, self.member_budget = {**TEAM_HOLDS, "team_alias": uid}, 4.0

    def _config(self) -> dict[str, Any]:
        return {"litellm:url": self.tap.url, "litellm:token": self.token, "litellm:team": self.spec}

    def setup(self) -> None:
        self.api.user_new({"user_id": self.uid, "user_email": f"{self.uid}@example.org", "auto_create_key": False})
        if self.op.phase != "create":
            self.stack.up()
        self.tap.reset()

    DATA = ("team_data", "member_data")

    def change(self) -> None:
        """Both change; the fault is on one of the two updates."""
        self.spec = {"team": {**self.spec["team"], "max_budget": 30, "tpm_limit": 800},
                     "member": {**self.spec["member"], "max_budget_in_team": 6}}
        self.team_holds.update(max_budget=30.0, tpm_limit=800)
        self.member_budget = 6.0

    def check_state(self) -> None:
        """The proxy holds exactly the declared team with exactly the one member and its budget; or no team."""
        assert self.tap.wait_idle(), "a delayed call never finished"
        if self.op.phase == "delete":
            with pytest.raises(NotFound):
                self.api.team_info(self.team_id)
            return
        info = self.api.team_info(self.team_id)
        row = info["team_info"]
        assert {name: row[name] for name in self.team_holds} == self.team_holds
        members = [m["user_id"] for m in row["members_with_roles"] if m["user_id"] != "default_user_id"]
        assert members == [self.uid], "a lost or duplicated membership"
        budget = next(m for m in info["team_memberships"] if m["user_id"] == self.uid)["litellm_budget_table"]
        assert budget["max_budget"] == self.member_budget

    def cleanup(self) -> None:
        self.tap.clear_faults()
        self.tap.wait_idle()
        self.api.team_delete(self.team_id)
        self.api.user_delete(self.uid)


class World(StackWorld):
    """One scenario's stack (the stack program, one user, the real plugin with the engine's environment)
    and the pass-through every call goes through."""

    def __init__(self, api: LiteLLMClient, tap: PassThrough, uid: str, token: str, op: Op, state_dir: Path,
                 env: dict[str, str]) -> None:
        self.api, self.tap, self.op, self.uid, self.token = api, tap, op, uid, token
        self.user = declared(uid, op.auto)
        self.stack = Stack(state_dir, self._config(), plugin_env=clean_env(env))
        self.user_holds, self.key_holds = dict(USER_HOLDS), {**KEY_HOLDS, "metadata": {"owner": uid, **MARK}}

    def _config(self) -> dict[str, Any]:
        return {"litellm:url": self.tap.url, "litellm:token": self.token, "litellm:users": [self.user]}

    def setup(self) -> None:
        """What exists before the operation: nothing for a create, else the deployed UserWithKey."""
        if self.op.phase != "create":
            self.stack.up()
        self.tap.reset()

    DATA = ("user_data", "key_data")

    def change(self) -> None:
        change, holds = (USER_CHANGE, USER_CHANGED) if self.op.path == "/user/update" else (KEY_CHANGE, KEY_CHANGED)
        self.user = {**self.user, **change}
        (self.user_holds if self.op.path == "/user/update" else self.key_holds).update(holds)

    def raw_key(self) -> str:
        return self.stack.outputs["key"][self.uid]

    def check_state(self) -> None:
        """The proxy holds exactly the declared user with exactly one key, the stack's, usable; or nothing."""
        assert self.tap.wait_idle(), "a delayed call never finished"
        if self.op.phase == "delete":
            assert_nothing_left(self.api, self.uid, self.uid)
            return
        live = self.api.user_info(self.uid)["user_info"]
        assert {name: live[name] for name in self.user_holds} == self.user_holds
        assert (live["user_email"], live["user_alias"], live["metadata"]) == (
            f"{self.uid}@example.org", self.uid, {"pulumi_create": "done", **MARK})
        key_hash = token_hash(self.raw_key())  # the raw key the stack holds: the key must be that one
        assert [row["token"] for row in keys_of(self.api, self.uid)] == [key_hash], "orphan or missing key"
        assert [row["token"] for row in self.api.keys_with_alias(self.uid)] == [key_hash]
        info = self.api.key_info(key_hash)["info"]
        assert {name: info[name] for name in self.key_holds} == self.key_holds
        assert info["user_id"] == self.uid

    def cleanup(self) -> None:
        self.tap.clear_faults()
        self.tap.wait_idle()
        try:
            self.api.user_delete(self.uid)
        except LiteLLMError:
            pass
        for row in self.api.keys_with_alias(self.uid):
            self.api.key_delete(row["token"])


def assert_nothing_left(api: LiteLLMClient, user_id: str, alias: str, key_id: str = "") -> None:
    assert not user_exists(api, user_id)
    assert api.keys_with_alias(alias) == []
    assert not key_id or not key_alive(api, key_id)


OPERATIONS = {"/user/new": "create user", "/key/generate": "generate key", "/user/info": "read user",
              "/key/info": "read key", "/user/update": "update user", "/key/update": "update key",
              "/key/delete": "delete key", "/user/delete": "delete user", "/team/new": "create team",
              "/team/info": "read team", "/team/update": "update team", "/team/delete": "delete team",
              "/team/member_add": "add user '[^']+' to team", "/team/member_update": "update user '[^']+' in team",
              "/team/member_delete": "remove user '[^']+' from team"}
CREATE_PATHS = ("/user/new", "/key/generate", "/team/new", "/team/member_add")


def assert_clear_error(text: str, op: Op, fault: Fault, secrets: list[str]) -> None:
    """The plugin's error names the operation and the object, what went wrong, and never a secret; a
    create that gave up says what the next `up` does, and never that nothing was left behind."""
    # An unreachable proxy fails the operation's first call, which may be a look-up before the faulted one.
    operation = "[a-z ]+" if fault.kind == "unreachable" else OPERATIONS[op.path]
    assert re.search(rf"{operation} ('[^']+'|[0-9a-f]{{12}}\.\.\.) failed \(", text), text
    if fault.kind == "status":
        assert f"HTTP {fault.options['status']}" in text and f"injected {fault.options['status']}" in text, text
    elif fault.kind == "unreachable":
        assert "no response" in text and "timed out connecting to the proxy" in text, text
    else:
        assert "no response" in text and op.path in text, text
    if op.path in CREATE_PATHS:
        assert "left behind" not in text, text
        if fault.kind in ("delay", "status"):
            assert "may still land: the next `pulumi up`" in text, text
        if fault.kind == "unreachable" and re.search(OPERATIONS[op.path], text):
            assert "was not created: run `pulumi up` again" in text, text
    for secret in secrets:
        assert secret not in text


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.id)
def test_fault(scenario: Scenario, tmp_path, litellm, api, tap, unique) -> None:
    op, fault, expect = OPS[scenario.op], FAULTS[scenario.fault], scenario.expect
    world = (TeamWorld if op.team else World)(api, tap, unique, litellm.master_key, op, tmp_path,
                                              env_for(scenario.fault))
    try:
        world.setup()
        if fault.kind == "unreachable":
            tap.stall_connections(after=tuple(op.after.split(" ")) if op.after else None)  # type: ignore[arg-type]
        else:
            tap.inject(fault.kind, method=op.method, path=op.path, times=scenario.times, **fault.options)
        error: Optional[str] = None
        try:
            world.run()
        except (EngineError, PluginError) as err:
            error = getattr(err, "details", None) or str(err)
        tap.resume_connections()
        assert tap.wait_idle()

        calls = tap.count(method=op.method, path=op.path)
        low, high = expect.calls if isinstance(expect.calls, tuple) else (expect.calls, expect.calls)
        assert low <= calls <= high, f"{calls} calls to {op.endpoint}, expected {expect.calls}"
        for endpoint, count in expect.also.items():
            method, path = endpoint.split(" ")
            low, high = count if isinstance(count, tuple) else (count, count)
            assert low <= tap.count(method=method, path=path) <= high, f"{endpoint}: {tap.calls}"

        if expect.succeeds:
            assert error is None, f"expected success, got: {error}"
        else:
            assert error is not None, "expected the operation to fail once its retry budget was spent"
            assert_clear_error(error, op, fault, [litellm.master_key])
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
    columns = [(fault, 1) for fault in FAULTS if fault != "unreachable"] + [(fault, FOREVER) for fault in PERSISTENT]

    def expect(op: str, fault: str, times: int) -> Outcome:
        return TRANSIENT[op][fault] if times == 1 else PERSISTENT[fault][op]

    def label(fault: str, times: int) -> str:
        every = fault != "unreachable" and times == FOREVER
        return FAULTS[fault].label + (", every call" if every else "")

    lines = [BEGIN, "",
             f"Settings: connect timeout {CONNECT_TIMEOUT:g} s, read timeout {READ_TIMEOUT:g} s, retry budget "
             f"{RETRY_BUDGET:g} s, at most {RETRY_ATTEMPTS} retries, back-off {RETRY_BACKOFF:g} s doubling; for the "
             f"faults other than delay, read timeout and retry budget {CALM_READ_TIMEOUT:g} s (they do not depend on "
             "them, and a loaded machine's real answers must not time out). Every "
             "scenario runs through the stack program and the real plugin. Calls: calls that reached the faulted "
             "endpoint (dropped ones included). \"ok\": the operation succeeded and the proxy holds exactly what "
             "is declared; \"fails, next run ok\": the retry budget ran out, the error says what failed and what "
             "the next run does, and the next `up`/refresh/destroy converges: exactly the declared user with "
             "exactly one usable key, or nothing after a destroy.", ""]
    lines += ["Faults:", ""] + [f"- **{f.label}**: {f.simulates}" for f in FAULTS.values()]
    lines += ["- **..., every call**: the same fault on every matching call, so the retry budget runs out (delay, "
              "every call: a persistently slow proxy)", ""]
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
    """The matrix is complete: each fault once on each operation, and every persistent fault (a slow and an
    unreachable proxy included) on every operation."""
    pairs = {(s.fault, s.op) for s in SCENARIOS if s.times == 1}
    assert pairs == {(fault, op) for fault in FAULTS for op in OPS if fault != "unreachable"}
    for fault in PERSISTENT:
        assert {s.op for s in SCENARIOS if s.times == FOREVER and s.fault == fault} == set(OPS)
    assert re.fullmatch(r"[a-z_0-9]+", "".join(OPS)), "operation ids are used in test ids"


# ------------------------------------------------------------------------------- retry policy, directly
@pytest.fixture
def small_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    """The matrix's timeouts and budget for a client in this process."""
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)


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
@pytest.mark.long
def test_fifty_in_parallel_through_the_plugin(tmp_path, litellm, api, tap, unique) -> None:
    """50 UserWithKey (half of them in auto-key mode) through the real dynamic-provider plugin and the
    stack program, `up --parallel 10` and `destroy --parallel 10` as the engine stand-in runs them."""
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
            raw = state.outputs["key"][uid]
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
