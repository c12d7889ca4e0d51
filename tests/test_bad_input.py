"""The bad-input catalogue: every input of UserWithKeyArgs, TeamArgs and TeamMemberArgs, given values it must refuse. Each is rejected
before any API call, with a message naming the input, showing the value (never a secret) and saying what
is accepted, at three layers:

- the component: `UserWithKey(...)` raises at construction (plain values; so `pulumi preview` fails);
- the providers: `check` (what the engine calls at preview) refuses the value in the resource field the
  input maps to, for values that are Outputs at construction time or for a bare User/Key; a pass-through
  in front of the real proxy proves no call was made;
- the stack program: `validate_users` refuses bad entries and collisions between the users of one stack,
  and `validate_teams` / `validate_team_keys` bad `litellm:teams` entries and team keys LiteLLM would refuse.

docs/bad-input.md is generated from this catalogue, with the messages the code really gives
(UPDATE_DOCS=1 rewrites it; `test_docs_match_the_catalogue` fails when they differ).
"""

from __future__ import annotations

import dataclasses
import math
import socket
from pathlib import Path
from typing import Any, Optional

import pulumi
import pytest

from components import UserWithKey, UserWithKeyArgs
from providers import TeamArgs, TeamMemberArgs
from providers.key import KeyProvider
from providers.team import TeamProvider
from providers.team_member import TeamMemberProvider
from providers.user import UserProvider
from support.generated_docs import assert_section_current
from support.mocks import RecordingMonitor
from support.stack import _Echo, program_namespace, wire

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "bad-input.md"
TOKEN = "sk-catalogue-admin-token-7f3a9c"
USER, KEY = UserProvider(), KeyProvider()

# Which resource fields each module input reaches (through the component's wiring).
REACHES: dict[str, list[tuple[str, str]]] = {
    "url": [("User", "url"), ("Key", "url")],
    "token": [("User", "token"), ("Key", "token")],
    "user_id": [("User", "user_id"), ("Key", "user_id")],
    "user_email": [("User", "user_email")],
    "user_role": [("User", "user_role")],
    "user_alias": [("User", "user_alias")],
    "user_models": [("User", "models")],
    "user_max_budget": [("User", "max_budget")],
    "models": [("Key", "models")],
    "max_budget": [("Key", "max_budget"), ("User", "max_budget")],
    "tpm_limit": [("User", "tpm_limit"), ("Key", "tpm_limit")],
    "rpm_limit": [("User", "rpm_limit"), ("Key", "rpm_limit")],
    "max_parallel_requests": [("Key", "max_parallel_requests")],
    "spend": [("Key", "spend")],
    "duration": [("Key", "duration")],
    "budget_duration": [("Key", "budget_duration")],
    "metadata": [("Key", "metadata")],
    "model_max_budget": [("Key", "model_max_budget")],
    "team_id": [("Key", "team_id")],
    "key_alias": [("Key", "key_alias"), ("User", "key_alias")],
    "auto_create_key": [("User", "auto_create_key")],
    "adopt_existing": [("User", "adopt_existing"), ("Key", "adopt_existing")],
    "rotate_after": [("Key", "rotate_after")],
    "rotation_trigger": [("Key", "rotation_trigger")],
    "rotation_grace": [("Key", "rotation_grace")],
    "blocked": [("Key", "blocked")],
    "teams": [],  # plain team ids only (they name the memberships): checked at construction, each entry by
                  # TeamMember.team_id's check (TEAM_CATALOGUE) once registered
}


@dataclasses.dataclass(frozen=True)
class Bad:
    arg: str
    value: Any
    accepted: str  # what the message must say is accepted (a fragment)
    why: str

    def shown(self) -> str:
        """How the value must appear in the message."""
        if self.arg == "token":
            return "[secret]"
        text = repr(self.value).replace("admin:hunter2@", "[credentials]@")
        return text if len(text) <= 80 else text[:77]


