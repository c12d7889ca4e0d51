"""scripts/up and scripts/down end to end, on a copy of the project, with stand-ins for `pulumi`, `docker`
and `curl` on PATH that record every call (arguments and the environment given to it): the commands and
their order, secrets only in the environment (never on a command line), the pinned CLI installed with
Pulumi's installer when none is found, and a message for each missing prerequisite, before anything runs.
The PATH is a folder of links to the few POSIX tools the scripts may use, so a GNU-only tool or a real
pulumi/docker/curl on this machine cannot leak in."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Optional

import pytest

from support.project_copy import copy_project

PULUMI_VERSION = "3.272.0"
DEV_KEY, DEV_PASSPHRASE = "sk-dev-master-key", "dev-only-passphrase"
# What the scripts may call besides the stand-ins: POSIX tools that macOS has too.
TOOLS = ("bash", "sh", "cat", "mkdir", "mktemp", "dirname", "basename", "rm", "chmod", "cp", "env")
COPIED = ("scripts", "deploy", "Pulumi.yaml", "Pulumi.dev.yaml")

# One recorder behind every stand-in: a JSON line per call; behaviour set by STANDIN_* variables.
RECORDER = r'''
import json, os, sys
tool, args = sys.argv[1], sys.argv[2:]
log = os.environ["STANDIN_LOG"]
env = {k: v for k, v in os.environ.items() if k.startswith(("PULUMI_", "LITELLM_"))}
with open(log, "a") as out:
    out.write(json.dumps({"argv": [tool, *args], "env": env}) + "\n")
command = " ".join([tool, *args])
if any(command.startswith(prefix) for prefix in filter(None, os.environ.get("STANDIN_FAIL", "").split(";"))):
    sys.exit(1)
state = os.path.join(os.path.dirname(log), "stack-exists")
if args[:2] == ["stack", "select"] and not os.path.exists(state):
    sys.exit(1)  # a new stack: scripts/up inits it
if args[:2] == ["stack", "init"]:
    open(state, "w").close()
if tool == "curl":
    if os.environ.get("STANDIN_OFFLINE"):
        print("curl: (6) Could not resolve host: get.pulumi.com", file=sys.stderr)
        sys.exit(6)
    with open(args[args.index("-o") + 1], "w") as out:  # Pulumi's installer, as a stand-in
        out.write(os.environ["STANDIN_INSTALLER"])
'''
# The installer stand-in records its arguments and installs the pulumi stand-in under --install-root.
INSTALLER = r'''#!/bin/sh
"$STANDIN_PYTHON" "$STANDIN_RECORDER" installer "$@"
while [ $# -gt 0 ]; do
  if [ "$1" = --install-root ]; then root=$2; fi
  shift
done
mkdir -p "$root/bin" && cp "$STANDIN_PULUMI" "$root/bin/pulumi"
'''


class Sandbox:
    """A copy of the project, a PATH of links and stand-ins, and the record of the stand-ins' calls."""

    def __init__(self, tmp: Path) -> None:
        self.project = copy_project(tmp / "project", COPIED)
        self.bin, self.standins = tmp / "bin", tmp / "standins"
        self.bin.mkdir()
        self.standins.mkdir()
        for tool in TOOLS:
            (self.bin / tool).symlink_to(shutil.which(tool))
        (self.bin / "python3").symlink_to(os.path.realpath(sys.executable))
        self.recorder = tmp / "recorder.py"
        self.recorder.write_text(RECORDER)
        self.log = tmp / "calls.jsonl"
        for tool in ("pulumi", "docker", "curl"):
            self.standin(tool)

    def standin(self, tool: str) -> Path:
        path = self.standins / tool
        path.write_text(f'#!/bin/sh\nexec "{os.path.realpath(sys.executable)}" "{self.recorder}" {tool} "$@"\n')
        path.chmod(0o755)
        return path

    def run(self, script: str, env: Optional[dict[str, str]] = None, tools: tuple[str, ...] = ("pulumi", "docker", "curl"),
            ) -> subprocess.CompletedProcess[str]:
        on_path = self.standins.parent / ("only-" + "-".join(tools))
        if not on_path.exists():
            on_path.mkdir()
            for tool in tools:
                (on_path / tool).symlink_to(self.standins / tool)
        base = {"PATH": f"{on_path}:{self.bin}", "HOME": str(self.standins.parent), "STANDIN_LOG": str(self.log),
                "STANDIN_PYTHON": os.path.realpath(sys.executable), "STANDIN_RECORDER": str(self.recorder),
                "STANDIN_PULUMI": str(self.standins / "pulumi"), "STANDIN_INSTALLER": INSTALLER}
        return subprocess.run(["bash", f"scripts/{script}"], cwd=self.project, env={**base, **(env or {})}, text=True,
                              capture_output=True, stdin=subprocess.DEVNULL, timeout=300)

    def calls(self) -> list[dict[str, Any]]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines()]

    def commands(self) -> list[str]:
        return [" ".join(call["argv"]) for call in self.calls()]

    def env_of(self, command: str) -> dict[str, str]:
        return next(call["env"] for call in self.calls() if " ".join(call["argv"]) == command)


