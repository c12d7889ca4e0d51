"""Combining Outputs whose values are API answers without the SDK taking them apart.

`pulumi.Output.all` (like `Output.from_input`) turns every dict, list and value *inside* a resolved argument
into an Output of its own, and walks the value again at each level (`contains_unknowns`): about 1.2 ms of
CPU per /user/info answer, and 43% of a 2,000-user program's CPU in a no-op preview (docs/benchmarks.md,
sampled with py-spy). Resource outputs, as the engine resolves them, are plain JSON with no Output inside,
so here each one travels through `Output.all` as one opaque value and is unwrapped after. Known-ness,
secrecy and dependencies are the SDK's own: an unknown argument makes the result unknown, a secret one makes
it secret, and the result depends on every argument's resources.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

import pulumi


class _Whole:
    """One resolved value that `Output.all` keeps as it is (it lifts only dicts, lists, tuples, Outputs and
    awaitables)."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


def _opaque(value: pulumi.Input[Any]) -> pulumi.Input[Any]:
    # Anything else (a plain value, or a list holding an Output: models=[config.require("m")]) is lifted by
    # Output.all as before, so Outputs inside it still resolve.
    return value.apply(_Whole) if isinstance(value, pulumi.Output) else value


def _unwrap(value: Any) -> Any:
    return value.value if isinstance(value, _Whole) else value


def combine(fn: Callable[..., Any], *values: pulumi.Input[Any]) -> pulumi.Output[Any]:
    """`fn` of the values once all are known, like `Output.all(*values).apply(lambda v: fn(*v))`."""
    return pulumi.Output.all(*(_opaque(v) for v in values)).apply(lambda got: fn(*(_unwrap(v) for v in got)))


def gather(outputs: Mapping[str, pulumi.Input[Any]]) -> pulumi.Output[dict[str, Any]]:
    """One Output of a map of them, like `Output.all(**outputs)`."""
    return pulumi.Output.all(**{name: _opaque(v) for name, v in outputs.items()}).apply(
        lambda got: {name: _unwrap(v) for name, v in got.items()})
