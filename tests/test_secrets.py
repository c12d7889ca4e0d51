"""The admin token and every raw key never appear in plain text: not in errors (message, repr, traceback,
exception chain), warnings or logs, repr()/str() of the providers, args and client, the pickled provider,
the URLs the client requests, the proxy's own log, or the state the engine stand-in writes.

Each scan has a positive control (the thing scanned holds something known from the same run), so a scan of
the wrong place cannot pass by accident.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import http.server
import json
import logging
import socket
import threading
import traceback
import warnings
from pathlib import Path
from typing import Any, Callable, ContextManager, Iterable, Iterator, Optional

import pytest

from components import UserWithKeyArgs
from components.user_with_key import validate
from harness import EngineError, Stack, clean_env
from providers import KeyArgs, TeamArgs, TeamMemberArgs, TeamMemberProvider, TeamProvider, UserArgs
from providers.base import LiteLLMProvider
from providers.client import ClientSettings, LiteLLMClient, LiteLLMError, token_hash
from providers.key import KeyProvider, mint_key
from providers.user import UserProvider
from support import stack
from support.passthrough import PassThrough

USERS, KEYS = UserProvider(), KeyProvider()


def leaks(text: str, secrets: Iterable[Optional[str]]) -> list[str]:
    """Which secrets (by position, never the value) appear in `text`."""
    return [f"secret #{i}" for i, secret in enumerate(secrets) if secret and secret in text]


def everything_about(err: BaseException) -> str:
    """All an error can show: message, repr, formatted traceback, and the same for its whole chain."""
    parts = []
    seen: set[int] = set()
    current: Optional[BaseException] = err
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        parts += [str(current), repr(current), "".join(traceback.format_exception(current)),
                  repr(vars(current)) if hasattr(current, "__dict__") else ""]
        current = current.__cause__ or current.__context__
    return "\n".join(parts)


@pytest.fixture
def small_budget(monkeypatch: pytest.MonkeyPatch) -> Callable[[], ContextManager[pytest.MonkeyPatch]]:
    """Small timeouts and budget while the failing call runs, and only then: the users it fails on are
    created with the default ones, which a loaded machine needs (the suite runs tests in parallel)."""

    @contextlib.contextmanager
    def small() -> Iterator[pytest.MonkeyPatch]:
        with monkeypatch.context() as patched:
            for name, value in (("LITELLM_CONNECT_TIMEOUT", "1"), ("LITELLM_READ_TIMEOUT", "1"),
                                ("LITELLM_RETRY_MAX_SECONDS", "1"), ("LITELLM_RETRY_ATTEMPTS", "1"),
                                ("LITELLM_RETRY_BACKOFF", "0.05")):
                patched.setenv(name, value)
            yield patched

    return small


@pytest.fixture
def deployed(litellm, api, tap, unique) -> Iterator[Callable[..., stack.Deployed]]:
    """UserWithKeys created through the pass-through; deleted afterwards whatever happened."""
    made: list[str] = []

    def make(suffix: str = "", **overrides: Any) -> stack.Deployed:
        user_id = unique + suffix
        made.append(user_id)
        return stack.up(stack.declare(tap.url, litellm.master_key, user_id, **overrides))

    yield make
    for user_id in made:
        try:
            api.user_delete(user_id)
        except LiteLLMError:
            pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -------------------------------------------------------------------------------------------- errors
def _wrong_token_create_user(ctx: dict[str, Any]) -> None:
    USERS.create({**ctx["one"].user_inputs, "user_id": ctx["unique"] + "-x", "token": ctx["wrong"]})


def _wrong_token_adopt_minted_key(ctx: dict[str, Any]) -> None:
    auto = ctx["auto"]
    KEYS.create({**auto.key_inputs, "token": ctx["wrong"], "existing_key": auto.user["user_response"]["key"]})


def _update_deleted_key(ctx: dict[str, Any]) -> None:
    one = ctx["one"]
    ctx["api"].key_delete(one.key_id)
    KEYS.update(one.key_id, one.key, {**one.key_inputs, "max_budget": 99.0})


def _enterprise_only_field(ctx: dict[str, Any]) -> None:
    one = ctx["one"]
    KEYS.create({**one.key_inputs, "key_alias": ctx["unique"] + "-ent", "model_max_budget": {"fake-gpt-4o": {"budget_limit": 1.0}}})


def _invalid_duration_500(ctx: dict[str, Any]) -> None:
    LiteLLMClient(ctx["tap"].url, ctx["token"]).key_generate({"user_id": ctx["unique"], "duration": "forever"})


def _connection_refused(ctx: dict[str, Any]) -> None:
    USERS.read(ctx["unique"], {**ctx["one"].user, "url": f"http://127.0.0.1:{free_port()}"})


def _read_timeout(ctx: dict[str, Any]) -> None:
    ctx["tap"].inject("delay", path="/key/info", delay=1.5, times=5)
    KEYS.read(ctx["one"].key_id, ctx["one"].key)


def _dropped_after(ctx: dict[str, Any]) -> None:
    ctx["tap"].inject("drop_after", path="/key/update", times=5)
    KEYS.update(ctx["one"].key_id, ctx["one"].key, {**ctx["one"].key_inputs, "max_budget": 42.0})


def _cut_off_answer(ctx: dict[str, Any]) -> None:
    ctx["tap"].inject("truncate", path="/user/info", times=5)
    USERS.read(ctx["unique"], ctx["one"].user)


def _gave_up_generating(ctx: dict[str, Any]) -> None:
    ctx["tap"].inject("drop_before", path="/key/generate", times=10)  # the minted raw key went out each time
    KEYS.create({**ctx["one"].key_inputs, "key_alias": ctx["unique"] + "-lost"})


FAILURES: dict[str, tuple[Callable[[dict[str, Any]], None], Optional[int]]] = {
    "401 wrong token": (_wrong_token_create_user, 401),
    "401 while adopting a minted raw key": (_wrong_token_adopt_minted_key, 401),
    "404 key deleted outside": (_update_deleted_key, 404),
    "500 enterprise-only field": (_enterprise_only_field, 500),
    "500 invalid duration": (_invalid_duration_500, 500),
    "connection refused": (_connection_refused, None),
    "read timeout": (_read_timeout, None),
    "dropped after forwarding": (_dropped_after, None),
    "answer cut off": (_cut_off_answer, None),
    "every key generate dropped": (_gave_up_generating, None),
}


@pytest.mark.parametrize("name", FAILURES)
def test_errors_never_carry_the_token_or_a_raw_key(name, litellm, api, tap, unique, deployed, small_budget) -> None:
    wrong = "sk-wrong-but-secret-token-0123456789"
    one, auto = deployed(), deployed("-auto", auto_create_key=True)
    secrets = [litellm.master_key, wrong, one.key["key"], auto.key["key"], auto.user["user_response"]["key"]]
    assert all(secrets)
    ctx = dict(one=one, auto=auto, api=api, tap=tap, unique=unique, token=litellm.master_key, wrong=wrong)
    run, status = FAILURES[name]

    with small_budget(), pytest.raises(LiteLLMError) as caught:
        run(ctx)
    tap.clear_faults()
    tap.wait_idle()

    err = caught.value
    assert err.status == status, str(err)
    text = everything_about(err)
    assert err.operation in str(err) and len(err.detail) > 10  # positive control: it says what failed
    assert leaks(text, secrets) == [], text
    chain, current = [], err.__cause__ or err.__context__
    while current is not None:
        chain.append(current)
        current = current.__cause__ or current.__context__
    # requests' and urllib3's exceptions hold the request, Authorization header included.
    assert all(isinstance(e, LiteLLMError) for e in chain), [type(e).__module__ for e in chain]


# ----------------------------------------------------------------------------- warnings and logging
def test_warnings_and_logs_never_carry_secrets(litellm, api, tap, unique, deployed, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tap.inject("drop_after", method="POST", path="/key/generate")  # the recovery path logs too
        one = deployed(user_role="app_user")  # a legacy role: the component warns
        auto = deployed("-auto", auto_create_key=True, user_role="app_owner")
        for d in (one, auto):
            stack.update(d, dataclasses.replace(stack.declare(tap.url, litellm.master_key, d.user_id,
                                                              auto_create_key=d is auto), max_budget=9.0))
            USERS.read(d.user_id, d.user)
            KEYS.read(d.key_id, d.key)
        minted = auto.user["user_response"]["key"]
        for d in (one, auto):
            stack.down(d)

    records = [f"{r.name} {r.levelname} {r.getMessage()} {r.exc_text or ''}" for r in caplog.records]
    texts = records + [str(w.message) for w in caught]
    assert any("legacy LiteLLM role" in t for t in texts), "positive control: the role warning was captured"
    assert any(unique in t and "/user/info" in t for t in records), "positive control: urllib3's request log"
    secrets = [litellm.master_key, one.key["key"], auto.key["key"], minted]
    assert all(secrets)
    assert [leaks(t, secrets) for t in texts if leaks(t, secrets)] == []


# ------------------------------------------------------------------------------------ repr and str
def test_repr_and_str_never_show_secrets(litellm) -> None:
    token, raw = litellm.master_key, "sk-raw-key-never-to-be-shown-0123456789"
    objects: list[Any] = [
        UserProvider(), KeyProvider(), TeamProvider(), TeamMemberProvider(),
        LiteLLMClient("http://proxy.test:4000", token),
        TeamArgs(url="http://proxy.test:4000", token=token, team_id="ann"),
        TeamMemberArgs(url="http://proxy.test:4000", token=token, team_id="red", user_id="ann"),
        UserArgs(url="http://proxy.test:4000", token=token, user_id="ann", user_email="ann@example.org"),
        KeyArgs(url="http://proxy.test:4000", token=token, user_id="ann", key_alias="ann", existing_key=raw),
        UserWithKeyArgs(url="http://proxy.test:4000", token=token, user_id="ann", user_email="ann@example.org"),
        ClientSettings.from_env(),
    ]
    for obj in objects:
        for text in (repr(obj), str(obj)):
            assert leaks(text, [token, raw]) == [], type(obj).__name__
            assert type(obj).__name__ in text or "ann" in text or "Settings" in text  # positive control
    assert "user_id='ann'" in repr(objects[7])


def test_the_pickled_provider_holds_no_secret(litellm) -> None:
    """The provider travels in the state as `__provider` (pickled, not a secret): it must hold nothing,
    even after Configure gave the plugin process the stack's token."""
    from pulumi.dynamic.dynamic import ConfigureRequest, serialize_provider

    try:
        for provider in (UserProvider(), KeyProvider(), TeamProvider(), TeamMemberProvider()):
            provider.configure(ConfigureRequest({"litellm:url": litellm.url, "litellm:token": litellm.master_key}))
            pickled = base64.b64decode(serialize_provider(provider))
            assert litellm.master_key.encode() not in pickled
            assert type(provider).__name__.encode() in pickled  # positive control: it is the provider
    finally:
        LiteLLMProvider.configure(UserProvider(), ConfigureRequest({}))  # leave no token in the module


