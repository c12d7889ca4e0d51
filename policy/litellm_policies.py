"""The LiteLLM access policies: what must never ship to the proxy, checked at `pulumi preview`.

Importable on its own (constructing a `PolicyPack` starts a gRPC server, so `__main__.py` does only that and
the tests import this module). Every policy:
- takes its parameters from the pack's config (`pulumi preview --policy-pack policy --policy-pack-config
  config.json`), with the defaults in `DEFAULTS`, which are also the schema defaults the CLI shows;
- names in each violation the resource, the field, the value and the limit;
- skips, never fails on, a value that is unknown during preview (it is checked again at `pulumi up`).

Resource policies read the inputs the engine analyzes (the provider's checked inputs); stack policies read
the resources' outputs, which for these dynamic resources are the same canonical inputs.
"""

from __future__ import annotations

import math
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Callable, Iterable, Optional

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    PolicyResource,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import (
    UNKNOWN_ARCHIVE_VALUE,
    UNKNOWN_ARRAY_VALUE,
    UNKNOWN_ASSET_VALUE,
    UNKNOWN_BOOLEAN_VALUE,
    UNKNOWN_NUMBER_VALUE,
    UNKNOWN_OBJECT_VALUE,
    UNKNOWN_STRING_VALUE,
    UnknownValueError,
)

# The analyzer runs `python -m pulumi.policy <engine> .` in this directory, so only this directory is on
# sys.path: add the project root for the field grammar the providers use.
_PROJECT_ROOT = str(Path(__file__).resolve().parent.parent)
if _PROJECT_ROOT not in sys.path:
    sys.path.append(_PROJECT_ROOT)

from providers.fields import DURATION_RE, LEGACY_ROLES, NAMED_DURATIONS, NAMED_SECONDS, seconds  # noqa: E402
from providers.team_member import ENTERPRISE_TEAM_ROLES, TEAM_ROLES  # noqa: E402

USER_TYPE = "pulumi-python:dynamic/litellm:User"
KEY_TYPE = "pulumi-python:dynamic/litellm:Key"
TEAM_TYPE = "pulumi-python:dynamic/litellm:Team"
MEMBER_TYPE = "pulumi-python:dynamic/litellm:TeamMember"
COMPONENT_TYPE = "litellm:index:UserWithKey"
ADMIN_ROLES = ("proxy_admin", "proxy_admin_viewer")
WILDCARD_MODELS = ("*", "all-proxy-models")

DURATION_PATTERN = f"{DURATION_RE.pattern}|^({'|'.join(NAMED_DURATIONS)})$"

# A name, or an EPPN (`jdoe@example.edu`): the default alias is the user_id, which is often an EPPN.
DEFAULT_ALIAS_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,62}(@[a-z0-9-]+(\.[a-z0-9-]+)+)?$"

# Each policy's parameters and their defaults (the config schema's `default`s).
DEFAULTS: dict[str, dict[str, Any]] = {
    "litellm-key-expires": {"maxDuration": "365d"},
    "litellm-key-rotation": {"maxKeyAge": "90d"},
    "litellm-budget-required": {"maxUserBudget": 1000, "maxKeyBudget": 1000, "maxTeamBudget": 10000},
    "litellm-admin-roles": {"proxyAdmins": [], "proxyAdminViewers": []},
    "litellm-model-access": {"allowWildcard": False, "allowedModels": []},
    "litellm-rate-limits": {"maxRpm": 10000, "maxTpm": 1000000, "requireLimits": True},
    "litellm-email-domains": {"allowedDomains": []},
    "litellm-key-alias-pattern": {"pattern": DEFAULT_ALIAS_PATTERN},
    "litellm-unique-key-aliases": {},
    "litellm-unique-users": {},
    "litellm-auto-created-keys-managed": {},
    "litellm-team-roles": {},
}


# ------------------------------------------------------------------ reading properties safely
class _Unknown:
    """A value the engine does not know yet (preview)."""

    def __repr__(self) -> str:
        return "<unknown until apply>"


UNKNOWN: Any = _Unknown()
_SENTINELS = frozenset(
    {
        UNKNOWN_BOOLEAN_VALUE,
        UNKNOWN_NUMBER_VALUE,
        UNKNOWN_STRING_VALUE,
        UNKNOWN_ARRAY_VALUE,
        UNKNOWN_ASSET_VALUE,
        UNKNOWN_ARCHIVE_VALUE,
        UNKNOWN_OBJECT_VALUE,
    }
)