URL = "the proxy's root URL"
ID = "a string of 1 to 256 characters"
TEXT = "a non-blank string"
NUMBER = "a number >= 0"
FINITE = "a finite number >= 0"
WHOLE = "a whole number >= 0"
DURATION = "a LiteLLM duration: <number><s|m|h|d|w|mo>"
MODELS = "a list of non-blank strings"
MAP = "a map with string keys"
BUDGETS = "a map of model name to a budget"
BOOL = "true or false"
TEAMS = "a list of distinct team ids (strings of 1 to 256 characters), such as ['research']"
ROLE = "one of proxy_admin, proxy_admin_viewer, internal_user, internal_user_viewer"
EMAIL = "an email address such as 'name@example.org'"
TOKEN_OK = "a non-empty LiteLLM master key or admin key"
NO_CONTROL = "a string without control characters"

CATALOGUE: list[Bad] = [
    Bad("url", "proxy.example.org:4000", URL, "no scheme"),
    Bad("url", "http://proxy.example.org:4000/api", URL, "a path that is not the proxy root"),
    Bad("url", "http://proxy.example.org:4000/?debug=1", URL, "a query string"),
    Bad("url", "ftp://proxy.example.org", URL, "not http(s)"),
    Bad("url", "http://admin:hunter2@proxy.example.org", URL, "credentials in the URL (never shown)"),
    Bad("url", "http://proxy.example.org:99999", URL, "a port out of range"),
    Bad("url", "", URL, "empty"),
    Bad("url", 4000, URL, "wrong type"),
    Bad("token", "", TOKEN_OK, "empty token"),
    Bad("token", "   ", TOKEN_OK, "blank token"),
    Bad("token", 12345, TOKEN_OK, "wrong type"),
    Bad("token", "sk-admin\ntoken", TOKEN_OK, "control character (never shown)"),
    Bad("user_id", "", TEXT, "empty id"),
    Bad("user_id", "   ", TEXT, "blank id"),
    Bad("user_id", "u" * 300, "at most 256 characters", "oversized"),
    Bad("user_id", "bob\x00", NO_CONTROL, "control character"),
    Bad("user_id", 42, ID, "wrong type"),
    Bad("user_email", "not-an-email", EMAIL, "malformed email"),
    Bad("user_email", "bob@localhost", EMAIL, "no domain"),
    Bad("user_email", "bob smith@example.org", EMAIL, "a space"),
    Bad("user_email", ["bob@example.org"], EMAIL, "wrong type"),
    Bad("user_email", "", TEXT, "empty"),
    Bad("user_role", "owner", ROLE, "unknown role"),
    Bad("user_role", "PROXY_ADMIN", ROLE, "wrong case"),
    Bad("user_role", "", ROLE, "empty"),
    Bad("user_role", 1, ROLE, "wrong type"),
    Bad("user_alias", "", TEXT, "empty"),
    Bad("user_alias", "a" * 257, "at most 256 characters", "oversized"),
    Bad("user_alias", "tab\there", NO_CONTROL, "control character"),
    Bad("user_models", "fake-gpt-4o", MODELS, "a string, not a list"),
    Bad("user_models", [None], MODELS, "not strings"),
    Bad("models", ["fake-gpt-4o", 5], MODELS, "not all strings"),
    Bad("models", [""], MODELS, "a blank model name"),
    Bad("models", {"fake-gpt-4o": 1}, MODELS, "a map, not a list"),
    Bad("models", ["m" * 300], "at most 256 characters", "an oversized model name"),
    Bad("max_budget", -1, NUMBER, "negative"),
    Bad("max_budget", math.nan, FINITE, "not a number"),
    Bad("max_budget", math.inf, FINITE, "infinite"),
    Bad("max_budget", "10", NUMBER, "a string"),
    Bad("max_budget", True, NUMBER, "a boolean"),
    Bad("user_max_budget", -0.01, NUMBER, "negative"),
    Bad("user_max_budget", -math.inf, FINITE, "minus infinity"),
    Bad("tpm_limit", -5, NUMBER, "negative"),
    Bad("tpm_limit", 1.5, WHOLE, "not whole"),
    Bad("tpm_limit", "100k", NUMBER, "a string"),
    Bad("rpm_limit", math.inf, FINITE, "infinite"),
    Bad("rpm_limit", -1, NUMBER, "negative"),
    Bad("max_parallel_requests", -1, NUMBER, "negative"),
    Bad("max_parallel_requests", 2.5, WHOLE, "not whole"),
    Bad("spend", -1, NUMBER, "negative"),
    Bad("spend", math.nan, FINITE, "not a number"),
    Bad("duration", "30", DURATION, "a bare number"),
    Bad("duration", "forever", DURATION, "a word"),
    Bad("duration", "-1d", DURATION, "negative"),
    Bad("duration", "0d", DURATION, "zero"),
    Bad("duration", 30, DURATION, "a number, not a string"),
    Bad("budget_duration", "1y", DURATION, "an unknown unit"),
    Bad("budget_duration", "30 d", DURATION, "a space"),
    Bad("metadata", "team=research", MAP, "a string, not a map"),
    Bad("metadata", [["team", "research"]], MAP, "a list, not a map"),
    Bad("metadata", {1: "a"}, MAP, "a key that is not a string"),
    Bad("model_max_budget", {"fake-gpt-4o": -1}, BUDGETS + " (a number >= 0) or {budget_limit, time_period}; for 'fake-gpt-4o': a number >= 0", "a negative budget"),
    Bad("model_max_budget", "fake-gpt-4o=1", BUDGETS, "a string, not a map"),
    Bad("model_max_budget", {"fake-gpt-4o": {"budget_limit": 1, "time_period": "forever"}}, "for 'fake-gpt-4o': " + DURATION,
        "a malformed period"),
    Bad("team_id", "", TEXT, "empty"),
    Bad("team_id", 7, ID, "wrong type"),
    Bad("key_alias", "", TEXT, "empty alias"),
    Bad("key_alias", "k" * 300, "at most 256 characters", "oversized"),
    Bad("key_alias", "line\nbreak", NO_CONTROL, "control character"),
    Bad("auto_create_key", "yes", BOOL, "a string"),
    Bad("auto_create_key", 1, BOOL, "a number"),
    Bad("adopt_existing", "true", BOOL, "a string"),
    Bad("rotate_after", "90", DURATION, "a bare number"),
    Bad("rotate_after", "0d", DURATION, "zero"),
    Bad("rotate_after", 90, DURATION, "a number, not a string"),
    Bad("rotation_trigger", "", TEXT, "empty"),
    Bad("rotation_trigger", 20261201, ID, "a number, not a string"),
    Bad("rotation_grace", "1 day", DURATION, "words"),
    Bad("rotation_grace", "-5m", DURATION, "negative"),
    Bad("blocked", "yes", BOOL, "a string"),
    Bad("blocked", 1, BOOL, "a number"),
    Bad("blocked", [True], BOOL, "a list"),
    Bad("teams", "research", TEAMS, "a string, not a list"),
    Bad("teams", [""], TEAMS + "; teams[0] must be a non-blank string", "a blank team id"),
    Bad("teams", ["red", "red"], TEAMS + "; teams[1] 'red' is listed twice", "the same team twice"),
    Bad("teams", ["red", 7], "; teams[1] must be " + ID, "an id that is not a string"),
]


