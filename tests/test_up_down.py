"""scripts/up and scripts/down end to end, on a copy of the project, with stand-ins for `pulumi`, `docker`
`curl` and `go` that record every call (arguments and the environment given to it): the commands and their
order, secrets only in the environment (never on a command line), the pinned CLI put into .tools/pulumi/bin
with Pulumi's installer or built from Go modules when it is not there, and a message for each missing
prerequisite, before anything runs. The `pulumi` stand-in lives where scripts/install-pulumi puts the real one.
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

PULUMI_VERSION = "3.274.0"
DEV_KEY, DEV_PASSPHRASE = "sk-dev-master-key", "dev-only-passphrase"
# What the scripts may call besides the stand-ins: POSIX tools that macOS has too.
TOOLS = ("bash", "sh", "cat", "mkdir", "mktemp", "dirname", "basename", "rm", "chmod", "cp", "env", "date", "grep")
CLI_PARTS = ("pulumi", "pulumi-language-python", "pulumi-language-python-exec", "pulumi-resource-pulumi-python")
COPIED = ("scripts", "deploy", "tools/pulumi-cli", "Pulumi.yaml", "Pulumi.dev.yaml")

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
if tool == "pulumi" and args == ["version"]:
    print("v" + os.environ["STANDIN_VERSION"])
if args[:2] in (["stack", "select"], ["stack", "init"]):
    state = os.path.join(os.path.dirname(log), "stack-" + args[2])
    if args[1] == "select" and not os.path.exists(state):
        sys.exit(1)  # a new stack: scripts/up inits it
    open(state, "w").close()
if tool == "curl":
    if os.environ.get("STANDIN_OFFLINE"):
        print("curl: (6) Could not resolve host: get.pulumi.com", file=sys.stderr)
        sys.exit(6)
    with open(args[args.index("-o") + 1], "w") as out:  # Pulumi's installer, as a stand-in
        out.write(os.environ["STANDIN_INSTALLER"])
if tool == "go" and args[:1] == ["build"]:  # the CLI (or the language host) built: the pulumi stand-in
    target = args[args.index("-o") + 1]
    with open(os.environ["STANDIN_PULUMI"]) as src, open(target, "w") as out:
        out.write(src.read())
    os.chmod(target, 0o755)
if tool == "go" and args[:2] == ["list", "-m"]:  # where the sdk/v3 module's two Python scripts are
    print(os.environ["STANDIN_SDK"])
'''
# The installer stand-in records its arguments and installs the pulumi stand-in under --install-root.
INSTALLER = r'''#!/bin/sh
"$STANDIN_PYTHON" "$STANDIN_RECORDER" installer "$@"
while [ $# -gt 0 ]; do
  if [ "$1" = --install-root ]; then root=$2; fi
  shift
done
mkdir -p "$root/bin"
for part in pulumi pulumi-language-python pulumi-language-python-exec pulumi-resource-pulumi-python; do
  cp "$STANDIN_PULUMI" "$root/bin/$part"
done
'''


class Sandbox:
    """A copy of the project, a PATH of links and stand-ins, and the record of the stand-ins' calls."""

    def __init__(self, tmp: Path) -> None:
        self.project = copy_project(tmp / "project", COPIED)
        self.own_venv()
        self.bin, self.standins, self.sdk = tmp / "bin", tmp / "standins", tmp / "sdk"
        self.bin.mkdir()
        self.standins.mkdir()
        for script in ("python/cmd/pulumi-language-python-exec", "python/dist/pulumi-resource-pulumi-python"):
            (self.sdk / script).parent.mkdir(parents=True, exist_ok=True)
            (self.sdk / script).write_text("#!/bin/sh\n")
        for tool in TOOLS:
            (self.bin / tool).symlink_to(shutil.which(tool))
        (self.bin / "python3").symlink_to(os.path.realpath(sys.executable))
        self.recorder = tmp / "recorder.py"
        self.recorder.write_text(RECORDER)
        self.log = tmp / "calls.jsonl"
        for tool in ("pulumi", "docker", "curl", "go"):
            self.standin(tool)
        self.root = self.project / ".tools" / "pulumi"

    def own_venv(self) -> None:
        """A .venv of its own that scripts/setup finds current (a link to this interpreter and the stamp setup
        writes), so it installs nothing and never writes into the project's .venv."""
        venv = self.project / ".venv"
        venv.unlink()
        (venv / "bin").mkdir(parents=True)
        (venv / "bin" / "python").symlink_to(os.path.realpath(sys.executable))
        texts = [(self.project / name).read_text()
                 for name in ("requirements.txt", "policy/requirements.txt", "benchmarks/requirements.txt",
                              "requirements.txt")]
        (venv / ".requirements-requirements").write_text("".join(texts).rstrip("\n") + "\n")

    def install_cli(self) -> None:
        """What scripts/install-pulumi leaves behind: the four parts (stand-ins) and the verified version."""
        (self.root / "bin").mkdir(parents=True)
        for part in CLI_PARTS:
            shutil.copy(self.standins / "pulumi", self.root / "bin" / part)
        (self.root / ".verified").write_text(f"v{PULUMI_VERSION} installer\n")  # what the installer route leaves

    def standin(self, tool: str) -> Path:
        path = self.standins / tool
        path.write_text(f'#!/bin/sh\nexec "{os.path.realpath(sys.executable)}" "{self.recorder}" {tool} "$@"\n')
        path.chmod(0o755)
        return path

    def run(self, script: str, env: Optional[dict[str, str]] = None, tools: tuple[str, ...] = ("docker", "curl"),
            ) -> subprocess.CompletedProcess[str]:
        on_path = self.standins.parent / ("only-" + "-".join(tools))
        if not on_path.exists():
            on_path.mkdir()
            for tool in tools:
                (on_path / tool).symlink_to(self.standins / tool)
        base = {"PATH": f"{on_path}:{self.bin}", "HOME": str(self.standins.parent), "STANDIN_LOG": str(self.log),
                "STANDIN_PYTHON": os.path.realpath(sys.executable), "STANDIN_RECORDER": str(self.recorder),
                "STANDIN_PULUMI": str(self.standins / "pulumi"), "STANDIN_INSTALLER": INSTALLER,
                "STANDIN_VERSION": PULUMI_VERSION, "STANDIN_SDK": str(self.sdk)}
        return subprocess.run(["bash", f"scripts/{script}"], cwd=self.project, env={**base, **(env or {})}, text=True,
                              capture_output=True, stdin=subprocess.DEVNULL, timeout=300)

    def calls(self) -> list[dict[str, Any]]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines()]

    def commands(self) -> list[str]:
        """Every call but `pulumi version` (the scripts ask it whenever they look for the pinned CLI)."""
        return [" ".join(call["argv"]) for call in self.calls() if call["argv"] != ["pulumi", "version"]]

    def env_of(self, command: str) -> dict[str, str]:
        return next(call["env"] for call in self.calls() if " ".join(call["argv"]) == command)


