"""The real Python dynamic-provider plugin, started and spoken to as the engine does.

`pulumi-resource-pulumi-python` is a shell shim for `python -u -m pulumi.dynamic`: the engine starts it with
the program's directory as cwd, reads the port it prints, and drives it over gRPC. Each resource's provider
object travels in its `__provider` property and is unpickled in this process, so a provider module that
does not import cleanly here (no stack config, no program, a different environment) breaks `pulumi up`
even when every in-process test passes.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any, Mapping, Optional

import grpc
from google.protobuf import empty_pb2, json_format
from pulumi.runtime.proto import provider_pb2, provider_pb2_grpc

from .values import Props, from_struct, secret, strip_secrets, to_struct

# What the plugin process inherits; everything else (LITELLM_*, PULUMI_*, proxies) is left out so a
# provider cannot lean on the test process's environment.
KEPT_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT")
PROVIDER_TYPE = "pulumi:providers:pulumi-python"  # the default provider of every dynamic resource
# What the engine's Handshake announces (pkg/resource/plugin/provider_plugin.go); the dynamic provider
# answers Unimplemented, so the flags change nothing but the trace.
HANDSHAKE = dict(configure_with_urn=True, supports_views=True, supports_refresh_before_update=True,
                 invoke_with_preview=True, accepts_byte_string=True, sends_old_outputs_to_check=True,
                 accepts_outputs_in_invoke=True, accepts_outputs_in_call=True)
# A PULUMI_DEBUG_GRPC line's metadata for a call to this plugin, as the engine writes it.
TRACE_METADATA = {"kind": "resource", "mode": "client", "name": "pulumi-python"}


class PluginError(Exception):
    """A gRPC call the plugin failed (for Check, Create, ...: the provider raised)."""

    def __init__(self, method: str, urn: str, details: str) -> None:
        self.method, self.urn, self.details = method, urn, details
        last = [line for line in details.strip().splitlines() if line.strip()]
        super().__init__(f"{method} {urn}: {last[-1] if last else details}")


@dataclasses.dataclass
class Usage:
    """What the plugin process has used so far, from /proc (Linux): CPU seconds (user + system) and peak
    resident memory (VmHWM)."""

    cpu: float
    peak_kb: int


def process_usage(pid: int) -> Optional[Usage]:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()  # after "pid (comm)": state is field 3, utime 14, stime 15
    ticks = int(fields[11]) + int(fields[12])
    peak = next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:")), 0)
    return Usage(ticks / os.sysconf("SC_CLK_TCK"), peak)


@dataclasses.dataclass
class Diff:
    changes: Optional[bool]  # None: the provider did not say (DIFF_UNKNOWN)
    replaces: list[str]
    delete_before_replace: bool


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k in KEPT_ENV}
    env.update(extra or {})
    return env


class Plugin:
    """One `python -u -m pulumi.dynamic` process and a client for it. Use as a context manager."""

    def __init__(self, cwd: Path, *, python: str = sys.executable, env: Mapping[str, str] | None = None,
                 debug_grpc: Optional[str] = None) -> None:
        self.cwd = cwd
        self.debug_grpc = debug_grpc  # a file: every call appended as the engine's PULUMI_DEBUG_GRPC does
        self.python = python
        self.env = dict(env) if env is not None else clean_env()
        self.calls: list[tuple[str, str]] = []  # (method, urn), in order
        self.accept_secrets = False
        self.final_usage: Optional[Usage] = None  # read just before stop() ends the process
        self._lock = threading.Lock()
        self._proc: Optional[subprocess.Popen[bytes]] = None
        self._channel: Optional[grpc.Channel] = None
        self._stub: Optional[provider_pb2_grpc.ResourceProviderStub] = None
        self._stderr = tempfile.TemporaryFile()

    # ---------------------------------------------------------------- process
    def start(self) -> "Plugin":
        self._proc = subprocess.Popen(
            [self.python, "-u", "-m", "pulumi.dynamic"],
            cwd=self.cwd, env=self.env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=self._stderr,
        )
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline().decode().strip()
        if not line.isdigit():
            self.stop()
            raise RuntimeError(f"the dynamic-provider plugin did not print its port (got {line!r}):\n{self.stderr()}")
        self._channel = grpc.insecure_channel(f"127.0.0.1:{line}")
        grpc.channel_ready_future(self._channel).result(timeout=60)
        self._stub = provider_pb2_grpc.ResourceProviderStub(self._channel)
        return self

    def usage(self) -> Optional[Usage]:
        """CPU time and peak memory of the running plugin process (None when not running or not Linux)."""
        return process_usage(self._proc.pid) if self._proc is not None and self._proc.poll() is None else None

    def stop(self) -> None:
        if self._proc is not None:
            self.final_usage = self.usage() or self.final_usage
        if self._channel is not None:
            self._channel.close()
            self._channel = None
        if self._proc is not None:
            if self._proc.poll() is None:
                self._proc.kill()
            self._proc.wait()
            if self._proc.stdout is not None:
                self._proc.stdout.close()
            self._proc = None

    def stderr(self) -> str:
        self._stderr.seek(0)
        return self._stderr.read().decode(errors="replace")

    def __enter__(self) -> "Plugin":
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()
        self._stderr.close()

    # --------------------------------------------------------------- protocol
    def _call(self, method: str, urn: str, request: Any, *, optional: bool = False) -> Any:
        """One call; `optional`: a method the engine calls but tolerates Unimplemented for (returns None)."""
        assert self._stub is not None, "start() first"
        with self._lock:
            self.calls.append((method, urn))
        try:
            response = getattr(self._stub, method)(request)
        except grpc.RpcError as err:
            self._trace(method, request, None, err)
            if optional and err.code() == grpc.StatusCode.UNIMPLEMENTED:
                return None
            raise PluginError(method, urn, err.details() or str(err)) from None
        self._trace(method, request, response, None)
        return response

    def _trace(self, method: str, request: Any, response: Any, err: Optional[grpc.RpcError]) -> None:
        """The line PULUMI_DEBUG_GRPC gets for a completed call (rpcdebug/interceptors.go): protojson of the
        request and response, the error as Go's status prints it. It holds secrets in plain text, as the
        engine's does."""
        if not self.debug_grpc:
            return
        entry: dict[str, Any] = {"method": f"/pulumirpc.ResourceProvider/{method}",
                                 "request": json_format.MessageToDict(request)}
        if response is not None:
            entry["response"] = json_format.MessageToDict(response)
        if err is not None:
            code = "".join(part.title() for part in err.code().name.split("_"))
            entry["errors"] = [f"rpc error: code = {code} desc = {err.details()}"]
        entry.update(metadata=TRACE_METADATA, progress="response_completed")
        with self._lock, open(self.debug_grpc, "a") as out:
            out.write(json.dumps(entry) + "\n")

    def _wire(self, props: Props) -> Any:
        """Properties as the engine marshals them for this plugin: secrets kept only if it accepts them."""
        return to_struct(props if self.accept_secrets else strip_secrets(props))

    def handshake(self) -> None:
        self._call("Handshake", "", provider_pb2.ProviderHandshakeRequest(**HANDSHAKE), optional=True)

    def get_plugin_info(self) -> str:
        return self._call("GetPluginInfo", "", empty_pb2.Empty()).version

    def check_config(self, urn: str, olds: Props, news: Props) -> None:
        """The default provider's config checked (the dynamic provider does not implement it). Before
        Configure the engine does not know whether the plugin accepts secrets: they go stripped."""
        self._call("CheckConfig", urn, provider_pb2.CheckRequest(
            urn=urn, name=urn.split("::")[-1], type=PROVIDER_TYPE, olds=self._wire(olds), news=self._wire(news)),
            optional=True)

    def diff_config(self, urn: str, olds: Props, news: Props) -> None:
        """The saved provider config against the new one, when a provider is in the state (not implemented)."""
        self._call("DiffConfig", urn, provider_pb2.DiffRequest(
            urn=urn, name=urn.split("::")[-1], type=PROVIDER_TYPE, olds=self._wire(olds), news=self._wire(news),
            old_inputs=self._wire(olds)), optional=True)

    def configure(self, config: Mapping[str, str], secret_keys: set[str], urn: str = "", id_: str = "") -> None:
        """The whole stack config, secrets wrapped in `args` (`project:key` names); `variables`, the deprecated
        form, has the same values plain under `<package>:config:<project:key>`, as the engine builds it."""
        args = {k: secret(v) if k in secret_keys else v for k, v in config.items()}
        package = PROVIDER_TYPE.split(":")[-1]
        response = self._call(
            "Configure", urn,
            provider_pb2.ConfigureRequest(
                variables={f"{package}:config:{k}": v for k, v in config.items()}, args=to_struct(args),
                acceptSecrets=True, acceptResources=True, sends_old_inputs=True, sends_old_inputs_to_delete=True,
                id=id_ or None, urn=urn or None, name=urn.split("::")[-1] if urn else None,
                type=PROVIDER_TYPE if urn else None,
            ),
        )
        self.accept_secrets = response.acceptSecrets

    def cancel(self) -> None:
        """What the engine sends every plugin before closing it."""
        self._call("Cancel", "", empty_pb2.Empty(), optional=True)

    def check(self, urn: str, type_: str, name: str, olds: Props, news: Props,
              old_outputs: Optional[Props] = None) -> tuple[Props, list[tuple[str, str]]]:
        """`old_outputs` goes with `olds` (the engine announces sendsOldOutputsToCheck); both empty for a new
        resource or a replacement."""
        response = self._call(
            "Check", urn,
            provider_pb2.CheckRequest(urn=urn, type=type_, name=name, olds=self._wire(olds), news=self._wire(news),
                                      old_outputs=self._wire(old_outputs or {}), randomSeed=os.urandom(32)),
        )
        return from_struct(response.inputs), [(f.property, f.reason) for f in response.failures]

    def diff(self, urn: str, type_: str, name: str, id_: str, olds: Props, news: Props, old_inputs: Props) -> Diff:
        response = self._call(
            "Diff", urn,
            provider_pb2.DiffRequest(id=id_, urn=urn, type=type_, name=name, olds=self._wire(olds),
                                     news=self._wire(news), old_inputs=self._wire(old_inputs)),
        )
        changes = {
            provider_pb2.DiffResponse.DIFF_SOME: True,
            provider_pb2.DiffResponse.DIFF_NONE: False,
        }.get(response.changes)
        return Diff(changes, list(response.replaces), response.deleteBeforeReplace)

    def create(self, urn: str, type_: str, name: str, news: Props) -> tuple[str, Props]:
        response = self._call(
            "Create", urn,
            provider_pb2.CreateRequest(urn=urn, type=type_, name=name, properties=self._wire(news)),
        )
        return response.id, from_struct(response.properties)

    def read(self, urn: str, type_: str, name: str, id_: str, olds: Props, old_inputs: Props) -> tuple[str, Props, Optional[Props]]:
        response = self._call(
            "Read", urn,
            provider_pb2.ReadRequest(id=id_, urn=urn, type=type_, name=name, properties=self._wire(olds),
                                     inputs=self._wire(old_inputs)),
        )
        inputs = from_struct(response.inputs) if response.HasField("inputs") else None
        return response.id, from_struct(response.properties), inputs

    def update(self, urn: str, type_: str, name: str, id_: str, olds: Props, news: Props, old_inputs: Props) -> Props:
        response = self._call(
            "Update", urn,
            provider_pb2.UpdateRequest(id=id_, urn=urn, type=type_, name=name, olds=self._wire(olds),
                                       news=self._wire(news), old_inputs=self._wire(old_inputs)),
        )
        return from_struct(response.properties)

    def delete(self, urn: str, type_: str, name: str, id_: str, olds: Props, old_inputs: Props) -> None:
        self._call(
            "Delete", urn,
            provider_pb2.DeleteRequest(id=id_, urn=urn, type=type_, name=name, properties=self._wire(olds),
                                       old_inputs=self._wire(old_inputs)),
        )
