"""Shared fixtures: a real LiteLLM proxy (with Postgres), a direct API client, unique names.

The proxy comes from LITELLM_URL + LITELLM_MASTER_KEY when both are set; otherwise the fixture starts one
with ../shared/litellm-server/up (or $LITELLM_SERVER_DIR/up). In CI (CI=true) a missing proxy is a failure,
never a skip.
"""

from __future__ import annotations

import os
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


@pytest.fixture(scope="session")
def litellm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxy]:
    url, key = os.environ.get("LITELLM_URL"), os.environ.get("LITELLM_MASTER_KEY")
    if url and key:
        yield Proxy(url, key)
        return
    up = SERVER_DIR / "up"
    if not up.exists():
        if os.environ.get("CI"):
            pytest.fail(HOW_TO)
        pytest.skip(HOW_TO)
    run_dir = tmp_path_factory.mktemp("litellm")
    try:
        url, key = litellm_server.start(run_dir)
    except litellm_server.StartFailed as err:
        pytest.fail(f"litellm-server up failed:\n{err}")
    try:
        yield Proxy(url, key, run_dir / "logs" / "proxy.log")
    finally:
        litellm_server.stop(run_dir)


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