@dataclasses.dataclass(frozen=True)
class BadTeam:
    """A bad value of a Team or TeamMember input, refused by that resource's `check`."""

    resource: str
    arg: str
    value: Any
    accepted: str
    why: str

    def shown(self) -> str:
        return "[secret]" if self.arg == "token" else repr(self.value)[:77]


ENTERPRISE = "'user': a team 'admin' needs LiteLLM Enterprise"
TEAM_CATALOGUE: list[BadTeam] = [
    BadTeam("Team", "url", "ftp://proxy.example.org", URL, "not http(s)"),
    BadTeam("Team", "token", "", TOKEN_OK, "empty token"),
    BadTeam("Team", "team_id", "", TEXT, "empty id"),
    BadTeam("Team", "team_id", 7, ID, "wrong type"),
    BadTeam("Team", "team_id", "t" * 300, "at most 256 characters", "oversized"),
    BadTeam("Team", "team_alias", "", TEXT, "empty alias"),
    BadTeam("Team", "team_alias", "line\nbreak", NO_CONTROL, "control character"),
    BadTeam("Team", "models", "fake-mock", MODELS, "a string, not a list"),
    BadTeam("Team", "models", ["fake-mock", 1], MODELS, "not all strings"),
    BadTeam("Team", "max_budget", -1, NUMBER, "negative"),
    BadTeam("Team", "max_budget", math.nan, FINITE, "not a number"),
    BadTeam("Team", "max_budget", "100", NUMBER, "a string"),
    BadTeam("Team", "budget_duration", "1y", DURATION, "an unknown unit"),
    BadTeam("Team", "tpm_limit", -1, NUMBER, "negative"),
    BadTeam("Team", "tpm_limit", 1.5, WHOLE, "not whole"),
    BadTeam("Team", "rpm_limit", "60", NUMBER, "a string"),
    BadTeam("Team", "max_parallel_requests", -2, NUMBER, "negative"),
    BadTeam("Team", "metadata", "cost_center=42", MAP, "a string, not a map"),
    BadTeam("Team", "adopt_existing", "yes", BOOL, "a string"),
    BadTeam("Team", "blocked", "true", BOOL, "a string"),
    BadTeam("Team", "blocked", 0, BOOL, "a number"),
    BadTeam("TeamMember", "url", "http://proxy.example.org/ui", URL, "a path"),
    BadTeam("TeamMember", "token", 12345, TOKEN_OK, "wrong type"),
    BadTeam("TeamMember", "team_id", "", TEXT, "empty team id"),
    BadTeam("TeamMember", "user_id", 5, ID, "wrong type"),
    BadTeam("TeamMember", "user_id", "bob\x00", NO_CONTROL, "control character"),
    BadTeam("TeamMember", "role", "admin", ENTERPRISE, "a team admin: LiteLLM Enterprise only"),
    BadTeam("TeamMember", "role", "owner", "one of 'user' ('admin' needs LiteLLM Enterprise)", "unknown role"),
    BadTeam("TeamMember", "role", "", "one of 'user'", "empty"),
    BadTeam("TeamMember", "max_budget_in_team", -1, NUMBER, "negative"),
    BadTeam("TeamMember", "max_budget_in_team", math.inf, FINITE, "infinite"),
    BadTeam("TeamMember", "adopt_existing", 1, BOOL, "a number"),
]
TEAM_PROVIDERS = {"Team": TeamProvider(), "TeamMember": TeamMemberProvider()}
GOOD_TEAM_INPUTS = {
    "Team": {"url": "http://proxy.test:4000", "token": TOKEN, "team_id": "red"},
    "TeamMember": {"url": "http://proxy.test:4000", "token": TOKEN, "team_id": "red", "user_id": "ann"},
}


