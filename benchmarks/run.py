"""Benchmark: cost per user of the stack lifecycle against a real LiteLLM proxy, side by side with
litellm-as-code doing the same work on the same proxy, and the Terraform module's documented call counts.

    scripts/bench [--users 50] [--parallel 10] [--runs 3] [--sizes 10,50,200] [--teams 5] [--markdown FILE] [--json FILE]

The proxy is $LITELLM_URL/$LITELLM_MASTER_KEY when both are set, otherwise one this command starts with
../shared/litellm-server/up (or $LITELLM_SERVER_DIR/up) and stops at the end. Every object it creates has
a unique prefix and is deleted afterwards (destroy for the stack; the API for litellm-as-code's).

Figures are printed, never asserted: they depend on the machine and on whatever else runs on it.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, Iterator, Optional

ROOT = Path(__file__).resolve().parents[1]
for entry in (str(ROOT), str(ROOT / "tests")):
    if entry not in sys.path:
        sys.path.insert(0, entry)

import requests  # noqa: E402

from benchmarks import lac, ours, teams  # noqa: E402
from benchmarks.stats import (  # noqa: E402
    LAC_STEPS, STEPS, Sample, as_json, lac_table, linearity_table, ours_table, targets, targets_table,
)
from providers.client import ClientSettings, LiteLLMClient  # noqa: E402
from support import litellm_server  # noqa: E402
from support.litellm_server import SERVER_DIR  # noqa: E402
from support.passthrough import PassThrough  # noqa: E402

MAX_USERS = 500


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------------------ proxy
class Proxy:
    """The proxy to measure against: the environment's, or one started here (stopped by `close`)."""

    def __init__(self) -> None:
        self.run_dir: Optional[Path] = None
        url, key = os.environ.get("LITELLM_URL"), os.environ.get("LITELLM_MASTER_KEY")
        if url and key:
            self.url, self.token, self.own = url.rstrip("/"), key, False
            return
        up = SERVER_DIR / "up"
        if not up.exists():
            raise SystemExit(f"bench: no proxy: set LITELLM_URL and LITELLM_MASTER_KEY, or LITELLM_SERVER_DIR "
                             f"to a litellm-server folder ({up} not found)")
        self.run_dir = Path(tempfile.mkdtemp(prefix="bench-llm-"))
        log(f"starting a LiteLLM proxy with {up} (run dir {self.run_dir}, ~20 s)")
        try:
            self.url, self.token = litellm_server.start(self.run_dir)
        except litellm_server.StartFailed as err:
            raise SystemExit(f"bench: litellm-server up failed:\n{err}") from None
        self.own = True

    def version(self) -> str:
        try:
            return str(requests.get(f"{self.url}/openapi.json", timeout=30).json()["info"]["version"])
        except Exception:  # noqa: BLE001 - informational only
            return "unknown"

    def cpu(self) -> Optional[float]:
        """CPU seconds used so far by the proxy this command started (LiteLLM, its query-engine shim and
        Postgres, with all their child processes); None for a proxy from the environment."""
        if not self.own or self.run_dir is None:
            return None
        roots = []
        for pid_file in (self.run_dir / "pids").glob("*.pid"):
            try:
                roots.append(int(pid_file.read_text().split()[0]))
            except (OSError, ValueError, IndexError):
                pass
        return tree_cpu(roots)

    def close(self) -> None:
        if self.own and self.run_dir is not None:
            log("stopping the proxy this command started")
            litellm_server.stop(self.run_dir, purge=True)


def tree_cpu(roots: list[int]) -> float:
    """utime + stime + cutime + cstime of these processes and all their descendants, in seconds (a child
    that exits moves its time into its parent's cutime, so the sum stays consistent)."""
    stats: dict[int, tuple[int, float]] = {}  # pid -> (ppid, seconds)
    tick = os.sysconf("SC_CLK_TCK")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        stats[int(entry.name)] = (int(fields[1]), sum(int(x) for x in fields[11:15]) / tick)
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in stats.items():
        children.setdefault(ppid, []).append(pid)
    total, todo, seen = 0.0, list(roots), set()
    while todo:
        pid = todo.pop()
        if pid in seen or pid not in stats:
            continue
        seen.add(pid)
        total += stats[pid][1]
        todo.extend(children.get(pid, []))
    return total


