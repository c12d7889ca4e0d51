"""UserWithKey: the Terraform module's interface (same inputs, defaults and five outputs) over the
`User` and `Key` dynamic resources, with the module's defects fixed (see docs/reference.md, "Differences"), and one
`TeamMember` per entry of `teams`.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
from typing import Any, Callable, Collection, Mapping, Optional

import pulumi

from components.outputs import combine
from providers import Key, KeyArgs, TeamMember, TeamMemberArgs, User, UserArgs
from providers import fields as f
from providers import payload
from providers.key import KEY_FIELDS, KeyProvider
from providers.team_member import TeamMemberProvider
from providers.user import UserProvider

TYPE_TOKEN = "litellm:index:UserWithKey"
PLACEHOLDER_MODEL = "fake_model"  # the module's default for `models` and `user_models`: no proxy serves it


def _reject_unknown_names(cls: type) -> type:
    """A misspelt keyword gets the closest input name instead of Python's bare 'unexpected keyword'."""
    init = cls.__init__

    @functools.wraps(init)
    def checked_init(self: Any, *args: Any, **kwargs: Any) -> None:
        unknown = [f.unknown_name(name, INPUTS) for name in kwargs if name not in INPUTS]
        if unknown:
            raise TypeError(f"{cls.__name__}: {'; '.join(unknown)}")
        init(self, *args, **kwargs)

    cls.__init__ = checked_init  # type: ignore[method-assign]
    return cls


@_reject_unknown_names
@dataclasses.dataclass
class UserWithKeyArgs:
    """The module's inputs, names and defaults unchanged; each takes a plain value or a `pulumi.Input`.

    New: `adopt_existing` opts in to take over a user (and its key, by alias, and its memberships) that
    already exists on the proxy instead of failing with 409; `rotate_after`, `rotation_trigger` and
    `rotation_grace` rotate the key (docs/rotation.md); `teams` lists the ids of the teams the user
    is a member of (role `user`), one `TeamMember` each; `blocked` is the key's kill switch (true: the
    key is refused at once; false again: the same key works again).
    """

    url: pulumi.Input[str]
    token: pulumi.Input[str] = dataclasses.field(repr=False)  # never printed
    user_id: pulumi.Input[str]
    user_email: pulumi.Input[str]
    auto_create_key: pulumi.Input[bool] = False
    budget_duration: pulumi.Input[str] = "30d"
    duration: pulumi.Input[str] = "365d"
    key_alias: Optional[pulumi.Input[str]] = None
    max_budget: pulumi.Input[float] = 0
    max_parallel_requests: pulumi.Input[int] = 100
    metadata: pulumi.Input[Mapping[str, Any]] = dataclasses.field(default_factory=dict)
    model_max_budget: pulumi.Input[Mapping[str, Any]] = dataclasses.field(default_factory=dict)
    models: pulumi.Input[list[str]] = dataclasses.field(default_factory=lambda: [PLACEHOLDER_MODEL])
    rpm_limit: pulumi.Input[int] = 1000
    spend: pulumi.Input[float] = 0
    team_id: Optional[pulumi.Input[str]] = None
    tpm_limit: pulumi.Input[int] = 100000
    user_alias: Optional[pulumi.Input[str]] = None
    user_max_budget: pulumi.Input[float] = 0
    user_models: pulumi.Input[list[str]] = dataclasses.field(default_factory=lambda: [PLACEHOLDER_MODEL])
    user_role: pulumi.Input[str] = "app_user"
    adopt_existing: pulumi.Input[bool] = False
    rotate_after: Optional[pulumi.Input[str]] = None
    rotation_trigger: Optional[pulumi.Input[str]] = None
    rotation_grace: Optional[pulumi.Input[str]] = None
    teams: list[str] = dataclasses.field(default_factory=list)
    blocked: pulumi.Input[bool] = False


def member_name(resource_name: str, team_id: str) -> str:
    """A membership's resource name, `<the user's resource name>/<team_id>`: distinct for distinct (user,
    team) pairs unless one of them holds a '/' (the stack's config check reports that collision)."""
    return f"{resource_name}/{team_id}"


