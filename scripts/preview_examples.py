"""Write docs/preview-examples.md: what a reviewer sees in a merge request for typical access changes.

    .venv/bin/python scripts/preview_examples.py            # rewrite the doc
    .venv/bin/python scripts/preview_examples.py --check    # exit 1 if the doc is out of date

Nothing here is typed by hand. For each change, the stack program (`__main__.py`) runs under Pulumi's mocks
before and after the change (scripts/program_inputs.py); each resource's inputs go through its provider's
real `check`, and each resource in both versions through its provider's real `diff` (a ChangeSet: `.diffs`,
`.replaces`), which is what decides create / update / replace and the properties shown. The policy example
runs the pack's real policies on the same inputs. The layout follows `pulumi preview --diff` (stack outputs
and timing lines left out); secrets show as [secret], as the CLI shows them.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "scripts")]

import program_inputs  # noqa: E402
from program_inputs import CUSTOM_TYPES, MEMBER_TYPE, TEAM_TYPE, USER_TYPE, dev_teams, dev_users  # noqa: E402
from pulumi.runtime.rpc import is_rpc_secret, unwrap_rpc_secret  # noqa: E402

DOC = ROOT / "docs" / "preview-examples.md"
STACK_URN = f"urn:pulumi:{program_inputs.STACK}::{program_inputs.PROJECT}::pulumi:pulumi:Stack::" \
            f"{program_inputs.PROJECT}-{program_inputs.STACK}"
OLD_TOKEN, NEW_TOKEN = "sk-admin-2026-10", "sk-admin-2026-11"
SECRET = "[secret]"


# ----------------------------------------------------------------- state of the program
class Resource:
    def __init__(self, registration: dict[str, Any]):
        self.urn, self.type, self.name = registration["urn"], registration["type"], registration["name"]
        self.parent = registration["parent"]
        view = program_inputs.analyzer_view(registration)
        self.secret = {k for k, v in view.items() if is_rpc_secret(v)}
        self.inputs = {k: unwrap_rpc_secret(v) for k, v in view.items()}

    @property
    def custom(self) -> bool:
        return self.type in CUSTOM_TYPES

    def provider(self):
        from providers import KeyProvider, TeamMemberProvider, TeamProvider, UserProvider

        providers = {USER_TYPE: UserProvider, TEAM_TYPE: TeamProvider, MEMBER_TYPE: TeamMemberProvider}
        return providers.get(self.type, KeyProvider)()


_RUNS: dict[str, dict[str, Resource]] = {}  # each run starts a Python process (~1 s): the same config runs once


def program(users: list[dict[str, Any]], token: str = OLD_TOKEN,
            teams: list[dict[str, Any]] | None = None) -> dict[str, Resource]:
    teams = dev_teams() if teams is None else teams
    config = json.dumps([users, token, teams], sort_keys=True)
    if config not in _RUNS:
        _RUNS[config] = {r["urn"]: Resource(r) for r in program_inputs.collect(users, token=token, teams=teams)}
    return dict(_RUNS[config])


# ----------------------------------------------------------------- rendering
def value_lines(value: Any, secret: bool, indent: str) -> list[str]:
    """A property value as the CLI prints it (strings quoted, lists and maps expanded)."""
    if secret:
        return [SECRET]
    if isinstance(value, bool):
        return ["true" if value else "false"]
    if isinstance(value, float) and value.is_integer():
        return [str(int(value))]
    if isinstance(value, str):
        return [f'"{value}"']
    if isinstance(value, list):
        if not value:
            return ["[]"]
        out = ["["]
        for i, item in enumerate(value):
            inner = value_lines(item, False, indent + "    ")
            out.append(f"{indent}    [{i}]: {inner[0]}")
            out += inner[1:]
        return out + [f"{indent}]"]
    if isinstance(value, dict):
        if not value:
            return ["{}"]
        width = max(len(k) for k in value)
        out = ["{"]
        for k in sorted(value):
            inner = value_lines(value[k], False, indent + "    ")
            out.append(f"{indent}    {k.ljust(width)}: {inner[0]}")
            out += inner[1:]
        return out + [f"{indent}}}"]
    return [str(value)]


def property_lines(props: dict[str, Any], secret: set[str], indent: str) -> list[str]:
    width = max((len(k) for k in props), default=0)
    out = []
    for name in sorted(props):
        lines = value_lines(props[name], name in secret, indent)
        out.append(f"{indent}{name.ljust(width)}: {lines[0]}")
        out += lines[1:]
    return out


def inline(value: Any, secret: bool) -> str:
    """A value on one line, for a `before => after` change (lists and maps as JSON)."""
    if not secret and isinstance(value, (list, dict)):
        return json.dumps(value, sort_keys=True)
    return value_lines(value, secret, "")[0]


def change_lines(old: Resource, new: Resource, names: list[str], indent: str) -> list[str]:
    width = max(len(n) for n in names)
    out = []
    for name in names:
        secret = name in old.secret or name in new.secret
        before = inline(old.inputs.get(name), secret) if name in old.inputs else "<unset>"
        after = inline(new.inputs.get(name), secret) if name in new.inputs else "<unset>"
        out.append(f"{indent}~ {name.ljust(width)}: {before} => {after}")
    return out


def plan(before: dict[str, Resource], after: dict[str, Resource]) -> dict[str, tuple[str, Any]]:
    """urn -> (operation, provider ChangeSet or None), from the providers' diff."""
    steps: dict[str, tuple[str, Any]] = {}
    for urn, new in after.items():
        old = before.get(urn)
        if old is None:
            steps[urn] = ("create", None)
        elif new.custom:
            provider = new.provider()  # olds as the engine gives them: the outputs, stored from the inputs
            changes = provider.diff(new.name, provider.stored(dict(old.inputs)), new.inputs)
            steps[urn] = ("replace" if changes.replaces else "update" if changes.diffs else "same", changes)
        else:
            steps[urn] = ("same", None)
    for urn in before:
        if urn not in after:
            steps[urn] = ("delete", None)
    return steps


