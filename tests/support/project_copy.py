"""A copy of parts of the project in a temporary folder, sharing the set-up .venv: for running the scripts
where they may write (state folders, installed tools, extra stack files) without touching the checkout."""

from __future__ import annotations

import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# The stack program and every module it imports: what a project folder needs from the checkout to run it.
PROGRAM = ("__main__.py", "litellm_pulumi_access.py", "roster.py", "providers", "components")
REQUIREMENTS = ("requirements.txt", "requirements-dev.txt", "policy/requirements.txt", "benchmarks/requirements.txt")


def copy_project(target: Path, names: tuple[str, ...]) -> Path:
    """`names` (files or folders of the project) and every requirement file copied under `target`, with
    `.venv` a link to the project's (so scripts/setup finds it current and installs nothing)."""
    for name in (*names, *REQUIREMENTS):
        source, copy = ROOT / name, target / name
        copy.parent.mkdir(parents=True, exist_ok=True)
        (shutil.copytree if source.is_dir() else shutil.copy)(source, copy)
    (target / ".venv").symlink_to(ROOT / ".venv")
    return target