def legacy_member_name(resource_name: str, team_id: str) -> str:
    """The name memberships had before, `<name>-<team_id>` (user `a-b` in team `c` and user `a` in team
    `b-c` both got `a-b-c`): an alias, so a stack made with it keeps its memberships with no replacement."""
    return f"{resource_name}-{team_id}"


TEAM_ID = TeamMemberProvider.field("team_id")
TEAM_IDS = "a list of distinct team ids (strings of 1 to 256 characters), such as ['research']"


def team_ids(value: Any) -> list[str]:
    """`teams`: plain, distinct team ids (they name the memberships' resources)."""
    if not isinstance(value, (list, tuple)):
        raise f.Invalid(TEAM_IDS)
    for index, team_id in enumerate(value):
        try:
            TEAM_ID.parse(team_id)
        except f.Invalid as err:
            raise f.Invalid(f"{TEAM_IDS}; teams[{index}] must be {err}") from None
        if team_id in value[:index]:
            raise f.Invalid(f"{TEAM_IDS}; teams[{index}] {team_id!r} is listed twice")
    return list(value)


# Which resource field validates each module input (the names differ only for user_models, user_max_budget).
_VALIDATED_BY: dict[str, f.Field] = {
    **{fl.name: fl for fl in KEY_FIELDS if fl.name in {fld.name for fld in dataclasses.fields(UserWithKeyArgs)}},
    **{name: UserProvider.field(name) for name in ("user_email", "user_alias", "user_role", "auto_create_key")},
    "user_models": UserProvider.field("models"),
    "user_max_budget": UserProvider.field("max_budget"),
    "key_alias": dataclasses.replace(KeyProvider.field("key_alias"), parse=f.optional(f.text()), required=False),
    "teams": f.Field("teams", team_ids, default=[]),
}
# Every input by its module name; one no resource field validates (yet) accepts any value.
INPUTS: dict[str, f.Field] = {
    fld.name: _VALIDATED_BY.get(fld.name) or f.Field(fld.name, lambda value: value)
    for fld in dataclasses.fields(UserWithKeyArgs)
}


def _holds_output(value: Any) -> bool:
    """An Output anywhere inside (models=[config.require("model")] is a valid Input): check decides later."""
    return f.anywhere(value, lambda v: isinstance(v, pulumi.Output)) or f.is_unknown(value)


def problems(values: Mapping[str, Any]) -> list[str]:
    """Every problem of these module inputs (by name), one message each; Outputs are left to `check`."""
    return f.problems(INPUTS, values, skip=_holds_output)


def validate(args: UserWithKeyArgs, where: str = "UserWithKeyArgs") -> None:
    """Reject bad plain values at construction (so at preview), all at once, each naming `where` (which
    resource) and the input; values that are Outputs are validated by the resources' `check` once known."""
    found = problems({fld.name: getattr(args, fld.name) for fld in dataclasses.fields(args)})
    if found:
        raise ValueError("\n".join(f"{where}: {problem}" for problem in found))


# Users whose plain user_role is a legacy name, gathered while the program constructs its components and
# reported in one warning when the first of their roles resolves (after the program's synchronous part);
# then `_legacy_reported` until their own role resolves.
_legacy_pending: dict[str, str] = {}
_legacy_reported: set[str] = set()


def _warn_legacy(users: Mapping[str, str]) -> None:
    named = ", ".join(f"{name!r} ({role})" for name, role in users.items())
    mapping = ", ".join(f"{a} -> {b}" for a, b in f.LEGACY_ROLES.items())
    pulumi.log.warn(
        f"user_role: legacy LiteLLM roles that current proxies reject are mapped ({mapping}) for "
        f"{len(users)} user(s): {named}. 'app_user' is the module's default when user_role is not set; "
        f"set user_role to one of {', '.join(f.ROLES)} to silence this"
    )
    admins = [name for name, role in users.items() if f.LEGACY_ROLES.get(role) == "proxy_admin"]
    if admins:
        pulumi.log.warn(admin_warning(admins))


