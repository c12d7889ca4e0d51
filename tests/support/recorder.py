"""A dynamic provider for testing the engine stand-in itself (tests/test_engine_fidelity.py), without LiteLLM.

Its "cloud" is a folder (RECORDER_DIR in the plugin's environment): one JSON file per object, and a log of
every call with start and end times, so a test can see exactly what the engine asked for and in which order.
What it does is steered by its inputs:

    value            a plain setting: a change is an update
    identity         a change forces a replacement
    dbr              answer deleteBeforeReplace=true
    fixed_id         use this id (a caller-chosen identity, as LiteLLM users have); else a new id per create
    fail_create      Create raises (after logging)
    fail_update      Update raises
    empty_id         Create answers an empty id
    invalid          Check fails, naming the field
    sleep            seconds each Create/Delete/Read takes (to see parallelism)
"""

from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path
from typing import Any, Optional

import pulumi
from pulumi.dynamic import CheckFailure, CheckResult, ConfigureRequest, CreateResult, DiffResult, ReadResult
from pulumi.dynamic import Resource, ResourceProvider, UpdateResult

SETTINGS = ("value", "identity")


def _cloud() -> Path:
    return Path(os.environ["RECORDER_DIR"])


def log(event: str, **fields: Any) -> None:
    line = json.dumps({"event": event, "t": time.monotonic(), "pid": os.getpid(), **fields}) + "\n"
    with open(_cloud() / "log.jsonl", "a") as out:  # one small append per line: whole lines, any thread
        out.write(line)


def events(cloud: Path) -> list[dict[str, Any]]:
    path = cloud / "log.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def objects(cloud: Path) -> dict[str, dict[str, Any]]:
    """What exists in the cloud, by id."""
    return {p.stem: json.loads(p.read_text()) for p in cloud.glob("obj-*.json")} if cloud.exists() else {}


def _object_file(id_: str) -> Path:
    return _cloud() / f"obj-{id_}.json"


class RecorderProvider(ResourceProvider):
    def configure(self, req: ConfigureRequest) -> None:
        log("configure", token=req.config.get("rec:token"))

    def check(self, olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        log("check", name=news.get("name"))
        failures = [CheckFailure("invalid", "invalid: the test asked for a failure")] if news.get("invalid") else []
        return CheckResult(news, failures)

    def diff(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        changed = [k for k in SETTINGS if olds.get(k) != news.get(k)]
        log("diff", id=id_, name=news.get("name"), changed=changed)
        replaces = ["identity"] if "identity" in changed else []
        return DiffResult(changes=bool(changed), replaces=replaces, delete_before_replace=bool(news.get("dbr")))

    def create(self, props: dict[str, Any]) -> CreateResult:
        id_ = props.get("fixed_id") or uuid.uuid4().hex[:12]
        log("create", id=id_, name=props.get("name"))
        time.sleep(props.get("sleep") or 0)
        if props.get("fail_create"):
            log("create-failed", id=id_, name=props.get("name"))
            raise RuntimeError(f"create of {props.get('name')} failed as the test asked")
        if props.get("empty_id"):
            return CreateResult("", props)
        _object_file(id_).write_text(json.dumps({k: props.get(k) for k in ("name", *SETTINGS)}))
        log("created", id=id_, name=props.get("name"))
        return CreateResult(id_, {**props, "secret_out": f"s3cr3t-{id_}", "read_count": 0})

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        log("read", id=id_, name=props.get("name"))
        time.sleep(props.get("sleep") or 0)
        if not _object_file(id_).exists():
            return ReadResult("", {})
        live = json.loads(_object_file(id_).read_text())
        # read_count changes on every read (a server-maintained value): not drift, Diff ignores it.
        return ReadResult(id_, {**props, **live, "read_count": (props.get("read_count") or 0) + 1})

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        log("update", id=id_, name=news.get("name"))
        if news.get("fail_update"):
            raise RuntimeError(f"update of {news.get('name')} failed as the test asked")
        _object_file(id_).write_text(json.dumps({k: news.get(k) for k in ("name", *SETTINGS)}))
        return UpdateResult({**news, "secret_out": olds.get("secret_out"), "read_count": olds.get("read_count")})

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        log("delete", id=id_, name=props.get("name"))
        time.sleep(props.get("sleep") or 0)
        _object_file(id_).unlink(missing_ok=True)
        log("deleted", id=id_, name=props.get("name"))


class Rec(Resource, module="test", name="Rec"):
    secret_out: pulumi.Output[str]

    def __init__(self, name: str, props: dict[str, Any], opts: Optional[pulumi.ResourceOptions] = None) -> None:
        super().__init__(RecorderProvider(), name, {"name": name, "secret_out": None, "read_count": None, **props},
                         opts)
