"""A stand-in for the Pulumi engine's side of `pulumi preview / up / refresh / destroy`, for tests and
benchmarks only (the pulumi CLI is not needed and never used).

    stack = Stack(tmp_path, {"litellm:url": url, "litellm:token": token, "litellm:users": [...]})
    stack.preview(); stack.up(); stack.refresh(); stack.destroy()
    stack.outputs, stack.secret_outputs, stack.plaintext_secrets(), stack.state_file

Every operation starts the real dynamic-provider plugin (`python -u -m pulumi.dynamic`, cwd = the project
root, a clean environment), calls GetPluginInfo, then Configure with the whole stack config, and stops the
plugin at the end. `preview` and `up` run the program (`__main__.py`, or any callable using the
components) in this process under the SDK's mock runtime; each registration is a step, in the engine's
order: Check (olds = old inputs, {} on create) -> Diff (olds = old outputs) -> Create / Update / nothing.
Outputs go back to the program, so dependent resources see what the plugin really returned.

Reproduced (each is a way dynamic providers break that mocks and direct calls never show):
- the provider travels only as the pickled `__provider` string and is unpickled in another process,
  whose cwd is the project root, with no LITELLM_* variables and no stack config at import time;
- Configure gets the whole stack config as the engine sends it to dynamic providers (`project:key`
  names, every value a string, secrets wrapped, acceptSecrets=true); the plugin answers
  acceptSecrets=false, so from then on every secret is stripped before it is sent;
- every value crosses protobuf Structs: numbers arrive as floats (300 -> 300.0);
- preview: Check and Diff only, values not known yet sent as the unknown sentinel; a resource being
  created or updated hands the program its checked inputs (so its other outputs are unknown), an
  unchanged one its old outputs;
- Diff, Update, Read and Delete get the OLD OUTPUTS; Update and Delete also get old_inputs;
- outputs are re-marked secret only where an input of the same name held a secret (the engine's
  annotateSecrets), then the registration's additionalSecretOutputs are applied;
- the plugin's answers are taken as they come: Update replaces all outputs (what `update` does not return
  is gone), DiffResponse has no `stables` and no `diffs` from this plugin, Read's empty id means gone
  (the resource leaves the state), Read's outputs replace the old ones;
- replacement: delete-before-replace first deletes the dependents whose Diff, with the inputs that depend
  on the replaced resource set unknown, asks for replacement (the engine's dependent replacements), then
  the old resource, then creates; create-before-delete deletes the old one at the end;
- resources the program no longer declares are deleted after the program ends, dependents and children
  before what they depend on (a preview lists those deletes); destroy deletes everything in that order;
- the state is saved after every step that changes it (the engine elides the checkpoint of an unchanged
  `same` step), as a stack checkpoint is, with secrets stored as ciphertext; a
  failed `up` keeps what was done.

Parallelism: `Stack(..., parallel=P)` runs at most P steps at once (`pulumi up --parallel P`): a limit on
the program's concurrent registrations in preview/up, and P workers for refresh and for destroy (which
deletes a resource only once nothing left depends on it). Without it, preview/up run as many steps as the
program registers at once and refresh/destroy go one by one. Either way the Python plugin serves at most 4
calls at once (its gRPC server has 4 workers), as under the real engine. `Result.plugin_usage` has the
plugin process's CPU time (start-up apart) and peak memory, read from /proc before it is stopped.

Not reproduced: the CLI and its output formatting; custom timeouts, retries of failed
steps, cancellation; explicit provider resources, aliases, protect, ignoreChanges, replaceOnChanges,
retainOnDelete, import/`Resource.get`, transforms and hooks; policy packs; `refresh --run-program` and
`up --refresh` (call refresh() then up()); diffs in the CLI's format;
real encryption of secrets (the ciphertext is base64); the engine's own diff of old and new inputs is
only reported (Step.changed), never used to decide, because these providers always answer Diff.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import threading
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Optional

from .plugin import Plugin, PluginError, clean_env
from .program import STACK_TYPE, EngineMonitor, Registration, main_program, run_program
from .values import (
    SECRET_SIG,
    SIG,
    UNKNOWN,
    Props,
    annotate_secrets,
    apply_additional_secret_outputs,
    decrypt,
    encrypt,
    is_secret,
    strip_secrets,
)

ROOT = Path(__file__).resolve().parents[2]
RAW_KEY = re.compile(r"sk-[A-Za-z0-9_\-]{16,}")  # a whole LiteLLM key; "sk-...abcd" key names do not match


class EngineError(Exception):
    """The operation failed as `pulumi` would report it; `result` holds the steps done before."""

    def __init__(self, message: str, result: "Result") -> None:
        super().__init__(message)
        self.result = result


@dataclasses.dataclass
class Resource:
    """One resource in the state, values in wire form (secrets wrapped)."""

    urn: str
    type: str
    custom: bool
    id: str
    parent: str
    inputs: Props
    outputs: Props
    dependencies: list[str] = dataclasses.field(default_factory=list)
    property_dependencies: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    additional_secret_outputs: list[str] = dataclasses.field(default_factory=list)

    @property
    def name(self) -> str:
        return self.urn.split("::")[-1]

    def depends_on(self) -> set[str]:
        found = {self.parent, *self.dependencies}
        for urns in self.property_dependencies.values():
            found.update(urns)
        return found - {""}


@dataclasses.dataclass
class Step:
    """What the engine did (or, in preview, would do) with one resource.

    op: create, same, update, replace, delete (and, in refresh, same/update/delete for drift and gone).
    changed: top-level input names whose old and new values differ (outputs, for refresh): what the CLI
      shows for a provider that returns no detailed diff, as the Python plugin never does.
    replaces: the properties the provider said force a replacement.
    """

    op: str
    urn: str
    type: str
    changed: list[str] = dataclasses.field(default_factory=list)
    replaces: list[str] = dataclasses.field(default_factory=list)

    @property
    def key(self) -> str:
        return f"{self.type.split(':')[-1]}/{self.urn.split('::')[-1]}"


@dataclasses.dataclass
class Result:
    operation: str
    steps: list[Step] = dataclasses.field(default_factory=list)
    rpcs: list[tuple[str, str]] = dataclasses.field(default_factory=list)  # (gRPC method, urn) sent to the plugin
    registrations: list[Registration] = dataclasses.field(default_factory=list)
    messages: list[str] = dataclasses.field(default_factory=list)  # the program's warnings and errors
    plugin_usage: Optional["PluginUsage"] = None  # the plugin process's CPU and memory (Linux)

    def ops(self) -> dict[str, str]:
        """{"User/alice": "update", ...} for every resource except the stack itself."""
        return {s.key: s.op for s in self.steps if s.type != STACK_TYPE}

    def step(self, type_name: str, name: str) -> Step:
        return next(s for s in self.steps if s.key == f"{type_name}/{name}")

    def methods(self) -> set[str]:
        return {method for method, _ in self.rpcs}


def _as_config_string(value: Any) -> str:
    """Stack config values reach the program and the plugin as strings; objects and lists as JSON."""
    return value if isinstance(value, str) else json.dumps(value)


def _project_name(project_dir: Path) -> str:
    match = re.search(r"^name:\s*(\S+)", (project_dir / "Pulumi.yaml").read_text(), re.M)
    return match.group(1) if match else "project"


def input_changes(olds: Props, news: Props) -> list[str]:
    """Top-level names whose value differs (an unknown new value counts as different)."""
    names = (set(olds) | set(news)) - {"__provider"}
    out = []
    for name in sorted(names):
        old, new = strip_secrets(olds.get(name)), strip_secrets(news.get(name))
        if new == UNKNOWN or old != new:
            out.append(name)
    return out


def delete_order(resources: Iterable[Resource]) -> list[Resource]:
    """Dependents and children first, then what they depend on (reverse topological order)."""
    remaining = list(reversed(list(resources)))
    order: list[Resource] = []
    while remaining:
        for candidate in remaining:
            if not any(candidate.urn in other.depends_on() for other in remaining if other is not candidate):
                break
        else:
            raise RuntimeError("dependency cycle in the state")
        order.append(candidate)
        remaining.remove(candidate)
    return order


class Stack:
    """A stack: its config, its state file, and the four operations."""

    def __init__(
        self,
        state_dir: Path,
        config: Mapping[str, Any],
        *,
        secret_keys: Iterable[str] = ("litellm:token",),
        program: Optional[Callable[[], Any]] = None,
        name: str = "test",
        project_dir: Path = ROOT,
        plugin_env: Optional[Mapping[str, str]] = None,
        parallel: Optional[int] = None,
    ) -> None:
        if parallel is not None and parallel < 1:
            raise ValueError("parallel must be at least 1")
        self.parallel = parallel
        self.config: dict[str, Any] = dict(config)
        self.secret_keys = set(secret_keys)
        self.project_dir = project_dir
        self.project = _project_name(project_dir)
        self.name = name
        self.program = program or main_program(project_dir)
        self.plugin_env = dict(plugin_env) if plugin_env is not None else clean_env()
        self.state_file = Path(state_dir) / f"{self.project}.{name}.json"
        self._lock = threading.RLock()

    # ------------------------------------------------------------ operations
    def preview(self) -> Result:
        return self._deploy(preview=True)

    def up(self) -> Result:
        return self._deploy(preview=False)

    def refresh(self) -> Result:
        result = Result("refresh")
        state = self._load()
        with self._plugin(result) as plugin:

            def read(resource: Resource) -> None:
                new_id, outs, inputs = plugin.read(resource.urn, resource.type, resource.name, resource.id,
                                                   resource.outputs, resource.inputs)
                with self._lock:
                    if not new_id:  # gone: it leaves the state
                        del state[resource.urn]
                        result.steps.append(Step("delete", resource.urn, resource.type))
                    else:
                        outs = self._secret_outputs(outs, resource.outputs, resource.additional_secret_outputs)
                        changed = input_changes(resource.outputs, outs)
                        resource.id, resource.outputs = new_id, outs
                        if inputs is not None:
                            resource.inputs = annotate_secrets(inputs, resource.inputs)
                        result.steps.append(
                            Step("update" if changed else "same", resource.urn, resource.type, changed))
                    self._save(list(state.values()))

            custom = [r for r in state.values() if r.custom]
            if self.parallel is None:
                for resource in custom:
                    read(resource)
            else:
                with ThreadPoolExecutor(self.parallel) as pool:
                    for done in [pool.submit(read, r) for r in custom]:
                        done.result()
        return result

    def destroy(self) -> Result:
        result = Result("destroy")
        state = self._load()
        with self._plugin(result) as plugin:

            def remove(resource: Resource) -> None:
                if resource.custom:
                    self._delete(plugin, resource, result)
                with self._lock:
                    del state[resource.urn]
                    if not resource.custom:
                        result.steps.append(Step("delete", resource.urn, resource.type))
                    self._save(list(state.values()))

            if self.parallel is None:
                for resource in delete_order(state.values()):
                    remove(resource)
            else:
                self._in_delete_order(list(state.values()), remove)
        return result

    def _in_delete_order(self, resources: list[Resource], fn: Callable[[Resource], None]) -> None:
        """`fn` on every resource, up to `parallel` at once, each only once nothing left depends on it."""
        assert self.parallel is not None
        remaining = {r.urn: r for r in resources}
        running: dict[Future[None], str] = {}
        with ThreadPoolExecutor(self.parallel) as pool:
            while remaining:
                needed = {urn for r in remaining.values() for urn in r.depends_on()}
                for urn, resource in remaining.items():
                    if len(running) >= self.parallel:
                        break
                    if urn not in needed and urn not in running.values():
                        running[pool.submit(fn, resource)] = urn
                if not running:
                    raise RuntimeError("dependency cycle in the state")
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in finished:
                    del remaining[running.pop(future)]
                    future.result()  # the first failure stops the destroy, as the engine's does

    # ---------------------------------------------------------------- reading
    def resources(self) -> list[Resource]:
        return list(self._load().values())

    def resource(self, type_name: str, name: str) -> Resource:
        return next(r for r in self.resources() if r.type.split(":")[-1] == type_name and r.name == name)

    @property
    def outputs(self) -> dict[str, Any]:
        """The stack's exports, secrets unwrapped."""
        return strip_secrets(self._stack_outputs())

    @property
    def secret_outputs(self) -> set[str]:
        return {name for name, value in self._stack_outputs().items() if is_secret(value)}

    def plaintext_secrets(self, extra: Iterable[str] = ()) -> list[str]:
        """Where the state file holds a secret in plain text: a whole raw key (`sk-` + 16 or more
        characters), a secret config value, a string from `extra`, or any raw key that is stored as a
        secret elsewhere in the state. Returns JSON paths only, never the values."""
        raw = json.loads(self.state_file.read_text()) if self.state_file.exists() else {}
        known = {s for s in extra if s} | {_as_config_string(self.config[k]) for k in self.secret_keys if k in self.config}
        known |= {s for s in _secret_strings(decrypt(raw)) if RAW_KEY.fullmatch(s)}
        findings = []
        for path, text in _plain_strings(raw, "$"):
            if RAW_KEY.search(text):
                findings.append(f"{path}: a raw key")
            elif any(secret in text for secret in known if len(secret) >= 8):
                findings.append(f"{path}: a secret value")
        return findings

    # ---------------------------------------------------------------- deploy
    def _deploy(self, preview: bool) -> Result:
        result = Result("preview" if preview else "up")
        old = self._load()
        new: dict[str, Resource] = {}
        gone: dict[str, Resource] = {}  # deleted during this update, by urn
        replaced_for: dict[str, list[str]] = {}  # dependents deleted for a replacement: their replace keys
        errors: list[str] = []

        def snapshot() -> None:
            if not preview:
                rest = [r for urn, r in old.items() if urn not in new and urn not in gone]
                self._save([*new.values(), *rest])

        slots = threading.BoundedSemaphore(self.parallel) if self.parallel else contextlib.nullcontext()
        with self._plugin(result) as plugin:

            def register(reg: Registration) -> tuple[str, Props]:
                with self._lock:
                    result.registrations.append(reg)
                try:
                    if not reg.custom:
                        return self._component(reg, old, new, result, preview, snapshot)
                    with slots:
                        return self._custom(plugin, reg, old, new, gone, replaced_for, result, preview, snapshot)
                except (PluginError, EngineError) as err:
                    errors.append(str(err))
                    raise

            def register_outputs(urn: str, outputs: Props) -> None:
                with self._lock:
                    if not preview and urn in new and new[urn].outputs != outputs:
                        new[urn].outputs = outputs
                        snapshot()

            try:
                result.messages = run_program(
                    self.program, EngineMonitor(register, register_outputs), project=self.project,
                    stack=self.name, config=self._config_strings(), secret_keys=self.secret_keys,
                    preview=preview, root_directory=self.project_dir,
                )
            except Exception as err:  # noqa: BLE001 - reported as the engine reports it
                with self._lock:
                    snapshot()
                raise EngineError(f"{result.operation} failed: {'; '.join(errors) or repr(err)}", result) from None

            if preview:  # what an up would delete: listed, not done
                registered = {reg.urn for reg in result.registrations}
                for resource in delete_order(r for urn, r in old.items() if urn not in registered):
                    result.steps.append(Step("delete", resource.urn, resource.type))
            else:
                leftovers = [r for urn, r in old.items() if urn not in new and urn not in gone]
                for resource in delete_order(leftovers):
                    if resource.custom:
                        self._delete(plugin, resource, result)
                    else:
                        result.steps.append(Step("delete", resource.urn, resource.type))
                    gone[resource.urn] = resource
                    snapshot()
                self._save(new.values())
        return result

    def _component(self, reg: Registration, old: dict[str, Resource], new: dict[str, Resource], result: Result,
                   preview: bool, snapshot: Callable[[], None]) -> tuple[str, Props]:
        prior = old.get(reg.urn)
        with self._lock:
            result.steps.append(Step("same" if prior else "create", reg.urn, reg.type))
            if not preview:
                record = Resource(reg.urn, reg.type, False, "", reg.parent, reg.inputs,
                                  prior.outputs if prior else {}, reg.dependencies, reg.property_dependencies)
                new[reg.urn] = record
                if record != prior:  # the engine elides the checkpoint of a step that changes nothing
                    snapshot()
        return "", reg.inputs

    def _custom(self, plugin: Plugin, reg: Registration, old: dict[str, Resource], new: dict[str, Resource],
                gone: dict[str, Resource], replaced_for: dict[str, list[str]], result: Result, preview: bool,
                snapshot: Callable[[], None]) -> tuple[str, Props]:
        with self._lock:
            prior = old.get(reg.urn) if reg.urn not in gone else None
            replaced_earlier = gone.get(reg.urn) if reg.urn in replaced_for else None
        checked, failures = plugin.check(reg.urn, reg.type, reg.name, prior.inputs if prior else {}, reg.inputs)
        if failures:
            raise EngineError(f"{reg.urn}: " + "; ".join(reason for _, reason in failures), result)
        checked = annotate_secrets(checked, reg.inputs)

        step = Step("create", reg.urn, reg.type)
        diff = None
        if prior is not None:
            diff = plugin.diff(reg.urn, reg.type, reg.name, prior.id, prior.outputs, checked, prior.inputs)
            step.changed = input_changes(prior.inputs, checked)
            changes = diff.changes if diff.changes is not None else bool(step.changed)
            step.op = "replace" if diff.replaces else "update" if changes else "same"
            step.replaces = diff.replaces
        elif replaced_earlier is not None:  # deleted above as a dependent of a delete-before-replace
            step.op, step.replaces = "replace", replaced_for[reg.urn]
            step.changed = input_changes(replaced_earlier.inputs, checked)
        with self._lock:
            result.steps.append(step)

        if preview:
            if prior is not None and step.op == "same":
                return prior.id, prior.outputs
            # A provider without preview support: the engine hands back the checked inputs.
            return (prior.id if prior is not None and step.op == "update" else ""), checked

        if step.op == "same":
            id_, outputs = prior.id, prior.outputs
        elif step.op == "update":
            outs = plugin.update(reg.urn, reg.type, reg.name, prior.id, prior.outputs, checked, prior.inputs)
            id_, outputs = prior.id, self._secret_outputs(outs, checked, reg.additional_secret_outputs)
        else:
            if prior is not None:  # replace
                if diff is not None and diff.delete_before_replace:
                    for dependent, keys in self._dependents_to_replace(plugin, prior, old, gone):
                        self._delete(plugin, dependent, result, record=False)
                        with self._lock:
                            gone[dependent.urn], replaced_for[dependent.urn] = dependent, keys
                            snapshot()
                    self._delete(plugin, prior, result, record=False)
                    with self._lock:
                        gone[prior.urn] = prior
                        snapshot()
                else:
                    raise EngineError(f"{reg.urn}: create-before-delete replacement is not implemented", result)
            id_, outs = plugin.create(reg.urn, reg.type, reg.name, checked)
            outputs = self._secret_outputs(outs, checked, reg.additional_secret_outputs)

        with self._lock:
            record = Resource(reg.urn, reg.type, True, id_, reg.parent, checked, outputs, reg.dependencies,
                              reg.property_dependencies, reg.additional_secret_outputs)
            new[reg.urn] = record
            if record != prior:  # the engine elides the checkpoint of a step that changes nothing
                snapshot()
        return id_, outputs

    def _dependents_to_replace(self, plugin: Plugin, target: Resource, old: dict[str, Resource],
                               gone: dict[str, Resource]) -> list[tuple[Resource, list[str]]]:
        """The engine's dependent replacements: a resource whose inputs depend on one being replaced is
        diffed with those inputs unknown; if that asks for a replacement it is deleted first. Dependents
        come back in delete order."""
        replacing = {target.urn}
        found: dict[str, list[str]] = {}
        for resource in old.values():
            if not resource.custom or resource.urn in gone or resource.urn == target.urn:
                continue
            inputs = dict(resource.inputs)
            touched = [p for p, urns in resource.property_dependencies.items() if replacing & set(urns) and p in inputs]
            if not touched:
                continue
            for prop in touched:
                inputs[prop] = UNKNOWN
            diff = plugin.diff(resource.urn, resource.type, resource.name, resource.id, resource.outputs, inputs,
                               resource.inputs)
            if diff.replaces:
                replacing.add(resource.urn)
                found[resource.urn] = diff.replaces
        return [(r, found[r.urn]) for r in delete_order(old[urn] for urn in found)]

    def _delete(self, plugin: Plugin, resource: Resource, result: Result, record: bool = True) -> None:
        plugin.delete(resource.urn, resource.type, resource.name, resource.id, resource.outputs, resource.inputs)
        if record:
            with self._lock:
                result.steps.append(Step("delete", resource.urn, resource.type))

    @staticmethod
    def _secret_outputs(outs: Props, inputs: Props, additional: list[str]) -> Props:
        return apply_additional_secret_outputs(annotate_secrets(outs, inputs), additional)

    # ----------------------------------------------------------------- plumbing
    def _config_strings(self) -> dict[str, str]:
        return {key: _as_config_string(value) for key, value in self.config.items()}

    def _plugin(self, result: Result) -> "_Session":
        return _Session(self, result)

    def _stack_outputs(self) -> Props:
        for resource in self.resources():
            if resource.type == STACK_TYPE:
                return resource.outputs
        return {}

    def _load(self) -> dict[str, Resource]:
        if not self.state_file.exists():
            return {}
        data = decrypt(json.loads(self.state_file.read_text()))
        return {r["urn"]: Resource(**r) for r in data["deployment"]["resources"]}

    def _save(self, resources: Iterable[Resource]) -> None:
        with self._lock:
            rows = [
                {f.name: getattr(r, f.name) for f in dataclasses.fields(Resource)} for r in resources
            ]
            data = {"version": 3, "deployment": {"resources": encrypt(rows)}}
            self.state_file.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.state_file.with_suffix(".tmp")
            # Compact: json's C encoder runs only without indent; pretty-printing a large state after every
            # step made the stand-in, not the providers, the cost of an `up` with hundreds of resources.
            tmp.write_text(json.dumps(data, sort_keys=True))
            os.replace(tmp, self.state_file)


