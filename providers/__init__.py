"""Pulumi dynamic providers for LiteLLM proxy users and virtual keys.

The type tokens (`pulumi-python:dynamic/litellm:User`, `...:Key`) and these import paths are written into
every stack's state: they are a compatibility contract.
"""

from .client import LiteLLMClient, LiteLLMError
from .key import Key, KeyArgs, KeyProvider
from .user import User, UserArgs, UserProvider

__all__ = ["Key", "KeyArgs", "KeyProvider", "LiteLLMClient", "LiteLLMError", "User", "UserArgs", "UserProvider"]
