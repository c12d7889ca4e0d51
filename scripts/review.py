"""Access review: what is on the proxy that the stack does not manage, or should not be as it is.

    scripts/review [--stack NAME] [--state FILE] [--json] [--only-prefix PREFIX]

Compares every user, key and team on the proxy (listed in pages, in ascending order of a stable key) with
the User, Key and Team resources of the stack's state (`pulumi stack export --stack NAME`, or a file of
that format given with --state), and reports each finding with the object's id, never a raw key:

    unmanaged_user   a user no User resource of the stack manages
    unmanaged_key    a key no Key resource manages (a managed user's extra keys included)
    unmanaged_team   a team no Team resource manages
    stranded_create  an object that still carries the create mark (metadata.pulumi_create = pending)
    expired_key      a key past its `expires`
    blocked_key      a blocked key
    rotation_due     a managed key at least its `rotate_after` old

The proxy is `litellm:url` of Pulumi.<stack>.yaml, else LITELLM_URL, as the stack program reads it; the
token is the stack's `litellm:token` (read with `pulumi config get`), else LITELLM_MASTER_KEY.
Exit 0: nothing found; 1: findings; 2: the review could not run (the message says why).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import yaml  # noqa: E402  (installed with pulumi)

from providers import rotation  # noqa: E402
from providers.client import ClientSettings, LiteLLMClient, LiteLLMError  # noqa: E402
from providers.create import pending  # noqa: E402

KINDS = ("unmanaged_user", "unmanaged_key", "unmanaged_team", "stranded_create", "expired_key", "blocked_key",
         "rotation_due")
BUILT_IN_USERS = frozenset({"default_user_id"})  # LiteLLM's own row for the master key's actions
DYNAMIC = "pulumi-python:dynamic/litellm:"


class CannotRun(Exception):
    """The review could not run (exit 2): no state, no proxy, no token."""


@dataclasses.dataclass(frozen=True)
class Finding:
    kind: str
    id: str
    detail: str


@dataclasses.dataclass
class Managed:
    """What the stack's state manages: user ids, key hashes (with their rotate_after), team ids."""

    users: set[str] = dataclasses.field(default_factory=set)
    keys: dict[str, Optional[str]] = dataclasses.field(default_factory=dict)
    teams: set[str] = dataclasses.field(default_factory=set)


def managed(state: Mapping[str, Any]) -> Managed:
    """The objects the resources of a `pulumi stack export` document manage. An old half of a replacement
    (`delete: true`) is still the stack's until the next up deletes it; a key a rotation retired with a
    grace is its Key's (`retired_keys`)."""
    found = Managed()
    for resource in (state.get("deployment") or {}).get("resources") or []:
        kind, id_ = str(resource.get("type", "")).removeprefix(DYNAMIC), resource.get("id")
        outputs = resource.get("outputs") or {}
        if not id_ or kind not in ("User", "Key", "Team"):
            continue
        if kind == "User":
            found.users.add(id_)
        elif kind == "Team":
            found.teams.add(id_)
        else:
            rotate_after = outputs.get("rotate_after")
            found.keys[id_] = rotate_after if isinstance(rotate_after, str) else None
            for retired in outputs.get("retired_keys") or []:
                if isinstance(retired, str):
                    found.keys.setdefault(retired, None)
    return found


def review(users: Iterable[Mapping[str, Any]], keys: Iterable[Mapping[str, Any]], teams: Iterable[Mapping[str, Any]],
           stack: Managed, now: Optional[datetime] = None) -> list[Finding]:
    """Every finding for these proxy rows against what the stack manages."""
    now = now or datetime.now(timezone.utc)
    findings: list[Finding] = []
    for row in users:
        user_id = str(row.get("user_id"))
        if user_id in BUILT_IN_USERS:
            continue
        if user_id not in stack.users:
            findings.append(Finding("unmanaged_user", user_id, f"email {row.get('user_email')!r}, role "
                                    f"{row.get('user_role')!r}: no User resource of the stack manages it"))
        findings += _stranded(row, user_id, "user")
    for row in keys:
        findings += _key_findings(row, stack, now)
    for row in teams:
        team_id = str(row.get("team_id"))
        if team_id not in stack.teams:
            findings.append(Finding("unmanaged_team", team_id, f"alias {row.get('team_alias')!r}: no Team "
                                    "resource of the stack manages it"))
        findings += _stranded(row, team_id, "team")
    return findings


def _key_findings(row: Mapping[str, Any], stack: Managed, now: datetime) -> list[Finding]:
    key_hash, user_id = str(row.get("token")), row.get("user_id")
    what = f"alias {row.get('key_alias')!r} of user {user_id!r}"
    found = []
    if key_hash not in stack.keys:
        extra = " (an extra key of a user the stack manages)" if user_id in stack.users else ""
        found.append(Finding("unmanaged_key", key_hash, f"{what}{extra}: no Key resource of the stack manages it"))
    found += _stranded(row, key_hash, f"key ({what})")
    expires = rotation.when(row.get("expires"))
    if expires is not None and expires <= now:
        found.append(Finding("expired_key", key_hash, f"{what} expired at {row.get('expires')}"))
    if row.get("blocked") is True:
        found.append(Finding("blocked_key", key_hash, f"{what} is blocked"))
    rotate_after = stack.keys.get(key_hash)
    if rotate_after and rotation.AGE in rotation.due({"key_data": {"info": row}}, {"rotate_after": rotate_after}):
        found.append(Finding("rotation_due", key_hash, f"{what} was created at {row.get('created_at')}, "
                             f"rotate_after {rotate_after}: the next `pulumi up` rotates it"))
    return found


