"""`scripts/check [--stack NAME]` validates a stack's config offline (no pulumi CLI, no proxy): exit 0 for a
good config, 1 with every error of a broken one, in the program's own words."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml  # installed with pulumi

from support.project_copy import PROGRAM, copy_project

COPIED = (*PROGRAM, "rosters", "scripts", "Pulumi.yaml", "Pulumi.dev.yaml")

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
        # none of them sets `models`: a warning, which never changes the exit status
        "Pulumi.broken.yaml: warning: models: the key of 4 user(s) is left at the module's placeholder "
        "['fake_model'], which no model of the proxy answers to, so it can call no model: 'ann', 'bob', 'dan', "
        "'carol'; set models to the models the key may call",
    ]


def test_two_memberships_with_one_resource_name_are_caught_located(project: Path) -> None:
    """`<name>/<team_id>` names memberships: only a '/' in a name or team id can make two of them collide."""
    (project / "Pulumi.slash.yaml").write_text("""\
config:
  litellm:url: http://127.0.0.1:4000
  litellm:users:
    - {user_id: a/b, user_email: ab@example.org, user_role: internal_user, models: [gpt-4o], teams: [c]}
    - {user_id: a, user_email: a@example.org, user_role: internal_user, models: [gpt-4o], teams: [b/c]}
    - {user_id: p-q, user_email: pq@example.org, user_role: internal_user, models: [gpt-4o], teams: [r]}
    - {user_id: p, user_email: p@example.org, user_role: internal_user, models: [gpt-4o], teams: [q-r]}
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


# ---------------------------------------------------------------------------------- roster files
def test_roster_files_are_checked_too_each_error_by_file_and_line(project: Path) -> None:
    (project / "rosters" / "cohort.csv").write_text(
        "user_id,user_email,max_budget,teams\njdoe@example.edu,jdoe@example.edu,-5,physics\n"
        "asmith@example.edu,jdoe@example.edu,,\n")
    (project / "Pulumi.uni.yaml").write_text(
        "config:\n  litellm:url: http://127.0.0.1:4000\n  litellm:users_file: rosters/cohort.csv\n"
        "  litellm:teams_file: rosters/teams.csv\n  litellm:user_defaults: {user_role: internal_user, models: [gpt-4o]}\n")
    done = check(project, "--stack", "uni")
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        "Pulumi.uni.yaml: 3 error(s)",
        "  litellm:teams_file: rosters/teams.csv does not exist (the path is relative to the project folder)",
        "  rosters/cohort.csv:2 (user_id 'jdoe@example.edu'): max_budget must be a number >= 0; got -5",
        "  rosters/cohort.csv:3 (user_id 'asmith@example.edu'): user_email 'jdoe@example.edu' is already used by "
        "rosters/cohort.csv:2; each user_email must be unique in the stack (LiteLLM rejects duplicates at apply time)",
    ]


def test_the_example_roster_stack_is_good(project: Path) -> None:
    (project / "Pulumi.uni.yaml").write_text(
        "config:\n  litellm:url: http://127.0.0.1:4000\n  litellm:users_file: rosters/example-users.csv\n"
        "  litellm:teams_file: rosters/example-teams.csv\n"
        "  litellm:user_defaults:\n    user_role: internal_user\n    max_budget: 10\n"
        "    models: [gpt-4o-mini]\n    user_models: [gpt-4o-mini]\n")  # fills asmith's empty cells
    done = check(project, "--stack", "uni")
    assert (done.returncode, done.stdout, done.stderr) == (0, "Pulumi.uni.yaml: ok\n", "")


def inline_users(count: int) -> str:
    return "".join(f"    - {{user_id: u{n:04d}@example.edu, user_email: u{n:04d}@example.edu, user_role: internal_user,"
                   f" max_budget: 10, models: [gpt-4o, gpt-4o-mini], user_models: [gpt-4o, gpt-4o-mini]}}\n"
                   for n in range(count))