def admin_warning(names: list[str]) -> str:
    """The legacy `admin` reads like an ordinary role but is proxy_admin: say so, naming the users."""
    return (f"user_role 'admin' (the module's legacy name) is proxy_admin, full administration of the proxy "
            f"(every user, key and team, and the proxy's settings), for {len(names)} user(s): "
            f"{', '.join(map(repr, names))}; write user_role: proxy_admin if that is meant, else a lesser role")


def placeholder_warning(names: list[str]) -> str:
    """A key left at the module's placeholder models can call no model: say so, naming the users."""
    return (f"models: the key of {len(names)} user(s) is left at the module's placeholder "
            f"[{PLACEHOLDER_MODEL!r}], which no model of the proxy answers to, so it can call no model: "
            f"{', '.join(map(repr, names))}; set models to the models the key may call")


def resolve_role(role: Any, name: str = "") -> Any:
    """Map the module's legacy role names to LiteLLM's, saying so once per run; anything else is left to
    `check`."""
    if name in _legacy_pending:
        _warn_legacy(_legacy_pending)
        _legacy_reported.update(_legacy_pending)
        _legacy_pending.clear()
    if name in _legacy_reported:
        _legacy_reported.discard(name)
    elif isinstance(role, str) and role in f.LEGACY_ROLES:  # a role that was an Output: not gathered
        _warn_legacy({name: role})
    return f.LEGACY_ROLES.get(role, role) if isinstance(role, str) else role


def _plain(value: Any) -> bool:
    return not (_holds_output(value) or inspect.isawaitable(value))


def _derive(fn: Callable[..., Any], *values: pulumi.Input[Any]) -> pulumi.Input[Any]:
    """fn of the values, computed now when they are plain (the stack program's config values: no Output, no
    `apply` chain, thousands fewer for a roster), else an Output as before."""
    return fn(*values) if all(_plain(value) for value in values) else combine(fn, *values)


def _role(role: pulumi.Input[str], name: str) -> pulumi.Input[str]:
    """user_role as sent: a plain LiteLLM role as it is; a legacy one, or an Output, through `resolve_role`
    once known, which maps it and warns once for all the legacy roles of the program."""
    if isinstance(role, str) and role not in f.LEGACY_ROLES:
        return role
    return pulumi.Output.from_input(role).apply(lambda resolved: resolve_role(resolved, name))


def _existing_key(auto: pulumi.Input[bool], user_response: pulumi.Output[Any]) -> pulumi.Input[Optional[str]]:
    """The key /user/new minted when auto_create_key is on, for the Key to adopt. None outright when it is
    plainly off: an input made from the User's outputs is recorded with the User's URN (propertyDependencies)
    in the state of every Key, and is unknown at preview while the User changes."""
    if _plain(auto):
        return user_response.apply(_auto_key) if auto else None
    return combine(lambda on, resp: _auto_key(resp) if on else None, auto, user_response)


def _user_budget(user_max_budget: Any, max_budget: Any) -> Any:
    """The module meant user_max_budget for the user; it is used when set (not 0), else max_budget. An
    invalid value (negative, not finite, not a number) is passed on, so the User's `check` rejects it."""
    unset = user_max_budget is None or (
        isinstance(user_max_budget, (int, float)) and not isinstance(user_max_budget, bool) and user_max_budget == 0
    )
    return max_budget if unset else user_max_budget


def _default_to_user_id(alias: Any, user_id: Any) -> Any:
    """The module's coalesce(alias, user_id); a blank alias is kept, so `check` rejects it by name."""
    return user_id if alias is None else alias


def _auto_key(user_response: Any) -> Optional[str]:
    key = user_response.get("key") if isinstance(user_response, dict) else None
    return key or None


