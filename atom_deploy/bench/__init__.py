"""Benchmarks: measured side by side in one run, each configuration in a fresh process."""