@pytest.fixture
def sandbox(tmp_path: Path) -> Sandbox:
    return Sandbox(tmp_path)


def assert_no_secret_in_arguments(sandbox: Sandbox, *secrets: str) -> None:
    for call in sandbox.calls():
        for secret in secrets:
            assert not any(secret in arg for arg in call["argv"]), call["argv"]


def test_up_then_down_with_a_local_proxy(sandbox: Sandbox) -> None:
    up = sandbox.run("up")
    assert up.returncode == 0, up.stderr
    assert sandbox.commands() == [
        "docker compose version",
        "docker info",
        "docker compose -f deploy/compose.yaml up -d --wait",
        "pulumi stack select dev",
        "pulumi stack init dev",
        "pulumi up --yes --stack dev",
        "pulumi stack output --stack dev",
    ]
    state = f"file://{sandbox.project}/.pulumi-state"
    expected = {"LITELLM_MASTER_KEY": DEV_KEY, "LITELLM_URL": "http://127.0.0.1:4000", "PULUMI_BACKEND_URL": state,
                "PULUMI_CONFIG_PASSPHRASE": DEV_PASSPHRASE, "PULUMI_SKIP_UPDATE_CHECK": "true"}
    assert sandbox.env_of("pulumi up --yes --stack dev") == expected
    assert sandbox.env_of("docker compose -f deploy/compose.yaml up -d --wait")["LITELLM_MASTER_KEY"] == DEV_KEY
    assert "using a development passphrase" in up.stderr
    assert "--show-secrets" in up.stderr  # how to read the keys
    assert "installing pulumi" not in up.stderr  # a pulumi CLI was there

    sandbox.log.unlink()
    down = sandbox.run("down")
    assert down.returncode == 0, down.stderr
    assert sandbox.commands() == [
        "pulumi destroy --yes --stack dev",
        "docker compose version",
        "docker compose -f deploy/compose.yaml down",
    ]
    assert sandbox.env_of("pulumi destroy --yes --stack dev") == {
        "LITELLM_MASTER_KEY": DEV_KEY, "PULUMI_BACKEND_URL": state, "PULUMI_CONFIG_PASSPHRASE": DEV_PASSPHRASE,
        "PULUMI_SKIP_UPDATE_CHECK": "true"}
    assert_no_secret_in_arguments(sandbox, DEV_KEY, DEV_PASSPHRASE)


def test_up_and_down_against_a_proxy_you_run(sandbox: Sandbox) -> None:
    given = {"LITELLM_URL": "https://litellm.example.org", "LITELLM_MASTER_KEY": "sk-given-admin-key-0123456789",
             "PULUMI_CONFIG_PASSPHRASE": "a given passphrase", "STACK": "prod"}
    up = sandbox.run("up", given)
    assert up.returncode == 0, up.stderr
    assert sandbox.commands() == [
        "pulumi stack select prod",
        "pulumi stack init prod",
        "pulumi up --yes --stack prod --config litellm:url=https://litellm.example.org",
        "pulumi stack output --stack prod",
    ]  # no docker at all
    env = sandbox.env_of("pulumi up --yes --stack prod --config litellm:url=https://litellm.example.org")
    assert env["LITELLM_MASTER_KEY"] == "sk-given-admin-key-0123456789"
    assert env["PULUMI_CONFIG_PASSPHRASE"] == "a given passphrase"
    assert "development passphrase" not in up.stderr

    down = sandbox.run("down", given)
    assert down.returncode == 0, down.stderr
    assert sandbox.commands()[-1] == "pulumi destroy --yes --stack prod"
    assert sandbox.env_of("pulumi destroy --yes --stack prod")["LITELLM_MASTER_KEY"] == "sk-given-admin-key-0123456789"
    assert_no_secret_in_arguments(sandbox, "sk-given-admin-key-0123456789", "a given passphrase")