class UserWithKey(pulumi.ComponentResource):
    """A LiteLLM user and its virtual key, managed for their whole life.

    Outputs: `user_response` (/user/new answer, secret), `user_data` (/user/info), `key` (raw key, secret),
    `key_data` (/key/info), `key_response` (answer of the call that produced or last changed the key, secret).
    """

    user_response: pulumi.Output[dict]
    user_data: pulumi.Output[dict]
    key: pulumi.Output[Optional[str]]
    key_data: pulumi.Output[dict]
    key_response: pulumi.Output[dict]

    def __init__(
        self, resource_name: str, args: UserWithKeyArgs, opts: Optional[pulumi.ResourceOptions] = None, *,
        shared_legacy_names: Collection[str] = (),
    ) -> None:
        """`shared_legacy_names`: legacy membership names (`legacy_member_name`) that another membership of
        the program has too; they are not aliased, as the engine refuses one alias for two resources."""
        super().__init__(TYPE_TOKEN, resource_name, None, opts)
        validate(args, f"UserWithKey {resource_name!r}")
        if isinstance(args.user_role, str) and args.user_role in f.LEGACY_ROLES:
            _legacy_pending[resource_name] = args.user_role
        child = pulumi.ResourceOptions(parent=self)
        token = args.token  # each resource registers it as a secret (providers/base.py `registered`)
        auto = args.auto_create_key
        key_alias = _derive(_default_to_user_id, args.key_alias, args.user_id)

        self.user = User(
            resource_name,
            UserArgs(
                url=args.url,
                token=token,
                user_id=args.user_id,
                user_email=args.user_email,
                user_alias=_derive(_default_to_user_id, args.user_alias, args.user_id),
                user_role=_role(args.user_role, resource_name),
                models=args.user_models,
                max_budget=_derive(_user_budget, args.user_max_budget, args.max_budget),
                tpm_limit=args.tpm_limit,
                rpm_limit=args.rpm_limit,
                auto_create_key=auto,
                key_alias=key_alias,
                adopt_existing=args.adopt_existing,
            ),
            child,
        )
        # depends_on of the component (the stack's Team resources) is passed on: a membership needs its team.
        member_opts = pulumi.ResourceOptions(parent=self, depends_on=opts.depends_on if opts else None)
        self.memberships = [
            TeamMember(
                member_name(resource_name, team_id),
                TeamMemberArgs(url=args.url, token=token, team_id=team_id, user_id=self.user.user_id,
                               adopt_existing=args.adopt_existing),
                pulumi.ResourceOptions.merge(member_opts, pulumi.ResourceOptions(aliases=[
                    pulumi.Alias(name=old) for old in [legacy_member_name(resource_name, team_id)]
                    if old not in shared_legacy_names])),
            )
            for team_id in args.teams or []
        ]
        self.key_resource = Key(
            resource_name,
            KeyArgs(
                url=args.url,
                token=token,
                user_id=self.user.user_id,
                key_alias=key_alias,
                # auto_create_key: /user/new minted the key; the Key adopts it instead of generating one.
                existing_key=_existing_key(auto, self.user.user_response),
                models=args.models,
                max_budget=args.max_budget,
                budget_duration=args.budget_duration,
                duration=args.duration,
                team_id=args.team_id,
                metadata=args.metadata,
                max_parallel_requests=args.max_parallel_requests,
                tpm_limit=args.tpm_limit,
                rpm_limit=args.rpm_limit,
                spend=args.spend,
                model_max_budget=args.model_max_budget,
                adopt_existing=args.adopt_existing,
                rotate_after=args.rotate_after,
                rotation_trigger=args.rotation_trigger,
                rotation_grace=args.rotation_grace,
                blocked=args.blocked,
            ),
            # LiteLLM moves a key into a team (/key/update) only when its user is a member: memberships first.
            pulumi.ResourceOptions(parent=self, depends_on=self.memberships),
        )
        # A resource keeps an answer as what its read (`*_data`) lacks (providers/payload.beside): whole here.
        self.user_response = pulumi.Output.secret(combine(payload.rebuilt, self.user.user_response, self.user.user_data))
        self.user_data = self.user.user_data
        self.key = pulumi.Output.secret(self.key_resource.key)
        self.key_data = self.key_resource.key_data
        self.key_response = pulumi.Output.secret(
            combine(payload.rebuilt, self.key_resource.key_response, self.key_resource.key_data))
        # The five outputs are this component's attributes; the state stores each once, on the resource that
        # produced it (and in the stack's exports). Registering them again here would store them twice more.
        self.register_outputs({})
