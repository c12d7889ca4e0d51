"""The whole policy pack through the real analyzer process, over gRPC, as `pulumi preview --policy-pack` runs it.

The Pulumi CLI starts a Python pack with its `pulumi-analyzer-policy-python` shim: in the pack's directory it
runs `<virtualenv>/bin/python -u -m pulumi.policy <engine address> .`, reads the port the pack's gRPC server
prints on stdout, and then calls Handshake (the Python SDK does not implement it; the engine falls back),
GetAnalyzerInfo, Configure (every policy's enforcement level and parameters, schema defaults filled in),
Analyze for each resource (its checked inputs, internal keys dropped, secrets marked) and AnalyzeStack.
This test does the same, without the CLI. The resources are the stack program's own: `__main__.py` run under
Pulumi's mock monitor with Pulumi.dev.yaml's users (scripts/program_inputs.py), each passed through its
provider's `check` as the engine does before analyzing.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator, Optional

import grpc
import pytest
import yaml
from google.protobuf import empty_pb2, json_format
from pulumi.runtime.proto import analyzer_pb2 as pb
from pulumi.runtime.proto import analyzer_pb2_grpc

from harness.values import UNKNOWN, to_struct
from policy import litellm_policies as lp
from scripts import program_inputs

# One analyzer process for the module: its tests run on one worker (scripts/test: --dist loadgroup).
pytestmark = pytest.mark.xdist_group("policy_analyzer")

ROOT = Path(__file__).resolve().parents[1]
POLICY_DIR = ROOT / "policy"
LEVELS = {"advisory": pb.ADVISORY, "mandatory": pb.MANDATORY, "remediate": pb.REMEDIATE, "disabled": pb.DISABLED}


def pack_python() -> str:
    """The interpreter the CLI's shim would use: PulumiPolicy.yaml's virtualenv, relative to the pack."""
    options = yaml.safe_load((POLICY_DIR / "PulumiPolicy.yaml").read_text())["runtime"]["options"]
    python = os.path.normpath(POLICY_DIR / options["virtualenv"] / "bin" / "python")  # not resolve(): a venv's
    return python if os.path.exists(python) else sys.executable                     # python is a symlink


@pytest.fixture(scope="module")
def analyzer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[analyzer_pb2_grpc.AnalyzerStub]:
    log = tmp_path_factory.mktemp("analyzer") / "stderr.log"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PULUMI_CONFIG")}
    with open(log, "wb") as stderr:
        process = subprocess.Popen(
            [pack_python(), "-u", "-m", "pulumi.policy", "127.0.0.1:1", "."],
            cwd=POLICY_DIR, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=stderr,
        )
    try:
        port = process.stdout.readline().decode().strip()  # the pack's first line is its port
        if not port.isdigit():
            process.kill()
            process.wait()
            pytest.fail(f"the analyzer did not start (printed {port!r}):\n{log.read_text()[-4000:]}")
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        grpc.channel_ready_future(channel).result(timeout=120)  # a hang guard, not an assertion
        yield analyzer_pb2_grpc.AnalyzerStub(channel)
        channel.close()
    finally:
        process.terminate()
        process.wait()
        process.stdout.close()


# ----------------------------------------------------------------- the engine's side
def configure(stub, info: pb.AnalyzerInfo, overrides: Optional[dict[str, Any]] = None) -> None:
    """Configure as the CLI does with a `--policy-pack-config` file: every policy, its enforcement level (the
    file's, else the policy's own), its schema defaults, then the file's parameters."""
    overrides = overrides or {}
    request = pb.ConfigureAnalyzerRequest()
    for policy in info.policies:
        settings = overrides.get(policy.name, {})
        settings = {"enforcementLevel": settings} if isinstance(settings, str) else dict(settings)
        level = settings.pop("enforcementLevel", None)
        schema = json_format.MessageToDict(policy.configSchema.properties)
        properties = {name: spec["default"] for name, spec in schema.items() if "default" in spec}
        properties.update(settings)
        request.policyConfig[policy.name].CopyFrom(pb.PolicyConfig(
            enforcementLevel=LEVELS[level] if level else policy.enforcementLevel,
            properties=to_struct(properties),
        ))
    stub.Configure(request)


