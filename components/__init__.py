"""The UserWithKey component: the Terraform module's interface over the LiteLLM User and Key resources."""

import litellm_pulumi_access  # noqa: F401 - first: another `providers` would fail below with a bare ImportError

from .user_with_key import UserWithKey, UserWithKeyArgs

__all__ = ["UserWithKey", "UserWithKeyArgs"]
