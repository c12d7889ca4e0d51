"""A LiteLLM proxy (with Postgres) started and stopped with litellm-server: ../shared/litellm-server, or
$LITELLM_SERVER_DIR. Used by the `litellm` fixture (tests/conftest.py) and by the benchmark
(benchmarks/run.py) when no LITELLM_URL / LITELLM_MASTER_KEY is given."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SERVER_DIR = Path(os.environ.get("LITELLM_SERVER_DIR", ROOT.parent / "shared" / "litellm-server"))


class StartFailed(RuntimeError):
    """`up` failed; the message is the tail of its stderr."""


def start(run_dir: Path) -> tuple[str, str]:
    """Run `up --run-dir run_dir`; return the proxy's (LITELLM_URL, LITELLM_MASTER_KEY) from the
    `export K=V` lines it prints. Raises StartFailed with the last 3000 characters of its stderr."""
    done = subprocess.run(
        ["bash", str(SERVER_DIR / "up"), "--run-dir", str(run_dir)],
        text=True, capture_output=True, stdin=subprocess.DEVNULL,
    )
    if done.returncode != 0:
        raise StartFailed(done.stderr[-3000:])
    env = dict(line.removeprefix("export ").split("=", 1) for line in done.stdout.splitlines() if "=" in line)
    return env["LITELLM_URL"], env["LITELLM_MASTER_KEY"]


def stop(run_dir: Path, purge: bool = False) -> None:
    """Run `down --run-dir run_dir` (with --purge, its data goes too); its outcome is not checked."""
    subprocess.run(
        ["bash", str(SERVER_DIR / "down"), "--run-dir", str(run_dir), *(["--purge"] if purge else [])],
        capture_output=True,
    )