def plain(value: Any) -> Any:
    """A property value as plain data (the analyzer hands out proxies that raise on unknown parts);
    UNKNOWN if the value or any part of it is not known yet. An UnknownValueError raised while reading
    a part propagates: the only caller, `prop`, turns it into UNKNOWN."""
    if isinstance(value, str):
        return UNKNOWN if value in _SENTINELS else value
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key in value:
            item = plain(value[key])
            if item is UNKNOWN:
                return UNKNOWN
            out[key] = item
        return out
    if isinstance(value, Sequence):
        items = []
        for index in range(len(value)):
            item = plain(value[index])
            if item is UNKNOWN:
                return UNKNOWN
            items.append(item)
        return items
    return value


def prop(props: Mapping[str, Any], name: str) -> Any:
    """One property: None when absent, UNKNOWN when not known yet."""
    try:
        return plain(props[name])
    except KeyError:
        return None
    except UnknownValueError:
        return UNKNOWN


def config_of(policy: str, args: ResourceValidationArgs | StackValidationArgs) -> dict[str, Any]:
    """The policy's parameters: its defaults, overridden by the pack config."""
    return {**DEFAULTS[policy], **(args.get_config() or {})}


def number(value: Any) -> Optional[float]:
    """A finite number, or None for anything else (bools, strings, unknowns)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def show(value: Any) -> str:
    """A value as a reviewer reads it: 300.0 -> 300."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return repr(value)


def duration_seconds(value: Any) -> Optional[int]:
    """Seconds in a LiteLLM duration ('30d', '12h', '1mo', 'monthly'); None if it is not one."""
    if not isinstance(value, str) or not (value in NAMED_SECONDS or DURATION_RE.match(value)):
        return None
    return seconds(value)


def role_of(value: Any) -> Any:
    """The role LiteLLM applies: legacy names are mapped by the provider."""
    return LEGACY_ROLES.get(value, value) if isinstance(value, str) else value


def role_text(value: Any) -> str:
    mapped = role_of(value)
    return repr(value) if mapped == value else f"{value!r} (= {mapped!r})"


def kind(resource_type: str) -> str:
    return {USER_TYPE: "User", KEY_TYPE: "Key", TEAM_TYPE: "Team", MEMBER_TYPE: "TeamMember"}.get(resource_type, resource_type)


def subject(resource_type: str, name: str) -> str:
    return f"{kind(resource_type)} {name!r}"


def key_alias_of(props: Mapping[str, Any]) -> Any:
    """The alias the Key provider uses: key_alias, else (as its check does) the user_id."""
    alias = prop(props, "key_alias")
    return prop(props, "user_id") if alias is None else alias


# ------------------------------------------------------------------ schema helpers
def _schema(policy: str, **properties: dict[str, Any]) -> PolicyConfigSchema:
    defaults = DEFAULTS[policy]
    assert set(properties) == set(defaults), f"{policy}: schema and defaults disagree"
    return PolicyConfigSchema(
        properties={name: {**spec, "default": defaults[name]} for name, spec in properties.items()}
    )


def _string_list(description: str) -> dict[str, Any]:
    return {"type": "array", "items": {"type": "string", "minLength": 1}, "uniqueItems": True, "description": description}


def _resource_policy(
    name: str,
    description: str,
    types: Iterable[str],
    check: Callable[[str, Mapping[str, Any], dict[str, Any]], list[str]],
    *,
    enforcement_level: EnforcementLevel = EnforcementLevel.MANDATORY,
    **properties: dict[str, Any],
) -> ResourceValidationPolicy:
    """A resource policy whose `check(resource_type, props, config)` returns the violation messages;
    `properties` are its config parameters' schemas (their defaults come from DEFAULTS)."""
    wanted = frozenset(types)

    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        if args.resource_type not in wanted:
            return
        config = config_of(name, args)
        for message in check(args.resource_type, args.props, config):
            report_violation(f"{subject(args.resource_type, args.name)}: {message}", None)

    return ResourceValidationPolicy(
        name=name,
        description=description,
        validate=validate,
        enforcement_level=enforcement_level,
        config_schema=_schema(name, **properties),
    )


