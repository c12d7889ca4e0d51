"""The engine stand-in (tests/harness) does what the real `pulumi` engine does to a dynamic provider, and our
providers survive it. docs/engine-fidelity.md maps each behaviour to the engine function it follows.

Most checks use a recording provider (tests/support/recorder.py) in the real plugin process, so each engine
behaviour is seen exactly (which call, in which order, with what); the data-loss scenario of issue 9 and the
environment run against the real LiteLLM proxy.
"""

from __future__ import annotations

import json
import os
import ssl
import subprocess
from pathlib import Path
from typing import Any, Callable, Iterator

import pulumi
import pytest

from components import UserWithKey, UserWithKeyArgs
from harness import EngineError, PluginError, Stack, clean_env, is_secret
from providers import User, UserArgs
from providers.client import LiteLLMClient, NotFound
from support import recorder
from support.passthrough import PassThrough
from support.proxy_state import key_alive, keys_of, user_exists

TESTS = Path(__file__).resolve().parent


# ----------------------------------------------------------------- recorder
Spec = dict[str, dict[str, Any]]


def program_of(spec: Spec, secret_outputs: bool = False) -> Callable[[], None]:
    """Rec resources as `spec` says, in its order; `identity_from: X` makes the input `identity` depend on
    X's id (so replacing X replaces it), `value_from: X` makes `value` depend on X's id."""

    def run() -> None:
        made: dict[str, recorder.Rec] = {}
        for name, props in spec.items():
            props = dict(props)
            for field in ("identity", "value"):
                source = props.pop(f"{field}_from", None)
                if source:
                    props[field] = made[source].id
            opts = pulumi.ResourceOptions(additional_secret_outputs=["secret_out"]) if secret_outputs else None
            made[name] = recorder.Rec(name, props, opts)

    return run


