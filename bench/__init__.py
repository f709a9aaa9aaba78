"""Benchmarks: ``python bench/run.py [names...]`` (``make bench``); see bench/README.md."""
