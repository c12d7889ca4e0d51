"""The real-engine tier: the pinned `pulumi` CLI (.tools/pulumi/bin, from scripts/install-pulumi) runs the
project against the real LiteLLM proxy. Each test has its own project folder (the program's files linked in),
its own file backend in a temporary folder, passphrase secrets and its own user ids.

A missing CLI skips this tier on a developer's machine and fails it in CI (CI=true): scripts/setup --dev
installs the CLI, so CI always has it.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Optional

import pytest
import yaml

from support.project_copy import PROGRAM

ROOT = Path(__file__).resolve().parents[2]
CLI = ROOT / ".tools" / "pulumi" / "bin" / "pulumi"
PASSPHRASE = "engine-tier-passphrase"
# What a project folder links from the checkout: the program and everything it imports or reads.
PROGRAM_FILES = (*PROGRAM, "scripts", "policy", "rosters", "requirements.txt")
RAW_KEY = re.compile(r"sk-[A-Za-z0-9_\-]{16,}")  # a whole key; key names like "sk-...abcd" do not match


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/engine/" in item.nodeid.replace(os.sep, "/"):
            item.add_marker(pytest.mark.engine)


@pytest.fixture(scope="session")
def cli() -> Path:
    if not CLI.exists():
        how = f"no pulumi CLI at {CLI.relative_to(ROOT)}: run scripts/setup --dev (scripts/install-pulumi)"
        if os.environ.get("CI"):
            pytest.fail(how)
        pytest.skip(how)
    return CLI


class PulumiFailed(AssertionError):
    pass


@dataclass
class Project:
    """One project folder and one stack on its own file backend, driven by the real CLI."""

    dir: Path
    stack: str
    cli: Path
    env: dict[str, str]
    log: list[str] = field(default_factory=list)  # every command's output, for the secret scans

    def run(self, *args: str, check: bool = True, timeout: float = 600, stack: bool = True,
            env: Optional[dict[str, str]] = None) -> subprocess.CompletedProcess[str]:
        command = [str(self.cli), *args, "--non-interactive"] + (["--stack", self.stack] if stack else [])
        done = subprocess.run(command, cwd=self.dir, env={**self.env, **(env or {})}, text=True,
                              capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL)
        self.log.append(done.stdout + done.stderr)
        if check and done.returncode != 0:
            raise PulumiFailed(f"pulumi {' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
        return done

    def configure(self, config: dict[str, Any]) -> None:
        """Write the stack's config file (secrets go through `config set --secret`)."""
        path = self.dir / f"Pulumi.{self.stack}.yaml"
        current = yaml.safe_load(path.read_text()) if path.exists() else {}
        current = current or {}
        current.setdefault("config", {}).update(config)
        path.write_text(yaml.safe_dump(current, sort_keys=False))

    def set_secret(self, key: str, value: str) -> None:
        subprocess.run([str(self.cli), "config", "set", "--secret", "--stack", self.stack, key],
                       input=value, cwd=self.dir, env=self.env, text=True, check=True, capture_output=True)

    def up(self, *args: str, **kw: Any) -> subprocess.CompletedProcess[str]:
        return self.run("up", "--yes", "--skip-preview", *args, **kw)

    def preview_steps(self, *args: str) -> dict[str, str]:
        """`pulumi preview --json`: each resource's URN name (type::name) and its step op."""
        out = json.loads(self.run("preview", "--json", *args).stdout)
        return {step["urn"].split("::", 2)[-1]: step["op"] for step in out.get("steps", [])}

    def outputs(self, secrets: bool = False) -> dict[str, Any]:
        args = ["stack", "output", "--json"] + (["--show-secrets"] if secrets else [])
        return json.loads(self.run(*args).stdout)

    def export(self) -> dict[str, Any]:
        return json.loads(self.run("stack", "export").stdout)

    def resources(self) -> list[dict[str, Any]]:
        return self.export()["deployment"].get("resources", [])


def new_project(base: Path, cli_path: Path, proxy_url: str, master_key: str, name: str) -> Project:
    project = base / "project"
    project.mkdir()
    for entry in PROGRAM_FILES:
        (project / entry).symlink_to(ROOT / entry)
    (project / "Pulumi.yaml").write_text(
        "name: litellm-access\n"
        "runtime:\n  name: python\n  options:\n    toolchain: pip\n"
        f"    virtualenv: {ROOT / '.venv'}\n")
    (base / "state").mkdir()
    env = {
        **os.environ,
        "PATH": f"{cli_path.parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "PULUMI_BACKEND_URL": f"file://{base / 'state'}",
        "PULUMI_CONFIG_PASSPHRASE": PASSPHRASE,
        "PULUMI_SKIP_UPDATE_CHECK": "true",
        "PULUMI_HOME": str(base / "home"),
        "LITELLM_URL": proxy_url,
        "LITELLM_MASTER_KEY": master_key,
    }
    p = Project(project, name, cli_path, env)
    p.run("stack", "init", name, stack=False)
    p.configure({"litellm:url": proxy_url})
    return p


@pytest.fixture
def project(tmp_path: Path, cli: Path, litellm: Any, unique: str) -> Iterator[Project]:
    """A fresh stack of the stack program; whatever it still holds is destroyed at the end."""
    p = new_project(tmp_path, cli, litellm.url, litellm.master_key, unique)
    yield p
    p.run("destroy", "--yes", "--skip-preview", check=False)
