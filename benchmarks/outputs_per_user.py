"""How many Pulumi Outputs and `apply` calls one UserWithKey creates, under the SDK's mocks (no engine, no
proxy), with plain values as the stack program passes them from its config:

    .venv/bin/python benchmarks/outputs_per_user.py [--users 50]

Each Output is a task the SDK's end-of-program wait (`wait_for_rpcs`) tracks; see components/sdk_tuning.py.
Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import pulumi  # noqa: E402
from pulumi.output import Output  # noqa: E402
from pulumi.runtime import rpc  # noqa: E402

from components import UserWithKey, UserWithKeyArgs  # noqa: E402

KINDS: dict[str, dict[str, Any]] = {
    "generated key": {},
    "auto-created key": {"auto_create_key": True},
    "generated key, one team": {"teams": ["research"], "team_id": "research"},
}


class Echo(pulumi.runtime.Mocks):
    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        return f"{args.name}-id", {k: rpc.unwrap_rpc_secret(v) for k, v in args.inputs.items()}

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict[str, Any]:
        return {}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=50)
    n = parser.parse_args(argv).users
    count = {"outputs": 0, "applies": 0}
    track, apply = Output._track, Output.apply

    def counted_track(self: Output[Any]) -> None:
        count["outputs"] += 1
        track(self)

    def counted_apply(self: Output[Any], *args: Any, **kwargs: Any) -> Output[Any]:
        count["applies"] += 1
        return apply(self, *args, **kwargs)

    Output._track, Output.apply = counted_track, counted_apply  # type: ignore[method-assign]
    pulumi.runtime.set_mocks(Echo(), preview=True)
    token = pulumi.Output.secret("sk-admin-token")  # as the program's config.get_secret("token")
    for number, (kind, extra) in enumerate(KINDS.items()):
        before = dict(count)
        for i in range(n):
            user = f"u{number}-{i}@example.edu"
            UserWithKey(user, UserWithKeyArgs(url="http://proxy.example:4000", token=token, user_id=user,
                                              user_email=user, user_role="internal_user_viewer", models=["gpt-4o"],
                                              user_models=["gpt-4o"], max_budget=10, **extra))
        print(f"{kind}: {(count['outputs'] - before['outputs']) / n:.0f} Outputs and "
              f"{(count['applies'] - before['applies']) / n:.0f} applies per user")
    return 0


if __name__ == "__main__":
    sys.exit(main())
