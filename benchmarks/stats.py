"""Samples, summaries and the Markdown report of the benchmark (no I/O besides what is handed in)."""

from __future__ import annotations

import dataclasses
import statistics
from typing import Any, Optional

# The stack lifecycle, in order. "noop-up" is the no-op re-apply that the wall-time target compares.
STEPS = ("preview", "up", "noop-preview", "noop-up", "refresh", "change-up", "destroy")
STEP_TITLES = {
    "preview": "preview of a new stack",
    "up": "up (create)",
    "noop-preview": "no-op preview",
    "noop-up": "no-op up (re-apply)",
    "refresh": "refresh",
    "change-up": "one-field change + up",
    "destroy": "destroy",
}
# litellm-as-code doing the same work, and which of our steps each is compared with.
LAC_STEPS = ("create", "noop-plan", "noop-apply", "change")
LAC_TITLES = {
    "create": "apply (create)",
    "noop-plan": "no-op plan (--dry-run)",
    "noop-apply": "no-op re-apply",
    "change": "one-field change apply",
}
LAC_VS = {"create": "up", "noop-plan": "noop-preview", "noop-apply": "noop-up", "change": "change-up"}
# The Terraform module's calls per user, from ../shared/reference/TERRAFORM-MODULE.md ("API calls the module
# makes"); a no-op apply plans first, so it costs what a no-op plan does; steps it does not document are
# left out rather than guessed.
MODULE_CALLS = {"up": 6, "noop-preview": 3, "noop-up": 3, "refresh": 3}
RESOURCES_PER_USER = 2  # a UserWithKey is a User and a Key

TARGETS = {  # step -> most proxy calls per UserWithKey
    "up": 4,
    "noop-preview": 0,
    "refresh": 2,
}
PROVIDER_BYTES_TARGET = 200
WALL_RATIO_TARGET = 0.5  # ours / litellm-as-code, for up and the no-op re-apply, at 50 users


@dataclasses.dataclass
class Sample:
    """One step of one run."""

    wall: float  # seconds
    calls: int  # requests the tool sent (seen at the pass-through)
    upstream: int  # requests the proxy itself saw (differs only where the pass-through merged pages)
    cpu: Optional[float] = None  # seconds of CPU in the plugin process after its start (the step's work)
    startup_cpu: Optional[float] = None  # seconds of CPU the plugin process spent starting (imports, Configure)
    peak_kb: Optional[int] = None  # VmHWM of the plugin process(es)
    checkpoint: Optional[float] = None  # seconds the engine stand-in spent writing its state file
    proxy_cpu: Optional[float] = None  # CPU seconds the proxy (LiteLLM, shim, Postgres) used during the step
    state_bytes: Optional[float] = None  # state file size per user after the step
    provider_bytes: Optional[float] = None  # mean `__provider` bytes per resource in the state after the step
    ok: bool = True
    note: str = ""


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


@dataclasses.dataclass
class Summary:
    n: int
    runs: int
    wall_median: float
    wall_min: float
    wall_max: float
    calls: float  # median calls per run
    calls_varied: bool
    upstream: float
    cpu: Optional[float]
    startup_cpu: Optional[float]
    peak_kb: Optional[int]
    checkpoint: Optional[float]
    proxy_cpu: Optional[float]
    state_bytes: Optional[float]
    provider_bytes: Optional[float]
    failures: list[str]

    @property
    def calls_per_user(self) -> float:
        return self.calls / self.n

    @property
    def upstream_per_user(self) -> float:
        return self.upstream / self.n

    @property
    def ms_per_user(self) -> float:
        return 1000 * self.wall_median / self.n

    @property
    def cpu_ms_per_resource(self) -> Optional[float]:
        return None if self.cpu is None else 1000 * self.cpu / (self.n * RESOURCES_PER_USER)


def _median_of(samples: list[Sample], name: str) -> Optional[float]:
    values = [getattr(s, name) for s in samples if getattr(s, name) is not None]
    return median(values) if values else None


def summarize(n: int, samples: list[Sample]) -> Summary:
    ok = [s for s in samples if s.ok] or samples
    walls = [s.wall for s in ok]
    calls = [s.calls for s in ok]
    peaks = [s.peak_kb for s in ok if s.peak_kb is not None]
    return Summary(
        n=n,
        runs=len(ok),
        wall_median=median(walls),
        wall_min=min(walls),
        wall_max=max(walls),
        calls=median(calls),
        calls_varied=len(set(calls)) > 1,
        upstream=median([s.upstream for s in ok]),
        cpu=_median_of(ok, "cpu"),
        startup_cpu=_median_of(ok, "startup_cpu"),
        peak_kb=max(peaks) if peaks else None,
        proxy_cpu=_median_of(ok, "proxy_cpu"),
        state_bytes=_median_of(ok, "state_bytes"),
        checkpoint=_median_of(ok, "checkpoint"),
        provider_bytes=_median_of(ok, "provider_bytes"),
        failures=[s.note for s in samples if not s.ok],
    )


# ----------------------------------------------------------------------------------------------- report
def _num(value: Optional[float], fmt: str = "{:.2f}") -> str:
    return "—" if value is None else fmt.format(value)


def _wall(s: Summary) -> str:
    return f"{s.wall_median:.2f} ({s.wall_min:.2f}–{s.wall_max:.2f})"


def _calls(s: Summary) -> str:
    text = f"{s.calls_per_user:.2f}"
    if s.calls_varied:
        text += " (varied)"
    return text