def _stranded(row: Mapping[str, Any], id_: str, what: str) -> list[Finding]:
    if not pending(row):
        return []
    return [Finding("stranded_create", id_, f"{what} carries the create mark (metadata.pulumi_create = pending): "
                    "a create never learned it was made; the next `pulumi up` of the stack that tried takes it "
                    "over, otherwise delete it")]


def only_prefix(prefix: str, users: list[dict], keys: list[dict], teams: list[dict]) -> tuple[list, list, list]:
    """The rows whose id starts with `prefix` (a key: its alias or its user's id), for a proxy shared with
    objects of others."""
    def starts(*values: Any) -> bool:
        return any(isinstance(v, str) and v.startswith(prefix) for v in values)

    return ([u for u in users if starts(u.get("user_id"))], [k for k in keys if starts(k.get("key_alias"), k.get("user_id"))],
            [t for t in teams if starts(t.get("team_id"))])


# ------------------------------------------------------------------ inputs
def load_state(stack: str, state_file: Optional[Path]) -> dict[str, Any]:
    if state_file is not None:
        try:
            state = json.loads(state_file.read_text())
        except (OSError, ValueError) as err:
            raise CannotRun(f"cannot read the state file {state_file}: {err}") from None
        if not isinstance(state, dict) or not isinstance(state.get("deployment"), dict):
            raise CannotRun(f"{state_file} is not a `pulumi stack export` document (no deployment)")
        return state
    pulumi = shutil.which("pulumi")
    if pulumi is None:
        raise CannotRun("no state: the pulumi CLI is not on PATH (or give a `pulumi stack export` file with --state)")
    done = subprocess.run([pulumi, "stack", "export", "--stack", stack], cwd=ROOT, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL)
    if done.returncode != 0:
        raise CannotRun(f"no state: `pulumi stack export --stack {stack}` failed: {done.stderr.strip()[-500:]}")
    return json.loads(done.stdout)


def stack_config(stack: str, root: Path = ROOT) -> dict[str, Any]:
    path = root / f"Pulumi.{stack}.yaml"
    if not path.is_file():
        return {}
    try:
        document = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise CannotRun(f"{path.name} is not valid YAML: {err}") from None
    config = document.get("config") if isinstance(document, dict) else None
    return config if isinstance(config, dict) else {}


def credentials(stack: str, config: Mapping[str, Any], env: Mapping[str, str] = os.environ) -> tuple[str, str]:
    """The proxy's url and admin token as the stack program reads them: config first, then the environment."""
    url = config.get("litellm:url") or env.get("LITELLM_URL")
    if not isinstance(url, str) or not url:
        raise CannotRun(f"no proxy url: set litellm:url in Pulumi.{stack}.yaml or LITELLM_URL")
    token = _config_token(stack) if "litellm:token" in config else None
    token = token or env.get("LITELLM_MASTER_KEY")
    if not token:
        raise CannotRun(f"no admin token: set litellm:token of stack {stack} (pulumi config set --secret) "
                        "or LITELLM_MASTER_KEY")
    return url, token


def _config_token(stack: str) -> Optional[str]:
    pulumi = shutil.which("pulumi")
    if pulumi is None:
        return None
    done = subprocess.run([pulumi, "config", "get", "litellm:token", "--stack", stack], cwd=ROOT,
                          capture_output=True, text=True, stdin=subprocess.DEVNULL)
    return done.stdout.strip() if done.returncode == 0 else None


# ------------------------------------------------------------------ output
def table(findings: list[Finding]) -> str:
    rows = [(f.kind, f.id[:16] + "..." if len(f.id) == 64 else f.id, f.detail) for f in findings]
    width = [max(len(r[i]) for r in [("KIND", "ID", ""), *rows]) for i in (0, 1)]
    lines = [f"{'KIND':<{width[0]}}  {'ID':<{width[1]}}  DETAIL"]
    lines += [f"{kind:<{width[0]}}  {id_:<{width[1]}}  {detail}" for kind, id_, detail in rows]
    return "\n".join(lines)


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/review", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stack", default="dev", help="the stack to review (default: dev)")
    parser.add_argument("--state", type=Path, help="a `pulumi stack export` file instead of asking the CLI")
    parser.add_argument("--json", action="store_true", help="one JSON object per finding (kind, id, detail)")
    parser.add_argument("--only-prefix", metavar="PREFIX",
                        help="review only users, teams and keys (by alias or user) whose id starts with PREFIX")
    args = parser.parse_args(argv)
    try:
        state = load_state(args.stack, args.state)
        url, token = credentials(args.stack, stack_config(args.stack))
        client = LiteLLMClient(url, token, ClientSettings.from_env())
        rows = client.list_users(), client.list_keys(), client.list_teams()
    except CannotRun as err:
        print(f"review: {err}", file=sys.stderr)
        return 2
    except LiteLLMError as err:
        print(f"review: cannot list the proxy's objects at {url}: {err}", file=sys.stderr)
        return 2
    if args.only_prefix:
        rows = only_prefix(args.only_prefix, *rows)
    findings = review(*rows, managed(state))
    if args.json:
        for finding in findings:
            print(json.dumps(dataclasses.asdict(finding)))
    elif findings:
        print(table(findings))
    else:
        print(f"review of stack {args.stack}: nothing found")
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