def analyze(stub, resource: dict[str, Any]) -> list[pb.AnalyzeDiagnostic]:
    response = stub.Analyze(pb.AnalyzeRequest(
        urn=resource["urn"], type=resource["type"], name=resource["name"], properties=to_struct(resource["object"]),
        options=pb.AnalyzerResourceOptions(parent=resource["parent"]),
    ))
    return list(response.diagnostics)


def analyze_stack(stub, resources: list[dict[str, Any]]) -> list[pb.AnalyzeDiagnostic]:
    """AnalyzeStack gets outputs; in a preview of new resources those are their checked inputs."""
    response = stub.AnalyzeStack(pb.AnalyzeStackRequest(resources=[
        pb.AnalyzerResource(
            urn=r["urn"], type=r["type"], name=r["name"], properties=to_struct(r["object"]), parent=r["parent"],
            dependencies=r["dependencies"], options=pb.AnalyzerResourceOptions(parent=r["parent"]),
        )
        for r in resources
    ]))
    return list(response.diagnostics)


def preview(stub, resources: list[dict[str, Any]]) -> list[pb.AnalyzeDiagnostic]:
    """Every diagnostic of a preview: Analyze per resource, then AnalyzeStack."""
    diagnostics = [d for r in resources for d in analyze(stub, r)]
    return diagnostics + analyze_stack(stub, resources)