@dataclasses.dataclass(frozen=True)
class BadStack:
    """litellm:users entries that are fine one by one but not together in one stack."""

    why: str
    users: list[dict[str, Any]]
    says: str  # a fragment of the message
    teams: list[dict[str, Any]] = dataclasses.field(default_factory=list)


def _user(user_id: str, **extra: Any) -> dict[str, Any]:
    return {"user_id": user_id, "user_email": f"{user_id}@example.org", **extra}


STACK_CATALOGUE = [
    BadStack("two users declare the same key_alias", [_user("ann", key_alias="shared"), _user("bob", key_alias="shared")],
             "litellm:users[1] (user_id 'bob'): key_alias 'shared' is already used by litellm:users[0]; "),
    BadStack("a key_alias equal to another user's default alias (its user_id)", [_user("ann"), _user("bob", key_alias="ann")],
             "litellm:users[1] (user_id 'bob'): key_alias 'ann' is already used by litellm:users[0]; "),
    BadStack("the same user_id twice", [_user("ann"), {**_user("ann"), "user_email": "other@example.org"}],
             "litellm:users[1] (user_id 'ann'): user_id 'ann' is already used by litellm:users[0]; "),
    BadStack("the same email, differing in case", [_user("ann"), {**_user("bob"), "user_email": "ANN@example.org"}],
             "litellm:users[1] (user_id 'bob'): user_email 'ann@example.org' is already used by litellm:users[0]; "),
    BadStack("an input the module does not have", [_user("ann", user_name="Ann")],
             "litellm:users[0] (user_id 'ann'): unknown input 'user_name'; accepted: adopt_existing, "),
    BadStack("a misspelt input", [_user("ann", max_budgt=5)],
             "litellm:users[0] (user_id 'ann'): unknown input 'max_budgt'; did you mean 'max_budget'?"),
    BadStack("a bad value, named by its entry", [_user("ann"), _user("bob"), _user("dan"), _user("carol", max_budget=-5)],
             "litellm:users[3] (user_id 'carol'): max_budget must be a number >= 0; got -5"),
    BadStack("a user without user_email", [{"user_id": "ann"}], "litellm:users[0] (user_id 'ann'): user_email is required: an email address"),
    BadStack("a team without team_id", [], "litellm:teams[0]: team_id is required: a string of 1 to 256 characters",
             teams=[{"team_alias": "Red"}]),
    BadStack("a team input TeamArgs does not have", [], "litellm:teams[0] (team_id 'red'): unknown input 'budget'; did you mean 'max_budget'?",
             teams=[{"team_id": "red", "budget": 5}]),
    BadStack("a bad team value, named by its entry", [], "litellm:teams[0] (team_id 'red'): max_budget must be a number >= 0; got -1",
             teams=[{"team_id": "red", "max_budget": -1}]),
    BadStack("the same team_id twice", [], "litellm:teams[1] (team_id 'red'): team_id 'red' is already used by litellm:teams[0]",
             teams=[{"team_id": "red"}, {"team_id": "red", "name": "red2"}]),
    BadStack("a user's kill switch that is not true or false", [_user("ann", blocked="no")],
             "litellm:users[0] (user_id 'ann'): blocked must be true or false; got 'no'"),
    BadStack("a team's kill switch that is not true or false", [],
             "litellm:teams[0] (team_id 'red'): blocked must be true or false; got 'yes'",
             teams=[{"team_id": "red", "blocked": "yes"}]),
    BadStack("a key in a team of the stack whose user is not a member", [_user("ann", team_id="red")],
             "litellm:users[0] (user_id 'ann'): the key's team_id 'red' is a team of this stack the user is not "
             "a member of; add 'red' to the user's teams", teams=[{"team_id": "red"}]),
    BadStack("a key above its team's rpm limit", [_user("ann", team_id="red", teams=["red"], rpm_limit=100)],
             "the key's rpm_limit 100 is above its team 'red''s rpm_limit 10", teams=[{"team_id": "red", "rpm_limit": 10}]),
    BadStack("a key whose default tpm limit is above its team's", [_user("ann", team_id="red", teams=["red"])],
             "the key's tpm_limit 100000 is above its team 'red''s tpm_limit 500", teams=[{"team_id": "red", "tpm_limit": 500}]),
]


