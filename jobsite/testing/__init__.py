"""Tooling shared by the tests and the benchmarks (not imported by the site itself)."""
