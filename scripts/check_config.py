"""Check a stack's config offline, without the pulumi CLI or a proxy: `scripts/check [--stack NAME]`.

Reads Pulumi.<stack>.yaml (default: dev) and its roster files (`litellm:users_file`, `litellm:teams_file`) and
runs the stack program's own checks on them (`read_config` and `stack_errors` in `__main__.py`, the messages a
preview would give), plus unknown `litellm:` keys and a config too large for the environment variable the
engine starts the program with (PULUMI_CONFIG; a warning near that size). The admin token is not
checked: it may come from LITELLM_MASTER_KEY at deploy time. LITELLM_URL stands in for a missing
litellm:url, as in the program. Exit 0 when the config is good, 1 with every error otherwise. Warnings
(`config_warnings`: the legacy role `admin`, keys left at the placeholder models) go to stderr and never
change the exit status.
"""

from __future__ import annotations

import argparse
import os
import runpy
import sys
from pathlib import Path
from typing import Any

import yaml  # installed with pulumi

ROOT = Path(__file__).resolve().parents[1]


def stack_findings(stack: str, root: Path = ROOT) -> tuple[list[str], list[str]]:
    """Every error and every warning of Pulumi.<stack>.yaml, as `litellm:users[3] (user_id 'carol'): ...`
    lines."""
    path = root / f"Pulumi.{stack}.yaml"
    if not path.is_file():
        found = sorted(p.name[len("Pulumi."):-len(".yaml")] for p in root.glob("Pulumi.*.yaml"))
        return [f"{path.name} not found; stacks here: {', '.join(found) or 'none'}"], []
    try:
        document: Any = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        return [f"{path.name} is not valid YAML: {err}"], []
    config = document.get("config") if isinstance(document, dict) else None
    config = config if isinstance(config, dict) else {}
    sys.path.insert(0, str(root))
    program = runpy.run_path(str(root / "__main__.py"), run_name="stack_config_check")
    from providers import fields as f

    unknown = [f.unknown_name(key, program["CONFIG_KEYS"], "config key") for key in config
               if key.startswith("litellm:") and key not in program["CONFIG_KEYS"]]
    url = config.get("litellm:url") or os.environ.get("LITELLM_URL")
    size = program["roster"].config_bytes(config)
    too_large = [program["roster"].size_message(size)] if size > program["roster"].ENV_CAP else []
    warnings = [program["roster"].size_message(size)] if not too_large and size >= program["roster"].ENV_WARN else []
    roster = program["read_config"](config, root)
    errors = unknown + too_large + program["stack_errors"](url, roster)
    return errors, warnings + program["config_warnings"](roster.user_values())


def stack_errors(stack: str, root: Path = ROOT) -> list[str]:
    """Every error of Pulumi.<stack>.yaml."""
    return stack_findings(stack, root)[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/check", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stack", default="dev", help="the stack whose Pulumi.<stack>.yaml to check (default: dev)")
    args = parser.parse_args(argv)
    errors, warnings = stack_findings(args.stack)
    if errors:
        print(f"Pulumi.{args.stack}.yaml: {len(errors)} error(s)", file=sys.stderr)
        for error in errors:
            print(f"  {error}", file=sys.stderr)
    else:
        print(f"Pulumi.{args.stack}.yaml: ok")
    for warning in warnings:
        print(f"Pulumi.{args.stack}.yaml: warning: {warning}", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
