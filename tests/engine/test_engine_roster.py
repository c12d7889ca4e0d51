"""A CSV roster of EPPN users with `litellm:user_defaults` through its whole life on the real engine (issue 18,
"Done when", at a size the suite affords; benchmarks/engine.py runs 1,000): up, a no-op preview and up that
ask the proxy nothing, a refresh that reads listings instead of one read per resource, and a destroy that
leaves none of them."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from providers.client import LiteLLMClient
from support.proxy_state import user_exists

from .conftest import new_project

USERS = 60  # a refresh reading one object at a time would make 120 calls


def test_a_csv_roster_of_eppn_users_goes_up_no_ops_refreshes_from_listings_and_is_destroyed(
        tmp_path: Path, cli: Path, litellm: Any, tap: Any, api: LiteLLMClient, unique: str) -> None:
    project = new_project(tmp_path, cli, tap.url, litellm.master_key, unique)
    ids = [f"s{n:03d}-{unique}@example.edu" for n in range(USERS)]
    (project.dir / "cohort.csv").write_text(
        "user_id,user_email,max_budget\n" + "".join(f"{uid},{uid},{n % 7}\n" for n, uid in enumerate(ids)))
    project.configure({"litellm:users_file": "cohort.csv", "litellm:max_deletions": USERS,
                       "litellm:user_defaults": {"user_role": "internal_user_viewer", "models": ["fake-mock"],
                                                 "user_models": ["fake-mock"]}})
    try:
        project.up()
        keys = project.outputs(secrets=True)["key"]
        assert sorted(keys) == ids and all(keys[uid].startswith("sk-") for uid in ids)
        row = api.user_info(ids[12])["user_info"]
        assert (row["user_email"], row["max_budget"], row["models"]) == (ids[12], 5, ["fake-mock"])  # 12 % 7

        tap.reset()
        project.run("preview", "--expect-no-changes")
        project.run("up", "--yes", "--skip-preview", "--expect-no-changes")
        assert tap.count() == 0

        project.run("refresh", "--yes", "--skip-preview", "--expect-no-changes")
        calls = Counter(f"{c.method} {c.path}" for c in tap.calls)
        assert calls["GET /user/list"] >= 1 and calls["GET /key/list"] >= 1, calls
        # A few single reads before the listing pays off (and one for each row other tests' writes shifted
        # between pages); the rest comes from the listings, in pages of 100 over the whole proxy.
        assert sum(calls.values()) < USERS, calls
        assert set(calls) <= {"GET /user/list", "GET /key/list", "GET /user/info", "GET /key/info"}, calls

        project.run("destroy", "--yes", "--skip-preview")
        assert not any(user_exists(api, uid) for uid in ids)
    finally:
        project.run("destroy", "--yes", "--skip-preview", check=False)
        for uid in ids:
            if user_exists(api, uid):
                api.user_delete(uid)
