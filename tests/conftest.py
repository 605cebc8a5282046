"""Test settings: never touch the network, keep torch to the machine's cores, share small fixtures."""
from __future__ import annotations

import functools
import http.server
import os
import subprocess
import threading

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before anything imports huggingface_hub: hub calls fail fast

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from benchmark.config_store import register_schemas  # noqa: E402

register_schemas()  # the config files' defaults: lists name these schemas (as `python -m benchmark` registers them)

REPO_ROOT = Path(__file__).resolve().parents[1]
# Everything the tests read lives in the repository (tests/fixtures/, each folder with its PROVENANCE.md).
FIXTURES = REPO_ROOT / "tests" / "fixtures" / "mert"
GTZAN_RHYTHM = REPO_ROOT / "tests" / "fixtures" / "gtzan_rhythm"
REFDATA = REPO_ROOT / "tests" / "fixtures" / "refdata"  # trimmed copies of the reference annotation/split files


@pytest.fixture
def compose_config(tmp_path):
    """Compose the run config as ``python -m benchmark run`` would, with data, cache and results in tmp."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    def _compose(*overrides: str) -> dict:
        base = [f"data_root={tmp_path / 'data'}", f"cache_dir={tmp_path / 'cache'}",
                f"results_dir={tmp_path / 'results'}", "num_workers=0"]
        with initialize_config_dir(config_dir=str(REPO_ROOT / "configs"), version_base="1.3"):
            cfg = compose(config_name="config", overrides=[*base, *overrides])
        return OmegaConf.to_container(cfg, resolve=True)

    return _compose


class _QuietFiles(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def static_http_server(tmp_path):
    """A local HTTP server (loopback only) over ``tmp_path/server``; yields (folder, base URL).

    Why HTTP and not file://: benchmark.tasks.download reads response lengths and Range replies, which file:// lacks, so a
    task's prepare() runs its real download path without the network.
    """
    folder = tmp_path / "server"
    folder.mkdir()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietFiles, directory=str(folder)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield folder, f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def main_in_process(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """``python -m benchmark <args>`` run in this process from ``cwd``: ``benchmark.cli.main``, which is all the
    module runs, with output and exit status captured as a subprocess's would be.

    Why: a fresh interpreter spends seconds importing torch before any of the suite's code runs, and the default
    suite's time is shared. The real command line in fresh processes stays covered by ``tests/test_user_errors.py``
    and the slow tests of ``tests/test_cli.py``.
    """
    import contextlib
    import io

    from benchmark.cli import main

    out, err, previous = io.StringIO(), io.StringIO(), os.getcwd()
    os.chdir(cwd)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(list(args))
            except SystemExit as exc:  # Hydra's app reports a bad override and exits, as on the command line
                code = exc.code if isinstance(exc.code, int) else 1
    finally:
        os.chdir(previous)
    return subprocess.CompletedProcess(["python", "-m", "benchmark", *args], code, out.getvalue(), err.getvalue())

