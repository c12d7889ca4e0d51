"""Scale benchmark on the real engine: the pinned pulumi CLI (.tools/pulumi/bin) runs the stack program for N
EPPN users read from a CSV roster, on a file backend on local disk, against a real LiteLLM proxy.

    .venv/bin/python -m benchmarks.engine [--sizes 100,1000,2000] [--checkpoints on|off|both]
                                          [--fast-output-wait] [--no-sdk-debug-logs] [--lac] [--preview-only] [--state-only]
                                          [--profile DIR] [--json FILE]

Per size: up from empty, no-op preview, no-op up, refresh, one user changed (up), destroy. For each step:
wall time, proxy calls (a counting pass-through in front of the proxy), the peak memory (VmHWM) of the
program (the Python process the language host starts) and of the dynamic-provider plugin, and the CPU
seconds of the CLI (engine and display), the program and the plugin. After the up:
state bytes per user (`pulumi stack export`, and the state file) and where they go, by resource type and
field (`--state-only`: just that). `--checkpoints off` runs every step with
PULUMI_SKIP_CHECKPOINTS=true (`both`: once each way); `--fast-output-wait` sets litellm:fast_output_wait, `--no-sdk-debug-logs` litellm:sdk_debug_logs: false. `--preview-only`: only a preview of a new stack of N users
(0 proxy calls: the size a roster can reach without touching the proxy). `--lac` also runs litellm-as-code (benchmarks/requirements.txt) on the same
users: create, no-op plan, no-op re-apply, one user changed; its plan line says whether it did the work
(from the 26th user on, it only works through the pass-through's paging fix, benchmarks/lac.py).
Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any, Optional

ROOT = Path(__file__).resolve().parents[1]
for entry in (str(ROOT), str(ROOT / "tests")):
    if entry not in sys.path:
        sys.path.insert(0, entry)

from benchmarks import lac, state_size  # noqa: E402
from benchmarks.run import Proxy, log, machine  # noqa: E402
from providers.client import ClientSettings, LiteLLMClient  # noqa: E402
from support.passthrough import PassThrough  # noqa: E402
from support.project_copy import PROGRAM  # noqa: E402

CLI = ROOT / ".tools" / "pulumi" / "bin" / "pulumi"
PROGRAM_FILES = (*PROGRAM, "scripts", "requirements.txt")
ROLES = {"program": "pulumi-language-python-exec", "plugin": "pulumi.dynamic"}
TICKS = os.sysconf("SC_CLK_TCK")
PROFILE_DIR: Optional[Path] = None  # --profile


class PeakMemory:
    """Polls /proc for the program and plugin processes under one command and keeps each role's peak RSS,
    and the CPU seconds last seen of the CLI (the root process: engine and display) and of each role: where
    a step's time goes."""

    def __init__(self, root_pid: int) -> None:
        self.root, self.peak_mib = root_pid, {role: 0.0 for role in ROLES}
        self.cpu_s: dict[str, float] = {"cli": 0.0, **{role: 0.0 for role in ROLES}}
        self._cpu_by_pid: dict[int, tuple[str, float]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        while not self._stop.wait(0.25):
            for pid in _descendants(self.root):
                try:
                    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
                    status = Path(f"/proc/{pid}/status").read_text()
                    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                except (OSError, IndexError):
                    continue
                hwm = next((int(l.split()[1]) / 1024 for l in status.splitlines() if l.startswith("VmHWM")), 0.0)
                role = "cli" if pid == self.root else next((r for r, m in ROLES.items() if m in cmdline), None)
                if role is not None:
                    self._cpu_by_pid[pid] = (role, (int(fields[11]) + int(fields[12])) / TICKS)
                if role in ROLES:
                    self.peak_mib[role] = max(self.peak_mib[role], hwm)

    def stop(self) -> dict[str, float]:
        self._stop.set()
        self._thread.join()
        for role, seconds in self._cpu_by_pid.values():
            self.cpu_s[role] += seconds
        return self.peak_mib


def _descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


class Stack:
    """A project folder with the program's files linked in, a CSV roster and a file backend."""

    def __init__(self, base: Path, url: str, token: str, env: dict[str, str]) -> None:
        self.dir, self.name = base / "project", "bench"
        self.dir.mkdir()
        for entry in PROGRAM_FILES:
            (self.dir / entry).symlink_to(ROOT / entry)
        (self.dir / "Pulumi.yaml").write_text(
            "name: litellm-access\nruntime:\n  name: python\n  options:\n    toolchain: pip\n"
            f"    virtualenv: {ROOT / '.venv'}\n")
        (base / "state").mkdir()
        self.env = {**os.environ, **env, "PATH": f"{CLI.parent}{os.pathsep}{os.environ['PATH']}",
                    "PULUMI_BACKEND_URL": f"file://{base / 'state'}", "PULUMI_CONFIG_PASSPHRASE": "bench",
                    "PULUMI_SKIP_UPDATE_CHECK": "true", "PULUMI_HOME": str(base / "home")}
        for name in ("LITELLM_URL", "LITELLM_MASTER_KEY"):  # the stack's config gives them, as users do
            self.env.pop(name, None)
        self.url, self.token = url, token
        self.pulumi("stack", "init")

    def set_credentials(self) -> None:
        """litellm:url, and litellm:token as a secret (`config set --secret`, as the README says): the
        provider config saved with the state then holds the token once, not every resource."""
        self.pulumi("config", "set", "litellm:url", self.url)
        subprocess.run([str(CLI), "config", "set", "--secret", "--stack", self.name, "litellm:token"],
                       input=self.token, cwd=self.dir, env=self.env, text=True, check=True, capture_output=True)

    def write_roster(self, users: list[dict[str, Any]], max_deletions: int, switches: dict[str, bool]) -> None:
        """The CSV roster and the stack config, with the program's SDK switches (litellm:<name>: true/false)."""
        with open(self.dir / "users.csv", "w", newline="") as out:
            writer = csv.DictWriter(out, fieldnames=list(users[0]))
            writer.writeheader()
            writer.writerows(users)
        (self.dir / f"Pulumi.{self.name}.yaml").write_text(
            "config:\n  litellm:users_file: users.csv\n"
            "  litellm:user_defaults:\n    user_role: internal_user_viewer\n    models: [fake-mock]\n"
            f"  litellm:max_deletions: {max_deletions}\n"
            + "".join(f"  litellm:{name}: {'true' if on else 'false'}\n" for name, on in switches.items()))
        self.set_credentials()

    def pulumi(self, *args: str, env: Optional[dict[str, str]] = None) -> tuple[subprocess.CompletedProcess[str], PeakMemory, float]:
        started = time.monotonic()
        profiling = ["--profiling", str(PROFILE_DIR / f"{self.name}-{args[0]}")] if PROFILE_DIR else []
        process = subprocess.Popen([str(CLI), *args, *profiling, "--non-interactive", "--stack", self.name], cwd=self.dir,
                                   env={**self.env, **(env or {})}, text=True, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
        memory = PeakMemory(process.pid)
        stdout, stderr = process.communicate()
        wall = time.monotonic() - started
        memory.stop()
        done = subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
        if done.returncode != 0:
            raise RuntimeError(f"pulumi {' '.join(args)} exited {done.returncode}:\n{stdout[-3000:]}\n{stderr[-3000:]}")
        return done, memory, wall


def eppn_users(prefix: str, n: int) -> list[dict[str, Any]]:
    return [{"user_id": f"{prefix}{i:05d}@example.edu", "user_email": f"{prefix}{i:05d}@example.edu",
             "max_budget": "10"} for i in range(n)]


def measure(stack: Stack, tap: PassThrough, label: str, *args: str, env: Optional[dict[str, str]] = None) -> dict[str, Any]:
    before = len(tap.calls)
    _, usage, wall = stack.pulumi(*args, env=env)
    calls = Counter(f"{c.method} {c.path}" for c in tap.calls[before:])
    row = {"step": label, "wall_s": round(wall, 1), "proxy_calls": sum(calls.values()),
           "program_peak_mib": round(usage.peak_mib["program"], 1), "plugin_peak_mib": round(usage.peak_mib["plugin"], 1),
           "cpu_s": {role: round(seconds, 1) for role, seconds in usage.cpu_s.items()}, "calls": dict(calls)}
    log(f"{label}: {row['wall_s']} s, {row['proxy_calls']} calls, program {row['program_peak_mib']} MiB, "
        f"plugin {row['plugin_peak_mib']} MiB, CPU s {row['cpu_s']}")
    return row


def lifecycle(proxy: Proxy, n: int, skip_checkpoints: bool, switches: dict[str, bool]) -> dict[str, Any]:
    prefix = f"b{uuid.uuid4().hex[:6]}-"
    users = eppn_users(prefix, n)
    env = {"PULUMI_SKIP_CHECKPOINTS": "true"} if skip_checkpoints else None
    with tempfile.TemporaryDirectory(prefix="bench-engine-") as tmp, PassThrough(proxy.url) as tap:
        stack = Stack(Path(tmp), tap.url, proxy.token, env or {})
        stack.write_roster(users, max_deletions=n, switches=switches)
        rows = [measure(stack, tap, "up from empty", "up", "--yes", "--skip-preview")]
        state = state_figures(stack, n)
        rows.append(measure(stack, tap, "no-op preview", "preview", "--expect-no-changes"))
        rows.append(measure(stack, tap, "no-op up", "up", "--yes", "--skip-preview", "--expect-no-changes"))
        rows.append(measure(stack, tap, "refresh", "refresh", "--yes", "--skip-preview"))
        users[0] = {**users[0], "max_budget": "11"}
        stack.write_roster(users, max_deletions=n, switches=switches)
        rows.append(measure(stack, tap, "one user changed", "up", "--yes", "--skip-preview"))
        rows.append(measure(stack, tap, "destroy", "destroy", "--yes", "--skip-preview"))
    return {"users": n, "skip_checkpoints": skip_checkpoints, "switches": switches, **state,
            "steps": rows}


def state_figures(stack: Stack, n: int) -> dict[str, Any]:
    """State size after an up: the export's bytes (the CLI's indented JSON) and the state file's (as the
    file backend writes it), per user, and where the export's bytes go (benchmarks/state_size.py)."""
    exported, _, _ = stack.pulumi("stack", "export")
    export_bytes = len(exported.stdout.encode())
    file_bytes = sum(p.stat().st_size for p in (stack.dir.parent / "state").rglob(f"{stack.name}.json"))
    breakdown = state_size.per_user(json.loads(exported.stdout), n, top=15)
    log(f"state: export {round(export_bytes / n)} B/user, file {round(file_bytes / n)} B/user\n"
        + state_size.render(breakdown))
    return {"state_bytes": export_bytes, "state_bytes_per_user": round(export_bytes / n),
            "state_file_bytes_per_user": round(file_bytes / n), "state_breakdown": breakdown}


def state_only(proxy: Proxy, n: int, skip_checkpoints: bool, switches: dict[str, bool]) -> dict[str, Any]:
    """Only the state's size: up, export, destroy."""
    env = {"PULUMI_SKIP_CHECKPOINTS": "true"} if skip_checkpoints else {}
    with tempfile.TemporaryDirectory(prefix="bench-engine-") as tmp:
        stack = Stack(Path(tmp), proxy.url, proxy.token, env)
        stack.write_roster(eppn_users(f"s{uuid.uuid4().hex[:6]}-", n), max_deletions=n,
                           switches=switches)
        stack.pulumi("up", "--yes", "--skip-preview")
        try:
            return {"users": n, **state_figures(stack, n)}
        finally:
            stack.pulumi("destroy", "--yes", "--skip-preview")


def new_stack_preview(proxy: Proxy, n: int, skip_checkpoints: bool, switches: dict[str, bool]) -> dict[str, Any]:
    env = {"PULUMI_SKIP_CHECKPOINTS": "true"} if skip_checkpoints else {}
    with tempfile.TemporaryDirectory(prefix="bench-engine-") as tmp, PassThrough(proxy.url) as tap:
        stack = Stack(Path(tmp), tap.url, proxy.token, env)
        stack.write_roster(eppn_users(f"p{uuid.uuid4().hex[:6]}-", n), max_deletions=n,
                           switches=switches)
        row = measure(stack, tap, "preview of a new stack", "preview")
    return {"users": n, "skip_checkpoints": skip_checkpoints, "switches": switches, "steps": [row]}


def lac_lifecycle(proxy: Proxy, n: int) -> dict[str, Any]:
    """The same users and the same one-user change, by litellm-as-code. Each step counts only if its plan
    line says it did that work."""
    users = [{"user_id": u["user_id"], "user_email": u["user_email"], "max_budget": 10,
              "user_role": "internal_user_viewer", "models": ["fake-mock"]}
             for u in eppn_users(f"l{uuid.uuid4().hex[:6]}-", n)]
    changed = [{**users[0], "max_budget": 11}, *users[1:]]
    steps = [("create", users, False, f"{2 * n} to create, 0 to update"),
             ("no-op plan", users, True, "0 to create, 0 to update"),
             ("no-op re-apply", users, False, "0 to create, 0 to update"),
             ("one user changed", changed, False, "0 to create, 1 to update")]  # it updates the user only
    rows = []
    api = LiteLLMClient(proxy.url, proxy.token, ClientSettings())
    with tempfile.TemporaryDirectory(prefix="bench-lac-") as tmp, PassThrough(proxy.url, rewrite=lac.rewrite) as tap:
        try:
            for label, spec_users, dry_run, expected in steps:
                tap.reset()
                done = lac.run(lac.write_spec(Path(tmp) / "spec.yml", spec_users), tap.url, proxy.token,
                               dry_run=dry_run)
                ok = done.did(expected)
                rows.append({"step": label, "wall_s": round(done.seconds, 1), "proxy_calls": len(tap.calls),
                             "at_the_proxy": tap.upstream_count(), "did_the_work": ok, "plan": done.summary()})
                log(f"litellm-as-code {label}: {rows[-1]['wall_s']} s, {len(tap.calls)} calls "
                    f"({tap.upstream_count()} at the proxy){'' if ok else ', did not do the work: ' + rows[-1]['plan']}")
                if not ok and label == "create":
                    break
        finally:
            lac.cleanup(api, users)
    return {"users": n, "tool": f"litellm-as-code {lac.version()}", "steps": rows}


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,1000,2000")
    parser.add_argument("--checkpoints", choices=("on", "off", "both"), default="on",
                        help="off: PULUMI_SKIP_CHECKPOINTS=true on every step")
    parser.add_argument("--fast-output-wait", action="store_true", help="litellm:fast_output_wait: true")
    parser.add_argument("--no-sdk-debug-logs", action="store_true", help="litellm:sdk_debug_logs: false")
    parser.add_argument("--lac", action="store_true", help="also run litellm-as-code on the same users")
    parser.add_argument("--preview-only", action="store_true", help="only preview a new stack of N users")
    parser.add_argument("--state-only", action="store_true", help="only up, state size, destroy")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--profile", type=Path, help="a folder for the CLI's Go profiles of each step "
                        "(pulumi --profiling: <stack>-<command>.<pid>.cpu; read with go tool pprof)")
    args = parser.parse_args(argv)
    global PROFILE_DIR
    PROFILE_DIR = args.profile.resolve() if args.profile else None
    switches = {"fast_output_wait": args.fast_output_wait, "sdk_debug_logs": not args.no_sdk_debug_logs}
    if PROFILE_DIR:
        PROFILE_DIR.mkdir(parents=True, exist_ok=True)
    if not CLI.exists():
        print("benchmarks.engine: no pulumi CLI in .tools/pulumi/bin: run scripts/setup --dev", file=sys.stderr)
        return 2
    version = subprocess.run([str(CLI), "version"], capture_output=True, text=True).stdout.strip()
    proxy = Proxy()
    results: dict[str, Any] = {"date": time.strftime("%Y-%m-%d"), "pulumi": version, "machine": machine(),
                               "litellm proxy": proxy.version(), "sizes": []}
    try:
        for n in (int(s) for s in args.sizes.split(",")):
            for skip in {"on": [False], "off": [True], "both": [False, True]}[args.checkpoints]:
                log(f"{n} users, checkpoints {'off' if skip else 'on'}")
                run = new_stack_preview if args.preview_only else state_only if args.state_only else lifecycle
                results["sizes"].append(run(proxy, n, skip, switches))
            if args.lac:
                results["sizes"].append(lac_lifecycle(proxy, n))
    finally:
        proxy.close()
    text = json.dumps(results, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