def test_an_inline_list_too_large_for_the_environment_is_an_error_naming_users_file(project: Path) -> None:
    """The engine hands the program its config in one environment variable; past Linux's cap the program
    cannot even start, so the check says it first."""
    (project / "Pulumi.big.yaml").write_text("config:\n  litellm:url: http://127.0.0.1:4000\n  litellm:users:\n"
                                             + inline_users(700))
    # What the language host would pass: a JSON object of strings, the list as JSON text; Linux refuses it.
    users = yaml.safe_load(inline_users(700).replace("    - ", "- "))
    value = json.dumps({"litellm:url": "http://127.0.0.1:4000", "litellm:users": json.dumps(users, separators=(",", ":"))},
                       separators=(",", ":"))
    assert len(value) == 145659
    with pytest.raises(OSError, match="Argument list too long"):
        subprocess.run(["true"], env={"PULUMI_CONFIG": value})
    done = check(project, "--stack", "big")
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        "Pulumi.big.yaml: 1 error(s)",
        "  the stack config is 145,659 bytes in PULUMI_CONFIG, the environment variable the engine starts the program "
        "with; Linux allows 131,057. Move the users to a roster file: litellm:users_file (docs/rosters.md)",
    ]


def test_an_inline_list_near_the_cap_gets_a_warning(project: Path) -> None:
    (project / "Pulumi.big.yaml").write_text("config:\n  litellm:url: http://127.0.0.1:4000\n  litellm:users:\n"
                                             + inline_users(480))
    done = check(project, "--stack", "big")
    assert (done.returncode, done.stdout) == (0, "Pulumi.big.yaml: ok\n")
    assert done.stderr == (
        "Pulumi.big.yaml: warning: the stack config is 99,899 bytes in PULUMI_CONFIG, the environment variable the engine starts the "
        "program with; Linux allows 131,057. Move the users to a roster file: litellm:users_file (docs/rosters.md)\n")


RISKY = """\
config:
  litellm:url: http://127.0.0.1:4000
  litellm:users:
    - user_id: jdoe@example.edu
      user_email: jdoe@example.edu
      user_role: admin
      models: [fake-gpt-4o]
    - user_id: ann
      name: ann-admin
      user_email: ann@example.org
      user_role: admin
    - user_id: bob
      user_email: bob@example.org
      user_role: proxy_admin
      models: [fake-gpt-4o, fake_model]
    - user_id: cid
      user_email: cid@example.org
      user_role: internal_user
      models: [fake-gpt-4o]
"""


def test_a_legacy_admin_and_keys_at_the_placeholder_models_warn_naming_the_users(project: Path) -> None:
    """Valid, so exit 0, but `admin` is proxy_admin (full administration of the proxy), and a key left at
    `fake_model` can call nothing: each warns once, naming the users (by resource name)."""
    (project / "Pulumi.risky.yaml").write_text(RISKY)
    done = check(project, "--stack", "risky")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "Pulumi.risky.yaml: ok\n"
    assert done.stderr.splitlines() == [
        "Pulumi.risky.yaml: warning: user_role 'admin' (the module's legacy name) is proxy_admin, full "
        "administration of the proxy (every user, key and team, and the proxy's settings), for 2 user(s): "
        "'jdoe@example.edu', 'ann-admin'; write user_role: proxy_admin if that is meant, else a lesser role",
        "Pulumi.risky.yaml: warning: models: the key of 2 user(s) is left at the module's placeholder "
        "['fake_model'], which no model of the proxy answers to, so it can call no model: 'ann-admin', 'bob'; "
        "set models to the models the key may call",
    ]


SWITCHES = """\
config:
  litellm:url: http://127.0.0.1:4000
  litellm:{traces}: true
  litellm:fast_output_wait: {wait}
  litellm:users:
    - {{user_id: ann, user_email: ann@example.org, user_role: internal_user, models: [gpt-4o]}}
"""


def test_the_sdk_switches_are_config_keys_checked_like_the_others(project: Path) -> None:
    (project / "Pulumi.good.yaml").write_text(SWITCHES.format(traces="stack_traces", wait="false"))
    assert check(project, "--stack", "good").stdout == "Pulumi.good.yaml: ok\n"
    (project / "Pulumi.bad.yaml").write_text(SWITCHES.format(traces="stack_trace", wait="sometimes"))
    done = check(project, "--stack", "bad")
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        "Pulumi.bad.yaml: 2 error(s)",
        "  unknown config key 'litellm:stack_trace'; did you mean 'litellm:stack_traces'?",
        "  litellm:fast_output_wait must be true or false; got 'sometimes'",
    ]
