"""components/sdk_tuning.py under Pulumi's mock runtime: the linear wait for Outputs raises a failed Output's
exception as the SDK's wait does and waits for Outputs created while it waits; each switch takes effect
where the SDK looks its function up, refuses an SDK function it was not written for, and is undone by
`restore`; the stack program's switches are checked like the rest of its config. The real engine's side
(state without stack traces, a run with the linear wait) is tests/engine/test_engine_sdk_tuning.py."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable, Iterator

import pulumi
import pytest
from pulumi.runtime import resource as sdk_resource
from pulumi.runtime import stack as sdk_stack
from pulumi.runtime.settings import SETTINGS
from pulumi.runtime.sync_await import _sync_await

from components import sdk_tuning
from components.user_with_key import UserWithKey, UserWithKeyArgs
from support.mocks import RecordingMonitor
from support.stack import program_namespace

ROOT = Path(__file__).resolve().parents[1]

STOCK_WAIT = sdk_stack.wait_for_rpcs
STOCK_TRACE = sdk_resource._get_stack_trace
STOCK_DEBUG = pulumi.log.debug


class Echo(pulumi.runtime.Mocks):
    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        return args.name + "-id", dict(args.inputs)

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict[str, Any]:
        return {}


@pytest.fixture
def monitor() -> Iterator[RecordingMonitor]:
    sdk_tuning.restore()  # a stack program run by the harness in this process turned its switches
    recording = RecordingMonitor(Echo())
    pulumi.runtime.set_mocks(Echo(), preview=False, monitor=recording)
    SETTINGS.outputs.clear()
    yield recording
    sdk_tuning.restore()
    SETTINGS.outputs.clear()


async def later(value: Any, seconds: float = 0.02) -> Any:
    await asyncio.sleep(seconds)
    return value


def fail(_: Any) -> Any:
    raise LookupError("the output's own failure")


@pytest.mark.parametrize("wait", [STOCK_WAIT, sdk_tuning.wait_for_rpcs_linear], ids=["stock", "linear"])
def test_a_failed_output_raises_its_own_exception(monitor: RecordingMonitor, wait: Callable[..., Any]) -> None:
    for value in range(20):
        pulumi.Output.from_input(later(value)).apply(lambda v: v + 1)
    pulumi.Output.from_input(later(0, 0.01)).apply(fail)
    with pytest.raises(LookupError, match="the output's own failure"):
        _sync_await(wait())


@pytest.mark.parametrize("wait", [STOCK_WAIT, sdk_tuning.wait_for_rpcs_linear], ids=["stock", "linear"])
def test_outputs_created_while_waiting_are_waited_for(monitor: RecordingMonitor, wait: Callable[..., Any]) -> None:
    finished: list[str] = []

    def spawn(name: str) -> str:
        # A new Output nobody holds, created only once the first has resolved: the wait is already running.
        pulumi.Output.from_input(later(name + " child", 0.05)).apply(finished.append)
        return name

    for name in ("a", "b"):
        pulumi.Output.from_input(later(name)).apply(spawn)
    _sync_await(wait())
    assert sorted(finished) == ["a child", "b child"]


def test_the_switches_replace_what_the_sdk_calls_and_restore_puts_it_back(monitor: RecordingMonitor) -> None:
    assert sdk_tuning.fast_output_wait() is True and sdk_tuning.drop_stack_traces() is True
    assert sdk_tuning.drop_debug_logs() is True
    assert sdk_stack.wait_for_rpcs is sdk_tuning.wait_for_rpcs_linear
    assert sdk_resource._get_stack_trace is not STOCK_TRACE and pulumi.log.debug is not STOCK_DEBUG
    sdk_tuning.restore()
    assert sdk_stack.wait_for_rpcs is STOCK_WAIT and sdk_resource._get_stack_trace is STOCK_TRACE
    assert pulumi.log.debug is STOCK_DEBUG


class Engine:
    """Stands in for the engine's gRPC client: the Log calls the SDK makes."""

    def __init__(self) -> None:
        self.logged: list[tuple[int, str]] = []

    def Log(self, request: Any) -> None:  # noqa: N802 - the gRPC method's name
        self.logged.append((request.severity, request.message))