# --------------------------------------------------------------------------------------- helpers
def good_args(url: str, user_id: str = "catalogue-user") -> UserWithKeyArgs:
    return UserWithKeyArgs(url=url, token=TOKEN, user_id=user_id, user_email=f"{user_id}@example.org",
                           user_role="internal_user", models=["fake-gpt-4o"], user_models=["fake-gpt-4o"])


def good_resource_inputs(url: str) -> dict[str, dict[str, Any]]:
    """The inputs the component gives User and Key for good args (its own wiring, through the providers' check)."""
    user, key = wire(good_args(url))
    return {"User": user, "Key": key}


def provider_failures(url: str, bad: Bad) -> list[tuple[str, str, list[tuple[str, str]]]]:
    """(resource, field, failures) for each resource field the input reaches, with the bad value in it."""
    providers = {"User": USER, "Key": KEY}
    base = good_resource_inputs(url)
    out = []
    for resource, field in REACHES[bad.arg]:
        result = providers[resource].check({}, {**base[resource], field: bad.value})
        out.append((resource, field, [(f.property, f.reason) for f in result.failures]))
    return out


def component_error(bad: Bad, url: str = "http://proxy.test:4000") -> tuple[Optional[str], list[str]]:
    """The message UserWithKey raises at construction for the bad value (None if it accepts it), and the
    custom resources it registered before that."""
    mocks = _Echo()
    monitor = RecordingMonitor(mocks)
    pulumi.runtime.set_mocks(mocks, preview=True, monitor=monitor)
    try:
        UserWithKey("catalogue", dataclasses.replace(good_args(url), **{bad.arg: bad.value}))
    except ValueError as err:
        return str(err), [r.type for r in monitor.requests if r.type.startswith("pulumi-python:dynamic")]
    return None, [r.type for r in monitor.requests if r.type.startswith("pulumi-python:dynamic")]