@pytest.fixture
def bare(tmp_path: Path) -> Sandbox:
    """A sandbox without the pinned CLI in .tools/pulumi."""
    return Sandbox(tmp_path)


@pytest.fixture
def sandbox(bare: Sandbox) -> Sandbox:
    """A sandbox where scripts/install-pulumi has already put the pinned CLI."""
    bare.install_cli()
    return bare


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


def test_without_the_pinned_cli_up_installs_it_with_pulumis_installer(bare: Sandbox) -> None:
    up = bare.run("up")
    assert up.returncode == 0, up.stderr
    assert f"installing pulumi {PULUMI_VERSION} with Pulumi's installer into .tools/pulumi" in up.stderr
    installer = bare.calls()[2]["argv"][-1]
    assert bare.commands()[:7] == [
        "docker compose version",
        "docker info",
        f"curl -fsSL --max-time 20 https://get.pulumi.com -o {installer}",
        f"installer --version {PULUMI_VERSION} --install-root {bare.root} --no-edit-path",
        "pulumi stack init verify --non-interactive",  # the check that the engine starts
        "pulumi preview --non-interactive --stack verify",
        "docker compose -f deploy/compose.yaml up -d --wait",
    ]
    assert "pulumi up --yes --stack dev" in bare.commands()  # with the CLI it installed
    assert (bare.root / ".verified").read_text() == f"v{PULUMI_VERSION} installer\n"
    assert f"install-pulumi: pulumi v{PULUMI_VERSION} ready in .tools/pulumi/bin" in up.stderr

    down = bare.run("down", tools=("docker",))  # finds the CLI up installed
    assert down.returncode == 0, down.stderr
    assert "pulumi destroy --yes --stack dev" in bare.commands()


