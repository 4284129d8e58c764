"""Servers to benchmark against in tests and demos; no Dagster here."""
