"""Our side of the benchmark: the stack lifecycle for N users through the lifecycle harness (tests/harness:
the program under Pulumi's mocks, the real dynamic-provider plugin over gRPC, a state file), with a counting
pass-through in front of the proxy.

Steps: preview of a new stack, up, no-op preview, no-op up (re-apply), refresh, one-field change + up,
destroy. Each operation starts its own plugin process, as `pulumi` does; its CPU time and peak memory are
read from /proc just before the harness stops it.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Callable

from benchmarks.stats import Sample
from harness import EngineError, Stack
from support.passthrough import PassThrough


class _TimedStack(Stack):
    """The harness's Stack, timing its checkpoints (the state file written after each changing step): that
    cost is the stand-in's (Python JSON), not the providers', and is reported apart."""

    checkpoint_seconds = 0.0

    def _save(self, resources: Any, config: Any) -> None:
        started = time.perf_counter()
        try:
            super()._save(resources, config)
        finally:
            self.checkpoint_seconds += time.perf_counter() - started


def _provider_bytes(stack: Stack) -> float | None:
    """Mean size of the `__provider` input of the custom resources in the state (what each resource
    carries, in its inputs and again in its outputs, in every checkpoint)."""
    sizes = [len(str(r.inputs.get("__provider", ""))) for r in stack.resources() if r.custom]
    return sum(sizes) / len(sizes) if sizes else None


# Outputs that only inform (API answers); a refresh that re-reads them is not drift. The first refresh after
# `up` changes them for every resource: user_data now lists the key created after the user, and the nested
# nulls of user_response/key_response do not survive the plugin's Read round trip.
DATA_OUTPUTS = {"user_data", "user_response", "key_data", "key_response"}


def _expect(result: Any, step: str, n: int) -> str:
    """'' when the operation did what the step means, else what went wrong."""
    ops: dict[str, int] = {}
    for s in result.steps:
        if s.type.startswith("pulumi-python:dynamic") and not s.type.endswith(":Ledger"):  # the guard: no proxy
            op = s.op
            if step == "refresh" and op == "update" and set(s.changed) <= DATA_OUTPUTS:
                op = "same"  # no managed field drifted; only the informational outputs were re-read
            ops[op] = ops.get(op, 0) + 1
    want = {
        "preview": {"create": 2 * n},
        "up": {"create": 2 * n},
        "noop-preview": {"same": 2 * n},
        "noop-up": {"same": 2 * n},
        "refresh": {"same": 2 * n},
        "change-up": {"same": n, "update": n},
        "destroy": {"delete": 2 * n},
    }[step]
    return "" if ops == want else f"{step}: expected {want}, got {ops}"


def lifecycle(url: str, token: str, users: list[dict[str, Any]], changed_users: list[dict[str, Any]],
              parallel: int, workdir: Path, api: Any, log: Callable[[str], None],
              proxy_cpu: Callable[[], float | None] = lambda: None) -> dict[str, Sample]:
    n = len(users)
    out: dict[str, Sample] = {}
    with PassThrough(url) as tap:
        config = {"litellm:url": tap.url, "litellm:token": token, "litellm:users": users}
        stack = _TimedStack(workdir / "state", config, name="bench", parallel=parallel)
        plan = [
            ("preview", stack.preview, None),
            ("up", stack.up, None),
            ("noop-preview", stack.preview, None),
            ("noop-up", stack.up, None),
            ("refresh", stack.refresh, None),
            ("change-up", stack.up, changed_users),
            ("destroy", stack.destroy, None),
        ]
        try:
            for step, operation, new_users in plan:
                if new_users is not None:
                    stack.config["litellm:users"] = new_users
                tap.reset()
                stack.checkpoint_seconds = 0.0
                cpu_before = proxy_cpu()
                started = time.perf_counter()
                note = ""
                try:
                    result = operation()
                except EngineError as err:
                    result, note = err.result, f"{step}: {err}"
                wall = time.perf_counter() - started
                cpu_after = proxy_cpu()
                note = note or _expect(result, step, n)
                usage = getattr(result, "plugin_usage", None)
                sample = Sample(
                    wall=wall,
                    calls=len(tap.calls),
                    upstream=tap.upstream_count(),
                    cpu=usage.work_cpu if usage else None,
                    startup_cpu=usage.startup_cpu if usage else None,
                    peak_kb=usage.peak_kb if usage else None,
                    checkpoint=stack.checkpoint_seconds,
                    proxy_cpu=None if cpu_before is None or cpu_after is None else cpu_after - cpu_before,
                    state_bytes=stack.state_file.stat().st_size / n if stack.state_file.exists() else None,
                    provider_bytes=_provider_bytes(stack) if step in ("up", "change-up") else None,
                    ok=not note,
                    note=note,
                )
                out[step] = sample
                log(f"  {step}: {wall:.2f} s (checkpoints {stack.checkpoint_seconds:.2f} s), {sample.calls} calls"
                    + (f", plugin CPU {usage.work_cpu:.2f} s (+{usage.startup_cpu:.2f} s start), "
                       f"peak {usage.peak_kb / 1024:.0f} MiB" if usage else "")
                    + (f" FAILED: {note}" if note else ""))
                if note and step in ("preview", "up"):
                    break
        finally:
            _cleanup(stack, api, users)
    return out


def _cleanup(stack: Stack, api: Any, users: list[dict[str, Any]]) -> None:
    """Whatever a failed run left behind: destroy through the API, by user (keys go with their user)."""
    if stack.state_file.exists() and json.loads(stack.state_file.read_text())["deployment"]["resources"]:
        from benchmarks import lac

        lac.cleanup(api, users)
