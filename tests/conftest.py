"""Shared fixtures: a real LiteLLM proxy (with Postgres), a direct API client, unique names.

The proxy comes from LITELLM_URL + LITELLM_MASTER_KEY when both are set; otherwise the first test that needs
it starts one with ../shared/litellm-server/up (or $LITELLM_SERVER_DIR/up) in one run dir shared by every
pytest-xdist worker (`up` returns the instance already running there), and the run stops it once at the
end (in the run dir LITELLM_TESTS_RUN_DIR names, the caller stops it: scripts/test's two runs share it).
In CI (CI=true) a missing proxy is a failure, never a skip. Every test that uses the proxy gets the marker
`litellm`; `-m "not litellm"` is the fast tier (scripts/test --fast).
"""

from __future__ import annotations

import fcntl
import os
import tempfile
import uuid
from pathlib import Path
from typing import Iterator, NamedTuple, Optional

import pytest

ROOT = Path(__file__).resolve().parents[1]

from providers.client import ClientSettings, LiteLLMClient, LiteLLMError  # noqa: E402
from support import litellm_server  # noqa: E402
from support.litellm_server import SERVER_DIR  # noqa: E402
from support.passthrough import PassThrough  # noqa: E402

HOW_TO = (
    "no LiteLLM proxy for the real-proxy tests: set LITELLM_URL and LITELLM_MASTER_KEY to a proxy backed by "
    "Postgres (see docs/reference.md, 'Running a proxy'), or LITELLM_SERVER_DIR to a litellm-server checkout"
)


class Proxy(NamedTuple):
    url: str
    master_key: str
    log: Optional[Path] = None  # the proxy's own log, for a proxy the `litellm` fixture started


RUN_DIR = pytest.StashKey[Path]()  # where the tests' own proxy lives: one per run, shared by the workers
# A run dir given by the caller: the proxy there (started by the first test that needs it, as usual) is
# shared with the caller's next pytest runs and stopped by the caller, not at the end of this run.
SHARED_RUN_DIR = "LITELLM_TESTS_RUN_DIR"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "litellm: needs the real LiteLLM proxy (set on every test using the fixture)")
    workerinput = getattr(config, "workerinput", None)  # set on a pytest-xdist worker
    if workerinput is not None:
        config.stash[RUN_DIR] = Path(workerinput["litellm_run_dir"])
    elif os.environ.get(SHARED_RUN_DIR):  # a caller's run dir: its proxy outlives this run (scripts/test)
        config.stash[RUN_DIR] = Path(os.environ[SHARED_RUN_DIR])
    else:  # the controller, or a run without xdist: nothing starts until a test needs the proxy
        config.stash[RUN_DIR] = Path(tempfile.mkdtemp(prefix="litellm-tests-"))


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node) -> None:  # type: ignore[no-untyped-def]  # pytest-xdist: the controller, per worker
    node.workerinput["litellm_run_dir"] = str(node.config.stash[RUN_DIR])


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """The controller stops the proxy once, after every worker is done; its logs stay when a test failed."""
    if hasattr(session.config, "workerinput") or os.environ.get(SHARED_RUN_DIR):
        return
    run_dir = session.config.stash[RUN_DIR]
    (run_dir.parent / f"{run_dir.name}.lock").unlink(missing_ok=True)
    if not run_dir.is_dir():  # removed from outside (a cleanup of the temp folder): nothing to stop here
        return
    if not any(run_dir.iterdir()):
        run_dir.rmdir()
        return
    litellm_server.stop(run_dir, purge=exitstatus == 0)
    if exitstatus != 0:
        session.config.get_terminal_writer().line(f"\nthe tests' LiteLLM proxy logs: {run_dir / 'logs'}")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "litellm" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.litellm)
    items[:] = parallel_order(items)


def parallel_order(items: list[pytest.Item]) -> list[pytest.Item]:
    """The order pytest-xdist hands tests out in: the `long` ones first, so that none ends the run alone;
    then the rest with the fault matrix's cells (test_fault, ~200 of them, which mostly wait out timeouts)
    spread evenly among the other tests (which mostly keep the CPU busy), not all in one stretch that leaves
    the CPU idle and another that overloads it. Deterministic: every worker must collect the same order."""
    long = [item for item in items if item.get_closest_marker("long")]
    rest = [item for item in items if not item.get_closest_marker("long")]
    cells = [item for item in rest if getattr(item, "originalname", "") == "test_fault"]
    rest = [item for item in rest if getattr(item, "originalname", "") != "test_fault"]
    merged: list[pytest.Item] = []
    placed = 0
    for n, item in enumerate(rest, start=1):
        merged.append(item)
        due = n * len(cells) // len(rest)  # the cells that belong before the next of the rest
        merged.extend(cells[placed:due])
        placed = due
    return long + merged + cells[placed:]


@pytest.fixture(scope="session")
def litellm(pytestconfig: pytest.Config) -> Proxy:
    url, key = os.environ.get("LITELLM_URL"), os.environ.get("LITELLM_MASTER_KEY")
    if url and key:
        return Proxy(url, key)
    up = SERVER_DIR / "up"
    if not up.exists():
        if os.environ.get("CI"):
            pytest.fail(HOW_TO)
        pytest.skip(HOW_TO)
    run_dir = pytestconfig.stash[RUN_DIR]
    # Every worker runs `up` on the same run dir, one at a time: the first starts the proxy, the others get
    # the running one (two `up`s at the same moment on a new run dir can see it half made and refuse it).
    with open(run_dir.parent / f"{run_dir.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            url, key = litellm_server.start(run_dir)
        except litellm_server.StartFailed as err:
            pytest.fail(f"litellm-server up failed:\n{err}")
    return Proxy(url, key, run_dir / "logs" / "proxy.log")


@pytest.fixture(scope="session")
def proxy_log(litellm: Proxy) -> Optional[Path]:
    """The proxy's own log (its access log lines included): <run-dir>/logs/proxy.log of the proxy this
    fixture started, or LITELLM_PROXY_LOG for one given by LITELLM_URL; None when unknown."""
    if litellm.log is not None:
        return litellm.log
    given = os.environ.get("LITELLM_PROXY_LOG")
    return Path(given) if given else None


@pytest.fixture(scope="session")
def api(litellm: Proxy) -> LiteLLMClient:
    """A direct client for asserting what is really on the proxy."""
    return LiteLLMClient(litellm.url, litellm.master_key, ClientSettings())


@pytest.fixture
def unique() -> str:
    """A short unique prefix, so tests sharing one proxy never collide."""
    return "t" + uuid.uuid4().hex[:10]


@pytest.fixture
def tap(litellm: Proxy) -> Iterator[PassThrough]:
    """A counting, fault-injecting pass-through in front of the proxy."""
    with PassThrough(litellm.url) as passthrough:
        yield passthrough


@pytest.fixture
def users(api: LiteLLMClient) -> Iterator[list[str]]:
    """User ids to delete after the test, whatever happened (their keys go with them)."""
    made: list[str] = []
    yield made
    for user_id in made:
        try:
            api.user_delete(user_id)
        except LiteLLMError:
            pass



def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """The real-engine tier's own count (marker `engine`), so a run shows that it ran and skipped none."""
    counts = {outcome: len({report.nodeid for report in terminalreporter.stats.get(outcome, [])
                            if "engine" in getattr(report, "keywords", {})})
              for outcome in ("passed", "failed", "skipped", "error")}
    if any(counts.values()):
        terminalreporter.write_line("real-engine tier: " + ", ".join(f"{n} {outcome}" for outcome, n in counts.items()))
