"""The deletion guard (providers/ledger.py): a run that would delete more than `litellm:max_deletions` users
or teams (default 10), or every one of them without `litellm:max_deletions`, stops at preview and at up
before anything is deleted. Through the stack program, the engine stand-in and the real plugin, against the
real proxy; the ledger's own Check is also driven directly for its messages."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from harness import Stack
from harness.engine import EngineError
from harness.plugin import clean_env
from providers.ledger import LedgerProvider
from support.proxy_state import user_exists


# --------------------------------------------------------------------------------- the ledger's Check
def refused(olds: dict[str, Any], news: dict[str, Any]) -> list[tuple[str, str]]:
    result = LedgerProvider().check(olds, news)
    return [(failure.property, failure.reason) for failure in result.failures]


IDS = [f"u{n:02d}@example.edu" for n in range(12)]


def test_eleven_removals_are_refused_naming_the_count_the_first_ids_and_the_way_out() -> None:
    assert refused({"user_ids": IDS, "team_ids": []}, {"user_ids": IDS[11:], "team_ids": []}) == [(
        "user_ids",
        "deletion guard: it would delete 11 users (u00@example.edu, u01@example.edu, u02@example.edu, "
        "u03@example.edu, u04@example.edu and 6 more), more than litellm:max_deletions (10). Nothing has been "
        "deleted. If that is what you want, allow it for this run: --config litellm:max_deletions=11 (pulumi saves "
        "it in Pulumi.<stack>.yaml: `pulumi config rm litellm:max_deletions` afterwards)",
    )]


def test_ten_removals_pass_and_a_given_limit_moves_the_line() -> None:
    assert refused({"user_ids": IDS}, {"user_ids": IDS[10:]}) == []
    assert refused({"user_ids": IDS}, {"user_ids": IDS[11:], "max_deletions": 11.0}) == []
    assert [p for p, _ in refused({"user_ids": IDS}, {"user_ids": IDS[3:], "max_deletions": 2.0})] == ["user_ids"]


def test_emptying_the_stack_needs_max_deletions_even_for_a_few() -> None:
    assert refused({"user_ids": IDS[:2]}, {"user_ids": []}) == [(
        "user_ids",
        "deletion guard: it would delete every user of the stack (2: u00@example.edu, u01@example.edu), and an "
        "empty list deletes all only with litellm:max_deletions given. Nothing has been deleted. If that is what you "
        "want, allow it for this run: --config litellm:max_deletions=2 (pulumi saves it in Pulumi.<stack>.yaml: "
        "`pulumi config rm litellm:max_deletions` afterwards); or remove the whole stack with `pulumi destroy`",
    )]
    assert refused({"user_ids": IDS[:2]}, {"user_ids": [], "max_deletions": 2.0}) == []


def test_teams_are_guarded_the_same_way() -> None:
    teams = [f"team-{n:02d}" for n in range(11)]
    assert [p for p, _ in refused({"team_ids": teams}, {"team_ids": []})] == ["team_ids"]
    assert refused({"team_ids": teams, "user_ids": IDS}, {"team_ids": teams[10:], "user_ids": IDS}) == []
    reason = refused({"team_ids": teams + ["x"]}, {"team_ids": ["x"]})[0][1]
    assert reason.startswith("deletion guard: it would delete 11 teams (team-00, team-01, team-02, team-03, team-04 "
                             "and 6 more), more than litellm:max_deletions (10)."), reason


def test_a_first_deployment_has_nothing_to_lose() -> None:
    assert refused({}, {"user_ids": [], "team_ids": []}) == []


# ------------------------------------------------------------ the program, the engine, the real proxy
def write_roster(path: Path, user_ids: list[str]) -> None:
    path.write_text("user_id,user_email,user_role,models,user_models\n" + "".join(
        f"{uid},{uid},internal_user,fake-gpt-4o,fake-gpt-4o\n" for uid in user_ids))


def stack_of(tmp_path: Path, url: str, token: str, roster: Path) -> Stack:
    return Stack(tmp_path / "state", {"litellm:url": url, "litellm:token": token, "litellm:users_file": str(roster)},
                 plugin_env=clean_env())


def refusal_of(run: Any) -> str:
    """The error of a refused run, which deleted nothing and registered no user, key or team: everything
    waits for the ledger, so nothing starts before the guard has passed."""
    with pytest.raises(EngineError) as caught:
        run()
    assert [s for s in caught.value.result.steps if s.op.startswith("delete")] == []
    registered = {r.type for r in caught.value.result.registrations}
    assert registered <= {"pulumi:pulumi:Stack", "pulumi-python:dynamic/litellm:Ledger"}, registered
    return str(caught.value)


def test_removing_11_users_is_refused_at_preview_and_up_until_max_deletions_allows_it(
        tmp_path, litellm, api, tap, unique, users) -> None:
    ids = [f"{unique}-{n:02d}@example.edu" for n in range(13)]
    users.extend(ids)
    roster = tmp_path / "users.csv"
    write_roster(roster, ids)
    stack = stack_of(tmp_path, tap.url, litellm.master_key, roster)
    stack.up()
    assert all(user_exists(api, uid) for uid in ids)

    # A no-op preview: the ledger knows the last deployment from the state, not from the proxy.
    tap.reset()
    stack.preview()
    assert tap.count() == 0

    write_roster(roster, ids[11:])  # 11 users gone from the roster
    for run in (stack.preview, stack.up):
        message = refusal_of(run)
        assert (f"deletion guard: it would delete 11 users ({ids[0]}, {ids[1]}, {ids[2]}, {ids[3]}, {ids[4]} and 6 "
                "more), more than litellm:max_deletions (10). Nothing has been deleted.") in message, message
        assert "--config litellm:max_deletions=11" in message, message
    assert tap.count(writes=True) == 0
    assert all(user_exists(api, uid) for uid in ids)

    stack.config["litellm:max_deletions"] = "11"  # as `--config litellm:max_deletions=11` sets it
    result = stack.up()
    assert sorted(k for k, op in result.ops().items() if op == "delete" and k.startswith("User/")) == sorted(
        f"User/{uid}" for uid in ids[:11])
    assert [uid for uid in ids if user_exists(api, uid)] == ids[11:]


def test_ten_removals_pass_by_default_and_emptying_the_stack_does_not(tmp_path, litellm, api, unique, users) -> None:
    ids = [f"{unique}-{n:02d}@example.edu" for n in range(12)]
    users.extend(ids)
    roster = tmp_path / "users.csv"
    write_roster(roster, ids)
    stack = stack_of(tmp_path, litellm.url, litellm.master_key, roster)
    stack.up()

    write_roster(roster, ids[10:])
    stack.preview()
    stack.up()
    assert [uid for uid in ids if user_exists(api, uid)] == ids[10:]

    # An empty roster file, a missing one, and no users at all: errors, nothing deleted.
    roster.write_text("user_id,user_email\n")
    assert f"litellm:users_file: {roster} has no entries; an empty roster would delete every user" in refusal_of(stack.up)
    roster.unlink()
    assert f"litellm:users_file: {roster} does not exist" in refusal_of(stack.up)
    del stack.config["litellm:users_file"]
    for run in (stack.preview, stack.up):
        assert "deletion guard: it would delete every user of the stack (2: " in refusal_of(run)
    assert [uid for uid in ids if user_exists(api, uid)] == ids[10:]

    stack.config["litellm:max_deletions"] = "2"  # removing all of them takes an explicit limit
    stack.up()
    assert [uid for uid in ids if user_exists(api, uid)] == []


def test_removing_teams_beyond_the_limit_is_refused(tmp_path, litellm, api, unique) -> None:
    teams = [{"team_id": f"{unique}-{n}", "models": ["fake-gpt-4o"]} for n in range(3)]
    stack = Stack(tmp_path / "state", {"litellm:url": litellm.url, "litellm:token": litellm.master_key,
                                       "litellm:teams": teams, "litellm:max_deletions": "1"}, plugin_env=clean_env())
    try:
        stack.up()
        stack.config["litellm:teams"] = teams[2:]
        message = refusal_of(stack.up)
        assert (f"deletion guard: it would delete 2 teams ({unique}-0, {unique}-1), more than litellm:max_deletions "
                "(1). Nothing has been deleted.") in message, message
        assert [t["team_id"] for t in teams if api.team_info(t["team_id"])] == [t["team_id"] for t in teams]
    finally:
        stack.config["litellm:max_deletions"] = "3"
        stack.destroy()
