"""Published reference numbers, installed as package data ``benchmark.reference`` (see benchmark.resources)."""
