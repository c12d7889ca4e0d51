"""Checks that `providers` and `components` are this package's, with an error that says what shadows them.

The package installs two top-level modules, `providers` and `components`. Their names are in every stack's
state (the dynamic providers are pickled by reference), so they cannot be renamed. A program with a folder
of either name (a common layout) shadows ours, and `from components import UserWithKey` would fail with a
bare ImportError. Importing this module first turns that into an error naming both paths:

    import litellm_pulumi_access  # raises Shadowed when another providers/components comes first
    python -m litellm_pulumi_access            # the same check from a shell; exit 1 when shadowed
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Optional

HERE = Path(__file__).resolve().parent
MODULES = ("providers", "components")


class Shadowed(ImportError):
    """Another `providers` or `components` comes before this package's on sys.path."""


def _location(name: str) -> Optional[Path]:
    try:
        spec = importlib.util.find_spec(name)
    except ValueError:  # imported without a spec: not from a file, so not ours
        return None
    if spec is None:
        return None
    if spec.origin and spec.origin not in ("namespace", "built-in"):
        return Path(spec.origin).resolve().parent
    locations = list(spec.submodule_search_locations or [])  # a folder without __init__.py
    return Path(locations[0]).resolve() if locations else None


def problems() -> list[str]:
    out = []
    for name in MODULES:
        found, ours = _location(name), HERE / name
        if found != ours:
            out.append(
                f"the module {name!r} found first is {found or 'nothing'}, not this package's {ours}: another "
                f"{name!r} (your program's own folder?) shadows it. Rename that folder or move it into a package "
                f"of your own; this package's must stay importable as {name!r}, the name stacks record in their state"
            )
    return out


def check() -> None:
    found = problems()
    if found:
        raise Shadowed("litellm-pulumi-access: " + "\n".join(found))


if __name__ == "__main__":
    issues = problems()
    print("\n".join(issues) or f"providers and components are this package's ({HERE})", file=sys.stderr if issues else sys.stdout)
    sys.exit(1 if issues else 0)
else:
    check()
