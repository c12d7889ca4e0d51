"""Each policy of the LiteLLM policy pack, through pulumi_policy's own argument classes.

Properties are built the way the analyzer builds them (deserialize_properties, then unknown_checking_proxy,
which raises on any unknown value a policy touches), from the checked inputs of a User and a Key like the
dev stack's. Every policy has passing and failing cases; the failing ones check that the message names the
resource, the field, the value and the limit.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any, Optional

import jsonschema
import pytest
from pulumi_policy import (
    EnforcementLevel,
    PolicyCustomTimeouts,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.deserialize import deserialize_properties
from pulumi_policy.proxy import UNKNOWN_ARRAY_VALUE, UNKNOWN_NUMBER_VALUE, UNKNOWN_STRING_VALUE, unknown_checking_proxy

from harness.values import secret
from policy import litellm_policies as lp
from providers import fields

URL = "http://127.0.0.1:4000"
USER = {
    "url": URL,
    "token": secret("sk-admin"),
    "user_id": "alice",
    "user_email": "alice@example.org",
    "user_alias": "alice",
    "user_role": "internal_user",
    "models": ["gpt-4o"],
    "max_budget": 10.0,
    "tpm_limit": 100000.0,
    "rpm_limit": 1000.0,
    "auto_create_key": False,
    "key_alias": "alice",
    "adopt_existing": False,
}
KEY = {
    "url": URL,
    "token": secret("sk-admin"),
    "user_id": "alice",
    "key_alias": "alice",
    "models": ["gpt-4o"],
    "max_budget": 10.0,
    "budget_duration": "30d",
    "duration": "365d",
    "max_parallel_requests": 100.0,
    "tpm_limit": 100000.0,
    "rpm_limit": 1000.0,
    "spend": 0.0,
    "adopt_existing": False,
    "rotate_after": "90d",
}
TEAM = {
    "url": URL,
    "token": secret("sk-admin"),
    "team_id": "research",
    "team_alias": "Research",
    "models": ["gpt-4o"],
    "max_budget": 500.0,
    "budget_duration": "30d",
    "tpm_limit": 100000.0,
    "rpm_limit": 1000.0,
    "adopt_existing": False,
}
MEMBER = {"url": URL, "token": secret("sk-admin"), "team_id": "research", "user_id": "alice", "role": "user",
          "adopt_existing": False}
TYPES = {"User": lp.USER_TYPE, "Key": lp.KEY_TYPE, "Team": lp.TEAM_TYPE, "TeamMember": lp.MEMBER_TYPE}


def urn(kind: str, name: str) -> str:
    return f"urn:pulumi:dev::litellm-access::litellm:index:UserWithKey${TYPES[kind]}::{name}"


def options() -> PolicyResourceOptions:
    return PolicyResourceOptions(False, [], None, [], PolicyCustomTimeouts(0, 0, 0), [], None)


def props_of(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """A copy of `base` with changes; a change to `lp.ABSENT` removes the property."""
    out = copy.deepcopy(base)
    for name, value in changes.items():
        if value is ABSENT:
            out.pop(name, None)
        else:
            out[name] = value
    return out


ABSENT = object()


def analyzed(props: dict[str, Any]) -> Any:
    return unknown_checking_proxy(deserialize_properties(props))


def violations(policy: ResourceValidationPolicy, kind: str, props: dict[str, Any], config: Optional[dict] = None,
               name: str = "alice") -> list[str]:
    args = ResourceValidationArgs(TYPES[kind], analyzed(props), urn(kind, name), name, options(), None, config)
    messages: list[str] = []
    result = policy.validate(args, lambda message, _urn=None: messages.append(message))
    assert result is None  # synchronous policies
    return messages


def stack_violations(policy: StackValidationPolicy, resources: list[tuple[str, str, dict]],
                     config: Optional[dict] = None) -> list[tuple[str, Optional[str]]]:
    stack = [
        PolicyResource(TYPES[kind], analyzed(props), urn(kind, name), name, options(), None, None, [], {})
        for kind, name, props in resources
    ]
    reported: list[tuple[str, Optional[str]]] = []
    policy.validate(StackValidationArgs(stack, config), lambda message, u=None: reported.append((message, u)))
    return reported


def one(messages: list[str], *fragments: str) -> str:
    assert len(messages) == 1, messages
    for fragment in fragments:
        assert fragment in messages[0], (fragment, messages[0])
    return messages[0]


# ---------------------------------------------------------------- the pack as a whole
def test_the_dev_stack_shapes_pass_every_resource_policy():
    for policy in lp.POLICIES:
        if isinstance(policy, ResourceValidationPolicy):
            assert violations(policy, "User", USER) == [], policy.name
            assert violations(policy, "Key", KEY) == [], policy.name
            assert violations(policy, "Team", TEAM) == [], policy.name
            assert violations(policy, "TeamMember", MEMBER) == [], policy.name


def test_every_policy_has_a_description_a_schema_with_defaults_and_an_enforcement_level():
    names = [p.name for p in lp.POLICIES]
    assert len(set(names)) == len(names) == len(lp.DEFAULTS)
    assert set(names) == set(lp.DEFAULTS)
    for policy in lp.POLICIES:
        assert len(policy.description) > 60, policy.name
        assert policy.enforcement_level in (EnforcementLevel.MANDATORY, EnforcementLevel.ADVISORY)
        schema = {"type": "object", "properties": policy.config_schema.properties}
        jsonschema.Draft7Validator.check_schema(schema)
        defaults = {k: v["default"] for k, v in schema["properties"].items()}
        assert defaults == lp.DEFAULTS[policy.name]
        jsonschema.validate(defaults, schema)
        for spec in schema["properties"].values():
            assert spec["description"]


def test_the_committed_pack_config_is_valid_for_every_policy():
    config = json.loads((Path(lp.__file__).parent / "config.json").read_text())
    assert set(config) == set(lp.DEFAULTS)
    for policy in lp.POLICIES:
        entry = dict(config[policy.name])
        assert entry.pop("enforcementLevel") in ("advisory", "mandatory", "disabled")
        schema = {"type": "object", "properties": policy.config_schema.properties, "additionalProperties": False}
        jsonschema.validate(entry, schema)


def test_the_duration_grammar_is_the_providers():
    assert lp.DURATION_RE is fields.DURATION_RE
    assert set(lp.NAMED_SECONDS) == set(fields.NAMED_DURATIONS)
    assert {m for m in ("s", "m", "h", "d", "w", "mo")} == set(fields.UNIT_SECONDS)
    assert [lp.duration_seconds(v) for v in ("90s", "2m", "3h", "30d", "2w", "1mo", "daily", "1y", 5)] == [
        90, 120, 10800, 2592000, 1209600, 2592000, 86400, None, None]
    schema = lp.KEY_EXPIRES.config_schema.properties["maxDuration"]
    for good in ("365d", "12mo", "52w", "monthly"):
        jsonschema.validate(good, schema)
    for bad in ("1y", "365 d", "forever", ""):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, schema)


def test_policies_ignore_other_resource_types():
    args = ResourceValidationArgs(lp.COMPONENT_TYPE, analyzed({}), "urn:x", "alice", options(), None, None)
    for policy in lp.POLICIES:
        if isinstance(policy, ResourceValidationPolicy):
            reported: list[str] = []
            policy.validate(args, lambda m, _u=None: reported.append(m))
            assert reported == [], policy.name


# ---------------------------------------------------------------- key rotation
@pytest.mark.parametrize("age", ["90d", "30d", "12w", "3mo", "monthly"])
def test_key_rotation_within_the_maximum_age_passes(age):
    assert violations(lp.KEY_ROTATION, "Key", props_of(KEY, rotate_after=age)) == []


def test_a_key_that_is_never_rotated_is_a_violation():
    for props in (props_of(KEY, rotate_after=ABSENT), props_of(KEY, rotate_after=None)):
        one(violations(lp.KEY_ROTATION, "Key", props), "Key 'alice'", "rotate_after is not set", "never rotated",
            "'90d' (maxKeyAge)")


@pytest.mark.parametrize("age", ["91d", "13w", "4mo", "365d"])
def test_a_key_rotated_later_than_the_maximum_age_is_a_violation(age):
    one(violations(lp.KEY_ROTATION, "Key", props_of(KEY, rotate_after=age)),
        "Key 'alice'", f"rotate_after {age!r}", "longer than the maximum key age '90d' (maxKeyAge)")


def test_key_rotation_maximum_is_configurable_advisory_and_skips_unknowns():
    assert lp.KEY_ROTATION.enforcement_level == EnforcementLevel.ADVISORY
    assert violations(lp.KEY_ROTATION, "Key", props_of(KEY, rotate_after="7d"), {"maxKeyAge": "7d"}) == []
    one(violations(lp.KEY_ROTATION, "Key", props_of(KEY, rotate_after="8d"), {"maxKeyAge": "7d"}), "'8d'", "'7d'")
    one(violations(lp.KEY_ROTATION, "Key", KEY, {"maxKeyAge": "never"}), "maxKeyAge 'never'", "pack config")
    assert violations(lp.KEY_ROTATION, "Key", props_of(KEY, rotate_after=UNKNOWN_STRING_VALUE)) == []
    assert violations(lp.KEY_ROTATION, "User", USER) == []


# ---------------------------------------------------------------- key expiry
@pytest.mark.parametrize("duration", ["365d", "30d", "1h", "52w", "12mo", "monthly", "8760h"])
def test_key_expiry_within_the_maximum_passes(duration):
    assert violations(lp.KEY_EXPIRES, "Key", props_of(KEY, duration=duration)) == []


def test_a_key_that_never_expires_is_a_violation():
    for props in (props_of(KEY, duration=ABSENT), props_of(KEY, duration=None)):
        one(violations(lp.KEY_EXPIRES, "Key", props), "Key 'alice'", "duration is not set", "never expires",
            "'365d' (maxDuration)")


@pytest.mark.parametrize("duration", ["366d", "53w", "13mo", "8761h"])
def test_a_key_living_longer_than_the_maximum_is_a_violation(duration):
    one(violations(lp.KEY_EXPIRES, "Key", props_of(KEY, duration=duration)),
        "Key 'alice'", f"duration {duration!r}", "'365d' (maxDuration)")


def test_key_expiry_maximum_is_configurable():
    config = {"maxDuration": "30d"}
    assert violations(lp.KEY_EXPIRES, "Key", props_of(KEY, duration="30d"), config) == []
    one(violations(lp.KEY_EXPIRES, "Key", props_of(KEY, duration="31d"), config), "duration '31d'", "'30d'")
    one(violations(lp.KEY_EXPIRES, "Key", KEY, {"maxDuration": "forever"}), "maxDuration 'forever'", "pack config")


def test_key_expiry_unknown_during_preview_is_skipped_and_users_are_not_keys():
    assert violations(lp.KEY_EXPIRES, "Key", props_of(KEY, duration=UNKNOWN_STRING_VALUE)) == []
    assert violations(lp.KEY_EXPIRES, "User", USER) == []


# ---------------------------------------------------------------- budgets
@pytest.mark.parametrize("kind,base", [("User", USER), ("Key", KEY)])
def test_a_budget_within_the_cap_passes(kind, base):
    for budget in (0.01, 1, 1000, 1000.0):
        assert violations(lp.BUDGET_REQUIRED, kind, props_of(base, max_budget=budget)) == []


@pytest.mark.parametrize("kind,base,setting", [("User", USER, "maxUserBudget"), ("Key", KEY, "maxKeyBudget")])
def test_no_budget_is_a_violation(kind, base, setting):
    for props, shown in ((props_of(base, max_budget=ABSENT), "not set"), (props_of(base, max_budget=0.0), "is 0,")):
        one(violations(lp.BUDGET_REQUIRED, kind, props), f"{kind} 'alice'", "max_budget", shown,
            "no budget", f"at most 1000 USD ({setting})")


@pytest.mark.parametrize("kind,base,setting", [("User", USER, "maxUserBudget"), ("Key", KEY, "maxKeyBudget")])
def test_a_budget_above_the_cap_is_a_violation(kind, base, setting):
    one(violations(lp.BUDGET_REQUIRED, kind, props_of(base, max_budget=1000.5)),
        f"{kind} 'alice'", "max_budget 1000.5 USD", f"cap of 1000 USD ({setting})")


def test_budget_caps_are_configurable_per_kind():
    config = {"maxUserBudget": 50, "maxKeyBudget": 5}
    assert violations(lp.BUDGET_REQUIRED, "User", props_of(USER, max_budget=50.0), config) == []
    one(violations(lp.BUDGET_REQUIRED, "Key", props_of(KEY, max_budget=10.0), config),
        "max_budget 10 USD", "cap of 5 USD (maxKeyBudget)")


def test_budget_unknown_during_preview_is_skipped():
    assert violations(lp.BUDGET_REQUIRED, "Key", props_of(KEY, max_budget=UNKNOWN_NUMBER_VALUE)) == []


# ---------------------------------------------------------------- admin roles
@pytest.mark.parametrize("role", ["internal_user", "internal_user_viewer", "app_owner", "app_user"])
def test_non_admin_roles_pass(role):
    assert violations(lp.ADMIN_ROLES_POLICY, "User", props_of(USER, user_role=role)) == []


@pytest.mark.parametrize("role,shown,setting", [
    ("proxy_admin", "'proxy_admin'", "proxyAdmins"),
    ("admin", "'admin' (= 'proxy_admin')", "proxyAdmins"),
    ("proxy_admin_viewer", "'proxy_admin_viewer'", "proxyAdminViewers or proxyAdmins"),
])
def test_an_admin_role_for_an_unlisted_user_is_a_violation(role, shown, setting):
    one(violations(lp.ADMIN_ROLES_POLICY, "User", props_of(USER, user_role=role)),
        "User 'alice'", f"user_role {shown}", "user_id 'alice'", f"{setting} []")


def test_admin_roles_are_allowed_for_the_configured_user_ids():
    config = {"proxyAdmins": ["root"], "proxyAdminViewers": ["auditor"]}
    admin = props_of(USER, user_id="root", user_role="admin")
    assert violations(lp.ADMIN_ROLES_POLICY, "User", admin, config) == []
    assert violations(lp.ADMIN_ROLES_POLICY, "User", props_of(admin, user_role="proxy_admin_viewer"), config) == []
    viewer = props_of(USER, user_id="auditor", user_role="proxy_admin_viewer")
    assert violations(lp.ADMIN_ROLES_POLICY, "User", viewer, config) == []
    one(violations(lp.ADMIN_ROLES_POLICY, "User", props_of(viewer, user_role="proxy_admin"), config),
        "user_id 'auditor'", "proxyAdmins ['root']")


def test_an_admin_role_for_a_user_id_unknown_at_preview_is_still_a_violation():
    props = props_of(USER, user_role="proxy_admin", user_id=UNKNOWN_STRING_VALUE)
    one(violations(lp.ADMIN_ROLES_POLICY, "User", props, {"proxyAdmins": ["root"]}),
        "user_role 'proxy_admin'", "not known until apply", "proxyAdmins ['root']")
    assert violations(lp.ADMIN_ROLES_POLICY, "User", props_of(USER, user_role=UNKNOWN_STRING_VALUE)) == []


# ---------------------------------------------------------------- model access
@pytest.mark.parametrize("kind,base", [("User", USER), ("Key", KEY)])
def test_listed_models_pass(kind, base):
    assert violations(lp.MODEL_ACCESS, kind, props_of(base, models=["gpt-4o", "claude-3"])) == []


@pytest.mark.parametrize("kind,base", [("User", USER), ("Key", KEY)])
@pytest.mark.parametrize("models,fragment", [
    (["*"], "wildcard access ('*')"),
    (["gpt-4o", "all-proxy-models"], "wildcard access ('all-proxy-models')"),
    (["openai/*"], "wildcard access ('openai/*')"),
    ([], "models is empty"),
])
def test_wildcard_model_access_is_a_violation(kind, base, models, fragment):
    one(violations(lp.MODEL_ACCESS, kind, props_of(base, models=models)),
        f"{kind} 'alice'", fragment, "allowWildcard: true")


def test_absent_models_mean_every_model():
    one(violations(lp.MODEL_ACCESS, "Key", props_of(KEY, models=ABSENT)), "models is empty")


def test_wildcards_pass_when_allowed():
    for models in (["*"], [], ["all-proxy-models"]):
        assert violations(lp.MODEL_ACCESS, "Key", props_of(KEY, models=models), {"allowWildcard": True}) == []


def test_only_allow_listed_models_when_an_allow_list_is_configured():
    config = {"allowedModels": ["gpt-4o", "gpt-4o-mini"]}
    assert violations(lp.MODEL_ACCESS, "User", props_of(USER, models=["gpt-4o-mini"]), config) == []
    one(violations(lp.MODEL_ACCESS, "User", props_of(USER, models=["gpt-4o", "o1-pro"]), config),
        "User 'alice'", "models 'o1-pro' is not in allowedModels ['gpt-4o', 'gpt-4o-mini']")
    wildcard = violations(lp.MODEL_ACCESS, "Key", props_of(KEY, models=["*"]), {**config, "allowWildcard": True})
    one(wildcard, "models '*' is not in allowedModels")
    everything = violations(lp.MODEL_ACCESS, "Key", props_of(KEY, models=[]), {**config, "allowWildcard": True})
    one(everything, "models is empty (every model)", "allowedModels")


def test_models_unknown_during_preview_are_skipped():
    assert violations(lp.MODEL_ACCESS, "Key", props_of(KEY, models=UNKNOWN_ARRAY_VALUE)) == []
    assert violations(lp.MODEL_ACCESS, "Key", props_of(KEY, models=["gpt-4o", UNKNOWN_STRING_VALUE])) == []


# ---------------------------------------------------------------- rate limits
@pytest.mark.parametrize("kind,base", [("User", USER), ("Key", KEY)])
def test_rate_limits_within_the_caps_pass(kind, base):
    props = props_of(base, rpm_limit=10000.0, tpm_limit=1000000)
    assert violations(lp.RATE_LIMITS, kind, props) == []


@pytest.mark.parametrize("kind,base", [("User", USER), ("Key", KEY)])
def test_rate_limits_above_the_caps_are_violations(kind, base):
    messages = violations(lp.RATE_LIMITS, kind, props_of(base, rpm_limit=10001.0, tpm_limit=2000000.0))
    assert len(messages) == 2
    assert f"{kind} 'alice': rpm_limit 10001 is above the cap of 10000 (maxRpm)" in messages
    assert f"{kind} 'alice': tpm_limit 2000000 is above the cap of 1000000 (maxTpm)" in messages


def test_unset_rate_limits_are_unlimited_and_a_violation_unless_not_required():
    props = props_of(KEY, rpm_limit=ABSENT, tpm_limit=None)
    messages = violations(lp.RATE_LIMITS, "Key", props)
    assert len(messages) == 2
    assert all("is not set, so requests are unlimited" in m for m in messages)
    assert any("rpm_limit" in m and "at most 10000 (maxRpm)" in m for m in messages)
    assert violations(lp.RATE_LIMITS, "Key", props, {"requireLimits": False}) == []


def test_rate_limit_caps_are_configurable_and_unknowns_skipped():
    config = {"maxRpm": 100, "maxTpm": 5000}
    one(violations(lp.RATE_LIMITS, "User", props_of(USER, rpm_limit=60.0, tpm_limit=6000.0), config),
        "tpm_limit 6000 is above the cap of 5000 (maxTpm)")
    unknown = props_of(USER, rpm_limit=UNKNOWN_NUMBER_VALUE, tpm_limit=UNKNOWN_NUMBER_VALUE)
    assert violations(lp.RATE_LIMITS, "User", unknown, config) == []


# ---------------------------------------------------------------- email domains
def test_email_domains_inactive_until_configured():
    assert violations(lp.EMAIL_DOMAINS, "User", props_of(USER, user_email="eve@elsewhere.net")) == []


def test_emails_in_the_configured_domains_pass_case_insensitively():
    config = {"allowedDomains": ["Example.org", "corp.example.com"]}
    for email in ("alice@example.org", "Alice@EXAMPLE.ORG", "bob@corp.example.com"):
        assert violations(lp.EMAIL_DOMAINS, "User", props_of(USER, user_email=email), config) == []


def test_an_email_outside_the_configured_domains_is_a_violation():
    config = {"allowedDomains": ["example.org"]}
    one(violations(lp.EMAIL_DOMAINS, "User", props_of(USER, user_email="eve@example.org.evil.net"), config),
        "User 'alice'", "user_email 'eve@example.org.evil.net'", "domain 'example.org.evil.net'",
        "allowedDomains ['example.org']")
    one(violations(lp.EMAIL_DOMAINS, "User", props_of(USER, user_email="eve@sub.example.org"), config),
        "domain 'sub.example.org'")
    assert violations(lp.EMAIL_DOMAINS, "User", props_of(USER, user_email=UNKNOWN_STRING_VALUE), config) == []


# ---------------------------------------------------------------- key alias pattern
@pytest.mark.parametrize("alias", ["alice", "dev-bob-key", "team.ml_01", "jdoe@example.edu", "j.doe-2@cs.uni-x.example.ac.uk"])
def test_aliases_matching_the_pattern_pass(alias):
    assert violations(lp.KEY_ALIAS_PATTERN, "Key", props_of(KEY, key_alias=alias)) == []


@pytest.mark.parametrize("alias", ["Alice", "my key", "-leading", "x" * 64, "jdoe@", "jdoe@edu", "jdoe@Example.edu",
                                   "a@b@example.edu"])
def test_aliases_not_matching_the_pattern_are_violations(alias):
    one(violations(lp.KEY_ALIAS_PATTERN, "Key", props_of(KEY, key_alias=alias)),
        "Key 'alice'", f"key_alias {alias!r}", f"pattern {lp.DEFAULT_ALIAS_PATTERN!r}")


def test_an_eppn_user_id_as_the_default_alias_passes_the_default_pattern():
    """The default alias is the user_id, and university user ids are often EPPNs."""
    assert violations(lp.KEY_ALIAS_PATTERN, "Key", props_of(KEY, key_alias=ABSENT, user_id="jdoe@example.edu")) == []
    assert lp.DEFAULT_ALIAS_PATTERN == r"^[a-z0-9][a-z0-9._-]{0,62}(@[a-z0-9-]+(\.[a-z0-9-]+)+)?$"


def test_the_alias_pattern_is_configurable_and_the_user_id_is_the_default_alias():
    config = {"pattern": r"team-[a-z]+-key"}
    assert violations(lp.KEY_ALIAS_PATTERN, "Key", props_of(KEY, key_alias="team-ml-key"), config) == []
    one(violations(lp.KEY_ALIAS_PATTERN, "Key", props_of(KEY, key_alias="team-ml-key-2"), config), "'team-ml-key-2'")
    one(violations(lp.KEY_ALIAS_PATTERN, "Key", props_of(KEY, key_alias=ABSENT, user_id="Alice")),
        "key_alias 'Alice'")
    one(violations(lp.KEY_ALIAS_PATTERN, "Key", KEY, {"pattern": "("}), "pattern '('", "not a valid regular expression")
    assert violations(lp.KEY_ALIAS_PATTERN, "Key", props_of(KEY, key_alias=UNKNOWN_STRING_VALUE)) == []


def test_the_alias_pattern_is_advisory_by_default():
    assert lp.KEY_ALIAS_PATTERN.enforcement_level is EnforcementLevel.ADVISORY


# ---------------------------------------------------------------- stack: unique key aliases
def test_distinct_key_aliases_pass():
    resources = [("Key", "a", props_of(KEY, key_alias="a")), ("Key", "b", props_of(KEY, key_alias="b"))]
    assert stack_violations(lp.UNIQUE_KEY_ALIASES, resources) == []


def test_two_keys_with_one_alias_on_one_proxy_are_a_violation():
    resources = [
        ("Key", "a", props_of(KEY, key_alias="shared")),
        ("Key", "b", props_of(KEY, key_alias="shared", url=URL + "/")),
        ("Key", "c", props_of(KEY, key_alias="shared", url="https://other-proxy.example.org")),
        ("User", "shared", props_of(USER, key_alias="shared")),
    ]
    [(message, where)] = stack_violations(lp.UNIQUE_KEY_ALIASES, resources)
    assert where == urn("Key", "b")
    assert "Key 'b': key_alias 'shared' is already used by Key 'a'" in message
    assert "apply time" in message


def test_the_default_alias_is_the_user_id_and_unknown_aliases_are_skipped():
    resources = [
        ("Key", "a", props_of(KEY, key_alias=ABSENT, user_id="dup")),
        ("Key", "b", props_of(KEY, key_alias="dup")),
        ("Key", "c", props_of(KEY, key_alias=UNKNOWN_STRING_VALUE)),
        ("Key", "d", props_of(KEY, key_alias=UNKNOWN_STRING_VALUE)),
    ]
    [(message, where)] = stack_violations(lp.UNIQUE_KEY_ALIASES, resources)
    assert where == urn("Key", "b") and "key_alias 'dup'" in message


# ---------------------------------------------------------------- stack: unique users
def test_distinct_users_pass():
    resources = [
        ("User", "a", props_of(USER, user_id="a", user_email="a@example.org")),
        ("User", "b", props_of(USER, user_id="b", user_email="b@example.org")),
        ("Key", "k", KEY),
    ]
    assert stack_violations(lp.UNIQUE_USERS, resources) == []


def test_two_users_with_one_user_id_are_a_violation():
    resources = [
        ("User", "a", props_of(USER, user_id="same", user_email="a@example.org")),
        ("User", "b", props_of(USER, user_id="same", user_email="b@example.org")),
    ]
    [(message, where)] = stack_violations(lp.UNIQUE_USERS, resources)
    assert where == urn("User", "b")
    assert "User 'b': user_id 'same' is already used by User 'a'" in message


def test_two_users_with_one_email_ignoring_case_are_a_violation():
    resources = [
        ("User", "a", props_of(USER, user_id="a", user_email="Alice@Example.org")),
        ("User", "b", props_of(USER, user_id="b", user_email="alice@example.ORG")),
        ("User", "c", props_of(USER, user_id="c", user_email="alice@example.org", url="https://other.example.org")),
        ("User", "d", props_of(USER, user_id="d", user_email=UNKNOWN_STRING_VALUE)),
    ]
    [(message, where)] = stack_violations(lp.UNIQUE_USERS, resources)
    assert where == urn("User", "b")
    assert "user_email 'alice@example.ORG' is already used by User 'a' ('Alice@Example.org')" in message
    assert "case-insensitive" in message


# ---------------------------------------------------------------- stack: auto-created keys
def test_an_auto_created_key_managed_by_a_key_resource_passes():
    user = props_of(USER, auto_create_key=True, key_alias="alice-key")
    key = props_of(KEY, key_alias="alice-key")
    assert stack_violations(lp.AUTO_CREATED_KEYS, [("User", "alice", user), ("Key", "alice", key)]) == []
    preview_key = props_of(key, user_id=UNKNOWN_STRING_VALUE)  # the Key's user_id comes from the User
    assert stack_violations(lp.AUTO_CREATED_KEYS, [("User", "alice", user), ("Key", "alice", preview_key)]) == []


def test_an_auto_created_key_without_a_key_resource_is_a_violation():
    user = props_of(USER, auto_create_key=True, key_alias="alice-key")
    other = props_of(KEY, key_alias="alice-other")
    [(message, where)] = stack_violations(lp.AUTO_CREATED_KEYS, [("User", "alice", user), ("Key", "k", other)])
    assert where == urn("User", "alice")
    assert "User 'alice': auto_create_key is true" in message and "key_alias 'alice-key'" in message
    assert "no expiry and no budget" in message
    assert stack_violations(lp.AUTO_CREATED_KEYS, [("User", "alice", props_of(user, auto_create_key=False))]) == []
    elsewhere = props_of(KEY, key_alias="alice-key", url="https://other-proxy.example.org")
    assert len(stack_violations(lp.AUTO_CREATED_KEYS, [("User", "alice", user), ("Key", "k", elsewhere)])) == 1


# ---------------------------------------------------------------- reading values
def test_plain_reads_proxies_and_unknowns():
    props = analyzed({"a": [1, {"b": "x"}], "u": UNKNOWN_STRING_VALUE, "l": ["x", UNKNOWN_STRING_VALUE],
                      "s": secret("hidden")})
    assert lp.prop(props, "a") == [1, {"b": "x"}]
    assert lp.prop(props, "u") is lp.UNKNOWN
    assert lp.prop(props, "l") is lp.UNKNOWN
    assert lp.prop(props, "s") == "hidden"
    assert lp.prop(props, "missing") is None
    assert lp.duration_seconds("2mo") == 60 * 86400 and lp.duration_seconds("0x") is None


# ---------------------------------------------------------------- teams and memberships
def test_a_team_budget_within_the_team_cap_passes_and_none_or_above_it_is_a_violation():
    assert violations(lp.BUDGET_REQUIRED, "Team", props_of(TEAM, max_budget=10000.0)) == []
    one(violations(lp.BUDGET_REQUIRED, "Team", props_of(TEAM, max_budget=ABSENT)), "Team 'alice'", "max_budget",
        "not set", "at most 10000 USD (maxTeamBudget)")
    one(violations(lp.BUDGET_REQUIRED, "Team", props_of(TEAM, max_budget=10000.5)), "Team 'alice'",
        "max_budget 10000.5 USD", "cap of 10000 USD (maxTeamBudget)")
    one(violations(lp.BUDGET_REQUIRED, "Team", props_of(TEAM, max_budget=600.0), {"maxTeamBudget": 500}),
        "max_budget 600 USD", "cap of 500 USD (maxTeamBudget)")


def test_team_models_follow_the_allow_list_and_an_empty_list_is_every_model():
    one(violations(lp.MODEL_ACCESS, "Team", props_of(TEAM, models=[])), "Team 'alice'", "models is empty",
        "every model")
    config = {"allowWildcard": False, "allowedModels": ["gpt-4o-mini"]}
    one(violations(lp.MODEL_ACCESS, "Team", TEAM, config), "Team 'alice'", "models 'gpt-4o' is not in allowedModels")
    assert violations(lp.MODEL_ACCESS, "Team", props_of(TEAM, models=["gpt-4o-mini"]), config) == []


def test_team_rate_limits_have_the_caps():
    messages = violations(lp.RATE_LIMITS, "Team", props_of(TEAM, rpm_limit=10001.0, tpm_limit=ABSENT))
    assert len(messages) == 2, messages
    assert "Team 'alice': rpm_limit 10001 is above the cap of 10000 (maxRpm)" in messages
    assert any("tpm_limit is not set" in m for m in messages)


def test_a_team_admin_role_is_a_violation_naming_enterprise():
    one(violations(lp.TEAM_ROLES_POLICY, "TeamMember", props_of(MEMBER, role="admin")), "TeamMember 'alice'",
        "role 'admin' needs LiteLLM Enterprise", "use 'user'")
    one(violations(lp.TEAM_ROLES_POLICY, "TeamMember", props_of(MEMBER, role="owner")), "role 'owner' is not a team role")
    assert violations(lp.TEAM_ROLES_POLICY, "TeamMember", props_of(MEMBER, role=UNKNOWN_STRING_VALUE)) == []
    assert lp.TEAM_ROLES_POLICY.enforcement_level == EnforcementLevel.MANDATORY
