"""Hydra launchers for sweeps beyond one process: SLURM (composed only, no cluster here), submitit local, joblib.

The configs carry the plugins' own names (``hydra/launcher=submitit_slurm``), so the command researchers know
from the plugin's documentation picks up this suite's cluster settings.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings

import pytest
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from tests.conftest import REPO_ROOT


def _hydra_launcher(*overrides: str):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Hydra notes that our file is checked against the plugin's schema
        with initialize_config_dir(config_dir=str(REPO_ROOT / "configs"), version_base="1.3"):
            cfg = compose(config_name="config", overrides=["hydra.job.name=benchmark",
                                                            "hydra.sweep.dir=/tmp/sweep", *overrides],
                          return_hydra_config=True)
    return cfg.hydra.launcher


def test_slurm_launcher_composes_with_the_cluster_settings():
    launcher = _hydra_launcher("hydra/launcher=submitit_slurm", "hydra.launcher.partition=gpu",
                               "hydra.launcher.timeout_min=60")
    assert launcher._target_ == "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher"
    assert (launcher.partition, launcher.timeout_min) == ("gpu", 60)
    assert launcher.array_parallelism == 32 and launcher.cpus_per_task == 8 and launcher.mem_gb == 64
    assert (launcher.gpus_per_node, launcher.tasks_per_node, launcher.nodes) == (1, 1, 1)
    assert launcher.submitit_folder == "/tmp/sweep/.submitit/%j"


def test_slurm_launcher_follows_the_ddp_layout_of_the_run():
    """trainer.devices=4 trainer.num_nodes=2: 4 GPUs and 4 tasks (one process per GPU) on each of 2 nodes."""
    launcher = _hydra_launcher("hydra/launcher=submitit_slurm", "trainer.devices=4", "trainer.num_nodes=2")
    assert (launcher.gpus_per_node, launcher.tasks_per_node, launcher.nodes) == (4, 4, 2)
    built = instantiate(launcher)  # what Hydra builds before submitting: the plugin accepts every field
    assert type(built).__name__ == "SlurmLauncher"
    assert (built.params["gpus_per_node"], built.params["tasks_per_node"], built.params["nodes"]) == (4, 4, 2)


def test_one_machine_launchers_compose():
    assert _hydra_launcher("hydra/launcher=joblib")._target_.endswith("JoblibLauncher")
    assert _hydra_launcher("hydra/launcher=joblib").n_jobs == 2
    assert _hydra_launcher("hydra/launcher=submitit_local")._target_.endswith("LocalLauncher")


def _cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO_ROOT)}
    out = subprocess.run([sys.executable, "-m", "benchmark", *args], cwd=REPO_ROOT, env=env, capture_output=True,
                         text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    return out


@pytest.mark.slow  # ~35 s (8 processes); multirun and its skip of finished runs run by default in test_cli.py
def test_two_stage_sweep_with_the_submitit_local_launcher(tmp_path):
    """Stage 1 extracts once per (task, model); stage 2 fans out the seeds, which read the cache; a repeated
    sweep skips the runs whose records exist."""
    common = ["task=synth_chords", "task.n_train=48", "task.n_valid=48", "task.n_test=48", "task.clip_seconds=1.0",
              "model=mfcc", f"data_root={tmp_path / 'data'}", f"cache_dir={tmp_path / 'cache'}",
              f"results_dir={tmp_path / 'results'}", "num_workers=0", "hydra/launcher=submitit_local"]
    extract = _cli("extract", "-m", *common, f"hydra.sweep.dir={tmp_path / 'stage1'}")
    assert list((tmp_path / "stage1" / ".submitit").glob("*")), "the extraction did not go through submitit"
    assert not (tmp_path / "results").exists(), "the extraction stage trains nothing and writes no record"
    assert list((tmp_path / "cache").rglob("train.f16")), extract.stdout[-2000:]

    probe = ["run", "-m", *common, "trainer.max_epochs=2", "seed=0,1", f"hydra.sweep.dir={tmp_path / 'stage2'}"]
    _cli(*probe)
    records = sorted((tmp_path / "results" / "runs" / "synth_chords" / "mfcc").glob("*.json"))
    assert sorted(json.loads(p.read_text())["seed"] for p in records) == [0, 1]
    assert [json.loads(p.read_text())["timings"]["encoder_forward_calls"] for p in records] == [0, 0]
    assert list((tmp_path / "stage2" / ".submitit").glob("*")), "the jobs did not go through submitit"
    logs = "".join(p.read_text() for p in (tmp_path / "stage2" / ".submitit").rglob("*.out"))
    assert "features: read from cache" in logs

    _cli(*probe[:-1], f"hydra.sweep.dir={tmp_path / 'stage3'}")
    again = "".join(p.read_text() for p in (tmp_path / "stage3" / ".submitit").rglob("*.out"))
    assert again.count("record exists, skipping") == 2