def test_without_the_installers_host_up_builds_the_cli_from_go_modules(bare: Sandbox) -> None:
    up = bare.run("up", {"STANDIN_OFFLINE": "1"}, tools=("docker", "curl", "go"))
    assert up.returncode == 0, up.stderr
    assert f"building pulumi {PULUMI_VERSION} from Go modules (tools/pulumi-cli) into .tools/pulumi/bin" in up.stderr
    stamp = f"-X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=v{PULUMI_VERSION}"
    assert [c for c in bare.commands() if c.startswith("go ")] == [
        f"go build -ldflags {stamp} -o {bare.root}/bin/pulumi github.com/pulumi/pulumi/pkg/v3/cmd/pulumi",
        f"go build -ldflags {stamp} -o {bare.root}/bin/pulumi-language-python ./pulumi-language-python",
        "go list -m -f {{.Dir}} github.com/pulumi/pulumi/sdk/v3",
    ]
    for part in CLI_PARTS:  # the two Python scripts copied from the sdk module, made executable
        assert os.access(bare.root / "bin" / part, os.X_OK), part
    assert "pulumi up --yes --stack dev" in bare.commands()


def test_up_says_when_neither_route_to_the_cli_works(bare: Sandbox) -> None:
    up = bare.run("up", {"STANDIN_OFFLINE": "1"}, tools=("docker", "curl"))
    assert up.returncode == 2
    assert (f"install-pulumi: cannot get pulumi {PULUMI_VERSION}: Pulumi's installer (https://get.pulumi.com) did "
            "not answer and Go is not on PATH.") in up.stderr
    assert "scripts/up: .venv is ready; once the pulumi CLI can be had (see above), run scripts/up again" in up.stderr
    assert bare.commands()[-1].startswith("curl ")  # it stopped there: no proxy started, no pulumi
    assert not (bare.root / "bin" / "pulumi").exists()


CLI_MISSING = ("the pulumi CLI 3.274.0: curl (for Pulumi's installer) or Go 1.26+ (to build it from Go modules), "
               "see https://www.pulumi.com/docs/install/")
DOCKER_MISSING = ("Docker with the compose plugin, for the local LiteLLM proxy (or set LITELLM_URL and "
                  "LITELLM_MASTER_KEY to use a proxy you already run)")


@pytest.mark.parametrize("cli, env, tools, says", [
    (False, {}, ("docker",), CLI_MISSING),
    (True, {}, (), DOCKER_MISSING),
    (True, {"STANDIN_FAIL": "docker compose"}, ("docker",), "the Docker compose plugin ('docker compose version' failed)"),
    (True, {"STANDIN_FAIL": "docker info"}, ("docker",), "a running Docker engine ('docker info' failed: start Docker)"),
    (True, {"LITELLM_URL": "https://litellm.example.org"}, (), "LITELLM_MASTER_KEY: the admin token for the proxy at LITELLM_URL"),
    (True, {"PYTHON": "python9"}, ("docker",), "Python 3.10 or newer (python9 not found; set PYTHON"),
], ids=["pulumi-curl-and-go", "docker", "compose-plugin", "docker-engine", "master-key", "python"])
def test_up_names_each_missing_prerequisite_before_doing_anything(bare: Sandbox, cli: bool, env: dict[str, str],
                                                                   tools: tuple[str, ...], says: str) -> None:
    if cli:
        bare.install_cli()
    up = bare.run("up", env, tools=tools)
    assert up.returncode == 2
    assert up.stderr.startswith("scripts/up: cannot run the dev stack; missing:\n"), up.stderr
    assert f"  - {says}" in up.stderr, up.stderr
    assert up.stderr.count("\n  - ") == 1, up.stderr
    assert [c for c in bare.commands() if not c.startswith("docker compose version") and c != "docker info"] == []


def test_a_cli_on_path_that_is_not_the_pin_does_not_count(bare: Sandbox) -> None:
    up = bare.run("up", {"STANDIN_VERSION": "3.100.0"}, tools=("docker", "pulumi"))
    assert up.returncode == 2
    assert f"  - {CLI_MISSING}" in up.stderr, up.stderr


def test_up_names_every_missing_prerequisite_at_once(bare: Sandbox) -> None:
    up = bare.run("up", {"PYTHON": "python9"}, tools=())
    assert up.returncode == 2
    assert up.stderr.splitlines() == [
        "scripts/up: cannot run the dev stack; missing:",
        "  - Python 3.10 or newer (python9 not found; set PYTHON to use another interpreter)",
        f"  - {CLI_MISSING}",
        f"  - {DOCKER_MISSING}",
    ]
    assert bare.calls() == []


def test_down_without_a_pulumi_cli_says_so(bare: Sandbox) -> None:
    down = bare.run("down", tools=("docker",))
    assert down.returncode == 2
    assert "scripts/down: the pulumi CLI is missing (scripts/up installs one into .tools/pulumi)" in down.stderr
    assert bare.calls() == []
