"""What the LiteLLM providers share: check and diff derived from a field table, credentials, and the
properties a resource registers.

The provider objects are pickled by reference into every resource's `__provider` property, so they carry
no state: no session, no token. Credentials come from the resource's own properties, except that read and
delete prefer the `litellm:url`/`litellm:token` the engine configured the plugin with (Configure): the
current config for up and preview, the config of the last up for refresh and destroy (which run no program).
So after a rotation applied by an `up`, refresh and destroy never need the token saved in older state, and
a resource's inputs and outputs keep the token only when it is not the configured one (`unconfigured`,
`saved`): the state holds the admin token once, in the provider config, instead of twice per resource.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Callable, ClassVar, Iterable, Mapping, Optional

import pulumi
from pulumi.dynamic import CheckResult, ConfigureRequest, CreateResult, DiffResult, ReadResult, ResourceProvider

from . import claims, fields, owner, payload
from .client import ClientSettings, LiteLLMClient, LiteLLMError

MOVED_FROM = "LITELLM_MOVED_FROM"  # the old url, when the proxy really moved without its objects (refresh)
# Set once per plugin process by Configure; never pickled (module state, not instance state).
_stack_config: dict[str, Any] = {}


class ChangeSet(DiffResult):
    """A DiffResult that also names the changed properties (the plugin protocol drops them; tests and
    scripts/preview_examples.py read them)."""

    def __init__(self, diffs: list[str], replaces: list[str], stables: list[str], delete_before_replace: bool) -> None:
        super().__init__(
            changes=bool(diffs), replaces=replaces, stables=stables, delete_before_replace=delete_before_replace
        )
        self.diffs = diffs


class LiteLLMProvider(ResourceProvider):
    """Check and diff for a resource described by `FIELDS`; subclasses add create/read/update/delete."""

    FIELDS: ClassVar[tuple[fields.Field, ...]]
    TRIMMED: ClassVar[tuple[str, ...]] = ()  # outputs that are API answers, stored trimmed (providers/payload)
    DROPPED: ClassVar[tuple[str, ...]] = ()  # inputs the outputs need not repeat (see `saved`)
    # Outputs left out when empty (False, []): what no Diff compares, so one stored by an older version is
    # no reshape. adopt_existing matters only at creation, and its `false` in every resource adds up.
    SPARSE: ClassVar[tuple[str, ...]] = ("adopt_existing",)
    # An answer stored beside the read of the same object, as what the read lacks (providers/payload.beside).
    BESIDE: ClassVar[dict[str, str]] = {}
    serialize_as_secret_always = False  # the pickled provider holds no secret

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    def configure(self, req: ConfigureRequest) -> None:
        config = req.config
        _stack_config.clear()
        for name in ("url", "token"):
            value = config.get(f"litellm:{name}")
            if value:
                _stack_config[name] = fields.unwrap_secret(value)

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        inputs, failures = fields.check(self.FIELDS, news)
        return CheckResult(unconfigured(inputs), failures)

    def diff(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> ChangeSet:
        names = fields.changed(self.FIELDS, with_token(olds), with_token(news))
        replaces = [f.name for f in self.FIELDS if f.replaces and f.name in names]
        return self.held(id_, olds, self.change_set(names, replaces, olds))

    # A rename must not delete what the renamed resource holds (providers/claims.py).
    def held(self, id_: str, olds: Mapping[str, Any], result: ChangeSet) -> ChangeSet:
        """Note the object a declared resource keeps (one it replaces, it does not keep)."""
        if not result.replaces:
            claims.note_held(type(self).__name__, id_, olds)
        return result

    def created(self, result: CreateResult) -> CreateResult:
        claims.note_held(type(self).__name__, result.id, result.outs or {})
        return result

    def released(self, id_: str, props: Mapping[str, Any]) -> bool:
        """True when another resource of this run holds the object: its Delete leaves it on the proxy."""
        return claims.held_by_another(type(self).__name__, id_, props)

    def change_set(self, names: list[str], replaces: list[str], olds: Mapping[str, Any]) -> ChangeSet:
        """The diff; outputs an older version stored in a larger shape are a change too (an update that
        calls nothing and rewrites them), so an ordinary `up` shrinks an existing stack's state."""
        stables = [f.name for f in self.FIELDS if f.replaces and f.name not in replaces]
        names = names + [name for name in self.reshaped(olds) if name not in names]
        return ChangeSet(names, replaces, stables, self.delete_before_replace(replaces))

    def reshaped(self, olds: Mapping[str, Any]) -> list[str]:
        """The outputs in `olds` that this version would store otherwise (see `saved`); never managed_by,
        an input no version stored (olds holding it are inputs, not an older shape)."""
        now = self.stored(dict(olds))
        return sorted(name for name, value in olds.items()  # a null is not stored (the engine drops it)
                      if name != "__provider" and value is not None and now.get(name, _GONE) != value
                      and not (name in self.SPARSE and not value) and name != fields.OWNER.name)

    def delete_before_replace(self, replaces: list[str]) -> bool:
        """How a replacement must go, answered on EVERY Diff: the engine also replaces a resource left
        pending replacement by a failed run, whatever Diff says, and takes the order from this answer.

        By default: delete first when no identity field changed (a forced replacement), because the new
        object takes the old id, and deleting the old one afterwards would delete the new one. When the
        identity changed, create first (the engine then deletes the old object at the end of the run)."""
        return not replaces

    @classmethod
    def stored(cls, outputs: dict[str, Any]) -> dict[str, Any]:
        return {name: value for name, value in saved(outputs, cls.TRIMMED, cls.DROPPED, cls.BESIDE).items()
                if name not in cls.SPARSE or value}

    @classmethod
    def whole(cls, olds: Mapping[str, Any]) -> dict[str, Any]:
        """Outputs from the state with each answer kept `beside` a read whole again against the read it was
        kept beside, so the new read of an update does not change the answer's values. (A refresh stores the
        answer as it is: the fields it shared with the read then follow the read, and a refresh reports the
        answer changed only when the answer itself is.)"""
        return {**olds, **{name: payload.rebuilt(olds.get(name), olds.get(data)) for name, data in cls.BESIDE.items()
                           if name in olds or data in olds}}

    @classmethod
    def field(cls, name: str) -> fields.Field:
        return next(f for f in cls.FIELDS if f.name == name)

    @classmethod
    def as_declared(cls, live: Mapping[str, Any], props: Mapping[str, Any]) -> bool:
        """True when a live row holds exactly the declared value of every field that was sent and is
        reported back: what a create of these props would have made."""
        names = fields.changed(cls.FIELDS, fields.live_values(cls.FIELDS, live), props)
        return not [n for n in names if cls.field(n).sent and cls.field(n).live]