def _stack_policy(
    name: str, description: str, validate: Callable[[StackValidationArgs, ReportViolation], None]
) -> StackValidationPolicy:
    """A mandatory stack policy without config parameters."""
    return StackValidationPolicy(
        name=name,
        description=description,
        validate=validate,
        enforcement_level=EnforcementLevel.MANDATORY,
        config_schema=_schema(name),
    )


# ------------------------------------------------------------------ resource checks
def _duration_at_most(props: Mapping[str, Any], name: str, config: dict[str, Any], setting: str, example: str,
                      unset: str, maximum: str) -> list[str]:
    """`name` is a LiteLLM duration no longer than the policy's `setting`; `unset` says what a missing one
    means, `maximum` what the setting is."""
    limit = config[setting]
    limit_seconds = duration_seconds(limit)
    if limit_seconds is None:
        return [f"the policy's {setting} {limit!r} is not a LiteLLM duration such as {example!r}; fix the pack config"]
    value = prop(props, name)
    if value is UNKNOWN:
        return []
    if value is None:
        return [f"{name} is not set, so {unset}; set {name} to at most {limit!r} ({setting})"]
    seconds = duration_seconds(value)
    if seconds is None:
        return [f"{name} {value!r} is not a LiteLLM duration; set one of at most {limit!r} ({setting})"]
    if seconds > limit_seconds:
        return [f"{name} {value!r} is longer than {maximum} {limit!r} ({setting})"]
    return []


def check_key_expires(_type: str, props: Mapping[str, Any], config: dict[str, Any]) -> list[str]:
    return _duration_at_most(props, "duration", config, "maxDuration", "365d", "the key never expires",
                             "the maximum key lifetime")


def check_key_rotation(_type: str, props: Mapping[str, Any], config: dict[str, Any]) -> list[str]:
    return _duration_at_most(props, "rotate_after", config, "maxKeyAge", "90d", "the key is never rotated",
                             "the maximum key age")


BUDGET_SETTINGS = {USER_TYPE: "maxUserBudget", KEY_TYPE: "maxKeyBudget", TEAM_TYPE: "maxTeamBudget"}


def check_budget(resource_type: str, props: Mapping[str, Any], config: dict[str, Any]) -> list[str]:
    setting = BUDGET_SETTINGS[resource_type]
    cap = number(config[setting])
    value = prop(props, "max_budget")
    if value is UNKNOWN:
        return []
    amount = number(value)
    if value is None or amount == 0:
        return [
            f"max_budget is {show(value) if value is not None else 'not set'}, which LiteLLM treats as no budget; "
            f"set max_budget to more than 0 and at most {show(cap)} USD ({setting})"
        ]
    if amount is None or amount < 0:
        return [f"max_budget {show(value)} is not a budget; set a number of USD more than 0 and at most {show(cap)} ({setting})"]
    if cap is not None and amount > cap:
        return [f"max_budget {show(value)} USD is above the cap of {show(cap)} USD ({setting})"]
    return []


def check_admin_roles(_type: str, props: Mapping[str, Any], config: dict[str, Any]) -> list[str]:
    value = prop(props, "user_role")
    role = role_of(value)
    if value is UNKNOWN or role not in ADMIN_ROLES:
        return []
    if role == "proxy_admin":
        setting, allowed = "proxyAdmins", list(config["proxyAdmins"])
    else:
        setting = "proxyAdminViewers or proxyAdmins"
        allowed = list(config["proxyAdminViewers"])
        allowed += [uid for uid in config["proxyAdmins"] if uid not in allowed]
    user_id = prop(props, "user_id")
    if user_id is UNKNOWN:
        return [f"user_role {role_text(value)} is given to a user whose user_id is not known until apply; "
                f"{role!r} is only for the user ids in {setting} {allowed!r}"]
    if user_id in allowed:
        return []
    return [f"user_role {role_text(value)} for user_id {user_id!r}: {role!r} is only for the user ids in "
            f"{setting} {allowed!r}"]


def check_team_role(_type: str, props: Mapping[str, Any], _config: dict[str, Any]) -> list[str]:
    role = prop(props, "role")
    if role is UNKNOWN or role is None or role in TEAM_ROLES:
        return []
    if role in ENTERPRISE_TEAM_ROLES:
        return [f"role {role!r} needs LiteLLM Enterprise (the proxy refuses it without a licence); use "
                f"{', '.join(map(repr, TEAM_ROLES))}"]
    return [f"role {role!r} is not a team role; use {', '.join(map(repr, TEAM_ROLES))}"]


