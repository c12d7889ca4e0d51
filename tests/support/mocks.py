"""Pulumi mock-runtime pieces shared by the tests that construct UserWithKey under `pulumi.runtime.set_mocks`."""

from __future__ import annotations

from typing import Any

import pulumi
from pulumi.runtime import mocks as pulumi_mocks


class RecordingMonitor(pulumi_mocks.MockMonitor):
    """Keeps each raw RegisterResource request, where secrets are still wrapped."""

    def __init__(self, mocks: pulumi.runtime.Mocks) -> None:
        super().__init__(mocks)
        self.requests: list[Any] = []

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 (the gRPC method's name)
        self.requests.append(request)
        return super().RegisterResource(request)

    def registered(self, type_suffix: str) -> Any:
        return next(r for r in self.requests if r.type.endswith(type_suffix))