@dataclasses.dataclass
class PluginUsage:
    startup_cpu: float  # CPU seconds to start: imports, GetPluginInfo, Configure
    work_cpu: float  # CPU seconds after that: the operation's Check/Diff/Create/... calls
    peak_kb: int  # peak resident memory (VmHWM) over the process's life


class _Session:
    """A plugin for one operation: started, GetPluginInfo, Configure; stopped (killed) at the end."""

    def __init__(self, stack: Stack, result: Result) -> None:
        self.stack, self.result = stack, result
        self.plugin = Plugin(stack.project_dir, env=stack.plugin_env)

    def __enter__(self) -> Plugin:
        self.plugin.start()
        self.plugin.get_plugin_info()
        self.plugin.configure(self.stack._config_strings(), self.stack.secret_keys)
        self.started = self.plugin.usage()
        return self.plugin

    def __exit__(self, *_: object) -> None:
        self.result.rpcs = list(self.plugin.calls)
        self.plugin.__exit__()
        end, start = self.plugin.final_usage, getattr(self, "started", None)
        if end is not None and start is not None:
            self.result.plugin_usage = PluginUsage(start.cpu, end.cpu - start.cpu, end.peak_kb)


def _secret_strings(value: Any, inside: bool = False) -> Iterable[str]:
    """Every string value inside a secret."""
    if is_secret(value):
        yield from _secret_strings(value.get("value"), True)
    elif isinstance(value, dict):
        for v in value.values():
            yield from _secret_strings(v, inside)
    elif isinstance(value, list):
        for v in value:
            yield from _secret_strings(v, inside)
    elif isinstance(value, str) and inside:
        yield value


def _plain_strings(value: Any, path: str) -> Iterable[tuple[str, str]]:
    """Every string in the state file that is not inside a secret's ciphertext (keys included)."""
    if isinstance(value, dict):
        if value.get(SIG) == SECRET_SIG:
            return
        for k, v in value.items():
            yield f"{path}.{k}", k
            yield from _plain_strings(v, f"{path}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _plain_strings(v, f"{path}[{i}]")
    elif isinstance(value, str):
        yield path, value