def stack_error(case: BadStack) -> Optional[str]:
    program = program_namespace()
    try:
        teams = program["validate_teams"](case.teams)
        program["validate_team_keys"](teams, program["validate_users"](case.users))
    except ValueError as err:
        return str(err)
    return None


def _ids(bad: Bad) -> str:
    return f"{CATALOGUE.index(bad):02d}-{bad.arg}-{bad.why.replace(' ', '_')}"


def assert_no_secret(message: str, bad: Bad) -> None:
    assert TOKEN not in message
    if bad.arg == "token" and isinstance(bad.value, str) and bad.value.strip():
        assert bad.value not in message and bad.value.strip() not in message
    assert "hunter2" not in message


# ------------------------------------------------------------------------------------------ tests
def test_the_catalogue_covers_every_input() -> None:
    inputs = {f.name for f in dataclasses.fields(UserWithKeyArgs)}
    assert len(CATALOGUE) >= 40
    assert {b.arg for b in CATALOGUE} == inputs == set(REACHES)
    assert any(case.says and "key_alias" in case.says for case in STACK_CATALOGUE)
    for resource, args in (("Team", TeamArgs), ("TeamMember", TeamMemberArgs)):
        assert {b.arg for b in TEAM_CATALOGUE if b.resource == resource} == {f.name for f in dataclasses.fields(args)}


@pytest.mark.parametrize("bad", CATALOGUE, ids=_ids)
def test_the_component_rejects_it_at_construction(bad: Bad) -> None:
    message, registered = component_error(bad)
    assert message is not None, f"UserWithKey accepted {bad.arg}={bad.value!r}"
    assert message.startswith(f"UserWithKey 'catalogue': {bad.arg} must be "), message
    assert bad.accepted in message and f"got {bad.shown()}" in message, message
    assert_no_secret(message, bad)
    assert registered == [], "a resource was registered before the value was rejected"


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every connection attempt this process makes (to any host), refused and recorded."""
    attempts: list[Any] = []

    def refuse(_sock: socket.socket, address: Any) -> None:
        attempts.append(address)
        raise ConnectionRefusedError("no network during check")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    return attempts


@pytest.mark.parametrize("bad", [b for b in CATALOGUE if REACHES[b.arg]], ids=_ids)
def test_check_rejects_it_before_any_call(bad: Bad, no_network) -> None:
    """The engine calls check at preview; a bare User/Key, or an Output value, is refused there, without
    trying to reach any host (a call would be recorded, and would fail)."""
    for resource, field, failures in provider_failures("http://127.0.0.1:9", bad):
        assert [prop for prop, _ in failures] == [field], f"{resource}.{field}: {failures}"
        reason = failures[0][1]
        assert reason.startswith(f"{field} must be ") and bad.accepted in reason, reason
        assert f"got {bad.shown()}" in reason, reason
        assert_no_secret(reason, bad)
    assert no_network == []


@pytest.mark.parametrize("bad", TEAM_CATALOGUE, ids=lambda b: f"{b.resource}-{b.arg}-{b.why.replace(' ', '_')}")
def test_team_and_membership_check_rejects_it_before_any_call(bad: BadTeam, no_network) -> None:
    """Bad Team/TeamMember inputs are refused by `check` (what preview calls), naming the field, without
    trying to reach any host."""
    inputs = {**GOOD_TEAM_INPUTS[bad.resource], bad.arg: bad.value}
    failures = [(f.property, f.reason) for f in TEAM_PROVIDERS[bad.resource].check({}, inputs).failures]
    assert [prop for prop, _ in failures] == [bad.arg], failures
    reason = failures[0][1]
    assert reason.startswith(f"{bad.arg} must be ") and bad.accepted in reason, reason
    assert f"got {bad.shown()}" in reason and TOKEN not in reason, reason
    assert no_network == []


@pytest.mark.parametrize("case", STACK_CATALOGUE, ids=lambda c: c.why.replace(" ", "_"))
def test_the_stack_program_rejects_collisions(case: BadStack) -> None:
    message = stack_error(case)
    assert message is not None and case.says in message, message


def test_each_input_alone_is_accepted(tap) -> None:
    """The catalogue's base is valid: a failure above is the bad value's, not the base's."""
    assert component_error(Bad("user_id", "catalogue-user", "", "good"))[0] is None
    for resource, inputs in good_resource_inputs(tap.url).items():
        provider = USER if resource == "User" else KEY
        assert provider.check({}, inputs).failures == []
    for resource, inputs in GOOD_TEAM_INPUTS.items():
        assert TEAM_PROVIDERS[resource].check({}, inputs).failures == []
    assert component_error(Bad("teams", ["red", "blue"], "", "good"))[0] is None
    good_teams = [{"team_id": "red", "tpm_limit": 1000, "rpm_limit": 1000}]
    assert stack_error(BadStack("good", [_user("ann", team_id="red", teams=["red"], tpm_limit=1000)], "",
                                teams=good_teams)) is None
    assert stack_error(BadStack("good", [_user("ann"), _user("bob", key_alias="bob-key")], "")) is None