# ------------------------------------------------------------------------------------------------ users
def users_for(prefix: str, n: int) -> list[dict[str, Any]]:
    """N entries of `litellm:users` (the module's input names). The role is given explicitly so that no
    legacy-role warning is printed per user; everything else keeps the module's defaults."""
    return [
        {"user_id": f"{prefix}-u{i:04d}", "user_email": f"{prefix}-u{i:04d}@example.org",
         "user_role": "internal_user_viewer"}
        for i in range(n)
    ]


def changed(users: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The one-field change: every user's key gets budget_duration 7d instead of the default 30d."""
    return [{**u, "budget_duration": "7d"} for u in users]


# ------------------------------------------------------------------------------------- litellm-as-code
def lac_lifecycle(proxy: Proxy, api: LiteLLMClient, users: list[dict[str, Any]], workdir: Path) -> dict[str, Sample]:
    n = len(users)
    expected = {  # what its plan line must say for the run to count as doing the work
        "create": f"{2 * n} to create, 0 to update",
        "noop-plan": "0 to create, 0 to update",
        "noop-apply": "0 to create, 0 to update",
        "change": f"0 to create, {n} to update",
    }
    specs = {
        "create": lac.write_spec(workdir / "spec.yml", users),
        "change": lac.write_spec(workdir / "spec-changed.yml", changed(users)),
    }
    out: dict[str, Sample] = {}
    try:
        with PassThrough(proxy.url, rewrite=lac.rewrite) as tap:
            for step in LAC_STEPS:
                tap.reset()
                spec = specs["change" if step == "change" else "create"]
                cpu_before = proxy.cpu()
                done = lac.run(spec, tap.url, proxy.token, dry_run=step == "noop-plan")
                cpu_after = proxy.cpu()
                ok = done.did(expected[step])
                note = "" if ok else f"{step}: exit {done.returncode}, {done.summary()}"
                out[step] = Sample(done.seconds, len(tap.calls), tap.upstream_count(), ok=ok, note=note,
                                   proxy_cpu=None if cpu_before is None else cpu_after - cpu_before)
                log(f"  litellm-as-code {step}: {done.seconds:.2f} s, {len(tap.calls)} calls "
                    f"({tap.upstream_count()} at the proxy){'' if ok else ' FAILED: ' + note}")
                if not ok and step == "create":
                    break
    finally:
        lac.cleanup(api, users)
    return out


# ------------------------------------------------------------------------------------------------- main
def machine() -> dict[str, str]:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor() or "unknown")
    mem_kb = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                  if line.startswith("MemTotal"))
    return {
        "cpus": str(os.cpu_count()),
        "cpu": cpu,
        "memory": f"{mem_kb / 1024 / 1024:.1f} GiB",
        "kernel": platform.release(),
        "load average at start": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }


def versions(proxy: Proxy) -> dict[str, str]:
    from importlib.metadata import version

    return {
        "python": platform.python_version(),
        "pulumi (SDK)": version("pulumi"),
        "litellm proxy": proxy.version(),
        "litellm-as-code": lac.version(),
    }


def parse_args(argv: Optional[list[str]]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="scripts/bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--users", type=int, default=50, help="N for the main tables (default 50, at most 500)")
    p.add_argument("--parallel", type=int, default=10, help="resource operations at once (default 10)")
    p.add_argument("--runs", type=int, default=3, help="runs per size; the median is reported (default 3)")
    p.add_argument("--sizes", default="", help="comma-separated N for the linearity table, e.g. 10,50,200")
    p.add_argument("--no-lac", action="store_true", help="skip litellm-as-code")
    p.add_argument("--teams", type=int, default=5, help="teams for the calls per team and membership (default 5; 0: skip)")
    p.add_argument("--team-members", type=int, default=2, help="memberships per team (default 2)")
    p.add_argument("--markdown", type=Path, help="also write the report (Markdown) to this file")
    p.add_argument("--json", type=Path, help="also write every sample (JSON) to this file")
    args = p.parse_args(argv)
    sizes = sorted({int(x) for x in args.sizes.split(",") if x.strip()} | {args.users})
    if any(n < 1 or n > MAX_USERS for n in sizes):
        p.error(f"sizes must be between 1 and {MAX_USERS}")
    if args.parallel < 1 or args.runs < 1:
        p.error("--parallel and --runs must be at least 1")
    if args.teams < 0 or args.team_members < 1:
        p.error("--teams must be at least 0 and --team-members at least 1")
    args.sizes = sizes
    return args


def each_run(args: argparse.Namespace) -> Iterator[tuple[int, int]]:
    for n in args.sizes:
        for r in range(args.runs):
            yield n, r


