"""A copy of parts of the project in a temporary folder, sharing the set-up .venv: for running the scripts
where they may write (state folders, installed tools, extra stack files) without touching the checkout."""

from __future__ import annotations

import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# The stack program and every module it imports: what a project folder needs from the checkout to run it.
PROGRAM = ("__main__.py", "litellm_pulumi_access.py", "roster.py", "providers", "components")
# What pip needs to build the package (pyproject.toml names the rest). Tests build from a copy: pip builds in
# the source folder (build/, *.egg-info), and two builds of the checkout at once break each other.
PACKAGE = ("pyproject.toml", "README.md", "LICENSE", "litellm_pulumi_access.py", "providers", "components")
REQUIREMENTS = ("requirements.txt", "requirements-dev.txt", "policy/requirements.txt", "benchmarks/requirements.txt")


def copy_project(target: Path, names: tuple[str, ...]) -> Path:
    """`names` (files or folders of the project) and every requirement file copied under `target`, with
    `.venv` a link to the project's (so scripts/setup finds it current and installs nothing)."""
    _copy(target, (*names, *REQUIREMENTS))
    (target / ".venv").symlink_to(ROOT / ".venv")
    return target


def package_source(target: Path) -> Path:
    """The package's sources copied to `target`, for pip to build there."""
    return _copy(target, PACKAGE)


def _copy(target: Path, names: tuple[str, ...]) -> Path:
    """Each of `names` (a file or folder of the project) copied to the same place under `target`, caches
    left out."""
    for name in names:
        source, copy = ROOT / name, target / name
        copy.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, copy, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(source, copy)
    return target
