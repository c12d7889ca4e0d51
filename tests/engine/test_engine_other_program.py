"""Another Pulumi program uses the component: a fresh project folder whose requirements.txt installs this
package from the checkout into the folder's own virtualenv, and whose __main__.py uses `UserWithKey` as the
README shows. Up, a no-op (`--expect-no-changes`), destroy, on the real engine and the real proxy."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from providers.client import LiteLLMClient, NotFound
from support.project_copy import package_source

from .conftest import PASSPHRASE, ROOT, Project
from .test_engine_lifecycle import chat, key_status

PROGRAM = '''import pulumi
import litellm_pulumi_access  # first: an error naming it if a components/ or providers/ of ours shadows it
from components import UserWithKey, UserWithKeyArgs

config = pulumi.Config("litellm")
user_id = config.require("user_id")
jdoe = UserWithKey("jdoe", UserWithKeyArgs(
    url=config.require("url"),
    token=config.require_secret("token"),
    user_id=user_id,
    user_email=user_id,
    user_role="internal_user",
    max_budget=20,
    models=["fake-mock"],
    user_models=["fake-mock"],
))
pulumi.export("jdoe_key", jdoe.key)
pulumi.export("package_file", litellm_pulumi_access.__file__)
'''


@pytest.fixture
def other(tmp_path: Path, cli: Path, litellm: Any, unique: str) -> Project:
    folder = tmp_path / "other"
    folder.mkdir()
    # pip install <the checkout>, from a copy: pip builds in the folder it installs from.
    (folder / "requirements.txt").write_text(f"{package_source(tmp_path / 'checkout')}\n")
    (folder / "__main__.py").write_text(PROGRAM)
    (folder / "Pulumi.yaml").write_text(
        "name: other-program\nruntime:\n  name: python\n  options:\n    toolchain: pip\n    virtualenv: venv\n")
    subprocess.run([sys.executable, "-m", "venv", str(folder / "venv")], check=True)
    subprocess.run([str(folder / "venv" / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                    "-r", "requirements.txt"], cwd=folder, check=True, timeout=900)
    (tmp_path / "state").mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PULUMI_", "LITELLM_"))}
    env.update(PATH=f"{cli.parent}{os.pathsep}{env.get('PATH', '')}", PULUMI_BACKEND_URL=f"file://{tmp_path / 'state'}",
               PULUMI_CONFIG_PASSPHRASE=PASSPHRASE, PULUMI_SKIP_UPDATE_CHECK="true", PULUMI_HOME=str(tmp_path / "home"))
    project = Project(folder, unique, cli, env)
    project.run("stack", "init", unique, stack=False)
    project.configure({"litellm:url": litellm.url, "litellm:user_id": f"jdoe-{unique}@example.edu"})
    project.set_secret("litellm:token", litellm.master_key)
    return project


def test_another_program_installs_the_package_and_runs_up_no_op_destroy(
    other: Project, api: LiteLLMClient, litellm: Any, unique: str
) -> None:
    jdoe = f"jdoe-{unique}@example.edu"
    try:
        other.up()
        outputs = other.outputs(secrets=True)
        # The component came from the package installed in the folder's own virtualenv, not the checkout.
        assert outputs["package_file"].startswith(f"{other.dir}/venv/lib/"), outputs["package_file"]
        row = api.user_info(jdoe)["user_info"]
        assert (row["user_email"], row["user_role"], row["max_budget"]) == (jdoe, "internal_user", 20.0)
        raw = outputs["jdoe_key"]
        assert api.key_info(hashlib.sha256(raw.encode()).hexdigest())["info"]["user_id"] == jdoe
        assert chat(litellm.url, raw) == 200

        other.up("--expect-no-changes")
    finally:
        other.run("destroy", "--yes", "--skip-preview", check=False)
    with pytest.raises(NotFound):
        api.user_info(jdoe)
    assert key_status(api, raw) == "deleted"
    assert other.resources() == []
