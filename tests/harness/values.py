"""Property values as the engine holds them, in Pulumi's wire form (JSON-like, with two markers):

- a secret is `{SIG: SECRET_SIG, "value": v}` (in the state file, `{SIG: SECRET_SIG, "ciphertext": ...}`);
- a value not known yet (preview) is the string `UNKNOWN`.

Numbers pass through protobuf `Struct`s on every hop, so they arrive as floats (300 -> 300.0), as they do
from the real engine. The helpers here are the engine-side rules the harness needs: stripping secrets for a
plugin that does not accept them, and re-marking outputs secret afterwards (`annotate_secrets`, a port of
the engine's Go function of the same name).
"""

from __future__ import annotations

import base64
import json
from typing import Any

from google.protobuf import json_format, struct_pb2
from pulumi.runtime.rpc import UNKNOWN, is_rpc_secret as is_secret, wrap_rpc_secret as make_secret  # noqa: F401 (re-exported)

SIG = "4dabf18193072939515e22adb298388d"
SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"

Props = dict[str, Any]


def secret(value: Any) -> dict[str, Any]:
    return {SIG: SECRET_SIG, "value": value}


def contains_secrets(value: Any) -> bool:
    if is_secret(value):
        return True
    if isinstance(value, dict):
        return any(contains_secrets(v) for v in value.values())
    if isinstance(value, list):
        return any(contains_secrets(v) for v in value)
    return False


def strip_secrets(value: Any) -> Any:
    """What the engine sends to a provider that answered Configure with acceptSecrets=false."""
    if is_secret(value):
        return strip_secrets(value.get("value"))
    if isinstance(value, dict):
        return {k: strip_secrets(v) for k, v in value.items()}
    if isinstance(value, list):
        return [strip_secrets(v) for v in value]
    return value


def annotate_secrets(outs: Props, ins: Props) -> Props:
    """The engine's `annotateSecrets` (pkg/resource/provider_plugin.go): an output becomes secret when the
    input of the same name contains a secret; objects present on both sides are compared key by key.
    Nothing else is re-marked: an output with no same-named secret input stays plain (hence
    additionalSecretOutputs)."""
    for key, in_value in ins.items():
        if key not in outs:
            continue
        out_value = outs[key]
        if isinstance(out_value, dict) and not is_secret(out_value) and isinstance(in_value, dict) and not is_secret(in_value):
            annotate_secrets(out_value, in_value)
        elif not is_secret(out_value) and contains_secrets(in_value):
            outs[key] = secret(out_value)
    return outs


def apply_additional_secret_outputs(outs: Props, names: list[str]) -> Props:
    """The engine marks these top-level outputs secret whatever the provider returned."""
    for name in names:
        if name in outs and outs[name] is not None:
            outs[name] = make_secret(outs[name])
    return outs


def to_struct(props: Props) -> struct_pb2.Struct:
    struct = struct_pb2.Struct()
    struct.update(props)
    return struct


def from_struct(struct: struct_pb2.Struct) -> Props:
    return json_format.MessageToDict(struct)


# ------------------------------------------------------------------ state file encoding
def encrypt(value: Any) -> Any:
    """Secrets as a stack's state file holds them: `{SIG: SECRET_SIG, "ciphertext": ...}`. The ciphertext is
    base64 of the JSON value (a stand-in for the stack's secrets provider: it is not encryption, but nothing
    inside it is readable as plain text, which is what the plain-text report checks)."""
    if is_secret(value):
        raw = json.dumps(value.get("value"), sort_keys=True).encode()
        return {SIG: SECRET_SIG, "ciphertext": base64.b64encode(raw).decode()}
    if isinstance(value, dict):
        return {k: encrypt(v) for k, v in value.items()}
    if isinstance(value, list):
        return [encrypt(v) for v in value]
    return value


def decrypt(value: Any) -> Any:
    if isinstance(value, dict) and value.get(SIG) == SECRET_SIG and "ciphertext" in value:
        return secret(json.loads(base64.b64decode(value["ciphertext"])))
    if isinstance(value, dict):
        return {k: decrypt(v) for k, v in value.items()}
    if isinstance(value, list):
        return [decrypt(v) for v in value]
    return value
