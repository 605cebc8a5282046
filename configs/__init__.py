"""Hydra config tree of the suite, installed as package data ``benchmark.configs`` (see benchmark.resources)."""
