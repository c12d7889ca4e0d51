"""The litellm-as-code side of the benchmark: an equivalent YAML spec, the pass-through fixes it needs on a
non-Enterprise LiteLLM proxy, its runs (create, no-op plan, no-op re-apply, one-field change), and the
clean-up of its objects through the API (it has no delete).

What litellm-as-code 0.5.0 needs from the pass-through to work at all on LiteLLM 1.108.7 (measured):
- it always calls GET /organization/list, which is Enterprise-only: 403, and the whole run fails. The
  pass-through answers that 403 with `[]` (no organizations), as a proxy without organizations would.
- it reads only the first page of GET /user/list (25 rows) and GET /key/list (10 rows), so from the 26th
  user on it takes existing users for missing ones and its re-apply fails with 409. When the proxy's answer
  has more than one page, the pass-through fetches every page (at the proxy's largest page size, 100) and
  answers with all rows; those extra requests are counted (`upstream`) and reported apart.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable
from urllib.parse import parse_qsl, urlencode

import yaml

from components import UserWithKeyArgs
from providers.fields import LEGACY_ROLES

# The paginated list endpoints and their page-size parameter.
LIST_PAGES = {"/user/list": ("page_size", "users", "total"), "/key/list": ("size", "keys", "total_count")}
LARGEST_PAGE = 100  # LiteLLM 1.108.7 answers 422 above this


def rewrite(method: str, path: str, query: str, status: int, payload: bytes,
            fetch: Callable[[str], "tuple[int, bytes]"]) -> "tuple[int, bytes]":
    """The pass-through hook: 403 on /organization/list -> []; multi-page lists -> one merged page."""
    if method == "GET" and path == "/organization/list" and status == 403:
        return 200, b"[]"
    if method != "GET" or path not in LIST_PAGES or status != 200:
        return status, payload
    size_name, rows_name, total_name = LIST_PAGES[path]
    first = json.loads(payload)
    if int(first.get("total_pages") or 1) <= 1:
        return status, payload
    params = {k: v for k, v in parse_qsl(query) if k not in (size_name, "page")}
    rows: list[Any] = []
    page, pages = 1, 1
    while page <= pages:
        got_status, got = fetch(urlencode({**params, size_name: LARGEST_PAGE, "page": page}))
        if got_status != 200:
            return got_status, got
        body = json.loads(got)
        rows.extend(body.get(rows_name) or [])
        pages = int(body.get("total_pages") or 1)
        page += 1
    merged = {**first, rows_name: rows, total_name: len(rows), "total_pages": 1}
    merged.update({k: 1 for k in ("page", "current_page") if k in first})
    merged.update({k: len(rows) for k in (size_name,) if k in first})
    return 200, json.dumps(merged).encode()


def user_spec(user: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """One stack user (module input names, as in litellm:users) as a litellm-as-code user and key entry,
    sending what the module sends: /user/new and /key/generate with the same values (the module's
    defaults are read from UserWithKeyArgs, a legacy role is sent as the role it stands for)."""
    a = UserWithKeyArgs(url="", token="", **user)
    uid = a.user_id
    u = {
        "user_id": uid,
        "user_email": a.user_email,
        "user_alias": a.user_alias or uid,
        "user_role": LEGACY_ROLES.get(a.user_role, a.user_role),
        "models": a.user_models,
        "tpm_limit": a.tpm_limit,
        "rpm_limit": a.rpm_limit,
        "auto_create_key": False,
    }
    k = {
        "key_alias": a.key_alias or uid,
        "user_id": uid,
        "models": a.models,
        "budget_duration": a.budget_duration,
        "duration": a.duration,
        "max_parallel_requests": a.max_parallel_requests,
        "tpm_limit": a.tpm_limit,
        "rpm_limit": a.rpm_limit,
    }
    if a.max_budget:
        u["max_budget"] = k["max_budget"] = a.max_budget
    return u, k


def spec_for(users: list[dict[str, Any]]) -> dict[str, Any]:
    pairs = [user_spec(u) for u in users]
    return {"users": [u for u, _ in pairs], "virtual_keys": [k for _, k in pairs]}


def write_spec(path: Path, users: list[dict[str, Any]]) -> Path:
    path.write_text(yaml.safe_dump(spec_for(users), sort_keys=False))
    return path


def executable() -> str:
    """The litellm-as-code console script of this interpreter's environment."""
    here = Path(sys.executable).parent / "litellm-as-code"
    found = str(here) if here.exists() else shutil.which("litellm-as-code")
    if not found:
        raise RuntimeError("litellm-as-code is not installed: scripts/bench installs benchmarks/requirements.txt")
    return found


def version() -> str:
    """Its installed version; a run with --no-lac works without it installed."""
    from importlib.metadata import PackageNotFoundError, version as v

    try:
        return v("litellm-as-code")
    except PackageNotFoundError:
        return "not installed (scripts/bench installs benchmarks/requirements.txt)"


@dataclass
class Run:
    seconds: float
    returncode: int
    plan: str  # its last line: "N to create, N to update, N unchanged."
    output: str = field(repr=False)

    def did(self, expected: str) -> bool:
        """True when it ran and its plan line says it did `expected` (e.g. "0 to create, 1 to update")."""
        return self.returncode == 0 and expected in self.plan

    def summary(self) -> str:
        """Its plan line, or the end of its output when it printed none."""
        return self.plan or self.output.strip()[-300:]


def run(spec: Path, url: str, token: str, *, dry_run: bool = False, timeout: float = 1800) -> Run:
    """One litellm-as-code run against `url` (the pass-through); the token goes in its environment, not argv."""
    env = {**os.environ, "LITELLM_BASE_URL": url, "LITELLM_API_KEY": token}
    cmd = [executable(), str(spec)] + (["--dry-run"] if dry_run else [])
    started = time.perf_counter()
    done = subprocess.run(cmd, env=env, text=True, capture_output=True, stdin=subprocess.DEVNULL, timeout=timeout)
    seconds = time.perf_counter() - started
    out = done.stdout + done.stderr
    plan = next((line for line in reversed(done.stdout.splitlines()) if "to create" in line), "")
    return Run(seconds, done.returncode, plan.strip(), out.replace(token, "[token]"))


def cleanup(api: Any, users: list[dict[str, Any]]) -> None:
    """Delete what litellm-as-code created (keys by alias, then users), straight through the API.
    `api` is a providers.client.LiteLLMClient; unknown names are fine."""
    aliases = [u.get("key_alias") or u["user_id"] for u in users]
    ids = [u["user_id"] for u in users]
    for chunk in range(0, len(ids), 100):
        try:
            api._call("delete keys", "POST", "/key/delete", body={"key_aliases": aliases[chunk:chunk + 100]})
        except Exception:  # noqa: BLE001 - some were never created; delete the rest one by one below
            for alias in aliases[chunk:chunk + 100]:
                for row in api.keys_with_alias(alias):
                    api.key_delete(row["token"])
        try:
            api._call("delete users", "POST", "/user/delete", body={"user_ids": ids[chunk:chunk + 100]})
        except Exception:  # noqa: BLE001
            for uid in ids[chunk:chunk + 100]:
                try:
                    api.user_delete(uid)
                except Exception:  # noqa: BLE001 - never created
                    pass