# ------------------------------------------------------------------------------- URLs and proxy log
def _whole_life(tap: PassThrough, litellm: Any, deployed: Callable[..., stack.Deployed]) -> list[str]:
    """Create (both modes), read, update, delete; returns the raw keys seen."""
    one, auto = deployed(), deployed("-auto", auto_create_key=True)
    raw = [one.key["key"], auto.key["key"], auto.user["user_response"]["key"]]
    for d in (one, auto):
        USERS.read(d.user_id, d.user)
        KEYS.read(d.key_id, d.key)
        stack.update(d, dataclasses.replace(stack.declare(tap.url, litellm.master_key, d.user_id,
                                                          auto_create_key=d is auto), rpm_limit=77))
    for d in (one, auto):
        stack.down(d)
    return raw


def test_request_urls_never_carry_secrets(litellm, tap, unique, deployed) -> None:
    raw = _whole_life(tap, litellm, deployed)
    secrets = [litellm.master_key, *raw]
    urls = [f"{c.method} {c.path}?{c.query}" for c in tap.calls] + tap.access_log
    assert any(f"user_id={unique}" in u for u in urls), "positive control: user ids are in URLs"
    assert any(token_hash(raw[0]) in u for u in urls), "positive control: keys are named by their hash"
    assert [u for u in urls if leaks(u, secrets)] == []


