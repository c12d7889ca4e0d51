"""A stand-in for the Pulumi engine's side of `pulumi preview / up / refresh / destroy / import`, for tests
and benchmarks only (the pulumi CLI is not needed and never used).

    stack = Stack(tmp_path, {"litellm:url": url, "litellm:token": token, "litellm:users": [...]})
    stack.preview(); stack.up(); stack.refresh(); stack.destroy()
    stack.outputs, stack.secret_outputs, stack.plaintext_secrets(), stack.state_file

It follows the engine's own code (github.com/pulumi/pulumi v3.274.0, pkg/resource/deploy/: step_generator.go,
step.go, step_executor.go, deployment.go, target.go) and is checked against the real engine: the same
scenarios through both, every call to the plugin compared (tests/engine/test_harness_matches_engine.py);
docs/engine-fidelity.md maps each behaviour to the engine function it follows and the test that covers it,
and lists what still differs. In short:

- Plugin: every operation starts the real dynamic-provider plugin (`python -u -m pulumi.dynamic`, cwd = the
  project root, the caller's environment as the plugin inherits `pulumi`'s) and calls, as the engine does,
  Handshake (Unimplemented), GetPluginInfo, CheckConfig and DiffConfig when the program runs (Unimplemented),
  then Configure with the whole stack config (target.go GetPackageConfig: `project:key` names, strings,
  objects as Go's JSON, secrets wrapped), and Cancel at the end. preview/up configure it from the current
  config and save that config in the state; refresh and destroy run no program and configure it from the
  config saved at the last up (`run_program=True`: the current one, as `--run-program`). The plugin answers
  acceptSecrets=false, so secrets are stripped on the wire. With PULUMI_DEBUG_GRPC=<file> in `plugin_env`,
  every call is appended to the file as the engine's own trace writes it (raw secrets included, as there).
- Program: preview and up run the program (`__main__.py` or a callable) in this process under the SDK's mock
  runtime; each registration is a step, run as it arrives (up to `parallel` at once, default 4 x cores):
  Check (olds = old inputs, oldOutputs) -> Diff (olds = old outputs) -> Create / Update / Same / Replace.
- Replace (continueStepsFromDiff): when Diff asks for it, or always for a resource left pending replacement.
  A second Check runs with no olds. Delete-before-replace (Diff's deleteBeforeReplace) first deletes the
  dependents whose Diff, with the inputs that depend on the replaced resource unknown, asks for replacement
  (calculateDependentReplacements), dependents first, then the resource; a resource or dependent already
  pending replacement is not deleted again (a dependent is then replaced by its own registration). Each stays
  in the state marked `pending_replacement` until its create succeeds; a re-created dependent is checked with
  no olds. Create-before-delete creates the new one and keeps the old one in the state marked `delete`; it is
  deleted after all creates and updates (GenerateDeletes), or by the next up if this one fails; a pending
  replacement is only created, whatever order Diff asks for.
- Deletes at the end of an up: the condemned (`delete`) entries and what the program no longer declares, in
  reverse dependency order, in parallel; a pending-replacement entry nobody declares is dropped without a
  Delete (RemovePendingReplaceStep). Destroy does the same for the whole state.
- Refresh: Read (properties = old outputs, inputs = old inputs; an empty id means gone), then Diff with the
  refreshed outputs as olds and the inputs as news: DIFF_NONE reports the resource unchanged (RefreshStep).
- Failures: a Check failure bails (preview too); the first failed step cancels the steps not started
  (stepExecutor.cancel) and skips the deletes; what was done is saved. Create must return an id.
- Secrets: outputs are re-marked secret where an input of the same name held a secret (annotateSecrets), and
  the registration's additionalSecretOutputs are applied on every step with a new state, `same` included.
- Import (`pulumi import`, the `import_` option): Read with an id and no properties, which the Python plugin
  cannot serve (it needs `__provider` from the properties).
- Values cross protobuf Structs (numbers arrive as floats; null map entries dropped); the state is saved
  after every step that changes it, secrets as (base64) ciphertext.

- Aliases: a resource new under its URN takes the state entry of its first alias found there (renamed, not
  re-created); a child inherits its parent's aliases (its name's prefix that is the parent's name replaced by
  the alias's); a URN registered twice fails the run.

Not reproduced: the CLI and its output; custom timeouts, step retries, cancellation by signal; explicit
provider resources, aliases to other stacks, protect, ignoreChanges, replaceOnChanges, retainOnDelete, `Resource.get`,
transforms, hooks; policy packs; `up --refresh`; real encryption of secrets; the engine's legacy input diff
for DIFF_UNKNOWN (these providers always answer Diff).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import threading
import uuid
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Optional

from .plugin import Plugin, PluginError
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
    secret,
    strip_secrets,
)

ROOT = Path(__file__).resolve().parents[2]
RAW_KEY = re.compile(r"sk-[A-Za-z0-9_\-]{16,}")  # a whole LiteLLM key; "sk-...abcd" key names do not match
DEFAULT_PARALLEL = 4 * (os.cpu_count() or 1)  # the engine's default --parallel: 4 x GOMAXPROCS


class EngineError(Exception):
    """The operation failed as `pulumi` would report it; `result` holds the steps done before."""

    def __init__(self, message: str, result: "Result") -> None:
        super().__init__(message)
        self.result = result


class _Cancelled(Exception):
    """A step not started because an earlier one failed (the engine's stepExecutor.cancel)."""


@dataclasses.dataclass
class Resource:
    """One resource in the state, values in wire form (secrets wrapped).

    pending_replacement: deleted by a delete-before-replace whose create has not succeeded yet (the engine's
      PendingReplacement): the next up replaces it whatever Diff says, and never deletes it again.
    delete: the old half of a create-before-delete replacement, to be deleted at the end of a run (the
      engine's Delete flag); it shares its URN with the live resource that replaced it.
    """

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
    pending_replacement: bool = False
    delete: bool = False

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

    op: create, same, update, replace, delete, delete-replaced (the old half of a replacement, or a dependent
      deleted for a delete-before-replace; the engine's OpDeleteReplaced), and in refresh same/update/delete
      for no drift, drift and gone.
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
        """{"User/alice": "update", ...} for every resource except the stack itself (a replacement's
        delete-replaced steps are in `steps`)."""
        return {s.key: s.op for s in self.steps if s.type != STACK_TYPE and s.op != "delete-replaced"}

    def step(self, type_name: str, name: str) -> Step:
        return next(s for s in self.steps if s.key == f"{type_name}/{name}")

    def methods(self) -> set[str]:
        return {method for method, _ in self.rpcs}

    def calls(self, method: str) -> list[str]:
        """The URNs the plugin got `method` for, in order."""
        return [urn for m, urn in self.rpcs if m == method]


def _as_config_string(value: Any) -> str:
    """Stack config values reach the program and the plugin as strings; objects and lists as JSON the way
    the engine (Go's json.Marshal) writes them: keys sorted, no spaces, UTF-8 as is."""
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True, separators=(",", ":"),
                                                             ensure_ascii=False)


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


def _remove(items: list[Resource], item: Resource) -> None:
    """Remove that very entry (two entries of a replacement can be equal in every field but the flags)."""
    del items[next(i for i, x in enumerate(items) if x is item)]


def _deleted_by_provider(resource: Resource) -> bool:
    """A condemned entry gets a Delete (DeleteStep), even one already deleted; a pending replacement that is
    not condemned is only dropped from the state (RemovePendingReplaceStep)."""
    return resource.custom and (resource.delete or not resource.pending_replacement)


def in_delete_order(resources: list[Resource], fn: Callable[[Resource], None], parallel: int) -> None:
    """`fn` on every resource, up to `parallel` at once, each only once nothing left depends on it (the
    engine's ScheduleDeletes). The first failure stops it: what is not started is not done."""
    remaining = list(resources)
    running: dict[Future[None], Resource] = {}
    failure: Optional[BaseException] = None
    with ThreadPoolExecutor(parallel) as pool:
        while remaining or running:
            if failure is None:
                for resource in list(remaining):
                    if len(running) >= parallel:
                        break
                    needed = any(resource.urn in other.depends_on() for other in [*remaining, *running.values()]
                                 if other.urn != resource.urn)
                    if not needed:
                        _remove(remaining, resource)
                        running[pool.submit(fn, resource)] = resource
                if not running:
                    raise RuntimeError("dependency cycle in the state")
            elif not running:
                break
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                del running[future]
                if future.exception() is not None and failure is None:
                    failure = future.exception()
    if failure is not None:
        raise failure


class Stack:
    """A stack: its config, its state file, and the operations."""

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
        self.parallel = parallel or DEFAULT_PARALLEL
        self.config: dict[str, Any] = dict(config)
        self.secret_keys = set(secret_keys)
        self.project_dir = project_dir
        self.project = _project_name(project_dir)
        self.name = name
        self.program = program or main_program(project_dir)
        # The plugin inherits the environment of `pulumi` (LITELLM_*, REQUESTS_CA_BUNDLE, proxies): here, ours.
        self.plugin_env = dict(plugin_env) if plugin_env is not None else dict(os.environ)
        self.state_file = Path(state_dir) / f"{self.project}.{name}.json"
        self._lock = threading.RLock()

    # ------------------------------------------------------------ operations
    def preview(self) -> Result:
        return _Update(self, preview=True).run()

    def up(self) -> Result:
        return _Update(self, preview=False).run()

    def refresh(self, run_program: bool = False) -> Result:
        """`pulumi refresh`: the plugin is configured from the config saved at the last up, unless
        `run_program` (`pulumi refresh --run-program`)."""
        result = Result("refresh")
        entries, saved = self._load_with_config()
        config = self._config_for(run_program, saved)
        kept = saved or config  # what the next destroy uses: refresh does not change it
        with self._plugin(result, config) as plugin:

            def read(resource: Resource) -> None:
                new_id, outs, inputs = plugin.read(resource.urn, resource.type, resource.name, resource.id,
                                                   resource.outputs, resource.inputs)
                with self._lock:
                    if not new_id:  # gone: it leaves the state
                        _remove(entries, resource)
                        result.steps.append(Step("delete", resource.urn, resource.type))
                        self._save(entries, kept)
                        return
                outs = self._secret_outputs(outs, resource.outputs, resource.additional_secret_outputs)
                new_inputs = annotate_secrets(inputs, resource.inputs) if inputs is not None else resource.inputs
                # RefreshStep: the diff an `up` of an unchanged program would show, framed the other way round.
                diff = plugin.diff(resource.urn, resource.type, resource.name, new_id, outs, resource.inputs,
                                   new_inputs)
                changed = input_changes(resource.outputs, outs)
                drifted = diff.changes if diff.changes is not None else bool(changed)
                with self._lock:
                    resource.id, resource.outputs, resource.inputs = new_id, outs, new_inputs
                    result.steps.append(Step("update" if drifted else "same", resource.urn, resource.type,
                                             changed, diff.replaces))
                    self._save(entries, kept)

            # RefreshStep: every custom resource, old halves of replacements (`delete`) included; one pending
            # replacement is deleted already and is not read.
            custom = [r for r in entries if r.custom and not r.pending_replacement]
            with ThreadPoolExecutor(self.parallel) as pool:
                for done in [pool.submit(read, r) for r in custom]:
                    done.result()
        return result

    def destroy(self, run_program: bool = False) -> Result:
        """`pulumi destroy`: configured like refresh. A resource pending replacement is only dropped."""
        result = Result("destroy")
        entries, saved = self._load_with_config()
        config = self._config_for(run_program, saved)
        with self._plugin(result, config) as plugin:

            def remove(resource: Resource) -> None:
                if _deleted_by_provider(resource):
                    self._delete(plugin, resource)
                with self._lock:
                    _remove(entries, resource)
                    result.steps.append(Step("delete", resource.urn, resource.type))
                    self._save(entries, config)

            in_delete_order(list(entries), remove, self.parallel)
        return result

    def import_(self, type_token: str, name: str, id_: str) -> Result:
        """`pulumi import` / the `import_` option: Read with an id and no properties. The Python plugin
        unpickles the provider from the properties' `__provider`, so this fails before any provider code."""
        result = Result("import")
        urn = f"urn:pulumi:{self.name}::{self.project}::{type_token}::{name}"
        with self._plugin(result, self._current_config()) as plugin:
            try:
                plugin.read(urn, type_token, name, id_, {}, {})
            except PluginError as err:
                raise EngineError(f"import failed: {err}", result) from None
        return result

    # ---------------------------------------------------------------- reading
    def resources(self) -> list[Resource]:
        """Every entry of the state, condemned and pending-replacement ones included."""
        return self._load()

    def resource(self, type_name: str, name: str) -> Resource:
        """The live resource of that name (not the old half of a replacement)."""
        return next(r for r in self._load()
                    if r.type.split(":")[-1] == type_name and r.name == name and not r.delete)

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

    # ---------------------------------------------------------------- shared
    def _delete(self, plugin: Plugin, resource: Resource) -> None:
        plugin.delete(resource.urn, resource.type, resource.name, resource.id, resource.outputs, resource.inputs)

    @staticmethod
    def _secret_outputs(outs: Props, inputs: Props, additional: list[str]) -> Props:
        return apply_additional_secret_outputs(annotate_secrets(outs, inputs), additional)

    def _current_config(self) -> "_Config":
        return _Config({key: _as_config_string(value) for key, value in self.config.items()}, set(self.secret_keys))

    def _config_for(self, run_program: bool, saved: Optional["_Config"]) -> "_Config":
        """What refresh and destroy configure the plugin with: the provider inputs saved at the last up
        (Deployment.EnsureProvider loads the provider from the state), or the current config."""
        return saved if saved is not None and not run_program else self._current_config()

    def _plugin(self, result: Result, config: "_Config", saved: Optional["_Config"] = None,
                program: bool = False) -> "_Session":
        return _Session(self, result, config, saved, program)

    @property
    def provider_urn(self) -> str:
        """The default provider of the dynamic resources, as the engine names it."""
        return f"urn:pulumi:{self.name}::{self.project}::pulumi:providers:pulumi-python::default"

    def _stack_outputs(self) -> Props:
        for resource in self.resources():
            if resource.type == STACK_TYPE:
                return resource.outputs
        return {}

    def _load(self) -> list[Resource]:
        return self._load_with_config()[0]

    def _load_with_config(self) -> tuple[list[Resource], Optional["_Config"]]:
        """The state's resources and the provider configuration saved with them, in one read of the file."""
        data = decrypt(json.loads(self.state_file.read_text())) if self.state_file.exists() else {}
        deployment = data.get("deployment", {})
        resources = [Resource(**r) for r in deployment.get("resources", [])]
        saved = deployment.get("provider_config")
        if not saved:
            return resources, None
        values = {k: strip_secrets(v) for k, v in saved.items()}
        return resources, _Config(values, {k for k, v in saved.items() if is_secret(v)})

    def _save(self, resources: Iterable[Resource], config: "_Config") -> None:
        """Write the state: the resources and the provider configuration the next refresh/destroy uses."""
        with self._lock:
            rows = [{f.name: getattr(r, f.name) for f in dataclasses.fields(Resource)} for r in resources]
            deployment: dict[str, Any] = {"resources": encrypt(rows)}
            if rows:  # the default provider is a resource of the state too: it goes with the last one
                deployment["provider_config"] = encrypt(config.wire())
            data = {"version": 3, "deployment": deployment}
            self.state_file.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.state_file.with_suffix(".tmp")
            # Compact: json's C encoder runs only without indent; pretty-printing a large state after every
            # step made the stand-in, not the providers, the cost of an `up` with hundreds of resources.
            tmp.write_text(json.dumps(data, sort_keys=True))
            os.replace(tmp, self.state_file)


@dataclasses.dataclass
class _Config:
    """The stack config as the plugin gets it: `project:key` names, string values, the secret keys."""

    values: dict[str, str]
    secret_keys: set[str]

    def wire(self) -> dict[str, Any]:
        return {k: secret(v) if k in self.secret_keys else v for k, v in self.values.items()}


class _Update:
    """One `pulumi preview` or `pulumi up`: runs the program and turns each registration into steps."""

    def __init__(self, stack: Stack, preview: bool) -> None:
        self.stack, self.preview = stack, preview
        self.result = Result("preview" if preview else "up")
        self.config = stack._current_config()
        entries, self.saved = stack._load_with_config()
        self.old = {r.urn: r for r in entries if not r.delete}  # live entries of the last state, by URN
        self.condemned = [r for r in entries if r.delete]  # old halves of replacements, deleted at the end
        self.new: dict[str, Resource] = {}  # what this run registered
        self.recreate: dict[str, list[str]] = {}  # deleted as dependents of a delete-before-replace: keys
        self.aliased: dict[str, str] = {}  # an old URN taken through an alias -> the URN that took it
        self.alias_lists: dict[str, list[str]] = {}  # every alias of each URN registered, inherited ones included
        self.failures: list[str] = []
        self.slots = threading.BoundedSemaphore(stack.parallel)
        self.lock = stack._lock
        self.in_flight = 0  # steps running: a failed program still waits for them, as the step executor does
        self.idle = threading.Condition(self.lock)

    # ------------------------------------------------------------------ run
    def run(self) -> Result:
        with self.stack._plugin(self.result, self.config, self.saved, program=True) as self.plugin:
            try:
                self.result.messages = run_program(
                    self.stack.program, EngineMonitor(self.register, self.register_outputs),
                    project=self.stack.project, stack=self.stack.name, config=self.config.values,
                    secret_keys=self.config.secret_keys, preview=self.preview, root_directory=self.stack.project_dir,
                )
            except Exception as err:  # noqa: BLE001 - reported as the engine reports it
                self.wait_for_steps()
                self.snapshot()
                raise EngineError(f"{self.result.operation} failed: {'; '.join(self.failures) or repr(err)}",
                                  self.result) from None
            self.finish()
        return self.result

    def wait_for_steps(self) -> None:
        with self.idle:
            self.idle.wait_for(lambda: self.in_flight == 0)

    def snapshot(self) -> None:
        """Save the state as it is now: what was registered, the old entries not yet seen, the condemned."""
        if self.preview:
            return
        with self.lock:
            rest = [r for urn, r in self.old.items() if urn not in self.new]
            self.stack._save([*self.new.values(), *rest, *self.condemned], self.config)

    def finish(self) -> None:
        """GenerateDeletes: the condemned and the undeclared, dependents first; a pending replacement
        that nobody declares any more is only dropped."""
        declared = {reg.urn for reg in self.result.registrations}
        undeclared = [r for urn, r in self.old.items() if urn not in declared]
        doomed = [*self.condemned, *undeclared]
        if self.preview:
            for resource in delete_order(doomed):
                op = "delete-replaced" if resource.delete else "delete"
                self.result.steps.append(Step(op, resource.urn, resource.type))
            return

        def remove(resource: Resource) -> None:
            if _deleted_by_provider(resource):
                self.stack._delete(self.plugin, resource)
            with self.lock:
                if resource.delete:
                    _remove(self.condemned, resource)
                else:
                    del self.old[resource.urn]
                op = "delete-replaced" if resource.delete else "delete"
                self.result.steps.append(Step(op, resource.urn, resource.type))
            self.snapshot()

        try:
            in_delete_order(doomed, remove, self.stack.parallel)
        except PluginError as err:
            self.snapshot()
            raise EngineError(f"up failed: {err}", self.result) from None
        self.snapshot()

    # ------------------------------------------------------- registrations
    def register(self, reg: Registration) -> tuple[str, Props]:
        with self.lock:
            duplicate = any(r.urn == reg.urn for r in self.result.registrations)
            self.result.registrations.append(reg)
            self.in_flight += 1
        try:
            if duplicate:  # step_generator.go: a URN registered twice in one run
                raise EngineError(f"Duplicate resource URN '{reg.urn}'; try giving it a unique name", self.result)
            with self.lock:
                self.take_alias(reg)
            if not reg.custom:
                return self.component(reg)
            with self.slots:
                if self.failures:  # stepExecutor.cancel: nothing new starts after a failure
                    raise _Cancelled(f"{reg.urn}: not started, an earlier step failed")
                return self.custom(reg)
        except (PluginError, EngineError) as err:
            with self.lock:
                self.failures.append(str(err))
            raise
        finally:
            with self.idle:
                self.in_flight -= 1
                self.idle.notify_all()

    def take_alias(self, reg: Registration) -> None:
        """A resource new under its URN takes the state entry of the first alias found there (the engine's
        alias lookup in step_generator.go): it is that resource renamed, never deleted as undeclared. An
        entry can be taken once; a second resource with the same alias fails, as in the engine."""
        reg.aliases = reg.aliases + [a for a in self.inherited(reg) if a not in reg.aliases]
        self.alias_lists[reg.urn] = reg.aliases
        if reg.urn in self.old:
            return
        for alias in reg.aliases:
            if alias in self.aliased:
                raise EngineError(f"{reg.urn}: alias {alias} is already taken by {self.aliased[alias]}", self.result)
            if alias in self.old and alias not in {r.urn for r in self.result.registrations}:
                self.aliased[alias] = reg.urn
                self.old[reg.urn] = dataclasses.replace(self.old.pop(alias), urn=reg.urn)
                return

    def inherited(self, reg: Registration) -> list[str]:
        """The aliases a child inherits from its parent's (step_generator.go inheritedChildAlias): under
        each alias of the parent, the child's name with the parent's name as its prefix replaced by the
        alias's name."""
        parent_name = reg.parent.rsplit("::", 1)[-1]
        found = []
        for alias in self.alias_lists.get(reg.parent, []):
            alias_name = alias.rsplit("::", 1)[-1]
            name = alias_name + reg.name[len(parent_name):] if reg.name.startswith(parent_name) else reg.name
            qualified = alias.split("::")[2]
            found.append(f"urn:pulumi:{self.stack.name}::{self.stack.project}::{qualified}${reg.type}::{name}")
        return found

    def register_outputs(self, urn: str, outputs: Props) -> None:
        with self.lock:
            if not self.preview and urn in self.new and self.new[urn].outputs != outputs:
                self.new[urn].outputs = outputs
                self.snapshot()

    def component(self, reg: Registration) -> tuple[str, Props]:
        prior = self.old.get(reg.urn)
        with self.lock:
            self.result.steps.append(Step("same" if prior else "create", reg.urn, reg.type))
            if not self.preview:
                record = Resource(reg.urn, reg.type, False, "", reg.parent, reg.inputs,
                                  prior.outputs if prior else {}, reg.dependencies, reg.property_dependencies)
                self.new[reg.urn] = record
                if record != prior:  # the engine elides the checkpoint of a step that changes nothing
                    self.snapshot()
        return "", reg.inputs

    def custom(self, reg: Registration) -> tuple[str, Props]:
        prior = self.old.get(reg.urn)
        # Deleted above for a delete-before-replace (the engine's `recreating`): its old inputs are gone.
        checked = self.check(reg, prior if prior and reg.urn not in self.recreate else None)
        step = Step("create", reg.urn, reg.type)
        delete_first = False  # for a replace: delete-before-replace (else create-before-delete)
        if reg.urn in self.recreate:  # deleted above for a delete-before-replace: re-created, no Diff
            assert prior is not None
            step.op, step.replaces = "replace", self.recreate[reg.urn]
            step.changed = input_changes(prior.inputs, checked)
        elif prior is not None:
            diff = self.plugin.diff(reg.urn, reg.type, reg.name, prior.id, prior.outputs, checked, prior.inputs)
            step.changed = input_changes(prior.inputs, checked)
            changes = diff.changes if diff.changes is not None else bool(step.changed)
            step.replaces = diff.replaces
            if prior.pending_replacement or (changes and diff.replaces):  # continueStepsFromDiff
                step.op, delete_first = "replace", diff.delete_before_replace
                checked = self.check(reg, None)  # the engine checks a replacement again, with no olds
            else:
                step.op = "update" if changes else "same"
        with self.lock:
            self.result.steps.append(step)

        if self.preview:
            if prior is not None and step.op == "same":
                return prior.id, prior.outputs
            # A provider without preview support: the engine hands back the checked inputs.
            return (prior.id if prior is not None and step.op == "update" else ""), checked

        if step.op == "same":
            id_, outputs = prior.id, apply_additional_secret_outputs(dict(prior.outputs), reg.additional_secret_outputs)
        elif step.op == "update":
            outs = self.plugin.update(reg.urn, reg.type, reg.name, prior.id, prior.outputs, checked, prior.inputs)
            id_, outputs = prior.id, Stack._secret_outputs(outs, checked, reg.additional_secret_outputs)
        else:
            if delete_first:
                self.delete_for_replacement(prior)
            id_, outs = self.plugin.create(reg.urn, reg.type, reg.name, checked)
            if not id_:
                raise EngineError(f"{reg.urn}: plugin returned empty resource.ID", self.result)
            outputs = Stack._secret_outputs(outs, checked, reg.additional_secret_outputs)
            if step.op == "replace" and not delete_first and reg.urn not in self.recreate \
                    and not prior.pending_replacement:  # a pending one is deleted already: only created
                with self.lock:  # create-before-delete: the old one is deleted last, by its old id
                    self.condemned.append(dataclasses.replace(prior, delete=True))

        with self.lock:
            record = Resource(reg.urn, reg.type, True, id_, reg.parent, checked, outputs, reg.dependencies,
                              reg.property_dependencies, reg.additional_secret_outputs)
            self.new[reg.urn] = record
        if record != prior:  # the engine elides the checkpoint of a step that changes nothing
            self.snapshot()
        return id_, outputs

    def check(self, reg: Registration, prior: Optional[Resource]) -> Props:
        """Check against the old inputs and outputs of `prior`, or none (a new resource, a replacement)."""
        olds, old_outputs = (prior.inputs, prior.outputs) if prior is not None else ({}, {})
        checked, failures = self.plugin.check(reg.urn, reg.type, reg.name, olds, reg.inputs, old_outputs)
        if failures:  # a Check failure bails the deployment, preview included
            raise EngineError(f"{reg.urn}: " + "; ".join(reason for _, reason in failures), self.result)
        return annotate_secrets(checked, reg.inputs)

    # ----------------------------------------------------------- replacement
    def delete_for_replacement(self, prior: Resource) -> None:
        """Delete-before-replace: the dependents that the change would replace, dependents first, then the
        resource unless an earlier run already deleted it; each stays in the state as pending replacement."""
        for dependent, keys in self.dependents_to_replace(prior):
            if dependent.pending_replacement:  # deleted by an earlier run: not deleted again, nor re-created
                continue  # here; its own registration replaces it (continueStepsFromDiff)
            self.delete_replaced(dependent)
            with self.lock:
                self.recreate[dependent.urn] = keys
        if not prior.pending_replacement:
            self.delete_replaced(prior)

    def delete_replaced(self, resource: Resource) -> None:
        """DeleteReplacementStep: no Delete for one already deleted; then it is pending replacement."""
        if not resource.pending_replacement:
            self.stack._delete(self.plugin, resource)
        with self.lock:
            resource.pending_replacement = True
            self.result.steps.append(Step("delete-replaced", resource.urn, resource.type))
        self.snapshot()

    def dependents_to_replace(self, target: Resource) -> list[tuple[Resource, list[str]]]:
        """calculateDependentReplacements: a resource whose inputs depend on one being replaced is diffed
        with those inputs unknown; if that asks for a replacement it is deleted first (and so on down)."""
        replacing = {target.urn}
        found: dict[str, list[str]] = {}
        for resource in list(self.old.values()):
            if not resource.custom or resource.urn in self.new or resource.urn in replacing:
                continue
            inputs = dict(resource.inputs)
            touched = [p for p, urns in resource.property_dependencies.items() if replacing & set(urns) and p in inputs]
            if not touched:
                continue
            for prop in touched:
                inputs[prop] = UNKNOWN
            diff = self.plugin.diff(resource.urn, resource.type, resource.name, resource.id, resource.outputs,
                                    inputs, resource.inputs)
            if diff.replaces:
                replacing.add(resource.urn)
                found[resource.urn] = diff.replaces
        return [(r, found[r.urn]) for r in delete_order(self.old[urn] for urn in found)]


@dataclasses.dataclass
class PluginUsage:
    startup_cpu: float  # CPU seconds to start: imports, GetPluginInfo, Configure
    work_cpu: float  # CPU seconds after that: the operation's Check/Diff/Create/... calls
    peak_kb: int  # peak resident memory (VmHWM) over the process's life


class _Session:
    """A plugin for one operation, spoken to in the engine's order: Handshake, GetPluginInfo, then (when the
    program runs) CheckConfig and, with a provider in the state, DiffConfig, then Configure; Cancel at the end,
    then the process is killed."""

    def __init__(self, stack: Stack, result: Result, config: _Config, saved: Optional[_Config] = None,
                 program: bool = False) -> None:
        self.result, self.config, self.saved, self.program = result, config, saved, program
        self.urn = stack.provider_urn
        self.id = str(uuid.uuid5(uuid.NAMESPACE_URL, str(stack.state_file.resolve())))
        self.plugin = Plugin(stack.project_dir, env=stack.plugin_env,
                             debug_grpc=stack.plugin_env.get("PULUMI_DEBUG_GRPC"))

    def __enter__(self) -> Plugin:
        self.plugin.start()
        self.plugin.handshake()
        self.plugin.get_plugin_info()
        if self.program:
            olds = self.saved.wire() if self.saved is not None else {}
            self.plugin.check_config(self.urn, olds, self.config.wire())
            if self.saved is not None:
                self.plugin.diff_config(self.urn, olds, self.config.wire())
        self.plugin.configure(self.config.values, self.config.secret_keys, self.urn, self.id)
        self.started = self.plugin.usage()
        return self.plugin

    def __exit__(self, *_: object) -> None:
        with contextlib.suppress(Exception):  # the plugin may be gone already (a killed or broken process)
            self.plugin.cancel()
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
