"""Committed split manifests and label lists, installed as package data ``benchmark.datasets``.

Only these small files ship; audio goes under ``data_root`` (default ``./datasets``), never into the package.
"""