@pytest.mark.parametrize("field", ["url", "token", "user_id", "user_email"])
def test_a_missing_required_input_says_what_is_accepted(field: str) -> None:
    message, _ = component_error(Bad(field, None, "", "missing"))
    assert message is not None and message.startswith(f"UserWithKey 'catalogue': {field} is required: "), message
    assert len(message) > len(f"UserWithKey 'catalogue': {field} is required: ") + 10


# -------------------------------------------------------------------------------- documentation
BEGIN, END = "<!-- bad-input catalogue: generated by tests/test_bad_input.py -->", "<!-- end of catalogue -->"


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def catalogue_markdown() -> str:
    lines = [BEGIN, "", f"{len(CATALOGUE)} bad values across all {len(REACHES)} inputs of `UserWithKeyArgs`, "
             f"and {len(STACK_CATALOGUE)} stack-level errors. The messages are the code's own, produced when "
             "this page was generated.", "",
             "| # | input | bad value | why | `UserWithKey(...)` raises | `check` of (resource field) |",
             "|---|---|---|---|---|---|"]
    for i, bad in enumerate(CATALOGUE):
        message, _ = component_error(bad)
        checks = provider_failures("http://proxy.test:4000", bad)
        fields = ", ".join(f"{resource}.{field}" for resource, field, _ in checks)
        value = "[secret]" if bad.arg == "token" else bad.shown() + ("..." if len(repr(bad.value)) > 80 else "")
        check = f"{fields}: {_cell(checks[0][2][0][1] if checks[0][2] else 'ACCEPTED')}" if checks else "(plain values only)"
        lines.append(f"| {i + 1} | `{bad.arg}` | `{_cell(value)}` | {bad.why} | {_cell(message)} | {check} |")
    lines += ["", f"{len(TEAM_CATALOGUE)} bad values of `TeamArgs` and `TeamMemberArgs`, refused by the resource's `check`:",
              "", "| # | resource | input | bad value | why | `check` says |", "|---|---|---|---|---|---|"]
    for i, bad in enumerate(TEAM_CATALOGUE):
        inputs = {**GOOD_TEAM_INPUTS[bad.resource], bad.arg: bad.value}
        reason = TEAM_PROVIDERS[bad.resource].check({}, inputs).failures[0].reason
        lines.append(f"| {i + 1} | {bad.resource} | `{bad.arg}` | `{_cell(bad.shown())}` | {bad.why} | {_cell(reason)} |")
    lines += ["", "Stack level (`__main__.py` `validate_teams`, `validate_users`, `validate_team_keys`, at preview, "
              "before any resource is registered; `scripts/check` gives the same offline):", "",
              "| # | case | error |", "|---|---|---|"]
    for i, case in enumerate(STACK_CATALOGUE):
        lines.append(f"| {i + 1} | {case.why} | {_cell(stack_error(case))} |")
    return "\n".join(lines + ["", END])


def test_docs_match_the_catalogue() -> None:
    assert_section_current(DOC, catalogue_markdown(), BEGIN, END, Path(__file__).name)