def check_model_access(_type: str, props: Mapping[str, Any], config: dict[str, Any]) -> list[str]:
    models = prop(props, "models")
    if models is UNKNOWN:
        return []
    if models is None:
        models = []  # the providers default models to [], which LiteLLM treats as every model
    if not isinstance(models, list):
        return [f"models {models!r} is not a list of model names"]
    allowed = list(config["allowedModels"])
    messages = []
    wildcards = [m for m in models if m in WILDCARD_MODELS or (isinstance(m, str) and "*" in m)]
    if not config["allowWildcard"]:
        if not models:
            messages.append("models is empty, which LiteLLM treats as access to every model on the proxy; "
                            "list the models, or set allowWildcard: true")
        elif wildcards:
            messages.append(f"models {models!r} grants wildcard access ({', '.join(map(repr, wildcards))}); "
                            "list the models, or set allowWildcard: true")
    if allowed:
        if not models:
            messages.append(f"models is empty (every model), but only allowedModels {allowed!r} may be granted")
        outside = [m for m in models if m not in allowed]
        if outside:
            messages.append(f"models {', '.join(map(repr, outside))} {'is' if len(outside) == 1 else 'are'} not in "
                            f"allowedModels {allowed!r}")
    return messages


def check_rate_limits(_type: str, props: Mapping[str, Any], config: dict[str, Any]) -> list[str]:
    messages = []
    for field, setting in (("rpm_limit", "maxRpm"), ("tpm_limit", "maxTpm")):
        cap = number(config[setting])
        value = prop(props, field)
        if value is UNKNOWN:
            continue
        if value is None:
            if config["requireLimits"]:
                messages.append(f"{field} is not set, so requests are unlimited; set {field} to at most "
                                f"{show(cap)} ({setting}), or set requireLimits: false")
            continue
        amount = number(value)
        if amount is None:
            messages.append(f"{field} {value!r} is not a number; set at most {show(cap)} ({setting})")
        elif cap is not None and amount > cap:
            messages.append(f"{field} {show(value)} is above the cap of {show(cap)} ({setting})")
    return messages


def check_email_domain(_type: str, props: Mapping[str, Any], config: dict[str, Any]) -> list[str]:
    allowed = [d.lower().lstrip("@") for d in config["allowedDomains"]]
    email = prop(props, "user_email")
    if not allowed or email is UNKNOWN or email is None:
        return []
    domain = email.rpartition("@")[2].lower() if isinstance(email, str) and "@" in email else None
    if domain in allowed:
        return []
    shown = f"has domain {domain!r}" if domain else "has no domain"
    return [f"user_email {email!r} {shown}, which is not in allowedDomains {allowed!r}"]


def check_key_alias(_type: str, props: Mapping[str, Any], config: dict[str, Any]) -> list[str]:
    pattern = config["pattern"]
    try:
        regex = re.compile(pattern)
    except re.error as err:
        return [f"the policy's pattern {pattern!r} is not a valid regular expression ({err}); fix the pack config"]
    alias = key_alias_of(props)
    if alias is UNKNOWN or alias is None:
        return []
    if isinstance(alias, str) and regex.fullmatch(alias):
        return []
    return [f"key_alias {alias!r} does not match the naming pattern {pattern!r} (pattern)"]


# ------------------------------------------------------------------ stack checks
def _resources(args: StackValidationArgs, resource_type: str) -> list[PolicyResource]:
    return [r for r in args.resources if r.resource_type == resource_type]


def _proxy(props: Mapping[str, Any]) -> str:
    url = prop(props, "url")
    return url.strip().rstrip("/").lower() if isinstance(url, str) else ""


def _first_duplicates(resources: list[PolicyResource], identity: Callable[[PolicyResource], Any]):
    """(resource, first resource with the same identity) for each later duplicate; unknown identities skip."""
    seen: dict[Any, PolicyResource] = {}
    for resource in resources:
        ident = identity(resource)
        if ident is None:
            continue
        if ident in seen:
            yield resource, seen[ident]
        else:
            seen[ident] = resource


