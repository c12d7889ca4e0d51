"""The deletion guard (`pulumi-python:dynamic/litellm:Ledger`): one resource per stack whose inputs are the
sorted user_ids and team_ids the program manages. It calls no proxy.

The engine runs Check on every registration, preview included, with the inputs of the last deployment as
olds. So the ledger's Check sees, for free, which ids the last deployment had and this run drops, and fails
when more than `max_deletions` would go (or all of them, unless `max_deletions` was given): a Check failure
stops the preview or the up. The program registers the ledger first and every user and team depends on it,
so none of them is even registered before the guard has passed, and the engine deletes only at the end of
an up, after every registration. docs/rosters.md says what the guard cannot see.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any, Optional

import pulumi
from pulumi.dynamic import CheckFailure, CheckResult, CreateResult, DiffResult, ReadResult, Resource, \
    ResourceProvider, UpdateResult

DEFAULT_MAX_DELETIONS = 10
SHOWN = 5  # ids named in the message
KINDS = (("user_ids", "user", "users"), ("team_ids", "team", "teams"))


def removed(olds: dict[str, Any], news: dict[str, Any], name: str) -> list[str]:
    """The ids the last deployment had (olds) that this run no longer declares."""
    return sorted(set(olds.get(name) or []) - set(news.get(name) or []))


def refusal(gone: list[str], remaining: int, limit: Optional[int], noun: str) -> Optional[str]:
    """Why this run may not delete `gone`, or None when it may."""
    if not gone:
        return None
    allowed = DEFAULT_MAX_DELETIONS if limit is None else limit
    everything = remaining == 0 and limit is None
    if len(gone) <= allowed and not everything:
        return None
    named = ", ".join(gone[:SHOWN]) + (f" and {len(gone) - SHOWN} more" if len(gone) > SHOWN else "")
    why = (f"it would delete every {noun[:-1]} of the stack ({len(gone)}: {named}), and an empty list deletes all "
           f"only with litellm:max_deletions given" if everything else
           f"it would delete {len(gone)} {noun} ({named}), more than litellm:max_deletions ({allowed})")
    return (f"deletion guard: {why}. Nothing has been deleted. If that is what you want, allow it for this run: "
            f"--config litellm:max_deletions={len(gone)} (pulumi saves it in Pulumi.<stack>.yaml: "
            f"`pulumi config rm litellm:max_deletions` afterwards)"
            + ("; or remove the whole stack with `pulumi destroy`" if everything else ""))


def digest(props: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps([sorted(props.get(name) or []) for name, _, _ in KINDS]).encode()).hexdigest()


def outputs(props: dict[str, Any]) -> dict[str, Any]:
    """Counts and a digest: the ids themselves are kept once, in the inputs (Check's olds)."""
    return {"users": len(props.get("user_ids") or []), "teams": len(props.get("team_ids") or []),
            "digest": digest(props)}


class LedgerProvider(ResourceProvider):
    serialize_as_secret_always = False  # the pickled provider holds no secret

    def __repr__(self) -> str:
        return "LedgerProvider()"

    def check(self, olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        limit = news.get("max_deletions")
        limit = int(limit) if limit is not None else None  # numbers cross the wire as floats
        failures = []
        for name, _, noun in KINDS:
            reason = refusal(removed(olds, news, name), len(news.get(name) or []), limit, noun)
            if reason:
                failures.append(CheckFailure(name, reason))
        return CheckResult({**news, "max_deletions": limit}, failures)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        return DiffResult(changes=olds.get("digest") != digest(news), replaces=[], stables=[],
                          delete_before_replace=False)

    def create(self, props: dict[str, Any]) -> CreateResult:
        return CreateResult("ledger", outputs(props))

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        return ReadResult(id_, props)

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        return UpdateResult(outputs(news))

    def delete(self, _id: str, _props: dict[str, Any]) -> None:
        return None


@dataclasses.dataclass
class LedgerArgs:
    user_ids: list[str]
    team_ids: list[str]
    max_deletions: Optional[int] = None  # None: the default, and an empty list is refused


class Ledger(Resource, module="litellm", name="Ledger"):
    """The stack's deletion guard (see the module docstring)."""

    def __init__(self, resource_name: str, args: LedgerArgs, opts: Optional[pulumi.ResourceOptions] = None) -> None:
        props = {"user_ids": sorted(args.user_ids), "team_ids": sorted(args.team_ids),
                 "max_deletions": args.max_deletions, "users": None, "teams": None, "digest": None}
        super().__init__(LedgerProvider(), resource_name, props, opts)