def table(headers: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def ours_table(n: int, results: dict[str, list[Sample]]) -> str:
    rows = []
    for step in STEPS:
        if step not in results:
            continue
        s = summarize(n, results[step])
        rows.append([
            STEP_TITLES[step],
            _wall(s),
            _num(s.checkpoint),
            _num(s.proxy_cpu),
            _calls(s),
            str(MODULE_CALLS.get(step, "—")),
            _num(s.cpu_ms_per_resource),
            _num(s.startup_cpu),
            _num(s.provider_bytes, "{:.0f}"),
            _num(None if s.peak_kb is None else s.peak_kb / 1024, "{:.1f}"),
            _num(None if s.state_bytes is None else s.state_bytes / 1024, "{:.1f}"),
            "; ".join(s.failures) or "",
        ])
    return table(
        ["step", "wall s, median (min–max)", "of which state-file writes s", "proxy CPU s", "proxy calls / user", "the module's calls / user",
         "plugin CPU ms / resource", "plugin start CPU s", "`__provider` B / resource", "plugin peak MiB", "state KiB / user", "failures"],
        rows,
    )


def lac_table(n: int, lac: dict[str, list[Sample]], ours: dict[str, list[Sample]]) -> str:
    rows = []
    for step in LAC_STEPS:
        if step not in lac:
            continue
        s = summarize(n, lac[step])
        mine = summarize(n, ours[LAC_VS[step]]) if LAC_VS[step] in ours else None
        ratio = mine.wall_median / s.wall_median if mine and s.wall_median else None
        rows.append([
            LAC_TITLES[step],
            _wall(s),
            _num(s.proxy_cpu),
            _calls(s),
            f"{s.upstream_per_user:.2f}",
            STEP_TITLES[LAC_VS[step]],
            _wall(mine) if mine else "—",
            _calls(mine) if mine else "—",
            _num(ratio),
            "; ".join(s.failures) or "",
        ])
    return table(
        ["litellm-as-code step", "wall s, median (min–max)", "proxy CPU s", "calls / user (its requests)",
         "proxy requests / user (incl. merged pages)", "our step", "our wall s", "our calls / user",
         "wall ratio ours / theirs", "failures"],
        rows,
    )


def linearity_table(per_size: dict[int, dict[str, list[Sample]]], lac: dict[int, dict[str, list[Sample]]]) -> str:
    rows = []
    for step in STEPS:
        for n in sorted(per_size):
            if step not in per_size[n]:
                continue
            s = summarize(n, per_size[n][step])
            other = LAC_VS_INV.get(step)
            theirs = summarize(n, lac[n][other]) if other and n in lac and other in lac[n] else None
            rows.append([
                STEP_TITLES[step], str(n), _wall(s), f"{s.ms_per_user:.1f}", _calls(s),
                _num(s.cpu_ms_per_resource),
                f"{theirs.ms_per_user:.1f}" if theirs else "—",
                _calls(theirs) if theirs else "—",
            ])
    return table(
        ["step", "N", "wall s, median (min–max)", "wall ms / user", "calls / user", "plugin CPU ms / resource",
         "litellm-as-code ms / user", "litellm-as-code calls / user"],
        rows,
    )


LAC_VS_INV = {v: k for k, v in LAC_VS.items()}


def targets(n: int, ours: dict[str, list[Sample]], lac: dict[str, list[Sample]]) -> list[tuple[str, str, bool]]:
    """(target, measured, met) for each target the issue sets that these results can judge."""
    out: list[tuple[str, str, bool]] = []
    for step, most in TARGETS.items():
        if step in ours:
            s = summarize(n, ours[step])
            out.append((f"{STEP_TITLES[step]}: at most {most} proxy calls per UserWithKey",
                        f"{s.calls_per_user:.2f}", s.calls_per_user <= most))
    provider = [x.provider_bytes for samples in ours.values() for x in samples if x.provider_bytes is not None]
    if provider:
        worst = max(provider)
        out.append((f"`__provider`: at most {PROVIDER_BYTES_TARGET} bytes per resource", f"{worst:.0f}",
                    worst <= PROVIDER_BYTES_TARGET))
    for step in ("create", "noop-apply"):
        if step in lac and LAC_VS[step] in ours:
            mine, theirs = summarize(n, ours[LAC_VS[step]]), summarize(n, lac[step])
            ratio = mine.wall_median / theirs.wall_median
            out.append((f"wall time of {STEP_TITLES[LAC_VS[step]]} vs litellm-as-code's {LAC_TITLES[step]}, "
                        f"{n} users: ratio <= {WALL_RATIO_TARGET}",
                        f"{mine.wall_median:.2f} s / {theirs.wall_median:.2f} s = {ratio:.2f}",
                        ratio <= WALL_RATIO_TARGET))
    return out


def targets_table(rows: list[tuple[str, str, bool]]) -> str:
    return table(["target", "measured", "met"], [[t, m, "yes" if ok else "**no**"] for t, m, ok in rows])


def as_json(per_size: dict[int, dict[str, list[Sample]]], lac: dict[int, dict[str, list[Sample]]]) -> dict[str, Any]:
    return {
        "ours": {str(n): {step: [dataclasses.asdict(s) for s in samples] for step, samples in steps.items()}
                 for n, steps in per_size.items()},
        "litellm_as_code": {str(n): {step: [dataclasses.asdict(s) for s in samples] for step, samples in steps.items()}
                            for n, steps in lac.items()},
    }