def main(argv: Optional[list[str]] = None) -> int:
    args = parse_args(argv)
    started = datetime.datetime.now(datetime.timezone.utc)
    info = machine()
    proxy = Proxy()
    per_size: dict[int, dict[str, list[Sample]]] = {n: {} for n in args.sizes}
    lac_per_size: dict[int, dict[str, list[Sample]]] = {n: {} for n in args.sizes}
    per_team: dict[str, dict[str, float]] = {}
    try:
        api = LiteLLMClient(proxy.url, proxy.token, ClientSettings())
        vers = versions(proxy)
        with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
            for n, r in each_run(args):
                prefix = "bn" + uuid.uuid4().hex[:8]
                workdir = Path(tmp) / f"{n}-{r}"
                workdir.mkdir()
                users = users_for(prefix, n)
                log(f"N={n} run {r + 1}/{args.runs}: the stack ({prefix}, parallel {args.parallel})")
                for step, sample in ours.lifecycle(proxy.url, proxy.token, users, changed(users), args.parallel,
                                                   workdir, api, log, proxy.cpu).items():
                    per_size[n].setdefault(step, []).append(sample)
                if not args.no_lac:
                    log(f"N={n} run {r + 1}/{args.runs}: litellm-as-code ({prefix}l)")
                    lac_users = users_for(prefix + "l", n)
                    for step, sample in lac_lifecycle(proxy, api, lac_users, workdir).items():
                        lac_per_size[n].setdefault(step, []).append(sample)
            if args.teams:
                workdir = Path(tmp) / "teams"
                workdir.mkdir()
                per_team = teams.measure(proxy.url, proxy.token, api, "bt" + uuid.uuid4().hex[:8], args.teams,
                                         args.team_members, workdir, args.parallel, log)
    finally:
        proxy.close()

    report = render(args, started, info, vers, per_size, lac_per_size, per_team)
    print(report)
    if args.markdown:
        args.markdown.write_text(report + "\n")
    if args.json:
        args.json.write_text(json.dumps({"started": started.isoformat(), "machine": info, "versions": vers,
                                         "args": {k: v for k, v in vars(args).items() if k not in ("markdown", "json")},
                                         **as_json(per_size, lac_per_size), "teams": per_team}, indent=1, default=str))
    failed = any(not s.ok for steps in per_size.values() for samples in steps.values() for s in samples)
    return 1 if failed else 0


def render(args: argparse.Namespace, started: datetime.datetime, info: dict[str, str], vers: dict[str, str],
           per_size: dict[int, dict[str, list[Sample]]], lac_per_size: dict[int, dict[str, list[Sample]]],
           per_team: dict[str, dict[str, float]]) -> str:
    n = args.users
    parts = [
        f"## Benchmark run {started.strftime('%Y-%m-%d %H:%M UTC')}",
        "",
        f"N = {n} users (each a User and a Key), parallelism {args.parallel}, {args.runs} run(s) per size; "
        "wall time is the median with min–max; calls are counted at a pass-through in front of the proxy. "
        "One-field change: every user's `budget_duration` 30d -> 7d.",
        "",
        "Machine: " + "; ".join(f"{k} {v}" for k, v in info.items()),
        "",
        "Versions: " + "; ".join(f"{k} {v}" for k, v in vers.items()),
        "",
        f"### The stack, {n} users",
        "",
        ours_table(n, per_size[n]),
    ]
    if lac_per_size.get(n):
        parts += [
            "",
            f"### litellm-as-code, same work, same proxy, {n} users",
            "",
            "Its pass-through answers the Enterprise-only `/organization/list` (403) with `[]` and merges the pages "
            "of `/user/list` and `/key/list` (it reads only the first page); without that it fails on every run, "
            "and from 26 users on its re-apply fails with 409.",
            "",
            lac_table(n, lac_per_size[n], per_size[n]),
        ]
    if per_team:
        parts += ["", f"### Teams and memberships ({args.teams} teams, {args.team_members} memberships each)", "",
                  "Counted calls of a stack of teams alone / teams; of the same teams with memberships, minus "
                  "the first, / memberships. The change raises every team's `max_budget` and every "
                  "membership's `max_budget_in_team`.", "", teams.table(per_team)]
    if len(per_size) > 1:
        parts += ["", "### Cost against N", "", linearity_table(per_size, lac_per_size)]
    parts += ["", f"### Targets ({n} users)", "", targets_table(targets(n, per_size[n], lac_per_size.get(n, {})))]
    return "\n".join(parts)


if __name__ == "__main__":
    sys.exit(main())