class Cloud:
    """The recorder's folder: its objects and the log of the calls the plugin got."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def events(self, *kinds: str) -> list[dict[str, Any]]:
        return [e for e in recorder.events(self.path) if not kinds or e["event"] in kinds]

    def calls(self, *kinds: str) -> list[tuple[str, str]]:
        """(event, resource name) in order."""
        return [(e["event"], e.get("name")) for e in self.events(*kinds)]

    def objects(self) -> dict[str, dict[str, Any]]:
        return recorder.objects(self.path)

    def clear_log(self) -> None:
        (self.path / "log.jsonl").unlink(missing_ok=True)


@pytest.fixture
def cloud(tmp_path: Path) -> Cloud:
    path = tmp_path / "cloud"
    path.mkdir()
    return Cloud(path)


@pytest.fixture
def rec_stack(tmp_path: Path, cloud: Cloud) -> Callable[..., Stack]:
    def make(spec: Spec, **kwargs: Any) -> Stack:
        env = {**os.environ, "PYTHONPATH": str(TESTS), "RECORDER_DIR": str(cloud.path)}
        secret_outputs = kwargs.pop("secret_outputs", False)
        return Stack(tmp_path / "state", {"rec:token": "token-1"}, secret_keys=(), plugin_env=env,
                     program=program_of(spec, secret_outputs), **kwargs)

    return make


def max_overlap(cloud: Cloud, start: str, end: str) -> int:
    """The most calls that were between `start` and `end` at once (by the plugin's clock)."""
    edges = sorted([(e["t"], 1) for e in cloud.events(start)] + [(e["t"], -1) for e in cloud.events(end)])
    running = peak = 0
    for _, step in edges:
        running += step
        peak = max(peak, running)
    return peak


def entries(stack: Stack, name: str) -> list[Any]:
    return [r for r in stack.resources() if r.custom and r.name == name]


# ------------------------------------------------------ pending replacement
def test_a_failed_delete_before_replace_leaves_it_pending_and_the_next_up_replaces_it_without_a_second_delete(
    rec_stack, cloud
):
    spec: Spec = {"a": {"identity": "one", "fixed_id": "a1", "dbr": True}}
    stack = rec_stack(spec)
    stack.up()

    spec["a"].update(identity="two", fail_create=True)
    cloud.clear_log()
    with pytest.raises(EngineError):
        stack.up()
    assert cloud.calls("delete", "create") == [("delete", "a"), ("create", "a")]
    [pending] = entries(stack, "a")
    assert pending.pending_replacement and pending.id == "a1"  # kept, marked, old id

    # Back to the old identity: Diff sees no change, the engine replaces it anyway, and does not delete again.
    spec["a"].update(identity="one", fail_create=False)
    cloud.clear_log()
    up = stack.up()
    assert up.ops()["Rec/a"] == "replace"
    assert cloud.calls("delete", "create") == [("create", "a")]
    [live] = entries(stack, "a")
    assert not live.pending_replacement and cloud.objects() == {"obj-a1": {"name": "a", "value": None, "identity": "one"}}
    assert stack.up().ops()["Rec/a"] == "same"


def test_a_pending_replacement_whose_diff_says_create_first_is_only_created(rec_stack, cloud):
    """pulumi 3.274 (continueStepsFromDiff): a resource pending replacement was deleted by the failed run, so
    whatever order Diff asks for now, it is only created; nothing deletes it by its old id at the end of the
    run (the harness's earlier reading of the engine did, which deleted a caller-chosen id just created)."""
    spec: Spec = {"a": {"identity": "one", "fixed_id": "a1", "dbr": True}}
    stack = rec_stack(spec)
    stack.up()
    spec["a"].update(identity="two", fail_create=True)
    with pytest.raises(EngineError):
        stack.up()

    spec["a"].update(identity="one", fail_create=False, dbr=False)
    cloud.clear_log()
    stack.up()
    assert cloud.calls("delete", "create") == [("create", "a")]
    assert cloud.objects() == {"obj-a1": {"name": "a", "value": None, "identity": "one"}}
    assert [(r.id, r.pending_replacement, r.delete) for r in entries(stack, "a")] == [("a1", False, False)]


def test_a_dependent_already_pending_replacement_is_replaced_by_its_own_registration(rec_stack, cloud):
    """Seen on pulumi 3.274 (tests/engine/test_harness_matches_engine.py): when a delete-before-replace finds
    a dependent that an earlier failed run deleted already, it diffs it but neither deletes it nor re-creates
    it as a dependent; the dependent's own registration does: Check with its old inputs, Diff, Check again
    with none, Create, and no Delete at the end (its old object is gone)."""
    spec: Spec = {"a": {"identity": "one", "fixed_id": "a1", "dbr": True}, "b": {"identity_from": "a"}}
    stack = rec_stack(spec)
    stack.up()
    spec["a"].update(identity="two", fail_create=True)
    with pytest.raises(EngineError):
        stack.up()
    assert [r.pending_replacement for r in (*entries(stack, "a"), *entries(stack, "b"))] == [True, True]

    spec["a"].update(identity="one", fail_create=False)
    cloud.clear_log()
    up = stack.up()
    assert [m for m, urn in up.rpcs if urn.endswith("::b")] == ["Diff", "Check", "Diff", "Check", "Create"]
    assert cloud.calls("delete") == []
    assert up.ops() == {"Rec/a": "replace", "Rec/b": "replace"}
    assert sorted(o["name"] for o in cloud.objects().values()) == ["a", "b"]


def test_destroy_only_drops_a_pending_replacement(rec_stack, cloud):
    spec: Spec = {"a": {"identity": "one", "dbr": True}, "b": {"value": "x"}}
    stack = rec_stack(spec)
    stack.up()
    spec["a"].update(identity="two", fail_create=True)
    with pytest.raises(EngineError):
        stack.up()
    cloud.clear_log()
    destroy = stack.destroy()
    assert cloud.calls("delete") == [("delete", "b")]  # no Delete for the pending one
    assert {s.key for s in destroy.steps if s.op == "delete"} >= {"Rec/a", "Rec/b"}
    assert [r for r in stack.resources() if r.custom] == []


# ------------------------------------------------------ create-before-delete
def test_create_before_delete_deletes_the_old_one_after_every_create_and_update_of_the_run(rec_stack, cloud):
    spec: Spec = {"a": {"identity": "one"}, "b": {"value": "x"}, "c": {"value": "x"}}
    stack = rec_stack(spec, parallel=1)
    stack.up()
    old_id = stack.resource("Rec", "a").id

    spec["a"]["identity"] = "two"
    spec["b"]["value"] = "y"
    spec["c"] = {"value_from": "a"}  # an update that waits for the new a
    cloud.clear_log()
    up = stack.up()
    assert up.ops() == {"Rec/a": "replace", "Rec/b": "update", "Rec/c": "update"}
    order = cloud.calls("create", "update", "delete")
    assert order[-1] == ("delete", "a") and sorted(order[:-1]) == [("create", "a"), ("update", "b"), ("update", "c")]
    assert [e["id"] for e in cloud.events("delete")] == [old_id]
    assert [r.id for r in entries(stack, "a")] != [old_id] and len(entries(stack, "a")) == 1


def test_a_failed_run_keeps_the_old_half_of_a_replacement_and_the_next_up_deletes_it(rec_stack, cloud):
    spec: Spec = {"a": {"identity": "one"}, "b": {"value": "x"}}
    stack = rec_stack(spec)
    stack.up()
    old_id = stack.resource("Rec", "a").id

    spec["a"]["identity"] = "two"
    spec["b"].update(value_from="a", fail_update=True)  # b's update comes after a's create, and fails
    with pytest.raises(EngineError):
        stack.up()
    assert f"obj-{old_id}" in cloud.objects()  # the deletes of a failed run never happen
    condemned = [r for r in entries(stack, "a") if r.delete]
    assert [r.id for r in condemned] == [old_id]
    assert stack.resource("Rec", "a").id != old_id

    spec["b"]["fail_update"] = False
    cloud.clear_log()
    stack.up()
    assert [e["id"] for e in cloud.events("delete")] == [old_id]
    assert f"obj-{old_id}" not in cloud.objects() and len(entries(stack, "a")) == 1


def test_refresh_reads_the_old_half_of_a_replacement_and_drops_it_once_gone(rec_stack, cloud):
    """RefreshStep reads every custom resource of the state but those pending replacement: the old half of a
    failed run's replacement too, by its old id; gone, it leaves the state and the next up deletes nothing."""
    spec: Spec = {"a": {"identity": "one"}, "b": {"value": "x"}}
    stack = rec_stack(spec)
    stack.up()
    old_id = stack.resource("Rec", "a").id
    spec["a"]["identity"] = "two"
    spec["b"].update(value_from="a", fail_update=True)
    with pytest.raises(EngineError):
        stack.up()
    new_id = stack.resource("Rec", "a").id

    (cloud.path / f"obj-{old_id}.json").unlink()  # the old object goes out of band
    cloud.clear_log()
    stack.refresh()
    assert sorted(e["id"] for e in cloud.events("read")) == sorted([old_id, new_id, stack.resource("Rec", "b").id])
    assert [(r.id, r.delete) for r in entries(stack, "a")] == [(new_id, False)]

    spec["b"]["fail_update"] = False
    cloud.clear_log()
    stack.up()
    assert cloud.events("delete") == []


# ---------------------------------------------------- dependent replacements
def test_delete_before_replace_first_deletes_the_dependents_it_would_replace(rec_stack, cloud):
    spec: Spec = {"a": {"identity": "one", "dbr": True}, "b": {"identity_from": "a"}, "c": {"value_from": "a"}}
    stack = rec_stack(spec)
    stack.up()

    spec["a"]["identity"] = "two"
    cloud.clear_log()
    up = stack.up()
    # b's identity depends on a: diffed with it unknown, it would be replaced, so it goes first; c would
    # only be updated, so it stays.
    assert cloud.calls("delete") == [("delete", "b"), ("delete", "a")]
    assert cloud.calls("create")[:2] == [("create", "a"), ("create", "b")]
    assert up.ops() == {"Rec/a": "replace", "Rec/b": "replace", "Rec/c": "update"}
    assert sorted(o["name"] for o in cloud.objects().values()) == ["a", "b", "c"]


# ------------------------------------------------------- the plugin session
def test_the_plugin_session_and_its_trace_follow_the_engine(rec_stack, cloud, tmp_path):
    """pulumi 3.274's calls to the plugin (tests/engine/test_harness_matches_engine.py compares them with the
    engine's), written where PULUMI_DEBUG_GRPC says, one JSON line per completed call as the engine writes."""
    trace = tmp_path / "grpc.jsonl"
    stack = rec_stack({"a": {"value": "x"}})
    stack.plugin_env["PULUMI_DEBUG_GRPC"] = str(trace)
    stack.up()
    stack.up()
    lines = [json.loads(line) for line in trace.read_text().splitlines()]
    assert [line["method"].rsplit("/", 1)[-1] for line in lines] == [
        "Handshake", "GetPluginInfo", "CheckConfig", "Configure", "Check", "Create", "Cancel",
        "Handshake", "GetPluginInfo", "CheckConfig", "DiffConfig", "Configure", "Check", "Diff", "Cancel",
    ]
    assert lines[0]["errors"] == ["rpc error: code = Unimplemented desc = Method not implemented!"]
    configure = lines[3]["request"]
    assert configure["variables"] == {"pulumi-python:config:rec:token": "token-1"}
    assert (configure["urn"], configure["type"], configure["name"]) == (
        "urn:pulumi:test::litellm-access::pulumi:providers:pulumi-python::default",
        "pulumi:providers:pulumi-python", "default")
    assert {line["metadata"]["name"] for line in lines} == {"pulumi-python"}
    second_check = lines[12]["request"]
    assert second_check["olds"]["value"] == "x" and second_check["oldOutputs"]["secret_out"].startswith("s3cr3t-")


# --------------------------------------------- provider config on refresh/destroy
def test_refresh_and_destroy_configure_the_plugin_from_the_last_up_unless_run_program(rec_stack, cloud):
    stack = rec_stack({"a": {"value": "x"}})
    stack.up()
    stack.config["rec:token"] = "token-2"  # changed, no up yet

    cloud.clear_log()
    stack.refresh()
    stack.preview()
    stack.refresh(run_program=True)
    assert [e["token"] for e in cloud.events("configure")] == ["token-1", "token-2", "token-2"]

    cloud.clear_log()
    stack.destroy()
    assert [e["token"] for e in cloud.events("configure")] == ["token-1"]


# ------------------------------------------------------ refresh calls Diff
def test_refresh_reports_what_diff_says_not_every_changed_output(rec_stack, cloud):
    stack = rec_stack({"a": {"value": "x"}})
    stack.up()
    a = stack.resource("Rec", "a")

    refresh = stack.refresh()  # read_count changed (a server-side counter): Diff says nothing changed
    assert [m for m, _ in refresh.rpcs if m in ("Read", "Diff")] == ["Read", "Diff"]
    assert refresh.ops() == {"Rec/a": "same"} and "read_count" in refresh.step("Rec", "a").changed

    (cloud.path / f"obj-{a.id}.json").write_text('{"name": "a", "value": "edited", "identity": null}')
    assert stack.refresh().ops() == {"Rec/a": "update"}


# ------------------------------------------------------ first failure stops
def test_the_first_failed_step_cancels_the_steps_not_started(rec_stack, cloud):
    # `bad` fails half a second in, while `gate` (registered with it) is surely running: failing at once
    # raced gate's registration on a loaded machine.
    spec: Spec = {"bad": {"fail_create": True, "sleep": 0.5}, "gate": {"sleep": 2.0}}
    spec.update({f"late{i}": {"value_from": "gate"} for i in range(3)})  # registered once gate is done
    stack = rec_stack(spec)
    with pytest.raises(EngineError):
        stack.up()
    assert sorted(cloud.calls("create")) == [("create", "bad"), ("create", "gate")]
    assert {r.name for r in stack.resources() if r.custom} == {"gate"}  # what was done is kept


def test_steps_waiting_for_a_slot_are_not_started_after_a_failure(rec_stack, cloud):
    """With --parallel 1 the other registrations wait for the failing step; none of them may start after it
    failed (the program registers `bad` first; whichever ran before it, nothing runs after)."""
    spec: Spec = {"bad": {"fail_create": True, "sleep": 0.5}}
    spec.update({f"other{i}": {} for i in range(4)})
    stack = rec_stack(spec, parallel=1)
    with pytest.raises(EngineError):
        stack.up()
    [failed_at] = [e["t"] for e in cloud.events("create-failed")]
    assert [e["name"] for e in cloud.events("create") if e["t"] > failed_at] == []
    assert len(cloud.events("create")) < 5


def test_a_check_failure_bails_preview_and_up(rec_stack, cloud):
    spec: Spec = {"gate": {"sleep": 0.5}, "bad": {"invalid": True}, "after": {"value_from": "gate"}}
    with pytest.raises(EngineError, match="invalid: the test asked for a failure"):
        rec_stack(spec).preview()
    cloud.clear_log()
    stack = rec_stack(spec)
    with pytest.raises(EngineError, match="invalid: the test asked for a failure"):
        stack.up()
    assert ("check", "after") not in cloud.calls("check")  # registered after the failure: never checked
    assert {r.name for r in stack.resources() if r.custom} == {"gate"}


# -------------------------------------------------------------- parallelism
def test_up_refresh_and_destroy_run_independent_steps_in_parallel_dependents_after(rec_stack, cloud):
    spec: Spec = {f"r{i}": {"sleep": 0.5} for i in range(6)}
    spec["child"] = {"value_from": "r0", "sleep": 0.5}
    stack = rec_stack(spec)
    stack.up()
    assert 2 <= max_overlap(cloud, "create", "created") <= 4  # the plugin serves 4 calls at once
    [parent_done] = [e["t"] for e in cloud.events("created") if e["name"] == "r0"]
    [child_start] = [e["t"] for e in cloud.events("create") if e["name"] == "child"]
    assert child_start > parent_done

    cloud.clear_log()
    stack.refresh()
    reads = cloud.events("read")
    assert len(reads) == 7 and max(e["t"] for e in reads) - min(e["t"] for e in reads) < 0.5 * 6

    cloud.clear_log()
    stack.destroy()
    assert 2 <= max_overlap(cloud, "delete", "deleted") <= 4
    [child_gone] = [e["t"] for e in cloud.events("deleted") if e["name"] == "child"]
    [parent_delete] = [e["t"] for e in cloud.events("delete") if e["name"] == "r0"]
    assert parent_delete > child_gone


def test_parallel_one_runs_one_step_at_a_time(rec_stack, cloud):
    stack = rec_stack({f"r{i}": {"sleep": 0.2} for i in range(4)}, parallel=1)
    stack.up()
    stack.destroy()
    assert max_overlap(cloud, "create", "created") == 1 and max_overlap(cloud, "delete", "deleted") == 1


# ------------------------------------------------------ secrets on same steps
def test_additional_secret_outputs_are_applied_to_an_unchanged_resource(rec_stack, cloud):
    spec: Spec = {"a": {"value": "x"}}
    rec_stack(spec).up()  # a program that did not ask for the output to be secret
    stack = rec_stack(spec, secret_outputs=True)
    assert not is_secret(stack.resource("Rec", "a").outputs["secret_out"])
    assert stack.up().ops() == {"Rec/a": "same"}
    assert is_secret(stack.resource("Rec", "a").outputs["secret_out"])


# ---------------------------------------------------------------- empty ids
def test_an_empty_id_from_create_fails_the_step_and_records_nothing(rec_stack, cloud):
    stack = rec_stack({"a": {"empty_id": True}})
    with pytest.raises(EngineError, match="empty resource.ID"):
        stack.up()
    assert entries(stack, "a") == []


def test_an_adopted_key_takes_its_id_from_the_lookup_not_from_the_answer(tmp_path, litellm, api, unique):
    """No path of ours returns an empty id: adoption takes over the key it found by alias, and records that
    key's hash even when /key/update answers without `token` (the answer is rewritten to lose it)."""
    api.user_new({"user_id": unique, "user_email": f"{unique}@example.org", "auto_create_key": False})
    existing = api.key_generate({"user_id": unique, "key_alias": unique, "models": ["fake-mock"]})["token"]

    def drop_token(method: str, path: str, query: str, status: int, payload: bytes, fetch: Any) -> tuple[int, bytes]:
        if path == "/key/update" and status == 200:
            answer = json.loads(payload)
            answer.pop("token", None)
            return status, json.dumps(answer).encode()
        return status, payload

    user = {"user_id": unique, "user_email": f"{unique}@example.org", "user_role": "internal_user",
            "models": ["fake-mock"], "user_models": ["fake-mock"], "adopt_existing": True}
    with PassThrough(litellm.url, rewrite=drop_token) as tap:
        stack = Stack(tmp_path / "state", {"litellm:url": tap.url, "litellm:token": litellm.master_key,
                                           "litellm:users": [user]})
        try:
            stack.up()
            assert stack.resource("Key", unique).id == existing
            assert [row["token"] for row in keys_of(api, unique)] == [existing]
        finally:
            stack.destroy()
    assert not user_exists(api, unique)


# ------------------------------------------------------------------- aliases
def test_an_alias_takes_over_the_old_entry_with_no_create_or_delete(tmp_path, cloud):
    env = {**os.environ, "PYTHONPATH": str(TESTS), "RECORDER_DIR": str(cloud.path)}
    name = {"current": "old"}

    def program() -> None:
        aliases = [pulumi.Alias(name="old")] if name["current"] != "old" else None
        recorder.Rec(name["current"], {"identity": "same", "fixed_id": "x1"}, pulumi.ResourceOptions(aliases=aliases))

    stack = Stack(tmp_path / "state", {"rec:token": "token-1"}, secret_keys=(), plugin_env=env, program=program)
    stack.up()
    name["current"] = "new"
    cloud.clear_log()
    up = stack.up()
    assert cloud.calls("create", "delete") == [] and set(up.ops()) == {"Rec/new"}
    assert [(r.name, r.id) for r in stack.resources() if r.custom] == [("new", "x1")]


def test_a_urn_registered_twice_fails_the_run(rec_stack, cloud):
    def program() -> None:
        recorder.Rec("twice", {"identity": "one"})
        recorder.Rec("twice", {"identity": "two"})

    stack = rec_stack({})
    stack.program = program
    with pytest.raises(EngineError, match=r"Duplicate resource URN '\S+::twice'; try giving it a unique name"):
        stack.up()
    assert cloud.calls("create") == [("create", "twice")]


# ------------------------------------------------------------------- import
def test_import_fails_in_the_plugin_before_any_provider_code(tmp_path, litellm):
    stack = Stack(tmp_path / "state", {"litellm:url": litellm.url, "litellm:token": litellm.master_key})
    with pytest.raises(EngineError, match="__provider"):
        stack.import_("pulumi-python:dynamic/litellm:User", "someone", "someone")


# ------------------------------------------------- programs with one user (config: user_id, user_email)
def person(user_id: str) -> dict[str, str]:
    return {"litellm:user_id": user_id, "litellm:user_email": f"{user_id}@example.org"}


def user_program() -> None:
    config = pulumi.Config("litellm")
    User("person", UserArgs(url=config.require("url"), token=config.require_secret("token"),
                            user_id=config.require("user_id"), user_email=config.require("user_email"),
                            user_role="internal_user", models=["fake-mock"]))


def component_program() -> None:
    config = pulumi.Config("litellm")
    UserWithKey("person", UserWithKeyArgs(
        url=config.require("url"), token=config.require_secret("token"), user_id=config.require("user_id"),
        user_email=config.require("user_email"), user_role="internal_user", models=["fake-mock"],
        user_models=["fake-mock"], auto_create_key=config.require_bool("auto")))


# -------------------------------------------------------------- environment
def test_the_plugin_inherits_the_callers_environment(tmp_path, litellm, api, tap, unique, monkeypatch):
    """LITELLM_RETRY_ATTEMPTS reaches the providers through the environment `pulumi` runs in: with it at 0,
    one 503 fails the create; without it (a clean environment), the default retries get past it."""
    config = {"litellm:url": tap.url, "litellm:token": litellm.master_key, **person(unique)}
    monkeypatch.setenv("LITELLM_RETRY_ATTEMPTS", "0")
    tap.inject("status", method="POST", path="/user/new", status=503)
    with pytest.raises(EngineError, match="gave up after 1 attempt"):
        Stack(tmp_path / "a", config, program=user_program).up()
    assert tap.count(method="POST", path="/user/new") == 1

    tap.reset()
    tap.inject("status", method="POST", path="/user/new", status=503)
    clean = Stack(tmp_path / "b", config, program=user_program, plugin_env=clean_env())
    try:
        clean.up()
        assert tap.count(method="POST", path="/user/new") == 2 and user_exists(api, unique)
    finally:
        clean.destroy()



def test_requests_ca_bundle_from_the_environment_reaches_the_plugin(tmp_path, litellm, api, unique, monkeypatch):
    """A proxy behind TLS with a private CA: refused without REQUESTS_CA_BUNDLE, trusted with it, both
    set only in the environment `pulumi` (here: the test) runs in."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)

    monkeypatch.setenv("LITELLM_RETRY_ATTEMPTS", "0")
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    with PassThrough(litellm.url, tls=context) as tls_tap:
        config = {"litellm:url": tls_tap.url, "litellm:token": litellm.master_key, **person(unique)}
        with pytest.raises(EngineError, match="TLS verification failed"):
            Stack(tmp_path / "a", config, program=user_program).up()
        assert not user_exists(api, unique)

        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert))
        stack = Stack(tmp_path / "b", config, program=user_program)
        try:
            stack.up()
            assert user_exists(api, unique)
        finally:
            stack.destroy()
        assert not user_exists(api, unique)


# ---------------------------------------- issue 9: a reverted user_id change loses nothing
@pytest.fixture
def blocker(api: LiteLLMClient, unique: str) -> Iterator[str]:
    """A user that already exists on the proxy, so a change to its user_id fails at create."""
    user_id = f"{unique}-taken"
    api.user_new({"user_id": user_id, "user_email": f"{user_id}@example.org", "auto_create_key": False})
    yield user_id
    api.user_delete(user_id)


@pytest.mark.parametrize("program, auto", [(user_program, False), (component_program, False),
                                           (component_program, True)], ids=["User", "UserWithKey", "UserWithKey-auto"])
def test_reverting_a_failed_user_id_change_keeps_the_user_and_its_key(
    tmp_path, litellm, api, unique, blocker, program, auto
):
    user_a = f"{unique}-a"
    config = {"litellm:url": litellm.url, "litellm:token": litellm.master_key, **person(user_a),
              "litellm:auto": "true" if auto else "false"}
    stack = Stack(tmp_path / "state", config, program=program)
    try:
        stack.up()
        stack.config["litellm:user_id"] = blocker  # exists already: the create after the delete fails
        with pytest.raises(EngineError, match="already exists"):
            stack.up()
        assert stack.resource("User", "person").pending_replacement

        stack.config["litellm:user_id"] = user_a  # revert
        stack.up()
        assert user_exists(api, user_a)
        users = [r for r in stack.resources() if r.type.endswith(":User")]
        assert [(r.id, r.pending_replacement, r.delete) for r in users] == [(user_a, False, False)]
        if program is component_program:
            key = stack.resource("Key", "person")
            assert [row["token"] for row in keys_of(api, user_a)] == [key.id] and key_alive(api, key.id)
            assert len([r for r in stack.resources() if r.type.endswith(":Key")]) == 1
        assert {op for op in stack.up().ops().values()} == {"same"}
        assert user_exists(api, user_a)

        stack.destroy()
        assert not user_exists(api, user_a) and keys_of(api, user_a) == []
        assert user_exists(api, blocker)  # never touched
    finally:
        try:
            api.user_delete(user_a)
        except NotFound:
            pass
