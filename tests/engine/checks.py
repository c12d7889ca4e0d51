"""What the real-engine tests declare and read back: a `litellm:users` entry, the raw keys, the steps of
`pulumi preview --json`, the fields `pulumi preview --diff` shows as changed, and whether a key works."""

from __future__ import annotations

import json
import re
import time
from typing import Any

import requests

from .conftest import Project

# A resource's header in `--diff` output: `~ pulumi-python:dynamic/litellm:User: (refresh)`.
HEADER = re.compile(r"^\s*[-+~<>= ]*\s*(?P<type>[\w:/.$-]+): \((?P<op>[\w-]+)\)\s*$")
URN = re.compile(r"^\s*\[urn=(?P<urn>[^\]]+)\]\s*$")
CHANGED = re.compile(r"^\s*~ (?P<field>\w+)\s*: (?P<old>.+?) => (?P<new>.+?)\s*$")


def short(urn: str) -> str:
    """A resource as `Type::name`: `User::jdoe@example.edu` for
    urn:pulumi:s::p::litellm:index:UserWithKey$pulumi-python:dynamic/litellm:User::jdoe@example.edu."""
    qualified, name = urn.split("::")[-2:]
    return f"{re.split(r'[:/$]', qualified)[-1]}::{name}"


def steps(project: Project, *args: str) -> list[dict[str, Any]]:
    """The steps of `pulumi preview --json --show-sames` (every resource, unchanged ones too)."""
    return json.loads(project.run("preview", "--json", "--show-sames", *args).stdout).get("steps", [])


def ops(found: list[dict[str, Any]]) -> dict[str, str]:
    """{`Type::name`: op} of these steps; with --refresh a resource's refresh step is followed by its real one."""
    return {short(step["urn"]): step["op"] for step in found}


def replace_reasons(found: list[dict[str, Any]], name: str) -> list[str]:
    return next(step.get("replaceReasons") or [] for step in reversed(found) if short(step["urn"]) == name)


def diff_changes(text: str) -> dict[tuple[str, str], set[tuple[str, str, str]]]:
    """{(`Type::name`, op): {(field, old, new)}} for the top-level `~ field : old => new` lines of `pulumi ...
    --diff` output (a field's name starts in the column of its resource's `[urn=`; nested values go deeper)."""
    found: dict[tuple[str, str], set[tuple[str, str, str]]] = {}
    op, column, current = None, -1, set()
    for line in text.splitlines():
        if header := HEADER.match(line):
            op, column, current = header["op"], -1, set()
        elif (urn := URN.match(line)) and op:
            column, current = line.index("["), set()
            found[(short(urn["urn"]), op)] = current
        elif (change := CHANGED.match(line)) and change.start("field") == column:
            current.add((change["field"], change["old"], change["new"]))
    return found


def keys(project: Project) -> dict[str, str]:
    """The stack's raw keys by user_id (`pulumi stack output --show-secrets`)."""
    return project.outputs(secrets=True)["key"]


def person(user_id: str, **overrides: Any) -> dict[str, Any]:
    """One `litellm:users` entry: an EPPN user (its id is its email) with a generated key on `fake-mock`."""
    return {"user_id": user_id, "user_email": user_id, "user_role": "internal_user", "max_budget": 10,
            "models": ["fake-mock"], "user_models": ["fake-mock"], **overrides}


def works(url: str, raw_key: str) -> int:
    """The status of one completion with `fake-mock` (answered by the proxy itself): 200 works, 401 does not."""
    answer = requests.post(f"{url}/chat/completions", headers={"Authorization": f"Bearer {raw_key}"},
                           json={"model": "fake-mock", "messages": [{"role": "user", "content": "hi"}]},
                           timeout=60)
    return answer.status_code


def wait_until(moment: float) -> None:
    """Sleep until just past `moment` (a POSIX time): what a behaviour with a deadline needs, no more."""
    time.sleep(max(0.0, moment - time.time()) + 0.5)
