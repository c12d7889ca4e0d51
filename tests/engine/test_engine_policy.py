"""The policy pack on the real engine: `pulumi preview --policy-pack policy` runs our Python pack through the
language host (RunPlugin, in the project's .venv, which PulumiPolicy.yaml names as ../.venv), lets the dev
stack's config through and stops a mandatory violation, naming the policy."""

from __future__ import annotations

from pathlib import Path

import yaml

from .conftest import ROOT, Project
from .test_engine_readme_job import rename_ids

PACK = ("--policy-pack", "policy", "--policy-pack-config", "policy/config.json")


def dev_stack_config(project: Project, unique: str) -> None:
    """Pulumi.dev.yaml's teams and users (ids suffixed) on this project's stack."""
    copy = project.dir.parent / "Pulumi.dev.yaml"
    copy.write_text((ROOT / "Pulumi.dev.yaml").read_text())
    rename_ids(copy, unique)
    config = yaml.safe_load(copy.read_text())["config"]
    project.configure({name: config[name] for name in ("litellm:teams", "litellm:users")})


def test_the_pack_passes_the_dev_stack_and_stops_a_mandatory_violation(project: Project, unique: str) -> None:
    (project.dir / ".venv").symlink_to(ROOT / ".venv")  # where PulumiPolicy.yaml's ../.venv points in a checkout
    dev_stack_config(project, unique)
    passed = project.run("preview", *PACK)
    assert "litellm-access@v0.1.0 (local: policy)" in passed.stdout, passed.stdout
    assert "mandatory" not in passed.stdout + passed.stderr

    users = yaml.safe_load((project.dir / f"Pulumi.{project.stack}.yaml").read_text())["config"]["litellm:users"]
    users[2]["max_budget"] = 5000  # jdoe's key and user: above the caps of config.json
    project.configure({"litellm:users": users})
    failed = project.run("preview", *PACK, check=False)
    assert failed.returncode != 0
    out = failed.stdout + failed.stderr
    assert "❌ litellm-access@v0.1.0 (local: policy)" in out, out
    assert (f"[mandatory]  litellm-budget-required  (pulumi-python:dynamic/litellm:Key: jdoe-{unique}@example.edu)"
            in out), out
    assert f"Key 'jdoe-{unique}@example.edu': max_budget 5000 USD is above the cap of 1000 USD (maxKeyBudget)" in out
    assert f"User 'jdoe-{unique}@example.edu': max_budget 5000 USD is above the cap of 1000 USD (maxUserBudget)" in out


def test_a_pack_without_its_virtualenv_fails_at_once_naming_it(project: Project, tmp_path: Path) -> None:
    """The language host checks the pack's virtualenv: without it the engine would wait forever."""
    failed = project.run("preview", *PACK, check=False, timeout=120)
    assert failed.returncode != 0
    assert f"The 'virtualenv' option in Pulumi.yaml is set to \"../.venv\", but \"{project.dir}/.venv\" doesn't exist" \
        in failed.stdout + failed.stderr