def program(users: list[dict[str, Any]], preview_mode: bool = False,
            teams: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """The stack program's resources for these users and teams, as the analyzer sees them."""
    return [{**r, "object": program_inputs.analyzer_view(r)}
            for r in program_inputs.collect(users, preview=preview_mode, teams=teams)]


def summary(diagnostics: list[pb.AnalyzeDiagnostic]) -> list[tuple[str, str]]:
    return sorted((d.policyName, d.message.split("\n", 1)[-1]) for d in diagnostics)


@pytest.fixture(scope="module")
def info(analyzer) -> pb.AnalyzerInfo:
    return analyzer.GetAnalyzerInfo(empty_pb2.Empty())


@pytest.fixture(scope="module")
def dev_stack() -> list[dict[str, Any]]:
    return program(program_inputs.dev_users(), teams=program_inputs.dev_teams())


# ----------------------------------------------------------------- tests
def test_the_analyzer_describes_the_pack(analyzer, info):
    with pytest.raises(grpc.RpcError) as handshake:
        analyzer.Handshake(pb.AnalyzerHandshakeRequest(engine_address="127.0.0.1:1", root_directory=str(POLICY_DIR)))
    assert handshake.value.code() == grpc.StatusCode.UNIMPLEMENTED  # the engine falls back to the old protocol
    assert analyzer.GetPluginInfo(empty_pb2.Empty()).version
    assert info.name == lp.PACK_NAME and info.supportsConfig
    assert [p.name for p in info.policies] == [p.name for p in lp.POLICIES]
    for served, policy in zip(info.policies, lp.POLICIES):
        assert served.description == policy.description
        assert served.enforcementLevel == LEVELS[policy.enforcement_level.value]
        kind = pb.POLICY_TYPE_STACK if isinstance(policy, lp.StackValidationPolicy) else pb.POLICY_TYPE_RESOURCE
        assert served.policy_type == kind
        schema = json_format.MessageToDict(served.configSchema.properties)
        assert {name: spec["default"] for name, spec in schema.items()} == lp.DEFAULTS[policy.name]


def test_the_dev_stack_passes_every_policy(analyzer, info, dev_stack):
    types = sorted(r["type"] for r in dev_stack)
    assert types == sorted([lp.COMPONENT_TYPE] * 3 + [lp.USER_TYPE] * 3 + [lp.KEY_TYPE] * 3 + [lp.TEAM_TYPE]
                           + [lp.MEMBER_TYPE] * 2 + ["pulumi-python:dynamic/litellm:Ledger"])
    configure(analyzer, info)
    assert summary(preview(analyzer, dev_stack)) == []


def test_the_committed_pack_config_lets_the_dev_stack_through(analyzer, info, dev_stack):
    config = json.loads((POLICY_DIR / "config.json").read_text())  # what the pipelines pass
    configure(analyzer, info, config)
    assert summary(preview(analyzer, dev_stack)) == []
    configure(analyzer, info, {**config, "litellm-key-expires": {"enforcementLevel": "mandatory", "maxDuration": "7d"}})
    assert summary(preview(analyzer, dev_stack)) == [
        ("litellm-key-expires", "Key 'dev-alice': duration '365d' is longer than the maximum key lifetime '7d' (maxDuration)"),
        ("litellm-key-expires", "Key 'dev-bob': duration '30d' is longer than the maximum key lifetime '7d' (maxDuration)"),
        ("litellm-key-expires", "Key 'jdoe@example.edu': duration '30d' is longer than the maximum key lifetime '7d' "
                                "(maxDuration)"),
    ]


def test_a_preview_with_values_unknown_until_apply_runs_every_policy(analyzer, info):
    resources = program(program_inputs.dev_users(), preview_mode=True, teams=program_inputs.dev_teams())
    keys = [r for r in resources if r["type"] == lp.KEY_TYPE]
    assert keys and all(k["object"]["user_id"] == UNKNOWN for k in keys)  # from the User, not created yet
    configure(analyzer, info)
    assert summary(preview(analyzer, resources)) == []  # no violation, and no "can't run policy" either
    risky = program([{"user_id": "ops", "user_email": "ops@example.org", "user_role": "admin", "max_budget": 5,
                      "models": ["gpt-4o"], "user_models": ["gpt-4o"], "rotate_after": "30d"}], preview_mode=True)
    assert summary(preview(analyzer, risky)) == [
        ("litellm-admin-roles", "User 'ops': user_role 'proxy_admin' for user_id 'ops': 'proxy_admin' is only for "
                                "the user ids in proxyAdmins []"),
    ]


def test_what_must_never_ship_is_reported_with_resource_field_value_and_limit(analyzer, info):
    users = [
        {"user_id": "carol", "user_email": "carol@example.org", "duration": None, "models": ["*"],
         "user_models": ["gpt-4o"], "max_budget": 5000, "user_role": "proxy_admin_viewer", "rpm_limit": 50000,
         "key_alias": "Carol Key"},
        {"user_id": "dave", "user_email": "dave@example.org", "models": ["gpt-4o"], "user_models": ["gpt-4o"],
         "rotate_after": "30d"},
    ]
    configure(analyzer, info)
    diagnostics = preview(analyzer, program(users))
    assert summary(diagnostics) == [
        ("litellm-admin-roles", "User 'carol': user_role 'proxy_admin_viewer' for user_id 'carol': "
                                "'proxy_admin_viewer' is only for the user ids in proxyAdminViewers or proxyAdmins []"),
        ("litellm-budget-required", "Key 'carol': max_budget 5000 USD is above the cap of 1000 USD (maxKeyBudget)"),
        ("litellm-budget-required", "Key 'dave': max_budget is not set, which LiteLLM treats as no budget; set "
                                    "max_budget to more than 0 and at most 1000 USD (maxKeyBudget)"),
        ("litellm-budget-required", "User 'carol': max_budget 5000 USD is above the cap of 1000 USD (maxUserBudget)"),
        ("litellm-budget-required", "User 'dave': max_budget is not set, which LiteLLM treats as no budget; set "
                                    "max_budget to more than 0 and at most 1000 USD (maxUserBudget)"),
        ("litellm-key-alias-pattern", f"Key 'carol': key_alias 'Carol Key' does not match the naming pattern "
                                      f"{lp.DEFAULT_ALIAS_PATTERN!r} (pattern)"),
        ("litellm-key-expires", "Key 'carol': duration is not set, so the key never expires; set duration to at "
                                "most '365d' (maxDuration)"),
        ("litellm-key-rotation", "Key 'carol': rotate_after is not set, so the key is never rotated; set "
                                 "rotate_after to at most '90d' (maxKeyAge)"),
        ("litellm-model-access", "Key 'carol': models ['*'] grants wildcard access ('*'); list the models, or set "
                                 "allowWildcard: true"),
        ("litellm-rate-limits", "Key 'carol': rpm_limit 50000 is above the cap of 10000 (maxRpm)"),
        ("litellm-rate-limits", "User 'carol': rpm_limit 50000 is above the cap of 10000 (maxRpm)"),
    ]
    by_policy = {d.policyName: d for d in diagnostics}
    expiry = by_policy["litellm-key-expires"]
    assert expiry.policyPackName == lp.PACK_NAME and expiry.enforcementLevel == pb.MANDATORY
    assert expiry.message.startswith(lp.KEY_EXPIRES.description + "\n")  # what the CLI prints: description, then why
    assert by_policy["litellm-key-alias-pattern"].enforcementLevel == pb.ADVISORY
    assert by_policy["litellm-key-rotation"].enforcementLevel == pb.ADVISORY
    assert all("sk-" not in d.message for d in diagnostics)  # the admin token is never in a message


def test_the_pack_config_sets_parameters_and_enforcement_levels(analyzer, info, dev_stack):
    configure(analyzer, info, {
        "litellm-key-expires": {"maxDuration": "30d"},
        "litellm-email-domains": {"allowedDomains": ["corp.example.com"], "enforcementLevel": "advisory"},
        "litellm-model-access": {"allowedModels": ["fake-gpt-4o"]},
        "litellm-budget-required": {"enforcementLevel": "disabled"},
    })
    diagnostics = preview(analyzer, dev_stack)
    assert summary(diagnostics) == [
        ("litellm-email-domains", "User 'dev-alice': user_email 'alice@example.org' has domain 'example.org', which "
                                  "is not in allowedDomains ['corp.example.com']"),
        ("litellm-email-domains", "User 'dev-bob': user_email 'bob@example.org' has domain 'example.org', which is "
                                  "not in allowedDomains ['corp.example.com']"),
        ("litellm-email-domains", "User 'jdoe@example.edu': user_email 'jdoe@example.edu' has domain 'example.edu', "
                                  "which is not in allowedDomains ['corp.example.com']"),
        ("litellm-key-expires", "Key 'dev-alice': duration '365d' is longer than the maximum key lifetime '30d' "
                                "(maxDuration)"),
        ("litellm-model-access", "Key 'dev-bob': models 'fake-gpt-4o-mini' is not in allowedModels ['fake-gpt-4o']"),
        ("litellm-model-access", "Key 'jdoe@example.edu': models 'fake-mock' is not in allowedModels ['fake-gpt-4o']"),
        ("litellm-model-access", "Team 'dev-platform': models 'fake-gpt-4o-mini' is not in allowedModels "
                                 "['fake-gpt-4o']"),
        ("litellm-model-access", "User 'dev-bob': models 'fake-gpt-4o-mini' is not in allowedModels ['fake-gpt-4o']"),
        ("litellm-model-access", "User 'jdoe@example.edu': models 'fake-mock' is not in allowedModels ['fake-gpt-4o']"),
    ]
    assert {d.enforcementLevel for d in diagnostics if d.policyName == "litellm-email-domains"} == {pb.ADVISORY}


def test_stack_policies_catch_identities_litellm_rejects_only_at_apply(analyzer, info, dev_stack):
    """The program itself refuses duplicate users in litellm:users; these arrive another way (a second Key or
    User declared elsewhere in the program), and the stack policies are the net for them."""
    resources = copy.deepcopy(dev_stack)
    bob_key = next(r for r in resources if r["type"] == lp.KEY_TYPE and r["name"] == "dev-bob")
    alice = next(r for r in resources if r["type"] == lp.USER_TYPE and r["name"] == "dev-alice")
    extra_key = {**copy.deepcopy(bob_key), "name": "bob-ci", "urn": bob_key["urn"].replace("::dev-bob", "::bob-ci")}
    extra_user = copy.deepcopy(alice)
    extra_user.update(name="alice2", urn=alice["urn"].replace("::dev-alice", "::alice2"))
    extra_user["object"].update(user_id="alice2", user_email="ALICE@example.org")
    configure(analyzer, info)
    diagnostics = analyze_stack(analyzer, resources + [extra_key, extra_user])
    assert summary(diagnostics) == [
        ("litellm-unique-key-aliases", "Key 'bob-ci': key_alias 'dev-bob-key' is already used by Key 'dev-bob' on "
                                       "the same proxy; LiteLLM rejects the second key at apply time"),
        ("litellm-unique-users", "User 'alice2': user_email 'ALICE@example.org' is already used by User 'dev-alice' "
                                 "('alice@example.org') on the same proxy (emails compare case-insensitively); "
                                 "LiteLLM rejects the second user at apply time"),
    ]
    assert {d.urn for d in diagnostics} == {extra_key["urn"], extra_user["urn"]}
    assert all(d.enforcementLevel == pb.MANDATORY for d in diagnostics)
