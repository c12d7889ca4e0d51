"""The benchmark command runs end to end (N=2, one run) and its report is built from counted calls.
Figures are never asserted: only that every step is there and that per-user calls are the counts / N."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest


@pytest.mark.long
def test_benchmark_reports_every_step_from_real_counts(litellm, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LITELLM_URL", litellm.url)
    monkeypatch.setenv("LITELLM_MASTER_KEY", litellm.master_key)
    from benchmarks import run
    from benchmarks.stats import LAC_TITLES, STEP_TITLES, STEPS

    # requirements-dev.txt (scripts/test, .ci/run) installs litellm-as-code, so the comparison always runs.
    assert importlib.util.find_spec("litellm_as_code") is not None, "litellm-as-code missing: scripts/setup --dev"
    args = ["--users", "2", "--runs", "1", "--parallel", "2", "--teams", "2", "--team-members", "2",
            "--json", str(tmp_path / "bench.json"), "--markdown", str(tmp_path / "bench.md")]
    assert run.main(args) == 0

    data = json.loads((tmp_path / "bench.json").read_text())
    report = (tmp_path / "bench.md").read_text()
    ours = data["ours"]["2"]
    assert set(ours) == set(STEPS)
    cells = [[c.strip() for c in line.strip("|").split("|")] for line in report.splitlines() if line.startswith("| ")]
    header = next(row for row in cells if "proxy calls / user" in row)
    column = header.index("proxy calls / user")
    rows = {row[0]: row for row in cells}
    for step in STEPS:
        (sample,) = ours[step]
        assert sample["ok"], sample["note"]
        assert rows[STEP_TITLES[step]][column] == f"{sample['calls'] / 2:.2f}"  # counted calls / N
    assert ours["up"][0]["calls"] > 0 and ours["noop-preview"][0]["calls"] == 0
    assert ours["up"][0]["cpu"] is not None and ours["up"][0]["peak_kb"] > 0
    assert ours["up"][0]["provider_bytes"] > 0
    # Teams: calls per team and per membership, every step, from the counts (a create costs calls; a
    # no-op preview none).
    per_team = data["teams"]
    assert set(per_team["team"]) == set(per_team["membership"]) == set(STEPS)
    assert per_team["team"]["up"] > 0 and per_team["membership"]["up"] > 0
    assert per_team["team"]["noop-preview"] == 0 == per_team["membership"]["noop-preview"]
    assert rows[f"teams: {STEP_TITLES['up']}"][1:] == [f"{per_team['team']['up']:.2f}",
                                                      f"{per_team['membership']['up']:.2f}"]
    for title in LAC_TITLES.values():
        assert title in report
    lac = data["litellm_as_code"]["2"]
    assert lac and all(s["ok"] and s["calls"] > 0 for samples in lac.values() for s in samples), lac
