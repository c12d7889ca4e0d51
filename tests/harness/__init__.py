"""A stand-in for the Pulumi engine that drives the real dynamic-provider plugin over gRPC (see engine.py)."""

from .engine import EngineError, Resource, Result, Stack, Step, delete_order
from .plugin import Diff, Plugin, PluginError, clean_env
from .values import UNKNOWN, is_secret, strip_secrets

__all__ = [
    "Diff", "EngineError", "Plugin", "PluginError", "Resource", "Result", "Stack", "Step", "UNKNOWN",
    "clean_env", "delete_order", "is_secret", "strip_secrets",
]
