"""The GitLab pipeline's merge-request preview, run with the real CLI: the `preview` job's script, read from
.gitlab-ci.yml (with the default before_script's `pulumi login`/`stack select`; the venv and CLI installation
lines are what the checkout's .venv and .tools already are), in a copy of the checkout on a file backend,
against the real proxy. scripts/post_mr_comment.py gets the real `pulumi preview` output and posts it to a fake
GitLab: a passing preview, then a policy violation that fails the job and updates the same note."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml

from support.project_copy import copy_project
from test_pipelines import GITLAB_CI, FakeGitLab

from .conftest import CLI, PASSPHRASE, ROOT
from .test_engine_readme_job import CHECKOUT, rename_ids

INSTALLING = ("-m venv", "pip install", "scripts/install-pulumi")  # done already: the linked .venv and .tools


def preview_job() -> str:
    """The preview job as the runner runs it: the default before_script (minus installation), then its script."""
    ci = yaml.safe_load(GITLAB_CI.read_text())
    before = [line for line in ci["default"]["before_script"] if not any(part in line for part in INSTALLING)]
    return "\n".join(["set -eo pipefail", *before, *ci["preview"]["script"]]) + "\n"


@pytest.fixture
def fake_gitlab() -> Iterator[FakeGitLab]:
    fake = FakeGitLab([])
    fake.thread.start()
    yield fake
    fake.server.shutdown()
    fake.server.server_close()


def test_the_merge_request_preview_job_runs_and_posts_the_real_preview(
    tmp_path: Path, cli: Path, litellm: Any, unique: str, fake_gitlab: FakeGitLab
) -> None:
    copy = copy_project(tmp_path / "checkout", CHECKOUT)
    (copy / ".tools").symlink_to(ROOT / ".tools")
    config = copy / f"Pulumi.{unique}.yaml"
    config.write_text((ROOT / "Pulumi.dev.yaml").read_text().replace("http://127.0.0.1:4000", litellm.url))
    rename_ids(config, unique)
    ci_variables = yaml.safe_load(GITLAB_CI.read_text())["variables"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PULUMI_", "LITELLM_"))}
    env.update(ci_variables, **fake_gitlab.env(), PULUMI_STACK=unique, PULUMI_BACKEND_URL=f"file://{tmp_path}/state",
               PULUMI_CONFIG_PASSPHRASE=PASSPHRASE, PULUMI_HOME=str(tmp_path / "home"),
               LITELLM_MASTER_KEY=litellm.master_key)
    (tmp_path / "state").mkdir()
    subprocess.run([str(CLI), "stack", "init", unique, "--non-interactive"], cwd=copy, env=env, check=True,
                   capture_output=True)

    job = subprocess.run(["bash", "-c", preview_job()], cwd=copy, env=env, text=True, capture_output=True, timeout=600)
    assert job.returncode == 0, job.stdout + job.stderr
    preview = (copy / "preview.txt").read_text()
    assert "    litellm-access|local|policy  0.1.0\n" in preview and "+ 14 to create" in preview, preview  # 13 and the ledger
    [note] = fake_gitlab.notes
    assert f"`pulumi preview --diff --policy-pack policy` on stack `{unique}` passed" in note["body"]
    assert (f"[urn=urn:pulumi:{unique}::litellm-access::litellm:index:UserWithKey$pulumi-python:dynamic/litellm:Key"
            f"::jdoe-{unique}@example.edu]") in note["body"]
    assert "created the preview note" in job.stdout

    document = yaml.safe_load(config.read_text())
    document["config"]["litellm:users"][2]["max_budget"] = 5000  # above the pack's caps: mandatory
    config.write_text(yaml.safe_dump(document, sort_keys=False))
    failed = subprocess.run(["bash", "-c", preview_job()], cwd=copy, env=env, text=True, capture_output=True,
                            timeout=600)
    assert failed.returncode != 0
    [note] = fake_gitlab.notes  # the same note, updated
    assert f"on stack `{unique}` failed (exit code {failed.returncode})" in note["body"], note["body"]
    assert f"[mandatory]  litellm-budget-required  (pulumi-python:dynamic/litellm:Key: jdoe-{unique}@example.edu)" \
        in note["body"]
    assert "updated the preview note" in failed.stdout
    assert litellm.master_key not in note["body"] + job.stdout + job.stderr + failed.stdout + failed.stderr