SYMBOL = {"create": "+", "update": "~", "replace": "+-", "delete": "-", "same": " "}


def render_preview(before: dict[str, Resource], after: dict[str, Resource], policies: list[str] = ()) -> str:
    steps = plan(before, after)
    resources = {**before, **after}
    children: dict[str, list[str]] = {}
    for urn, resource in resources.items():
        children.setdefault(resource.parent, []).append(urn)

    def changed(urn: str) -> bool:
        return steps[urn][0] != "same" or any(changed(c) for c in children.get(urn, []))

    lines = [f"Previewing update ({program_inputs.STACK}):", "", "  pulumi:pulumi:Stack: (same)",
             f"    [urn={STACK_URN}]"]

    def emit(urn: str, depth: int) -> None:
        op, changes = steps[urn]
        resource = resources[urn]
        pad = "    " * depth
        lines.append(f"{pad}{SYMBOL[op]} {resource.type}: ({op})")
        lines.append(f"{pad}    [urn={urn}]")
        if op == "create" and resource.custom:
            lines.extend(property_lines(resource.inputs, resource.secret, pad + "    "))
        elif op in ("update", "replace"):
            names = sorted(set(changes.diffs) | set(changes.replaces))
            lines.extend(change_lines(before[urn], after[urn], names, pad + "  "))
            if changes.replaces:
                lines.append(f"{pad}    (replaces: {', '.join(changes.replaces)})")
        for child in sorted(children.get(urn, []), key=lambda c: (CUSTOM_TYPES.index(resources[c].type), c)):
            if changed(child):
                emit(child, depth + 1)

    for urn in sorted(children.get(STACK_URN, [])):
        if changed(urn):
            emit(urn, 1)
    if policies:
        lines += ["", *policies]
    counts: dict[str, int] = {}
    for op, _ in steps.values():
        counts[op] = counts.get(op, 0) + 1
    lines += ["", "Resources:"]
    for op, verb in (("create", "to create"), ("update", "to update"), ("replace", "to replace"),
                     ("delete", "to delete")):
        if counts.get(op):
            lines.append(f"    {SYMBOL[op]} {counts[op]} {verb}")
    lines.append(f"    {counts.get('same', 0) + 1} unchanged")  # + the stack
    return "\n".join(lines)


def policy_lines(resources: dict[str, Resource]) -> list[str]:
    """The pack's real resource policies on these inputs, in the CLI's Policies section layout."""
    from pulumi_policy import PolicyCustomTimeouts, PolicyResourceOptions, ResourceValidationArgs, ResourceValidationPolicy

    from policy import litellm_policies as lp

    options = PolicyResourceOptions(False, [], None, [], PolicyCustomTimeouts(0, 0, 0), [], None)
    found = []
    for urn in sorted(resources):
        resource = resources[urn]
        for policy in lp.POLICIES:
            if not isinstance(policy, ResourceValidationPolicy):
                continue
            args = ResourceValidationArgs(resource.type, resource.inputs, urn, resource.name, options, None, None)
            messages: list[str] = []
            policy.validate(args, lambda message, _urn=None: messages.append(message))
            for message in messages:
                found.append((policy, resource, message))
    if not found:
        return []
    lines = ["Policies:", f"    ❌ {lp.PACK_NAME}@v0.1.0 (local: policy)"]
    for policy, resource, message in found:
        lines.append(f"        - [{policy.enforcement_level.value}]  {policy.name}  ({resource.type}: {resource.name})")
        lines.append(f"          {policy.description}")
        lines.append(f"          {message}")
    return lines