def test_the_proxys_own_log_never_carries_secrets(litellm, tap, unique, deployed, proxy_log: Optional[Path]) -> None:
    """The proxy's log when this run knows where it is (always in CI, where the tests start the proxy;
    LITELLM_PROXY_LOG otherwise), else the access log the pass-through keeps in front of it."""
    start = proxy_log.stat().st_size if proxy_log else 0
    raw = _whole_life(tap, litellm, deployed)
    if proxy_log:
        with proxy_log.open("rb") as log:
            log.seek(start)
            lines = log.read().decode(errors="replace").splitlines()
    else:
        lines = list(tap.access_log)
    assert any(unique in line for line in lines), "positive control: this run's requests are in the log"
    assert [line for line in lines if leaks(line, [litellm.master_key, *raw])] == []


# ----------------------------------------------------------------------------------- engine state
def test_the_state_never_holds_secrets_in_plain_text(tmp_path, litellm, api, tap, unique) -> None:
    """Through the real plugin (tests/harness): up in both modes with a lost answer on the way, an update,
    a failed update, refresh, up again, destroy. After each step the state file holds the token and the raw
    keys only as secrets, and the engine's error names no secret."""
    users = [{"user_id": unique, "user_email": f"{unique}@example.org", "user_role": "internal_user",
              "models": ["fake-gpt-4o"], "user_models": ["fake-gpt-4o"]},
             {"user_id": unique + "-auto", "user_email": f"{unique}-auto@example.org", "auto_create_key": True,
              "models": ["fake-gpt-4o"], "user_models": ["fake-gpt-4o"]}]
    env = clean_env({"LITELLM_READ_TIMEOUT": "2", "LITELLM_RETRY_MAX_SECONDS": "1", "LITELLM_RETRY_ATTEMPTS": "1",
                     "LITELLM_RETRY_BACKOFF": "0.05"})
    state = Stack(tmp_path / "state", {"litellm:url": tap.url, "litellm:token": litellm.master_key,
                                       "litellm:users": users}, plugin_env=env)
    raw_keys: list[str] = []

    def scan(step: str, holds_users: bool = True) -> None:
        text = state.state_file.read_text()
        assert (unique in text) is holds_users, f"{step}: positive control: the state holds the users"
        found = state.plaintext_secrets(extra=[litellm.master_key, *raw_keys])
        assert found == [], f"{step}: {found}"
        assert leaks(text, [litellm.master_key, *raw_keys]) == [], step

    try:
        tap.inject("drop_after", method="POST", path="/key/generate")
        state.up()
        raw_keys += [state.outputs["key"][u['user_id']] for u in users]
        raw_keys.append(state.outputs["user_response"][f"{unique}-auto"]["key"])
        # The lost answer's key was found by its minted raw key's hash and kept: nothing deleted.
        assert all(raw_keys) and tap.count(path="/key/generate") == 1 and tap.count(path="/key/delete") == 0
        scan("up with a lost answer")

        state.config["litellm:users"] = [{**u, "rpm_limit": 33} for u in users]
        state.up()
        scan("update")

        tap.inject("status", method="POST", path="/user/update", status=503, times=100)
        state.config["litellm:users"] = [{**u, "rpm_limit": 44} for u in users]
        with pytest.raises(EngineError) as failed:
            state.up()
        assert f"update user '{unique}" in str(failed.value) and "failed (HTTP 503)" in str(failed.value)
        assert leaks(str(failed.value) + repr(failed.value), [litellm.master_key, *raw_keys]) == []
        scan("failed update")
        tap.clear_faults()

        state.refresh()
        scan("refresh")
        state.up()
        scan("up after the failure")
        assert api.user_info(unique)["user_info"]["rpm_limit"] == 44
    finally:
        tap.clear_faults()
        state.destroy()
    scan("destroy", holds_users=False)


