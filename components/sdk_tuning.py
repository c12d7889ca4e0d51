"""Three opt-in changes to the Pulumi Python SDK's runtime, for programs with thousands of resources. Importing
this module changes nothing; each switch is a call, and each refuses (a warning, the SDK's own behaviour
kept) unless the SDK's function is the very one it was written for (pulumi 3.272.0), so an SDK upgrade can
never silently run a stale replacement.

- `fast_output_wait()`: the SDK's `wait_for_rpcs` (pulumi/runtime/stack.py), run once at the end of every
  program, calls `asyncio.wait(FIRST_COMPLETED)` on every pending Output again each time one completes:
  O(outputs²) for a program whose Outputs resolve one by one as the engine answers. The replacement waits for
  all of them at once (FIRST_EXCEPTION), O(outputs) per round, with the same semantics: the first failed
  Output's exception is raised, and Outputs created while waiting are waited for in the next round.
  docs/upstream/wait-for-rpcs.md is the upstream report; benchmarks/sdk_wait_for_rpcs.py the reproducer.
- `drop_stack_traces()`: the SDK sends the Python stack of every resource's construction with its
  registration (`pulumi.runtime.resource._get_stack_trace`), and the engine stores it in the state
  (`stackTrace`, `sourcePosition`): about 1.2 KB per resource, the same few lines for every user of a
  roster. The replacement sends an empty trace; errors still name the resource (by its URN).
- `drop_debug_logs()`: every `pulumi.log.debug` message is a synchronous gRPC call to the engine (`Log`),
  made whether or not the CLI shows debug output (`pulumi up --debug`), and the SDK makes about six per
  resource it registers (18 per user here): 35% of a 1,000-user program's CPU in a no-op preview (py-spy;
  docs/upstream/debug-logs.md). The replacement sends nothing; info, warnings and errors are unchanged.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
from typing import Any, Callable, Optional

import pulumi
from pulumi.runtime import resource as sdk_resource
from pulumi.runtime import settings as sdk_settings
from pulumi.runtime import stack as sdk_stack
from pulumi.runtime.proto import source_pb2

# sha256 of the source of each SDK function replaced here, as in pulumi 3.272.0: another source is another
# function, and the replacement would no longer be equivalent to it.
WRITTEN_FOR = {
    "wait_for_rpcs": "c0f9027f85ad09255ded0a1908033b490f76d303a3e40b50d3cf47a69265469d",
    "_get_stack_trace": "3943b2273016925109e1c3a7bc603db06a44ea09ff3494c29544e44bccf8dd1f",
    "debug": "381cd6115cca6ca19ddc9416014d9afb086d7b7a9cb3ca8d80f2be24bdb44d6f",
}
LINEAR_WAIT_MESSAGE = "Waiting for outstanding RPCs to complete (linear wait for Outputs: litellm:fast_output_wait)"
_STOCK: dict[str, tuple[Any, Callable[..., Any]]] = {}  # name: (module, the SDK's own), while replaced (`restore`)


def _fingerprint(fn: Callable[..., Any]) -> Optional[str]:
    try:
        return hashlib.sha256(inspect.getsource(fn).encode()).hexdigest()
    except (OSError, TypeError):  # no source (a compiled-only install): unknown, so not the one written for
        return None


def _replace(module: Any, name: str, replacement: Callable[..., Any], what: str) -> bool:
    """Put `replacement` in place of `module.name` if that is the SDK's function it was written for."""
    if name in _STOCK:
        return True
    current = getattr(module, name, None)
    if current is None or _fingerprint(current) != WRITTEN_FOR[name]:
        pulumi.log.warn(f"{what}: this pulumi SDK ({_sdk_version()}) has another {module.__name__}.{name} than "
                        f"the one this switch was written for (pulumi 3.272.0); the SDK's own is kept")
        return False
    _STOCK[name] = (module, current)
    setattr(module, name, replacement)
    return True


def _sdk_version() -> str:
    try:
        from importlib.metadata import version

        return f"pulumi {version('pulumi')}"
    except Exception:  # noqa: BLE001 - only for the message
        return "pulumi of unknown version"


def fast_output_wait() -> bool:
    """Replace the SDK's `wait_for_rpcs` by `wait_for_rpcs_linear`; True when done (or already done)."""
    return _replace(sdk_stack, "wait_for_rpcs", wait_for_rpcs_linear, "litellm:fast_output_wait")


def drop_stack_traces() -> bool:
    """Make the SDK send an empty stack trace with each resource it registers from now on; True when done."""
    return _replace(sdk_resource, "_get_stack_trace", _no_stack_trace, "litellm:stack_traces")


def drop_debug_logs() -> bool:
    """Make `pulumi.log.debug` send nothing to the engine from now on; True when done."""
    return _replace(pulumi.log, "debug", _no_debug_log, "litellm:sdk_debug_logs")


def restore() -> None:
    """Put the SDK's own functions back (for tests)."""
    for name, (module, stock) in list(_STOCK.items()):
        setattr(module, name, stock)
        del _STOCK[name]


def _no_debug_log(msg: str, resource: Any = None, stream_id: Any = None, ephemeral: Any = None) -> None:
    """pulumi.log.debug's signature; sends nothing (`pulumi up --debug` then shows none of the SDK's)."""


def _no_stack_trace() -> source_pb2.StackTrace:
    # What the SDK itself sends when it finds no user frame: the engine then stores no trace and no position.
    return source_pb2.StackTrace()


async def wait_for_rpcs_linear(await_all_outstanding_tasks: bool = True) -> None:
    """pulumi.runtime.stack.wait_for_rpcs (3.272.0) with the Output loop made linear: the RPC part is the
    SDK's, unchanged; see the module's docstring."""
    pulumi.log.debug(LINEAR_WAIT_MESSAGE)  # the SDK's message, marked: `pulumi up --debug` shows which wait ran
    rpc_manager = sdk_settings._get_rpc_manager()
    while True:
        await _drain_rpcs(rpc_manager)
        if rpc_manager.unhandled_exception is not None:
            raise rpc_manager.unhandled_exception.with_traceback(rpc_manager.exception_traceback)
        pulumi.log.debug("RPCs successfully completed")
        if await_all_outstanding_tasks:
            await _wait_for_outputs()
            pulumi.log.debug("All outstanding outputs completed.")
        if len(rpc_manager.rpcs) == 0:
            break


async def _drain_rpcs(rpc_manager: Any) -> None:
    """The SDK's loop over the outstanding RPCs, unchanged."""
    while len(rpc_manager.rpcs) > 0:
        await asyncio.sleep(0)
        try:
            await rpc_manager.rpcs.pop()
        except Exception as exn:
            if rpc_manager.unhandled_exception is not None:
                cause = rpc_manager.unhandled_exception.with_traceback(rpc_manager.exception_traceback)
                raise exn from cause
            raise


async def _wait_for_outputs() -> None:
    """Wait for every tracked Output; one `asyncio.wait` per round instead of one per completed Output. A
    round ends when all of its Outputs are done or one has failed (its exception is raised, as the SDK's
    loop raises the first failure it sees); Outputs created meanwhile are in the set for the next round."""
    settings = sdk_settings.SETTINGS
    while True:
        with settings.lock:
            if len(settings.outputs) == 0:
                return
            pending = list(settings.outputs)
            settings.outputs.clear()
        done, not_done = await asyncio.wait(pending, return_when=asyncio.FIRST_EXCEPTION)
        for task in done:
            await task  # raises a failed Output's exception
        if not_done:  # not reached unless a task ended without failing yet left others pending
            with settings.lock:
                settings.outputs.update(not_done)
