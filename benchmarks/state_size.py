"""Where the bytes of a `pulumi stack export` go: bytes per user by resource type and field, as the export
prints them (the CLI indents by 4 spaces, so a field's bytes include its indentation).

    .venv/bin/python -m benchmarks.state_size EXPORT.json --users N [--show-secrets-export PLAIN.json]

Figures are printed, never asserted: docs/state.md cites them.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

INDENT = 4
RESOURCE_DEPTH = 3  # {"deployment": {"resources": [ {resource} ]}}: a resource's own fields are at depth 4
SECTIONS = ("inputs", "outputs", "propertyDependencies")  # maps whose entries are broken down by name


def entry_bytes(name: str, value: Any, depth: int) -> int:
    """The bytes of `"name": value,\\n` printed at `depth` (the export's layout)."""
    text = json.dumps(value, indent=INDENT)
    return INDENT * depth + len(json.dumps(name)) + 2 + len(text) + text.count("\n") * INDENT * depth + 2


def kind(resource: dict[str, Any]) -> str:
    """A short resource type: `litellm:Key`, `UserWithKey`, `Stack`, ..."""
    type_ = resource["type"]
    return type_.split("dynamic/")[-1] if "dynamic/" in type_ else type_.rsplit(":", 1)[-1]


def breakdown(export: dict[str, Any]) -> dict[str, dict[str, int]]:
    """Bytes by resource type, then by field: `outputs.key_response`, `stackTrace`, `(fixed)`, ..."""
    out: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for resource in export["deployment"].get("resources", []):
        rows = out[kind(resource)]
        rows["(resource braces)"] += INDENT * RESOURCE_DEPTH * 2 + 4
        for name, value in resource.items():
            if name in SECTIONS and isinstance(value, dict) and value:
                rows[f"{name} (braces)"] += entry_bytes(name, {}, RESOURCE_DEPTH + 1) + INDENT * (RESOURCE_DEPTH + 1)
                for field, inner in value.items():
                    rows[f"{name}.{field}"] += entry_bytes(field, inner, RESOURCE_DEPTH + 2)
            else:
                rows[name] += entry_bytes(name, value, RESOURCE_DEPTH + 1)
    return {k: dict(v) for k, v in out.items()}


def per_user(export: dict[str, Any], users: int, top: int = 0) -> dict[str, dict[str, float]]:
    """`breakdown` divided by the number of users, largest first; `top` keeps that many fields per type."""
    result: dict[str, dict[str, float]] = {}
    for type_, rows in sorted(breakdown(export).items(), key=lambda kv: -sum(kv[1].values())):
        ordered = sorted(rows.items(), key=lambda kv: -kv[1])
        kept = ordered[:top] if top else ordered
        result[type_] = {"(total)": round(sum(rows.values()) / users), **{k: round(v / users) for k, v in kept}}
    return result


def render(table: dict[str, dict[str, float]], min_bytes: float = 1) -> str:
    lines = []
    for type_, rows in table.items():
        lines.append(f"{type_}: {rows['(total)']} B/user")
        lines += [f"    {name:40s} {value:6}" for name, value in rows.items() if name != "(total)" and value >= min_bytes]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("export", type=Path)
    parser.add_argument("--users", type=int, required=True)
    args = parser.parse_args(argv)
    text = args.export.read_text()
    print(f"total: {len(text.encode())} B, {round(len(text.encode()) / args.users)} B/user")
    print(render(per_user(json.loads(text), args.users)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