def test_teams_memberships_and_team_keys_never_show_secrets(tmp_path, litellm, api, tap, unique,
                                                            proxy_log: Optional[Path]) -> None:
    """Through the real plugin: a team, a member and a team key; up, a failed team update, refresh,
    destroy. The state, the engine's error, the URLs and the proxy's log hold no token and no raw key."""
    team = {"team_id": f"{unique}-team", "models": ["fake-mock"], "max_budget": 10}
    users = [{"user_id": unique, "user_email": f"{unique}@example.org", "models": ["fake-mock"],
              "user_models": ["fake-mock"], "teams": [team["team_id"]], "team_id": team["team_id"]}]
    env = clean_env({"LITELLM_RETRY_MAX_SECONDS": "1", "LITELLM_RETRY_ATTEMPTS": "1", "LITELLM_RETRY_BACKOFF": "0.05"})
    state = Stack(tmp_path / "state", {"litellm:url": tap.url, "litellm:token": litellm.master_key,
                                       "litellm:teams": [team], "litellm:users": users}, plugin_env=env)
    start = proxy_log.stat().st_size if proxy_log else 0
    secrets: list[str] = [litellm.master_key]

    def scan(step: str) -> None:
        assert team["team_id"] in state.state_file.read_text(), f"{step}: positive control"
        assert state.plaintext_secrets(extra=secrets) == [], step
        assert leaks(state.state_file.read_text(), secrets) == [], step

    try:
        state.up()
        secrets.append(state.outputs["key"][unique])
        assert all(secrets) and state.resource("TeamMember", f"{unique}/{team['team_id']}").id
        scan("up")
        tap.inject("status", method="POST", path="/team/update", status=503, times=100)
        state.config["litellm:teams"] = [{**team, "max_budget": 11}]
        with pytest.raises(EngineError) as failed:
            state.up()
        assert f"update team '{team['team_id']}' failed (HTTP 503)" in str(failed.value)
        assert leaks(str(failed.value) + repr(failed.value), secrets) == []
        scan("failed update")
        tap.clear_faults()
        state.refresh()
        scan("refresh")
    finally:
        tap.clear_faults()
        state.destroy()
    urls = [f"{c.method} {c.path}?{c.query}" for c in tap.calls] + tap.access_log
    assert any(f"team_id={team['team_id']}" in u for u in urls), "positive control: team ids are in URLs"
    assert [u for u in urls if leaks(u, secrets)] == []
    if proxy_log:
        with proxy_log.open("rb") as log:
            log.seek(start)
            lines = log.read().decode(errors="replace").splitlines()
        assert any("/team/" in line for line in lines), "positive control: this run's team calls are in the log"
        assert [line for line in lines if leaks(line, secrets)] == []


