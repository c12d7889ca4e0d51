"""Roster files (`litellm:users_file`, `litellm:teams_file`) and `litellm:user_defaults`, read by the stack
program's own `read_config`: CSV cells converted by the field that takes them, every check of inline entries
applied to file entries, each error located by file and line. Offline: no proxy, no engine."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import roster
from support.stack import program_namespace

ROOT = Path(__file__).resolve().parents[1]
URL = "http://127.0.0.1:9"


@pytest.fixture(scope="module")
def program() -> dict[str, Any]:
    return program_namespace()


def errors_of(program: dict[str, Any], root: Path, **config: Any) -> list[str]:
    values = {f"litellm:{name}": value for name, value in config.items()}
    return program["stack_errors"](URL, program["read_config"](values, root))


def users_of(program: dict[str, Any], root: Path, **config: Any) -> list[tuple[str, dict[str, Any]]]:
    values = {f"litellm:{name}": value for name, value in config.items()}
    stack = program["read_config"](values, root)
    assert stack.errors == []
    return [(entry.place, entry.values) for entry in stack.users]


# ------------------------------------------------------------------------------------------------- CSV
def test_a_csv_row_is_an_entry_its_cells_converted_by_their_fields(program, tmp_path: Path) -> None:
    (tmp_path / "users.csv").write_text(
        "user_id,user_email,max_budget,tpm_limit,auto_create_key,models,teams,metadata,user_alias\n"
        'jdoe@example.edu,jdoe@example.edu,12.5,2000,TRUE,gpt-4o; gpt-4o-mini,physics,"{""dept"": ""physics""}",007\n'
        "mlee@example.edu,mlee@example.edu,,,false,,,,\n")
    assert users_of(program, tmp_path, users_file="users.csv") == [
        ("users.csv:2", {"user_id": "jdoe@example.edu", "user_email": "jdoe@example.edu", "max_budget": 12.5,
                         "tpm_limit": 2000, "auto_create_key": True, "models": ["gpt-4o", "gpt-4o-mini"],
                         "teams": ["physics"], "metadata": {"dept": "physics"}, "user_alias": "007"}),
        ("users.csv:3", {"user_id": "mlee@example.edu", "user_email": "mlee@example.edu", "auto_create_key": False}),
    ]


def test_every_input_has_its_cell_conversion() -> None:
    """A new number, boolean, list or map input must be added to roster.CELL, or CSV would hand it text."""
    from components.user_with_key import INPUTS

    kinds = {name: roster.CELL.get(field.parse, str).__name__ for name, field in INPUTS.items()}
    assert kinds == {
        "url": "str", "token": "str", "user_id": "str", "user_email": "str", "auto_create_key": "_boolean",
        "budget_duration": "str", "duration": "str", "key_alias": "str", "max_budget": "_number",
        "max_parallel_requests": "_number", "metadata": "_json_cell", "model_max_budget": "_json_cell",
        "models": "_list", "rpm_limit": "_number", "spend": "_number", "team_id": "str", "tpm_limit": "_number",
        "user_alias": "str", "user_max_budget": "_number", "user_models": "_list", "user_role": "str",
        "adopt_existing": "_boolean", "rotate_after": "str", "rotation_trigger": "str", "rotation_grace": "str",
        "teams": "_list", "blocked": "_boolean",
    }


def test_a_bad_cell_is_located_by_file_and_line_in_the_fields_words(program, tmp_path: Path) -> None:
    rows = [f"u{n}@example.edu,u{n}@example.edu,{n}" for n in range(15)]
    rows[2] = "jdoe@example.edu,jdoe@example.edu,-5"  # line 4
    rows[8] = "bad@example.edu,bad@example.edu,lots"  # line 10
    (tmp_path / "users.csv").write_text("user_id,user_email,max_budget\n" + "\n".join(rows) + "\n")
    assert errors_of(program, tmp_path, users_file="users.csv") == [
        "users.csv:4 (user_id 'jdoe@example.edu'): max_budget must be a number >= 0; got -5",
        "users.csv:10 (user_id 'bad@example.edu'): max_budget must be a number >= 0; got 'lots'",
    ]


def test_a_quoted_cell_over_two_lines_keeps_the_next_rows_lines(program, tmp_path: Path) -> None:
    (tmp_path / "users.csv").write_text('user_id,user_email,user_alias\nann,ann@example.org,"Ann\nSmith"\n'
                                        "bob,bob@example.org,Bob\n\ncid,cid@example.org,\n")
    assert [place for place, _ in users_of(program, tmp_path, users_file="users.csv")] == [
        "users.csv:2", "users.csv:4", "users.csv:6"]


def test_a_bad_header_is_one_message_per_column_not_one_per_row(program, tmp_path: Path) -> None:
    (tmp_path / "users.csv").write_text("user_id,email,max_budgt\n" + "a,a@example.org,1\n" * 50)
    assert errors_of(program, tmp_path, users_file="users.csv") == [
        "users.csv:1: column 2: unknown input 'email'; accepted: adopt_existing, auto_create_key, blocked, "
        "budget_duration, "
        "duration, key_alias, max_budget, max_parallel_requests, metadata, model_max_budget, models, name, "
        "rotate_after, rotation_grace, rotation_trigger, rpm_limit, spend, team_id, teams, tpm_limit, user_alias, "
        "user_email, user_id, user_max_budget, user_models, user_role",
        "users.csv:1: column 3: unknown input 'max_budgt'; did you mean 'max_budget'?",
        "users.csv:1: no 'user_email' column: every entry needs one",
    ]


def test_a_row_with_more_cells_than_columns(program, tmp_path: Path) -> None:
    (tmp_path / "users.csv").write_text("user_id,user_email\nann,ann@example.org,extra\n")
    assert errors_of(program, tmp_path, users_file="users.csv") == ["users.csv:2: 3 cells for 2 columns"]


# ------------------------------------------------------------------------------------ YAML and JSON
def test_yaml_and_json_rosters_locate_each_entry_by_its_first_line(program, tmp_path: Path) -> None:
    (tmp_path / "users.yaml").write_text("# cohort 2026\n- user_id: ann\n  user_email: ann@example.org\n\n"
                                         "- user_id: bob\n  user_email: bob@example.org\n  max_budget: -1\n")
    (tmp_path / "users.json").write_text('[\n  {"user_id": "cid", "user_email": "cid@example.org"},\n'
                                         '  {"user_id": "dan",\n   "user_email": "dan@example", "max_budget": 3}\n]\n')
    assert errors_of(program, tmp_path, users_file="users.yaml") == [
        "users.yaml:5 (user_id 'bob'): max_budget must be a number >= 0; got -1"]
    assert errors_of(program, tmp_path, users_file="users.json") == [
        "users.json:3 (user_id 'dan'): user_email must be an email address such as 'name@example.org'; "
        "got 'dan@example'"]
    assert users_of(program, tmp_path, users_file="users.json")[0] == (
        "users.json:2", {"user_id": "cid", "user_email": "cid@example.org"})


@pytest.mark.parametrize("name, text, expected", [
    ("users.yaml", "user_id: ann\n", "litellm:users_file: users.yaml must hold a list of entries (as litellm:users does)"),
    ("users.yaml", "- [unclosed\n", "litellm:users_file: users.yaml is not valid YAML: "),
    ("users.json", '{"user_id": "ann"}', "litellm:users_file: users.json must hold a JSON array of entries "
                                         "(as litellm:users does)"),
    ("users.json", '[{"user_id": "ann"} {"user_id": "bob"}]', "litellm:users_file: users.json is not valid JSON: "),
    ("users.txt", "ann\n", "litellm:users_file: users.txt must end in .csv, .yaml, .yml, .json"),
])
def test_a_file_that_is_not_a_roster_says_why(program, tmp_path: Path, name: str, text: str, expected: str) -> None:
    (tmp_path / name).write_text(text)
    errors = errors_of(program, tmp_path, users_file=name)
    assert len(errors) == 1 and errors[0].startswith(expected), errors


# ------------------------------------------------------------------- missing, unreadable or empty
def test_a_missing_roster_is_an_error_never_an_empty_list(program, tmp_path: Path) -> None:
    assert errors_of(program, tmp_path, users_file="rosters/users.csv") == [
        "litellm:users_file: rosters/users.csv does not exist (the path is relative to the project folder)"]


def test_an_unreadable_roster_is_an_error(program, tmp_path: Path) -> None:
    (tmp_path / "users.csv").write_bytes(b"user_id,user_email\n\xff\xfe,x\n")
    assert errors_of(program, tmp_path, users_file="users.csv") == [
        "litellm:users_file: users.csv cannot be read: UnicodeDecodeError: 'utf-8' codec can't decode byte 0xff "
        "in position 19: invalid start byte"]


@pytest.mark.parametrize("name, text", [("users.csv", "user_id,user_email\n"), ("users.csv", ""),
                                        ("users.yaml", "[]\n"), ("users.json", " [ ] ")])
def test_an_empty_roster_is_an_error_unless_max_deletions_is_given(program, tmp_path: Path, name: str,
                                                                    text: str) -> None:
    (tmp_path / name).write_text(text)
    assert errors_of(program, tmp_path, users_file=name) == [
        f"litellm:users_file: {name} has no entries; an empty roster would delete every user of the stack. "
        "To remove them all, run `pulumi destroy`, or give litellm:max_deletions for this run"]
    assert errors_of(program, tmp_path, users_file=name, max_deletions="25") == []


def test_an_empty_teams_roster_is_an_error_too(program, tmp_path: Path) -> None:
    (tmp_path / "teams.csv").write_text("team_id,models\n")
    assert errors_of(program, tmp_path, teams_file="teams.csv") == [
        "litellm:teams_file: teams.csv has no entries; an empty roster would delete every team of the stack. "
        "To remove them all, run `pulumi destroy`, or give litellm:max_deletions for this run"]


@pytest.mark.parametrize("value", ["-1", "ten", True, 2.5])
def test_max_deletions_must_be_a_whole_number(program, value: Any) -> None:
    assert errors_of(program, ROOT, max_deletions=value) == [
        f"litellm:max_deletions must be a whole number >= 0; got {value!r}"]


# ----------------------------------------------------------------------- inline and file together
def test_inline_and_file_users_are_one_list_checked_for_duplicates(program, tmp_path: Path) -> None:
    (tmp_path / "users.csv").write_text("user_id,user_email,key_alias\nbob,bob@example.org,\n"
                                        "cid,ANN@example.org,\ndan,dan@example.org,bob\n")
    inline = [{"user_id": "ann", "user_email": "ann@example.org"}, {"user_id": "bob", "user_email": "b@example.org"}]
    assert errors_of(program, tmp_path, users=inline, users_file="users.csv") == [
        "users.csv:2 (user_id 'bob'): user_id 'bob' is already used by litellm:users[1]; each user_id must be "
        "unique in the stack (LiteLLM rejects duplicates at apply time)",
        "users.csv:3 (user_id 'cid'): user_email 'ann@example.org' is already used by litellm:users[0]; each "
        "user_email must be unique in the stack (LiteLLM rejects duplicates at apply time)",
        "users.csv:4 (user_id 'dan'): key_alias 'bob' is already used by litellm:users[1]; each key_alias must be "
        "unique in the stack (LiteLLM rejects duplicates at apply time)",
    ]


def test_a_key_in_a_team_of_a_teams_roster_is_checked_and_located(program, tmp_path: Path) -> None:
    (tmp_path / "teams.yaml").write_text("- team_id: physics\n  models: [gpt-4o]\n  tpm_limit: 1000\n")
    (tmp_path / "users.csv").write_text("user_id,user_email,team_id,teams,tpm_limit\n"
                                        "ann,ann@example.org,physics,physics,500\nbob,bob@example.org,physics,,\n")
    assert errors_of(program, tmp_path, users_file="users.csv", teams_file="teams.yaml") == [
        "users.csv:3 (user_id 'bob'): the key's team_id 'physics' is a team of this stack the user is not a member "
        "of; add 'physics' to the user's teams (LiteLLM refuses to put a key in a team its user is not in)",
        "users.csv:3 (user_id 'bob'): the key's tpm_limit 100000 is above its team 'physics''s tpm_limit 1000; set "
        "the user's tpm_limit to at most 1000 (LiteLLM refuses a key above its team's limits)",
    ]


# ------------------------------------------------------------------------------------- user_defaults
def test_user_defaults_go_under_every_entry_and_an_entrys_own_value_wins(program, tmp_path: Path) -> None:
    (tmp_path / "users.csv").write_text("user_id,user_email,max_budget\nann,ann@example.org,\nbob,bob@example.org,50\n")
    defaults = {"max_budget": 10, "models": ["gpt-4o"], "duration": "90d"}
    inline = [{"user_id": "cid", "user_email": "cid@example.org", "duration": None}]
    assert users_of(program, tmp_path, users=inline, users_file="users.csv", user_defaults=defaults) == [
        ("litellm:users[0]", {"user_id": "cid", "user_email": "cid@example.org", "duration": None, "max_budget": 10,
                              "models": ["gpt-4o"]}),
        ("users.csv:2", {"user_id": "ann", "user_email": "ann@example.org", "max_budget": 10, "models": ["gpt-4o"],
                         "duration": "90d"}),
        ("users.csv:3", {"user_id": "bob", "user_email": "bob@example.org", "max_budget": 50, "models": ["gpt-4o"],
                         "duration": "90d"}),
    ]


def test_bad_user_defaults_are_reported_once_not_once_per_user(program, tmp_path: Path) -> None:
    (tmp_path / "users.csv").write_text("user_id,user_email\n" + "".join(f"u{n},u{n}@example.org\n" for n in range(20)))
    defaults = {"user_id": "x", "key_alias": "shared", "max_budgt": 3, "tpm_limit": -1}
    assert errors_of(program, tmp_path, users_file="users.csv", user_defaults=defaults) == [
        "litellm:user_defaults: user_id is each user's own; it cannot have a default",
        "litellm:user_defaults: key_alias is each user's own; it cannot have a default",
        "litellm:user_defaults: unknown input 'max_budgt'; did you mean 'max_budget'?",
        "litellm:user_defaults: tpm_limit must be a number >= 0; got -1",
    ]


# ------------------------------------------------------------------------------ the example roster
def test_the_example_rosters_are_good_and_use_eppn_ids(program) -> None:
    config = {"users_file": "rosters/example-users.csv", "teams_file": "rosters/example-teams.csv",
              "user_defaults": {"user_role": "internal_user", "models": ["gpt-4o-mini"],
                                "user_models": ["gpt-4o-mini"], "max_budget": 10}}
    assert errors_of(program, ROOT, **config) == []
    users = users_of(program, ROOT, **config)
    assert [values["user_id"] for _, values in users] == ["jdoe@example.edu", "asmith@example.edu", "mlee@example.edu"]
    assert users[1] == ("rosters/example-users.csv:3", {
        "user_id": "asmith@example.edu", "user_email": "asmith@example.edu", "user_alias": "Alan Smith",
        "teams": ["physics", "chemistry"], "user_role": "internal_user", "models": ["gpt-4o-mini"],
        "user_models": ["gpt-4o-mini"], "max_budget": 10})


# ------------------------------------------------------------------------------------- config size
def test_the_config_size_is_measured_as_the_engine_passes_it() -> None:
    """PULUMI_CONFIG: one JSON object of strings; lists and objects as JSON text inside it."""
    config = {"litellm:url": "http://x", "litellm:users": [{"user_id": "a"}]}
    assert roster.config_bytes(config) == len('{"litellm:url":"http://x","litellm:users":"[{\\"user_id\\":\\"a\\"}]"}')
    assert roster.ENV_CAP == 131057  # measured: exec fails with E2BIG from 131058 bytes of value on Linux


def test_the_environment_cap_is_what_linux_enforces() -> None:
    import subprocess

    subprocess.run(["true"], env={"PULUMI_CONFIG": "x" * roster.ENV_CAP}, check=True)
    with pytest.raises(OSError) as caught:
        subprocess.run(["true"], env={"PULUMI_CONFIG": "x" * (roster.ENV_CAP + 1)}, check=True)
    assert caught.value.errno == 7  # E2BIG: "Argument list too long"


def test_an_entry_costs_what_the_issue_estimates() -> None:
    """~310 bytes per inline EPPN entry: past ~420 users, PULUMI_CONFIG no longer fits in one env string."""
    entry = {"user_id": "jdoe0001@example.edu", "user_email": "jdoe0001@example.edu", "user_role": "internal_user",
             "max_budget": 10, "models": ["gpt-4o", "gpt-4o-mini"], "user_models": ["gpt-4o", "gpt-4o-mini"],
             "teams": ["physics"], "team_id": "physics", "auto_create_key": True, "budget_duration": "30d"}
    per_entry = roster.config_bytes({"k": [entry] * 2}) - roster.config_bytes({"k": [entry]})
    assert per_entry == 315
    assert (roster.ENV_CAP - roster.config_bytes({"litellm:url": "https://litellm.example.org"})) // per_entry == 415


def test_a_preview_warns_when_the_config_nears_the_environment_cap(tmp_path: Path) -> None:
    """The program sees its own PULUMI_CONFIG: from 96 KiB a preview says to move the users to a file."""
    from harness.engine import Stack

    user = {"user_id": "ann", "user_email": "ann@example.org", "user_role": "internal_user"}
    config = {"litellm:url": URL, "litellm:token": "sk-size-token", "litellm:users": [user]}
    quiet = Stack(tmp_path / "a", config).preview()
    assert [m for m in quiet.messages if "PULUMI_CONFIG" in m] == []
    loud = Stack(tmp_path / "b", {**config, "other:notes": "x" * 100_000}).preview()
    assert [m for m in loud.messages if "PULUMI_CONFIG" in m] == [
        "warning: the stack config is 100,194 bytes in PULUMI_CONFIG, the environment variable the engine starts the "
        "program with; Linux allows 131,057. Move the users to a roster file: litellm:users_file (docs/rosters.md)"]
