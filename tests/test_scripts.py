"""The README's commands: the main job says clearly what is missing, CI runs the README's test command,
and the dev stack's own config is valid input for the program."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml  # installed with pulumi

ROOT = Path(__file__).resolve().parents[1]


def test_ci_runs_the_readme_test_command() -> None:
    readme = (ROOT / "README.md").read_text()
    commands = re.findall(r"^(scripts/\w+)\s*$", readme, flags=re.M)
    assert commands[:2] == ["scripts/up", "scripts/test"], commands
    assert re.search(r"^scripts/test\b", (ROOT / ".ci" / "run").read_text(), flags=re.M)


def test_dev_stack_config_is_valid_program_input() -> None:
    from components.user_with_key import UserWithKeyArgs, validate
    from support.stack import program_namespace

    config = yaml.safe_load((ROOT / "Pulumi.dev.yaml").read_text())["config"]
    assert config["litellm:url"].startswith("http://127.0.0.1")
    users = program_namespace()["validate_users"](config["litellm:users"])
    assert {u["user_id"] for u in users} == {"dev-alice", "dev-bob", "jdoe@example.edu"}
    for user in users:
        validate(UserWithKeyArgs(url=config["litellm:url"], token="sk-dev", **user))



def test_readme_example_is_valid_program_input() -> None:
    """The README's EPPN example is a config the program accepts, as written."""
    from components.user_with_key import UserWithKeyArgs, validate
    from support.stack import program_namespace

    example = re.search(r"^```yaml\n(.*?)^```", (ROOT / "README.md").read_text(), flags=re.M | re.S)
    assert example is not None
    config = yaml.safe_load(example.group(1))["config"]
    program = program_namespace()
    assert program["config_errors"](config["litellm:url"], config["litellm:users"], config["litellm:teams"]) == []
    assert [u["user_id"] for u in config["litellm:users"]] == ["jdoe@example.edu"]
    for user in config["litellm:users"]:
        validate(UserWithKeyArgs(url=config["litellm:url"], token="sk-dev", **user))

SHELL_SCRIPTS = ["scripts/setup", "scripts/test", "scripts/up", "scripts/down", "scripts/check", "scripts/bench", ".ci/run"]
# What bash 3.2 (macOS) lacks or gets wrong, and tools only GNU systems have.
NOT_PORTABLE = {
    r'"\$\{\w+\[@\]\}"': "an array expansion (an empty array is an unbound variable under set -u in bash < 4.4)",
    r"\b(mapfile|readarray|coproc)\b": "a bash 4 builtin",
    r"\b(declare|local|typeset) -[a-zA-Z]*[An]": "associative arrays or namerefs (bash 4)",
    r"\$\{\w+(,,|\^\^)": "case conversion (bash 4)",
    r"\|&|&>>|;;&": "bash 4 operators",
    r"\b(sha256sum|md5sum|sha1sum|realpath|timeout|tac|nproc)\b": "a GNU-only tool",
    r"\breadlink -f|\bsed -i|\bgrep -P|\bdate -d|\bstat -c|\bxargs -r": "a GNU-only option",
}


@pytest.mark.parametrize("path", SHELL_SCRIPTS)
def test_scripts_are_strict_portable_bash(path: str) -> None:
    text = (ROOT / path).read_text()
    assert text.startswith("#!/usr/bin/env bash") and "set -euo pipefail" in text
    subprocess.run(["bash", "-n", str(ROOT / path)], check=True)
    found = [f"{path}:{number}: {why}: {line.strip()}"
             for number, line in enumerate(text.splitlines(), 1) if not line.lstrip().startswith("#")
             for pattern, why in NOT_PORTABLE.items() if re.search(pattern, line)]
    assert found == []


def test_the_portability_check_finds_what_it_looks_for() -> None:
    """Each pattern above matches the construct it names (so the check cannot pass by matching nothing)."""
    samples = ['pulumi up "${args[@]}"', "mapfile -t lines < f", "declare -A seen", 'echo "${name,,}"',
               "make |& tee log", "want=$(sha256sum f)", "readlink -f x"]
    for sample in samples:
        assert any(re.search(pattern, sample) for pattern in NOT_PORTABLE), sample


def test_shellcheck_passes_on_every_script() -> None:
    shellcheck = Path(sys.executable).parent / "shellcheck"
    done = subprocess.run([str(shellcheck), "-x", *SHELL_SCRIPTS, "scripts/pulumi-env.sh"], cwd=ROOT,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout


def test_a_stable_name_keeps_the_resources_when_a_user_id_changes() -> None:
    """`name` names the resources (default: the user_id), so changing a user_id replaces that user in place
    instead of creating a second one beside it, whose email would still be taken."""
    from support.stack import program_namespace

    program = program_namespace()
    users = [{"name": "ann", "user_id": "ann-2", "user_email": "ann@example.org"},
             {"user_id": "bob", "user_email": "bob@example.org"}]
    program["validate_users"](users)  # accepted: raises nothing
    assert [program["resource_name"](u) for u in users] == ["ann", "bob"]
    with pytest.raises(ValueError, match=r"^litellm:users\[1\] \(user_id 'x'\): name 'ann' is already used by litellm:users\[0\]; "):
        program["validate_users"]([users[0], {"name": "ann", "user_id": "x", "user_email": "x@example.org"}])
    with pytest.raises(ValueError, match=r"^litellm:users\[0\] \(user_id 'x'\): name must be a non-blank string; got ' '$"):
        program["validate_users"]([{"name": " ", "user_id": "x", "user_email": "x@example.org"}])


def test_the_fast_tier_is_every_test_that_needs_no_proxy() -> None:
    """scripts/test --fast selects `-m "not litellm"`: a test that uses the proxy, even through another
    fixture (api, tap), is marked `litellm` and left out; a test without it stays in."""
    done = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
                           "-m", "not litellm", "tests/test_providers.py", "tests/test_component.py",
                           "tests/test_faults.py", "tests/test_bad_input.py"],
                          cwd=ROOT, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stdout + done.stderr
    selected = set(re.findall(r"^(tests/\S+)$", done.stdout, flags=re.M))
    assert "tests/test_component.py::test_type_tokens" in selected
    assert "tests/test_faults.py::test_every_fault_meets_every_operation" in selected
    assert "tests/test_providers.py::test_noop_read_reports_no_drift" not in selected  # litellm itself
    assert "tests/test_faults.py::test_fault[503-forever-read_key]" not in selected
    assert "tests/test_bad_input.py::test_each_input_alone_is_accepted" not in selected  # through tap