def test_dropped_debug_messages_are_not_sent_and_the_others_still_are(monitor: RecordingMonitor,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    engine = Engine()
    monkeypatch.setattr(SETTINGS, "engine", engine)
    pulumi.log.debug("sent: the SDK's own")
    sdk_tuning.drop_debug_logs()
    pulumi.log.debug("dropped")
    pulumi.log.info("an info")
    pulumi.log.warn("a warning")
    assert [message for _, message in engine.logged] == ["sent: the SDK's own", "an info", "a warning"]
    # The SDK's own call sites look it up on the module (`log.debug(...)`): a registration sends none now.
    UserWithKey("ann", UserWithKeyArgs(url="http://proxy.test:4000", token="sk-admin-token-1234", user_id="ann",
                                       user_email="ann@example.org", user_role="internal_user"))
    _sync_await(STOCK_WAIT())
    assert [message for _, message in engine.logged] == ["sent: the SDK's own", "an info", "a warning"]


def test_a_registration_carries_no_stack_trace_once_dropped(monitor: RecordingMonitor) -> None:
    args = UserWithKeyArgs(url="http://proxy.test:4000", token="sk-admin-token-1234", user_id="ann",
                           user_email="ann@example.org", user_role="internal_user")
    UserWithKey("ann", args)
    sdk_tuning.drop_stack_traces()
    UserWithKey("bob", UserWithKeyArgs(**{**args.__dict__, "user_id": "bob", "user_email": "bob@example.org"}))
    _sync_await(STOCK_WAIT())
    frames = {r.name: len(r.stackTrace.frames) for r in monitor.requests if r.type.endswith(":User")}
    assert frames["bob"] == 0 and frames["ann"] > 0
    sources = {r.name: r.sourcePosition.uri for r in monitor.requests if r.type.endswith(":User")}
    assert sources["bob"] == "" and sources["ann"].endswith("/providers/user.py")


@pytest.mark.parametrize("switch, module, name", [
    (sdk_tuning.fast_output_wait, sdk_stack, "wait_for_rpcs"),
    (sdk_tuning.drop_stack_traces, sdk_resource, "_get_stack_trace"),
    (sdk_tuning.drop_debug_logs, pulumi.log, "debug"),
], ids=["fast_output_wait", "drop_stack_traces", "drop_debug_logs"])
def test_a_switch_refuses_an_sdk_function_it_was_not_written_for(
    monitor: RecordingMonitor, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch,
    switch: Callable[[], bool], module: Any, name: str,
) -> None:
    async def other_wait(await_all_outstanding_tasks: bool = True) -> None:
        """Stands in for a later SDK's function of the same name."""

    def other_trace() -> Any:
        """Stands in for a later SDK's function of the same name."""

    other = {"wait_for_rpcs": other_wait, "_get_stack_trace": other_trace, "debug": other_trace}[name]
    monkeypatch.setattr(module, name, other)
    with caplog.at_level(logging.WARNING):
        assert switch() is False
    assert getattr(module, name) is other
    assert any(f"another {module.__name__}.{name} than the one this switch was written for" in r.getMessage()
               and "the SDK's own is kept" in r.getMessage() for r in caplog.records)


# ------------------------------------------------------------------------------- the stack program's keys
@pytest.fixture(scope="module")
def program() -> dict[str, Any]:
    return program_namespace()


@pytest.mark.parametrize("key", ["stack_traces", "fast_output_wait", "sdk_debug_logs"])
@pytest.mark.parametrize("value", ["yes", 1, "on"])
def test_a_switch_must_be_true_or_false(program: dict[str, Any], key: str, value: Any) -> None:
    stack = program["read_config"]({f"litellm:{key}": value, "litellm:users": []}, ROOT)
    assert stack.errors == [f"litellm:{key} must be true or false; got {value!r}"]


@pytest.mark.parametrize("config, dropped, linear, quiet", [
    ({}, True, False, False),
    ({"litellm:stack_traces": "false"}, True, False, False),
    ({"litellm:stack_traces": "true"}, False, False, False),  # --config litellm:stack_traces=true
    ({"litellm:stack_traces": True, "litellm:fast_output_wait": True}, False, True, False),
    ({"litellm:fast_output_wait": "True"}, True, True, False),
    ({"litellm:sdk_debug_logs": False}, True, False, True),
    ({"litellm:sdk_debug_logs": "true"}, True, False, False),
], ids=["defaults", "traces-false", "traces-true", "both-yaml", "wait-only", "no-debug-logs", "debug-logs"])
def test_the_program_turns_the_switches_as_configured(monitor: RecordingMonitor, program: dict[str, Any],
                                                     config: dict[str, Any], dropped: bool, linear: bool,
                                                     quiet: bool) -> None:
    program["tune_sdk"](config)
    assert (sdk_resource._get_stack_trace is not STOCK_TRACE) is dropped
    assert (sdk_stack.wait_for_rpcs is sdk_tuning.wait_for_rpcs_linear) is linear
    assert (pulumi.log.debug is not STOCK_DEBUG) is quiet


def test_importing_the_component_turns_nothing() -> None:
    code = ("import pulumi.runtime.stack as s, pulumi.runtime.resource as r, pulumi.log as l; "
            "w, t, d = s.wait_for_rpcs, r._get_stack_trace, l.debug; import components, components.sdk_tuning; "
            "assert (s.wait_for_rpcs, r._get_stack_trace, l.debug) == (w, t, d)")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
