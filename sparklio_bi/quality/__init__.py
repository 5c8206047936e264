"""Proving it: the spec's reference SQL, the benchmark, the browser."""
