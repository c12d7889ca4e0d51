"""Run a Pulumi program in this process with the SDK's mock runtime, handing every registration to the
engine stand-in and giving the program back what the engine answers.

The SDK talks to the engine's resource monitor through one object; the mocks swap it for `MockMonitor`.
`EngineMonitor` keeps that plumbing but passes the raw `RegisterResourceRequest` on instead of calling a
`Mocks.new_resource`: the request is what the real engine receives (inputs in wire form with secret
wrappers and unknowns, the `__provider` string, parent, dependencies, additionalSecretOutputs), and the
response is what the real engine returns (the provider's outputs, secrets marked). Registration and step
happen in the same call, as in the engine, so a resource whose inputs depend on another's outputs (the
Key on the User) sees the outputs the plugin really produced.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import runpy
import sys
import threading
from pathlib import Path
from typing import Any, Callable, Optional

from google.protobuf import empty_pb2
from pulumi.runtime import config as runtime_config
from pulumi.runtime import settings
from pulumi.runtime.mocks import MockEngine, MockMonitor, Mocks, MockSettings
from pulumi.runtime.proto import resource_pb2
from pulumi.runtime.stack import run_in_stack

from .values import Props, from_struct, to_struct

STACK_TYPE = "pulumi:pulumi:Stack"


@dataclasses.dataclass
class Registration:
    """One RegisterResource call, as the engine sees it."""

    urn: str
    type: str
    name: str
    parent: str
    custom: bool
    inputs: Props  # wire form: secrets wrapped, unknowns as the UNKNOWN string, `__provider` included
    dependencies: list[str]
    property_dependencies: dict[str, list[str]]
    additional_secret_outputs: list[str]
    aliases: list[str] = dataclasses.field(default_factory=list)  # URNs the resource may have had before


Register = Callable[[Registration], tuple[str, Props]]
RegisterOutputs = Callable[[str, Props], None]


class _NoMocks(Mocks):
    def new_resource(self, args: Any) -> tuple[Optional[str], dict]:
        raise AssertionError("EngineMonitor handles registrations itself")

    def call(self, args: Any) -> tuple[dict, Optional[list[tuple[str, str]]]]:
        raise NotImplementedError(f"invoke {args.token}: the harness implements no provider functions")


class EngineMonitor(MockMonitor):
    def __init__(self, register: Register, register_outputs: RegisterOutputs) -> None:
        super().__init__(_NoMocks())
        self._register = register
        self._register_outputs = register_outputs

    def make_urn(self, parent: str, type_: str, name: str) -> str:
        """The engine's URN: the parent's type is qualified in, except the root stack's (MockMonitor's
        version also qualifies children of the stack with `pulumi:pulumi:Stack$`)."""
        if parent and parent.split("::")[2].split("$")[-1] == STACK_TYPE:
            parent = ""
        return super().make_urn(parent, type_, name)

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 (gRPC method name)
        urn = self.make_urn(request.parent, request.type, request.name)
        registration = Registration(
            urn=urn,
            type=request.type,
            name=request.name,
            parent=request.parent,
            custom=bool(request.custom),
            inputs=from_struct(request.object),
            dependencies=list(request.dependencies),
            property_dependencies={k: list(v.urns) for k, v in request.propertyDependencies.items()},
            additional_secret_outputs=list(request.additionalSecretOutputs),
            aliases=[self.alias_urn(request, alias) for alias in request.aliases],
        )
        id_, outputs = self._register(registration)
        return resource_pb2.RegisterResourceResponse(urn=urn, id=id_, object=to_struct(outputs))

    def alias_urn(self, request: Any, alias: Any) -> str:
        """The URN an alias names (the engine's alias spec resolution, for the current stack and project):
        its name, type and parent, each defaulting to the resource's own."""
        if alias.urn:
            return alias.urn
        spec = alias.spec
        if spec.stack or spec.project:
            raise NotImplementedError("the harness resolves aliases within the current stack and project only")
        parent = "" if spec.noParent else (spec.parentUrn or request.parent)
        return self.make_urn(parent, spec.type or request.type, spec.name or request.name)

    def RegisterResourceOutputs(self, request: Any) -> Any:  # noqa: N802
        self._register_outputs(request.urn, from_struct(request.outputs))
        return empty_pb2.Empty()

    def ReadResource(self, request: Any) -> Any:  # noqa: N802
        raise NotImplementedError("the harness does not implement Resource.get / read")


class _Collect(logging.Handler):
    def __init__(self, into: list[str]) -> None:
        super().__init__(logging.DEBUG)
        self.into = into

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.WARNING:
            self.into.append(f"{record.levelname.lower()}: {record.getMessage()}")


def main_program(project_dir: Path) -> Callable[[], None]:
    """The project's own `__main__.py`, run as the Python language host runs it: as `__main__`, with the
    program's directory importable."""

    def run() -> None:
        if str(project_dir) not in sys.path:
            sys.path.insert(0, str(project_dir))
        runpy.run_path(str(project_dir / "__main__.py"), run_name="__main__")

    return run


def run_program(
    program: Callable[[], Any],
    monitor: EngineMonitor,
    *,
    project: str,
    stack: str,
    config: dict[str, str],
    secret_keys: set[str],
    preview: bool,
    root_directory: Path,
) -> list[str]:
    """Run `program` to completion (every registration answered); return its warnings and errors.

    It runs in a thread of its own: the SDK keeps its settings, config and root resource in context
    variables and needs an event loop, and a new thread starts with a fresh context and no loop, so
    repeated runs (and other tests' mocks) never see each other's state.
    """
    messages: list[str] = []
    logger = logging.getLogger(f"harness.program.{id(monitor)}")
    logger.propagate = False
    handler = _Collect(messages)
    logger.addHandler(handler)
    failure: list[BaseException] = []

    def run() -> None:
        settings.reset_options(project=project, stack=stack, preview=preview, organization="organization")
        settings.configure(
            MockSettings(
                monitor=monitor,
                monitor_features=set(monitor.GetDeploymentInfo(empty_pb2.Empty()).supportedFeatures),
                engine=MockEngine(logger),
                project=project,
                stack=stack,
                root_directory=str(root_directory),
                dry_run=preview,
                organization="organization",
                callbacks=None,
            )
        )
        runtime_config.set_all_config(config, sorted(secret_keys))
        loop = asyncio.new_event_loop()
        loop.set_exception_handler(lambda _loop, _context: None)  # a failure is raised below, once
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(run_in_stack(program))
        except BaseException as err:  # noqa: BLE001 - handed to the caller's thread
            failure.append(err)
        finally:
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.close()

    thread = threading.Thread(target=run, name="pulumi-program", daemon=True)
    try:
        thread.start()
        thread.join()
    finally:
        logger.removeHandler(handler)  # loggers live as long as the process: one left behind leaks every run
    if failure:
        raise failure[0]
    return messages
