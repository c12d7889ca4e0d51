"""`scripts/check [--stack NAME]` validates a stack's config offline (no pulumi CLI, no proxy): exit 0 for a
good config, 1 with every error of a broken one, in the program's own words."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from support.project_copy import copy_project

COPIED = ("__main__.py", "components", "providers", "litellm_pulumi_access.py", "scripts", "Pulumi.yaml",
          "Pulumi.dev.yaml")

BROKEN = """\
config:
  litellm:url: http://127.0.0.1:4000/v1
  litellm:user: []
  litellm:users:
    - user_id: ann
      user_email: ann@example.org
      user_role: internal_user
      max_budgt: 5
    - user_id: bob
      user_email: bob@example
      user_role: internal_user
    - user_id: dan
      user_email: dan@example.org
      user_role: internal_user
    - user_id: carol
      user_email: carol@example.org
      user_role: internal_user
      max_budget: -5
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the project (no proxy, no pulumi CLI on PATH), sharing the set-up .venv."""
    return copy_project(tmp_path, COPIED)


def check(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ["PATH"], "HOME": str(project)}  # no LITELLM_* variables
    return subprocess.run(["bash", "scripts/check", *args], cwd=project, env=env, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=300)


def test_the_shipped_dev_stack_is_good(project: Path) -> None:
    done = check(project)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "Pulumi.dev.yaml: ok\n"


def test_a_broken_stack_gets_every_error_naming_its_entry(project: Path) -> None:
    (project / "Pulumi.broken.yaml").write_text(BROKEN)
    done = check(project, "--stack", "broken")
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.splitlines() == [
        "Pulumi.broken.yaml: 5 error(s)",
        "  unknown config key 'litellm:user'; did you mean 'litellm:users'?",
        "  litellm:url must be the proxy's root URL, http(s)://host[:port] with no path, query or credentials; "
        "got 'http://127.0.0.1:4000/v1'",
        "  litellm:users[0] (user_id 'ann'): unknown input 'max_budgt'; did you mean 'max_budget'?",
        "  litellm:users[1] (user_id 'bob'): user_email must be an email address such as 'name@example.org'; "
        "got 'bob@example'",
        "  litellm:users[3] (user_id 'carol'): max_budget must be a number >= 0; got -5",
    ]


def test_two_memberships_with_one_resource_name_are_caught_located(project: Path) -> None:
    """`<name>/<team_id>` names memberships: only a '/' in a name or team id can make two of them collide."""
    (project / "Pulumi.slash.yaml").write_text("""\
config:
  litellm:url: http://127.0.0.1:4000
  litellm:users:
    - {user_id: a/b, user_email: ab@example.org, user_role: internal_user, teams: [c]}
    - {user_id: a, user_email: a@example.org, user_role: internal_user, teams: [b/c]}
    - {user_id: p-q, user_email: pq@example.org, user_role: internal_user, teams: [r]}
    - {user_id: p, user_email: p@example.org, user_role: internal_user, teams: [q-r]}
""")
    done = check(project, "--stack", "slash")
    assert done.returncode == 1
    # p-q in r and p in q-r, both 'p-q-r' under the old '<name>-<team_id>' names, are 'p-q/r' and 'p/q-r' now.
    assert done.stderr.splitlines() == [
        "Pulumi.slash.yaml: 1 error(s)",
        "  litellm:users[1] (user_id 'a'): its membership of team 'b/c' would be named 'a/b/c', as "
        "litellm:users[0]'s membership of team 'c'; resource names must be unique in the stack: give one of the "
        "two users a `name` without '/'",
    ]


def test_an_unknown_stack_names_the_ones_there(project: Path) -> None:
    done = check(project, "--stack", "prod")
    assert done.returncode == 1
    assert "Pulumi.prod.yaml not found; stacks here: dev" in done.stderr


def test_a_file_that_is_not_yaml_says_so(project: Path) -> None:
    (project / "Pulumi.bad.yaml").write_text("config: [unclosed\n")
    done = check(project, "--stack", "bad")
    assert done.returncode == 1
    assert "Pulumi.bad.yaml is not valid YAML" in done.stderr
