"""docs/preview-examples.md is what scripts/preview_examples.py produces now, from the providers' real diffs."""

from __future__ import annotations

import copy

import pytest

from scripts import preview_examples as pe

# One worker runs the module: the program runs each config once (scripts/preview_examples.program).
pytestmark = pytest.mark.xdist_group("preview_examples")


def test_the_preview_examples_doc_is_up_to_date():
    assert pe.DOC.read_text() == pe.render(), (
        "docs/preview-examples.md is out of date: run .venv/bin/python scripts/preview_examples.py"
    )


def test_the_examples_come_from_the_providers_diff():
    base = pe.dev_users()
    before = pe.program(base)
    users = copy.deepcopy(base)
    users[0]["max_budget"] = 25
    budget = pe.plan(before, pe.program(users))
    changed = {urn: changes for urn, (op, changes) in budget.items() if op != "same"}
    assert {before[urn].name for urn in changed} == {users[0]["user_id"]}
    assert all(op == "update" and c.diffs == ["max_budget"] and c.replaces == [] for op, c in
               (budget[urn] for urn in changed))

    rotated = pe.plan(before, pe.program(base, token=pe.NEW_TOKEN))
    custom = [urn for urn, r in before.items() if r.custom]  # 3 users, 3 keys, the team, 2 memberships
    assert len(custom) == 9 and all(rotated[urn][0] == "update" and rotated[urn][1].diffs == ["token"] for urn in custom)


def test_an_unchanged_program_previews_no_change():
    before = pe.program(pe.dev_users())
    steps = pe.plan(before, pe.program(pe.dev_users()))
    assert {op for op, _ in steps.values()} == {"same"}
    assert all(changes is None or (changes.diffs == [] and changes.replaces == []) for _, changes in steps.values())


def test_the_team_example_updates_only_the_changed_team_fields_and_deletes_one_membership():
    before = pe.program(pe.dev_users())
    teams = copy.deepcopy(pe.dev_teams())
    teams[0].update(max_budget=250, models=["fake-gpt-4o"])
    users = copy.deepcopy(pe.dev_users())
    users[1]["teams"] = []
    steps = pe.plan(before, pe.program(users, teams=teams))
    changed = {(before[urn].type.split(":")[-1], before[urn].name): (op, changes) for urn, (op, changes) in steps.items()
               if op != "same"}
    assert set(changed) == {("Team", "dev-platform"), ("TeamMember", "dev-bob/dev-platform")}
    op, changes = changed[("Team", "dev-platform")]
    assert op == "update" and changes.diffs == ["models", "max_budget"] and changes.replaces == []
    assert changed[("TeamMember", "dev-bob/dev-platform")][0] == "delete"