# ----------------------------------------------------------------- the examples
def examples() -> list[tuple[str, str, str]]:
    base = dev_users()
    carol = {"user_id": "dev-carol", "user_email": "carol@example.org", "max_budget": 20, "duration": "90d",
             "models": ["fake-gpt-4o"], "user_models": ["fake-gpt-4o"]}
    before = program(base)

    added = program(base + [carol])
    budget_users = copy.deepcopy(base)
    next(u for u in budget_users if u["user_id"] == "dev-alice")["max_budget"] = 25
    budget = program(budget_users)
    rotated = program(base, token=NEW_TOKEN)
    erin = {"user_id": "dev-erin", "user_email": "erin@example.org", "duration": None,
            "models": ["fake-gpt-4o"], "user_models": ["fake-gpt-4o"]}
    unsafe = program(base + [erin])
    new_only = {urn: r for urn, r in unsafe.items() if urn not in before}
    team_teams = copy.deepcopy(dev_teams())
    team_teams[0].update(max_budget=250, models=["fake-gpt-4o"])
    team_users = copy.deepcopy(base)
    next(u for u in team_users if u["user_id"] == "dev-bob")["teams"] = []
    team_change = program(team_users, teams=team_teams)
    blocked_users = copy.deepcopy(base)
    next(u for u in blocked_users if u["user_id"] == "dev-bob")["blocked"] = True
    blocked = program(blocked_users)

    return [
        ("An added user",
         "A merge request adds `dev-carol` to `litellm:users` in Pulumi.dev.yaml. The new UserWithKey, its User "
         "and its Key are created; the properties shown are the inputs after the providers' `check` (defaults "
         "filled in: role, alias, limits).",
         render_preview(before, added)),
        ("A changed budget",
         "A merge request raises `dev-alice`'s `max_budget` from 10 to 25. The module uses it for the user (its "
         "`user_max_budget` is unset) and for the key, so both update in place: the providers' `diff` names "
         "`max_budget` only, with no replacement.",
         render_preview(before, budget)),
        ("A rotated admin token",
         f"The proxy's admin token is rotated: `litellm:token` (or LITELLM_MASTER_KEY in CI) changes from one "
         "secret to another. Every User, Key, Team and TeamMember records the token it was managed with, so each shows an "
         "update of `token` alone; the values stay hidden, and applying it sends nothing to the proxy (the "
         "providers' update skips credential-only changes) but saves the new token for later reads and deletes.",
         render_preview(before, rotated)),
        ("A team change and a membership removed",
         "A merge request raises team `dev-platform`'s `max_budget` from 100 to 250, narrows its models to "
         "`fake-gpt-4o`, and takes `dev-bob` out of the team (his `teams` list loses it). The Team updates in "
         "place with only those two fields; bob's TeamMember is deleted (/team/member_delete), and nothing else "
         "changes.",
         render_preview(before, team_change)),
        ("A user blocked (offboarding, step 1)",
         "A merge request sets `blocked: true` on `dev-bob` (see [offboarding.md](offboarding.md)). Only his Key "
         "changes, in place: applying it sends /key/block, the key is refused at once, and `blocked: false` "
         "later restores the same key. His user and membership stay until his entry is removed.",
         render_preview(before, blocked)),
        ("A change the policy pack stops",
         "A merge request adds `dev-erin` with `duration: null` (a key that never expires) and no `max_budget`. "
         "The preview shows the creates and the policy violations; mandatory ones fail the job, so the "
         "merge request cannot pass its pipeline until they are fixed.",
         render_preview(before, unsafe, policy_lines(new_only))),
    ]


def render() -> str:
    parts = [
        "# What a reviewer sees: `pulumi preview --diff` examples",
        "",
        "<!-- Generated by scripts/preview_examples.py from the providers' real check/diff results and the "
        "policy pack; do not edit by hand (tests/test_preview_examples.py checks it is up to date). -->",
        "",
        "Each example is the preview a merge request gets as a comment (see [policy.md](policy.md), \"CI\"), "
        "for a change to Pulumi.dev.yaml's two users (`dev-alice`, `dev-bob`) and their team (`dev-platform`). Which resources change, how "
        "(create `+`, update `~`, replace `+-`) and which properties are shown come from running the stack "
        "program and the providers' own `check` and `diff`; the layout follows `pulumi preview --diff` "
        "(stack outputs, resource ids and timing lines left out).",
    ]
    for title, text, preview in examples():
        parts += ["", f"## {title}", "", text, "", "```diff", preview, "```"]
    return "\n".join(parts) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="exit 1 if the doc is not up to date")
    args = parser.parse_args()
    text = render()
    if args.check:
        if not DOC.exists() or DOC.read_text() != text:
            print(f"{DOC.relative_to(ROOT)} is out of date: run .venv/bin/python scripts/preview_examples.py",
                  file=sys.stderr)
            return 1
        return 0
    DOC.parent.mkdir(exist_ok=True)
    DOC.write_text(text)
    print(f"wrote {DOC.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