def test_without_a_pulumi_cli_up_installs_the_pinned_one_into_the_project(sandbox: Sandbox) -> None:
    up = sandbox.run("up", tools=("docker", "curl"))
    assert up.returncode == 0, up.stderr
    assert f"installing pulumi {PULUMI_VERSION} into .tools/pulumi with Pulumi's installer" in up.stderr
    root = sandbox.project / ".tools" / "pulumi"
    assert sandbox.commands()[:5] == [
        "docker compose version",
        "docker info",
        f"curl -fsSL https://get.pulumi.com -o {sandbox.calls()[2]['argv'][-1]}",
        f"installer --version {PULUMI_VERSION} --install-root {root} --no-edit-path",
        "docker compose -f deploy/compose.yaml up -d --wait",
    ]
    assert "pulumi up --yes --stack dev" in sandbox.commands()  # with the CLI it installed
    assert (root / "bin" / "pulumi").exists()

    down = sandbox.run("down", tools=("docker",))  # finds the CLI up installed
    assert down.returncode == 0, down.stderr
    assert "pulumi destroy --yes --stack dev" in sandbox.commands()


def test_up_says_when_pulumis_installer_cannot_be_reached(sandbox: Sandbox) -> None:
    up = sandbox.run("up", {"STANDIN_OFFLINE": "1"}, tools=("docker", "curl"))
    assert up.returncode == 2
    assert "cannot reach https://get.pulumi.com to install the pulumi CLI" in up.stderr
    assert f"install pulumi {PULUMI_VERSION} yourself" in up.stderr
    assert sandbox.commands()[-1].startswith("curl ")  # it stopped there: no proxy started, no pulumi
    assert not (sandbox.project / ".tools" / "pulumi" / "bin" / "pulumi").exists()


@pytest.mark.parametrize("env, tools, says", [
    ({}, ("docker",), "the pulumi CLI, or curl to install it"),
    ({}, ("pulumi", "curl"), "Docker with the compose plugin, for the local LiteLLM proxy (or set LITELLM_URL "
                             "and LITELLM_MASTER_KEY to use a proxy you already run)"),
    ({"STANDIN_FAIL": "docker compose"}, ("pulumi", "docker"), "the Docker compose plugin ('docker compose version' failed)"),
    ({"STANDIN_FAIL": "docker info"}, ("pulumi", "docker"), "a running Docker engine ('docker info' failed: start Docker)"),
    ({"LITELLM_URL": "https://litellm.example.org"}, ("pulumi",), "LITELLM_MASTER_KEY: the admin token for the proxy at LITELLM_URL"),
    ({"PYTHON": "python9"}, ("pulumi", "docker"), "Python 3.10 or newer (python9 not found; set PYTHON"),
], ids=["pulumi-and-curl", "docker", "compose-plugin", "docker-engine", "master-key", "python"])
def test_up_names_each_missing_prerequisite_before_doing_anything(sandbox: Sandbox, env: dict[str, str],
                                                                   tools: tuple[str, ...], says: str) -> None:
    up = sandbox.run("up", env, tools=tools)
    assert up.returncode == 2
    assert up.stderr.startswith("scripts/up: cannot run the dev stack; missing:\n"), up.stderr
    assert f"  - {says}" in up.stderr, up.stderr
    assert up.stderr.count("\n  - ") == 1, up.stderr
    assert [c for c in sandbox.commands() if not c.startswith("docker compose version") and c != "docker info"] == []


def test_up_names_every_missing_prerequisite_at_once(sandbox: Sandbox) -> None:
    up = sandbox.run("up", {"PYTHON": "python9"}, tools=())
    assert up.returncode == 2
    assert up.stderr.splitlines() == [
        "scripts/up: cannot run the dev stack; missing:",
        "  - Python 3.10 or newer (python9 not found; set PYTHON to use another interpreter)",
        "  - the pulumi CLI, or curl to install it (see https://www.pulumi.com/docs/install/)",
        "  - Docker with the compose plugin, for the local LiteLLM proxy (or set LITELLM_URL and LITELLM_MASTER_KEY "
        "to use a proxy you already run)",
    ]
    assert sandbox.calls() == []


def test_down_without_a_pulumi_cli_says_so(sandbox: Sandbox) -> None:
    down = sandbox.run("down", tools=("docker",))
    assert down.returncode == 2
    assert "scripts/down: the pulumi CLI is missing (scripts/up installs one into .tools/pulumi)" in down.stderr
    assert sandbox.calls() == []