# ----------------------------------------------------------------- raw keys nobody told us are secret
class _EchoingProxy(http.server.BaseHTTPRequestHandler):
    """A proxy (or a gateway in front of one) whose error echoes the raw key it was given: LiteLLM 1.108.7
    does not, but nothing guarantees the next version or a gateway won't."""

    echoed = ""

    def _answer(self) -> None:
        body = json.dumps({"error": {"message": f"Invalid key {self.echoed}: not allowed here"}}).encode()
        self.send_response(400)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer

    def log_message(self, *_args: Any) -> None:
        pass


def test_a_raw_key_the_proxy_echoes_in_an_error_is_redacted() -> None:
    """The client knows the token, not every raw key: a raw key in LiteLLM's words is removed by its shape."""
    raw = mint_key()
    handler = type("Echo", (_EchoingProxy,), {"echoed": raw})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        client = LiteLLMClient(f"http://127.0.0.1:{server.server_address[1]}", "sk-the-admin-token-0123456789")
        with pytest.raises(LiteLLMError) as caught:
            client.key_update(token_hash(raw), {"models": ["fake-mock"]})
    finally:
        server.shutdown()
        server.server_close()
    assert caught.value.detail == "Invalid key sk-[redacted]: not allowed here"  # positive control: LiteLLM's words
    assert leaks(everything_about(caught.value), [raw]) == []


def test_a_raw_key_pasted_into_an_input_is_never_shown_by_the_check_that_refuses_it() -> None:
    """Someone pastes the leaked key into `rotation_trigger` (with the newline of the paste): the value is
    refused, and the message shows its shape, never the key."""
    raw = mint_key()
    _, key_inputs = stack.wire(stack.declare("http://127.0.0.1:9", "sk-the-admin-token-0123456789", "ann"))
    failures = KEYS.check({}, {**key_inputs, "rotation_trigger": raw + "\n"}).failures
    assert [(f.property, f.reason) for f in failures] == [
        ("rotation_trigger", "rotation_trigger must be a string without control characters; got 'sk-[redacted]\\n'")]
    with pytest.raises(ValueError) as refused:  # what UserWithKey(...) runs before it registers anything
        validate(UserWithKeyArgs(url="http://127.0.0.1:9", token="t", user_id="ann", user_email="ann@example.org",
                                 rotation_trigger=raw + "\n"))
    assert "rotation_trigger must be a string without control characters; got 'sk-[redacted]\\n'" in str(refused.value)
    assert leaks(str(refused.value), [raw]) == []
