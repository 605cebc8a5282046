"""The command line as a user types it: list, embed, run (single and Hydra multirun), and bad overrides."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tests.conftest import FIXTURES, REPO_ROOT, main_in_process

TINY_CHORDS = ["task=synth_chords", "task.n_train=48", "task.n_valid=48", "task.n_test=48", "task.clip_seconds=1.0",
               "trainer.max_epochs=2"]


def _cli(*args: str, cwd: Path = REPO_ROOT) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.run([sys.executable, "-m", "benchmark", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600)


def test_list_names_every_model_and_task(tmp_path):
    out = main_in_process(["list"], tmp_path)
    assert out.returncode == 0, out.stderr
    for cfg in (REPO_ROOT / "configs" / "model").glob("*.yaml"):
        assert cfg.stem in out.stdout
    for name in ("synth_chords", "synth_key", "synth_tags", "synth_tempo"):
        assert name in out.stdout
    assert "25 x 1024" in out.stdout  # MERT-v1-330M: 24 layers + embedding, 1024 wide


@pytest.mark.slow  # ~5 s; hidden states against the reference run by default in test_mert_native.py
def test_embed_writes_the_reference_hidden_states(tmp_path):
    fixture = FIXTURES / "v1-95m-tiny"
    audio = np.load(fixture / "expected" / "input_values.npy")
    (tmp_path / "in").mkdir()
    sf.write(tmp_path / "in" / "clip.wav", audio, 24000, subtype="FLOAT")  # float WAV: the samples exactly
    out = _cli("embed", "model=mert-v1-95m", f"model.checkpoint={fixture}", f"input={tmp_path / 'in'}",
               f"out={tmp_path / 'out'}", "window=none")
    assert out.returncode == 0, out.stderr
    states = np.load(tmp_path / "out" / "clip.npy")
    expected = np.load(fixture / "expected" / "hidden_states.npy")
    assert states.shape == expected.shape == (3, 112, 32)
    assert np.abs(states - expected).max() < 1e-5


def test_multirun_writes_one_record_per_combination_and_skips_finished_runs(tmp_path):
    """Hydra's basic launcher in one process: 2 models (each job builds its own encoder), then the same sweep again,
    which skips both (the SLURM-style two-stage sweep through submitit, over seeds, runs under -m slow,
    tests/test_launchers.py)."""
    args = ["run", "-m", *TINY_CHORDS, "model=mfcc,chroma", "seed=1", f"data_root={tmp_path / 'data'}",
            f"cache_dir={tmp_path / 'cache'}", f"results_dir={tmp_path / 'results'}", "num_workers=0",
            f"hydra.sweep.dir={tmp_path / 'multirun'}"]
    out = main_in_process(args, tmp_path)  # Hydra's basic launcher runs the jobs in this process anyway
    assert out.returncode == 0, out.stderr[-3000:]
    records = sorted((tmp_path / "results" / "runs" / "synth_chords").glob("*/*.json"))
    assert len(records) == 2
    seen = {(json.loads(p.read_text())["model"], json.loads(p.read_text())["seed"]) for p in records}
    assert seen == {("mfcc", 1), ("chroma", 1)}
    record = json.loads(records[0].read_text())
    assert record["produced_by"].startswith("python -m benchmark run")
    assert record["config"]["data_root"] == str(tmp_path / "data")

    again = main_in_process(args, tmp_path)
    assert again.returncode == 0
    assert again.stdout.count("record exists, skipping") == 2


# the same refusals run in process by default (tests/test_config_errors.py) and as real command lines in
# tests/test_user_errors.py (unknown task, unknown key): these two subprocesses (~5 s) run under -m slow
@pytest.mark.slow
def test_unknown_model_lists_the_valid_names(tmp_path):
    out = _cli("run", "model=no-such-model", f"results_dir={tmp_path}")
    assert out.returncode != 0
    assert "no-such-model" in out.stderr and "mert-v1-95m" in out.stderr


@pytest.mark.slow
def test_unknown_override_key_is_refused(tmp_path):
    out = _cli("run", "task.no_such_key=1", f"results_dir={tmp_path}")
    assert out.returncode != 0
    assert "no_such_key" in out.stderr
