"""Minimal reproducer, for pulumi/pulumi, of the Python SDK's O(outputs²) `wait_for_rpcs`
(pulumi/runtime/stack.py, 3.272.0): only the pulumi SDK and its mocks, no engine, no project code.

    .venv/bin/python benchmarks/sdk_wait_for_rpcs.py [--sizes 250,500,1000,2000] [--latency-ms 1]

A program of N custom resources, each with 3 inputs and one `apply` on an output (about 8 tracked Outputs
per resource), runs under `pulumi.runtime.set_mocks` as `pulumi.runtime.test` runs a program: the program,
then `run_pulumi_func`'s `wait_for_rpcs`. The mocks answer one registration at a time, each after `--latency-ms`
(as the engine's answers come one by one), so Outputs complete one by one while the SDK waits. Each
(variant, N) runs in a fresh interpreter; printed: the seconds of the whole run and of the wait alone, for
the SDK's `wait_for_rpcs` ("stock") and for the same function with its Output loop made linear ("fixed",
the patch in docs/upstream/wait-for-rpcs.md). Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import threading
import time
from typing import Any

import pulumi
from pulumi.runtime import settings as sdk_settings
from pulumi.runtime import stack as sdk_stack
from pulumi.runtime.sync_await import _sync_await


async def fixed_wait_for_rpcs(await_all_outstanding_tasks: bool = True) -> None:
    """pulumi 3.272.0's wait_for_rpcs with the proposed patch: one asyncio.wait(FIRST_EXCEPTION) per round of
    Outputs instead of one asyncio.wait(FIRST_COMPLETED) per completed Output."""
    rpc_manager = sdk_settings._get_rpc_manager()
    while True:
        while len(rpc_manager.rpcs) > 0:
            await asyncio.sleep(0)
            try:
                await rpc_manager.rpcs.pop()
            except Exception as exn:
                if rpc_manager.unhandled_exception is not None:
                    raise exn from rpc_manager.unhandled_exception.with_traceback(rpc_manager.exception_traceback)
                raise
        if rpc_manager.unhandled_exception is not None:
            raise rpc_manager.unhandled_exception.with_traceback(rpc_manager.exception_traceback)
        if await_all_outstanding_tasks:
            while True:
                with sdk_settings.SETTINGS.lock:
                    if len(sdk_settings.SETTINGS.outputs) == 0:
                        break
                    pending = list(sdk_settings.SETTINGS.outputs)
                    sdk_settings.SETTINGS.outputs.clear()
                done, not_done = await asyncio.wait(pending, return_when=asyncio.FIRST_EXCEPTION)
                for task in done:
                    await task  # re-raises the failed Output's exception
                if not_done:
                    with sdk_settings.SETTINGS.lock:
                        sdk_settings.SETTINGS.outputs.update(not_done)
        if len(rpc_manager.rpcs) == 0:
            break


class SlowMocks(pulumi.runtime.Mocks):
    """Echoes the inputs, one registration at a time, each after `latency` seconds (in the SDK's executor
    threads, as a real RPC): answers arrive one by one, as they do from the engine, which checks and diffs
    each resource through its provider before it answers."""

    def __init__(self, latency: float) -> None:
        self.latency, self.engine = latency, threading.Lock()

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        with self.engine:
            time.sleep(self.latency)
        return f"{args.name}-id", {**args.inputs, "status": "ok"}

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict[str, Any]:
        return {}


class Thing(pulumi.CustomResource):
    status: pulumi.Output[str]

    def __init__(self, name: str, props: dict[str, Any]) -> None:
        super().__init__("repro:index:Thing", name, {**props, "status": None})


def program(n: int) -> None:
    for i in range(n):
        thing = Thing(f"thing-{i}", {"a": f"a-{i}", "b": i, "c": [i, i + 1]})
        thing.status.apply(lambda status, i=i: f"{status}-{i}")


def run_one(variant: str, n: int, latency: float) -> dict[str, Any]:
    if variant == "fixed":
        sdk_stack.wait_for_rpcs = fixed_wait_for_rpcs  # run_pulumi_func looks it up in its module
    pulumi.runtime.set_mocks(SlowMocks(latency), preview=False)
    waited: dict[str, float] = {"calls": 0, "scanned": 0}
    wait, asyncio_wait = sdk_stack.wait_for_rpcs, asyncio.wait

    async def counted_asyncio_wait(fs: Any, *args: Any, **kwargs: Any) -> Any:
        # The quantity that is O(outputs²): how many futures all the asyncio.wait calls are handed in total.
        waited["calls"] += 1
        waited["scanned"] += len(fs)
        return await asyncio_wait(fs, *args, **kwargs)

    async def timed_wait(*args: Any, **kwargs: Any) -> None:
        waited["outputs"] = len(sdk_settings.SETTINGS.outputs)
        waited["rpcs"] = len(sdk_settings._get_rpc_manager().rpcs)
        started, cpu = time.perf_counter(), time.thread_time()
        try:
            await wait(*args, **kwargs)
        finally:
            waited["s"], waited["cpu"] = time.perf_counter() - started, time.thread_time() - cpu

    sdk_stack.wait_for_rpcs = timed_wait
    asyncio.wait = counted_asyncio_wait  # type: ignore[assignment]
    # As `pulumi.runtime.test` and the language host start a program: nothing outstanding. The program's
    # constructors only schedule their registrations, so the wait finds no RPC started yet and goes
    # straight to its loop over the pending Outputs, where the cost is.
    _sync_await(asyncio.sleep(0.05))
    sdk_settings.SETTINGS.rpc_manager.clear()
    sdk_settings.SETTINGS.outputs.clear()
    started = time.perf_counter()
    _sync_await(sdk_stack.run_pulumi_func(lambda: program(n)))
    total = time.perf_counter() - started
    return {"variant": variant, "resources": n, "outputs_pending_at_wait": waited["outputs"], "rpcs_at_wait": waited["rpcs"],
            "total_s": round(total, 2), "wait_s": round(waited["s"], 2), "wait_cpu_s": round(waited["cpu"], 2),
            "asyncio_wait_calls": waited["calls"], "futures_scanned": waited["scanned"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="250,500,1000,2000")
    parser.add_argument("--latency-ms", type=float, default=1.0)
    parser.add_argument("--one", nargs=2, metavar=("VARIANT", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    latency = args.latency_ms / 1000
    if args.one:
        print(json.dumps(run_one(args.one[0], int(args.one[1]), latency)), flush=True)
        os._exit(0)  # skip the interpreter's teardown of the SDK's event loop, which only adds noise
    print(f"pulumi {pulumi_version()}, Python {sys.version.split()[0]}, mock latency {args.latency_ms} ms")
    print("wait: wall / CPU seconds of the event loop's thread in wait_for_rpcs; scanned: futures handed to asyncio.wait")
    print(f"{'resources':>9}  {'outputs':>7} | {'stock: total':>12}  {'wait':>5}  {'CPU':>5}  {'calls':>6}  {'scanned':>10} |"
          f" {'fixed: total':>12}  {'wait':>5}  {'CPU':>5}  {'calls':>6}  {'scanned':>10}")
    for n in (int(s) for s in args.sizes.split(",")):
        rows = {}
        for variant in ("stock", "fixed"):
            done = subprocess.run([sys.executable, __file__, "--one", variant, str(n), "--latency-ms",
                                   str(args.latency_ms)], capture_output=True, text=True, check=True)
            rows[variant] = json.loads(done.stdout.strip().splitlines()[-1])
        cells = [f"{r['total_s']:>12.2f}  {r['wait_s']:>5.2f}  {r['wait_cpu_s']:>5.2f}  {r['asyncio_wait_calls']:>6}  "
                 f"{r['futures_scanned']:>10}" for r in (rows["stock"], rows["fixed"])]
        print(f"{n:>9}  {rows['stock']['outputs_pending_at_wait']:>7} | {cells[0]} | {cells[1]}", flush=True)
    return 0


def pulumi_version() -> str:
    from importlib.metadata import version

    return version("pulumi")


if __name__ == "__main__":
    sys.exit(main())
