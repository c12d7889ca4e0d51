"""Test support: the pass-through in front of the proxy, proxy-state checks, the engine harness."""
