"""Benchmarks (not part of the test run): see docs/benchmarks.md and scripts/bench."""
