"""Measure the figures in docs/lifecycle.md: proxy calls per step for one UserWithKey (each key mode), and
the size of each resource's `__provider`, through the real plugin and a counting pass-through.

    cd tests && LITELLM_URL=... LITELLM_MASTER_KEY=... ../.venv/bin/python -m harness.figures

The same numbers are asserted by tests/test_lifecycle.py::test_calls_per_step_for_one_user_with_key.
"""

from __future__ import annotations

import os
import sys
import tempfile
import uuid
from collections import Counter
from pathlib import Path

from support.passthrough import PassThrough

from .engine import Stack

STEPS = ("preview", "up", "no-op preview", "no-op up", "refresh", "destroy")


def measure(url: str, token: str, auto: bool) -> tuple[dict[str, Counter[str]], dict[str, int]]:
    user_id = "fig" + uuid.uuid4().hex[:8]
    user = {"user_id": user_id, "user_email": f"{user_id}@example.org", "user_role": "internal_user",
            "auto_create_key": auto, "models": ["fake-gpt-4o"], "user_models": ["fake-gpt-4o"]}
    counts: dict[str, Counter[str]] = {}
    sizes: dict[str, int] = {}
    with PassThrough(url) as tap, tempfile.TemporaryDirectory() as state:
        stack = Stack(Path(state), {"litellm:url": tap.url, "litellm:token": token, "litellm:users": [user]})
        try:
            for step in STEPS:
                tap.reset()
                result = getattr(stack, step.split()[-1])()
                counts[step] = Counter(f"{c.method} {c.path}" for c in tap.calls)
                for reg in result.registrations if step == "preview" else []:
                    if reg.custom:
                        sizes[reg.type.split(":")[-1]] = len(reg.inputs["__provider"])
        except BaseException:  # the last step destroys; on a failure before it, clean up here
            stack.destroy()
            raise
    return counts, sizes


def main() -> None:
    url, token = os.environ.get("LITELLM_URL"), os.environ.get("LITELLM_MASTER_KEY")
    if not (url and token):
        sys.exit("set LITELLM_URL and LITELLM_MASTER_KEY")
    print("| step | generated key (auto_create_key=false) | auto-created key (auto_create_key=true) |")
    print("|---|---|---|")
    results = [measure(url, token, auto) for auto in (False, True)]
    for step in STEPS:
        cells = [f"{sum(c[step].values())}: " + (", ".join(f"{k} x{n}" if n > 1 else k for k, n in sorted(c[step].items())) or "none")
                 for c, _ in results]
        print(f"| {step} | {cells[0]} | {cells[1]} |")
    print()
    for name, size in sorted(results[0][1].items()):
        print(f"`__provider` of {name}: {size} bytes")


if __name__ == "__main__":
    main()