def read_back(read: Callable[[str], dict[str, Any]], identity: str) -> dict[str, Any] | None:
    """The `*_data` output after a change that succeeded. A failed read must not fail the step: the engine
    would forget an object that exists, or keep the old state and send the change (spend and duration
    included) again; the output waits for the next refresh instead."""
    try:
        return read(identity)
    except LiteLLMError:
        return None


def moved(olds: Mapping[str, Any], news: Mapping[str, Any]) -> str | None:
    """The new proxy url when `url` changed (the objects in the state were made at the old one), else None."""
    old, new = (fields.canonical(fields.CREDENTIALS[0], props.get("url")) for props in (olds, news))
    return new if old != new else None


def made_at(props: Mapping[str, Any]) -> str:
    """The url of the proxy the object in the state was made at (or found at by the last `up`)."""
    return fields.canonical(fields.CREDENTIALS[0], props.get("url"))


def not_at(what: str, url: str, olds: Mapping[str, Any]) -> LiteLLMError:
    """The error for an object the state has that is not at the proxy's new url."""
    return LiteLLMError(
        "check the new url",
        f"{what} does not exist at {url} (litellm:url changed; the state has it at {made_at(olds)}). If "
        f"litellm:url is wrong, set it back. {_moved_how(made_at(olds), url)}",
        404,
    )


_GONE = object()


def configured_token() -> str | None:
    return _stack_config.get("token")


