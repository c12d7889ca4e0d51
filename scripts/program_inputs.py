"""What the stack program registers, and what the policy analyzer is given for it, without the Pulumi CLI.

`collect(users, teams)` runs the project's `__main__.py` under Pulumi's mock monitor (in a fresh process: the
Pulumi runtime is process-global) with `litellm:users` and `litellm:teams` set, and returns every RegisterResource
request as the engine would receive it: type, name, parent, URN, and the inputs in wire form (secrets as
signature objects, values unknown at preview as the unknown sentinel). The mocks return each resource's
inputs as its outputs, so the Key's user_id flows from its User as in a deployment; with `preview=True` the
Users return no outputs, so whatever depends on them is unknown, as in a preview of new users.

`analyzer_view(registration)` then does what the engine does before it calls the analyzer: the provider's
`check` (defaults and canonical values), secrets marked again, internal `__` keys dropped.

    python scripts/program_inputs.py [--preview] [--users JSON]   # prints the analyzer's view as JSON
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from pulumi.runtime.rpc import is_rpc_secret, unwrap_rpc_secret, wrap_rpc_secret

ROOT = Path(__file__).resolve().parents[1]
PROJECT, STACK = "litellm-access", "dev"
URL, TOKEN = "http://127.0.0.1:4000", "sk-policy-example-token"
STACK_TYPE = "pulumi:pulumi:Stack"
USER_TYPE = "pulumi-python:dynamic/litellm:User"
KEY_TYPE = "pulumi-python:dynamic/litellm:Key"
TEAM_TYPE = "pulumi-python:dynamic/litellm:Team"
MEMBER_TYPE = "pulumi-python:dynamic/litellm:TeamMember"
CUSTOM_TYPES = (USER_TYPE, KEY_TYPE, TEAM_TYPE, MEMBER_TYPE)


def _dev_config() -> dict[str, Any]:
    import yaml  # PyYAML comes with pulumi

    return yaml.safe_load((ROOT / "Pulumi.dev.yaml").read_text())["config"]


def dev_users() -> list[dict[str, Any]]:
    """`litellm:users` of the project's Pulumi.dev.yaml."""
    return _dev_config()["litellm:users"]


def dev_teams() -> list[dict[str, Any]]:
    """`litellm:teams` of the project's Pulumi.dev.yaml."""
    return _dev_config().get("litellm:teams") or []


def collect(users: list[dict[str, Any]], preview: bool = False, url: str = URL, token: str = TOKEN,
            teams: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """The program's RegisterResource requests for these users and teams (see the module docstring)."""
    env = {**os.environ, "PULUMI_CONFIG": json.dumps(
        {"litellm:url": url, "litellm:token": token, "litellm:users": json.dumps(users),
         "litellm:teams": json.dumps(teams or [])}
    ), "PULUMI_CONFIG_SECRET_KEYS": json.dumps(["litellm:token"])}
    for name in ("LITELLM_URL", "LITELLM_MASTER_KEY"):
        env.pop(name, None)
    done = subprocess.run(
        [sys.executable, __file__, "--registrations", *(["--preview"] if preview else [])],
        cwd=ROOT, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL,
    )
    if done.returncode != 0:
        raise RuntimeError(f"the stack program failed under mocks:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout)


def analyzer_view(registration: dict[str, Any]) -> dict[str, Any]:
    """The properties the engine sends to the analyzer's Analyze for this registration: the provider's
    checked inputs (the engine analyzes after Check), unset values left out, secrets marked as they were
    registered, internal `__` keys dropped. Values unknown at preview stay the unknown sentinel."""
    from providers import KeyProvider, TeamMemberProvider, TeamProvider, UserProvider

    wire = {k: v for k, v in registration["object"].items() if not k.startswith("__")}
    provider = {USER_TYPE: UserProvider, KEY_TYPE: KeyProvider, TEAM_TYPE: TeamProvider,
                MEMBER_TYPE: TeamMemberProvider}.get(registration["type"])
    if provider is None:  # a component: its inputs are what it registered (UserWithKey registers none)
        return wire
    secret = {k for k, v in wire.items() if is_rpc_secret(v)}
    news = {k: unwrap_rpc_secret(v) for k, v in wire.items()}
    result = provider().check({}, news)
    if result.failures:
        raise ValueError(f"{registration['name']}: check failed: {[f.reason for f in result.failures]}")
    return {
        k: (wrap_rpc_secret(v) if k in secret else v)
        for k, v in result.inputs.items()
        if v is not None and not k.startswith("__")
    }


def _engine_urn(urn: str) -> str:
    """The mock monitor qualifies top-level types with the root stack's type; the engine does not."""
    return urn.replace(f"::{STACK_TYPE}$", "::")


def _registrations(preview: bool) -> list[dict[str, Any]]:
    """Run the program under mocks in this process; its RegisterResource requests, as the engine gets them."""
    import runpy

    from google.protobuf import json_format
    from pulumi.runtime import mocks
    from pulumi.runtime.stack import run_pulumi_func
    from pulumi.runtime.sync_await import _sync_await

    captured: list[dict[str, Any]] = []

    class Monitor(mocks.MockMonitor):
        def RegisterResource(self, request):  # noqa: N802 (gRPC method name)
            response = super().RegisterResource(request)
            if request.type != STACK_TYPE:
                captured.append({
                    "urn": _engine_urn(response.urn),
                    "type": request.type,
                    "name": request.name,
                    "parent": _engine_urn(request.parent),
                    "custom": request.custom,
                    "object": json_format.MessageToDict(request.object),
                    "dependencies": [_engine_urn(u) for u in request.dependencies],
                })
            return response

    class Mocks(mocks.Mocks):
        def call(self, args):
            return {}, None

        def new_resource(self, args):
            if preview and args.typ.endswith("litellm:User"):
                return None, {}  # a user not created yet: its outputs are unknown during preview
            return args.name, dict(args.inputs)

    program = Mocks()
    mocks.set_mocks(program, project=PROJECT, stack=STACK, preview=preview, monitor=Monitor(program))
    sys.path.insert(0, str(ROOT))
    _sync_await(run_pulumi_func(lambda: runpy.run_path(str(ROOT / "__main__.py"), run_name="__main__")))
    return captured


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preview", action="store_true", help="new users' outputs unknown, as in a preview")
    parser.add_argument("--users", help="litellm:users as JSON (default: Pulumi.dev.yaml's)")
    parser.add_argument("--teams", help="litellm:teams as JSON (default: Pulumi.dev.yaml's)")
    parser.add_argument("--registrations", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.registrations:
        json.dump(_registrations(args.preview), sys.stdout)
        return
    sys.path.insert(0, str(ROOT))
    users = json.loads(args.users) if args.users else dev_users()
    teams = json.loads(args.teams) if args.teams else dev_teams()
    view = [{**r, "object": analyzer_view(r)} for r in collect(users, preview=args.preview, teams=teams)]
    json.dump(view, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