def validate_unique_key_aliases(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    def identity(resource: PolicyResource) -> Any:
        alias = key_alias_of(resource.props)
        return (_proxy(resource.props), alias) if isinstance(alias, str) else None

    for resource, first in _first_duplicates(_resources(args, KEY_TYPE), identity):
        alias = key_alias_of(resource.props)
        report_violation(
            f"{subject(KEY_TYPE, resource.name)}: key_alias {alias!r} is already used by "
            f"{subject(KEY_TYPE, first.name)} on the same proxy; LiteLLM rejects the second key at apply time",
            resource.urn,
        )


def validate_unique_users(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    users = _resources(args, USER_TYPE)

    def by(field: str, fold: bool) -> Callable[[PolicyResource], Any]:
        def identity(resource: PolicyResource) -> Any:
            value = prop(resource.props, field)
            if not isinstance(value, str):
                return None
            return (_proxy(resource.props), value.lower() if fold else value)

        return identity

    for field, fold, how in (("user_id", False, ""), ("user_email", True, " (emails compare case-insensitively)")):
        for resource, first in _first_duplicates(users, by(field, fold)):
            value = prop(resource.props, field)
            report_violation(
                f"{subject(USER_TYPE, resource.name)}: {field} {value!r} is already used by "
                f"{subject(USER_TYPE, first.name)} ({prop(first.props, field)!r}) on the same proxy{how}; "
                "LiteLLM rejects the second user at apply time",
                resource.urn,
            )


def validate_auto_created_keys(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    keys = _resources(args, KEY_TYPE)
    for user in _resources(args, USER_TYPE):
        if prop(user.props, "auto_create_key") is not True:
            continue
        user_id, alias = prop(user.props, "user_id"), prop(user.props, "key_alias")
        if user_id is UNKNOWN or alias is UNKNOWN:
            continue
        alias = user_id if alias is None else alias
        managed = any(
            key_alias_of(key.props) in (alias, UNKNOWN)
            and prop(key.props, "user_id") in (user_id, UNKNOWN)
            and _proxy(key.props) == _proxy(user.props)
            for key in keys
        )
        if not managed:
            report_violation(
                f"{subject(USER_TYPE, user.name)}: auto_create_key is true, but no Key resource in the stack "
                f"manages the minted key (user_id {user_id!r}, key_alias {alias!r}), so that key has no expiry "
                "and no budget; declare the user with UserWithKey, or add a Key with that user_id and key_alias",
                user.urn,
            )


# ------------------------------------------------------------------ the policies
KEY_EXPIRES = _resource_policy(
    "litellm-key-expires",
    "Every LiteLLM virtual key expires: `duration` is set, and no longer than the maximum key lifetime. "
    "A key that never expires stays valid after its owner leaves.",
    [KEY_TYPE],
    check_key_expires,
    maxDuration={
        "type": "string",
        "pattern": DURATION_PATTERN,
        "description": "Longest key lifetime, a LiteLLM duration such as '90d', '12w' or '1mo' (a month counts 30 days).",
    },
)

KEY_ROTATION = _resource_policy(
    "litellm-key-rotation",
    "Every LiteLLM virtual key is rotated: `rotate_after` is set, and no longer than the maximum key age, so "
    "a scheduled `pulumi up` replaces it (a leaked key stops working after the rotation and its grace).",
    [KEY_TYPE],
    check_key_rotation,
    enforcement_level=EnforcementLevel.ADVISORY,
    maxKeyAge={
        "type": "string",
        "pattern": DURATION_PATTERN,
        "description": "Longest rotate_after, a LiteLLM duration such as '90d', '12w' or '3mo' (a month counts 30 days).",
    },
)

BUDGET_REQUIRED = _resource_policy(
    "litellm-budget-required",
    "Every LiteLLM user, virtual key and team has a spending limit: `max_budget` is more than 0 (0 or unset "
    "means no budget) and at most the configured cap, in USD.",
    [USER_TYPE, KEY_TYPE, TEAM_TYPE],
    check_budget,
    maxUserBudget={"type": "number", "exclusiveMinimum": 0, "description": "Largest max_budget of a user, USD."},
    maxKeyBudget={"type": "number", "exclusiveMinimum": 0, "description": "Largest max_budget of a key, USD."},
    maxTeamBudget={"type": "number", "exclusiveMinimum": 0, "description": "Largest max_budget of a team, USD."},
)

ADMIN_ROLES_POLICY = _resource_policy(
    "litellm-admin-roles",
    "The proxy admin roles are granted on purpose only: `user_role` proxy_admin (legacy 'admin') only for the "
    "user ids in proxyAdmins, proxy_admin_viewer only for those in proxyAdminViewers or proxyAdmins.",
    [USER_TYPE],
    check_admin_roles,
    proxyAdmins=_string_list("User ids that may hold proxy_admin (full control of the proxy)."),
    proxyAdminViewers=_string_list("User ids that may hold proxy_admin_viewer (read access to the whole proxy)."),
)

MODEL_ACCESS = _resource_policy(
    "litellm-model-access",
    "Users, keys and teams list the models they may call: no wildcard access ('*', 'all-proxy-models', a "
    "pattern with '*', or an empty list, which LiteLLM reads as every model) unless allowed, and only models "
    "in the allow-list when one is configured.",
    [USER_TYPE, KEY_TYPE, TEAM_TYPE],
    check_model_access,
    allowWildcard={"type": "boolean", "description": "Allow wildcard access to every model."},
    allowedModels=_string_list("If not empty, the only model names users and keys may list."),
)

RATE_LIMITS = _resource_policy(
    "litellm-rate-limits",
    "Users, keys and teams have request (`rpm_limit`) and token (`tpm_limit`) rate limits, each at most its "
    "cap; an unset limit is unlimited.",
    [USER_TYPE, KEY_TYPE, TEAM_TYPE],
    check_rate_limits,
    maxRpm={"type": "number", "minimum": 0, "description": "Largest rpm_limit (requests per minute)."},
    maxTpm={"type": "number", "minimum": 0, "description": "Largest tpm_limit (tokens per minute)."},
    requireLimits={"type": "boolean", "description": "An unset rpm_limit or tpm_limit (unlimited) is a violation."},
)

EMAIL_DOMAINS = _resource_policy(
    "litellm-email-domains",
    "Users are people of the organization: `user_email` is in one of the configured domains (exact match, "
    "case-insensitive). Inactive while allowedDomains is empty.",
    [USER_TYPE],
    check_email_domain,
    allowedDomains=_string_list("Email domains users may have, such as 'example.org'."),
)

KEY_ALIAS_PATTERN = _resource_policy(
    "litellm-key-alias-pattern",
    "Key aliases follow the naming convention: `key_alias` (the user_id when unset) matches the configured "
    "regular expression as a whole.",
    [KEY_TYPE],
    check_key_alias,
    enforcement_level=EnforcementLevel.ADVISORY,
    pattern={"type": "string", "format": "regex", "description": "Python regular expression the whole alias must match."},
)

UNIQUE_KEY_ALIASES = _stack_policy(
    "litellm-unique-key-aliases",
    "No two keys in the stack share a `key_alias` on the same proxy: LiteLLM only rejects the second "
    "one at apply time, after the first was created.",
    validate_unique_key_aliases,
)

UNIQUE_USERS = _stack_policy(
    "litellm-unique-users",
    "No two users in the stack share a `user_id`, or a `user_email` ignoring case, on the same proxy: "
    "LiteLLM only rejects the second one at apply time.",
    validate_unique_users,
)

AUTO_CREATED_KEYS = _stack_policy(
    "litellm-auto-created-keys-managed",
    "A user created with auto_create_key has a Key resource that manages the key LiteLLM mints for "
    "it (UserWithKey does this); otherwise that key has no expiry and no budget.",
    validate_auto_created_keys,
)

TEAM_ROLES_POLICY = _resource_policy(
    "litellm-team-roles",
    "Team members hold only roles this proxy grants: 'user'. A team 'admin' needs LiteLLM Enterprise, so "
    "the proxy would refuse it half-way through an apply.",
    [MEMBER_TYPE],
    check_team_role,
)

POLICIES = [
    KEY_EXPIRES,
    KEY_ROTATION,
    BUDGET_REQUIRED,
    ADMIN_ROLES_POLICY,
    MODEL_ACCESS,
    RATE_LIMITS,
    EMAIL_DOMAINS,
    KEY_ALIAS_PATTERN,
    UNIQUE_KEY_ALIASES,
    UNIQUE_USERS,
    AUTO_CREATED_KEYS,
    TEAM_ROLES_POLICY,
]
PACK_NAME = "litellm-access"