def saved(outputs: dict[str, Any], trimmed: Iterable[str] = (), dropped: Iterable[str] = (),
          beside: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Outputs as the state keeps them: the answers in `trimmed` cut to their kept fields (providers/payload),
    an answer named in `beside` cut to what the read it names lacks, the outputs in `dropped` left out, and
    the admin token left out when it is the one the plugin was configured with (refresh and destroy get it
    from the provider config saved at the last `up`)."""
    out = {name: value for name, value in outputs.items() if name not in dropped}
    for name in trimmed:
        if name in out:
            out[name] = payload.trim(out[name])
    for name, data in (beside or {}).items():
        if name in out:
            out[name] = payload.beside(out[name], out.get(data))
    if is_configured_token(out.get("token")):
        del out["token"]
    return out


def unconfigured(inputs: dict[str, Any]) -> dict[str, Any]:
    """Checked inputs as the state keeps them: without the admin token when it is the configured one. The
    engine saves what Check returns as the resource's inputs, and passes it to Create and Update, which
    take the configured token instead (`client_for`): the state holds it once, in the provider config."""
    if is_configured_token(inputs.get("token")):
        return {name: value for name, value in inputs.items() if name != "token"}
    return inputs


def is_configured_token(token: Any) -> bool:
    """True for the admin token the plugin was configured with (a known value, secret or not)."""
    return token is not None and not fields.is_unknown(token) and fields.unwrap_secret(token) == configured_token()


def with_token(props: Mapping[str, Any]) -> Mapping[str, Any]:
    """Outputs or checked inputs with the token they were saved without (the configured one), for Diff."""
    return props if "token" in props else {**props, "token": configured_token()}


def missing(what: str, props: Mapping[str, Any], client: LiteLLMClient) -> ReadResult:
    """A read that found nothing. Asked where the object was made, that means it is gone; asked at another
    url (litellm:url changed), a 404 proves nothing: the wrong proxy, or one that moved without its
    database. Refresh then keeps the object and says why, unless LITELLM_MOVED_FROM names the old url."""
    old, asked = made_at(props), client.url
    if asked == old or os.environ.get(MOVED_FROM, "").rstrip("/") == old:
        return ReadResult("", {})
    raise LiteLLMError(
        "refresh",
        f"{what} was not found at {asked} (litellm:url), but the state has it at {old}, where it was made: a "
        f"404 from another proxy does not mean it was deleted, so refresh keeps it. If litellm:url is wrong, "
        f"set it back to {old}. {_moved_how(old, asked)}",
        404,
    )


def _moved_how(old: str, new: str) -> str:
    return (f"If the proxy really moved to {new} without these objects, run `{MOVED_FROM}={old} pulumi refresh`: "
            f"it drops what {new} does not have, and `pulumi up` then creates it there")


def client_for(props: Mapping[str, Any]) -> LiteLLMClient:
    """A client with the credentials the program declared (create, update)."""
    url = fields.unwrap_secret(props["url"])
    token = fields.unwrap_secret(props.get("token")) or configured_token()  # Check left out the configured one
    if not token:
        raise LiteLLMError("configure", "no admin token: set litellm:token (pulumi config set --secret litellm:token)")
    return LiteLLMClient(url, token, ClientSettings.from_env())


def current_client_for(props: Mapping[str, Any], follow_url: bool = False) -> LiteLLMClient:
    """A client for read and delete, whose props are the state's: the configured token wins when it is for
    the same proxy, so a token saved in state before the last `up` is not needed once it is revoked. With
    `follow_url` (read), the configured url and token win outright: after `litellm:url` changed, a refresh
    asks the new proxy (and drops what is not there only when told the proxy moved: see `missing`)."""
    url = fields.unwrap_secret(props["url"]).rstrip("/")
    if follow_url and _stack_config.get("url") and _stack_config.get("token"):
        return LiteLLMClient(_stack_config["url"].rstrip("/"), _stack_config["token"], ClientSettings.from_env())
    configured_url = _stack_config.get("url") or os.environ.get("LITELLM_URL")
    configured_token = _stack_config.get("token") or os.environ.get("LITELLM_MASTER_KEY")
    # Outputs saved without the token (see `saved`): the configured one is the only one there is.
    token = fields.unwrap_secret(props.get("token")) or configured_token or ""
    if configured_token and configured_url and configured_url.rstrip("/") == url:
        token = configured_token
    return LiteLLMClient(url, token, ClientSettings.from_env())


def registered(name: str, args: Any, outputs: Iterable[str], secret_outputs: list[str],
               opts: Optional[pulumi.ResourceOptions], marks: bool = False) -> tuple[dict[str, Any], pulumi.ResourceOptions]:
    """What a resource registers: every field of its Args, its name (which resource holds an object:
    providers/claims.py), with `marks` its stack (the owner mark of what it creates: providers/owner.py),
    the token always secret, its outputs to come; and its options with the outputs that are always secret."""
    props = {field.name: getattr(args, field.name) for field in dataclasses.fields(args)}
    props[claims.NAME] = name
    if marks:
        props[fields.OWNER.name] = owner.stack_identity()
    props["token"] = pulumi.Output.secret(args.token)
    props.update(dict.fromkeys(outputs))
    return props, pulumi.ResourceOptions.merge(pulumi.ResourceOptions(additional_secret_outputs=secret_outputs), opts)
