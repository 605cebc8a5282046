"""Hydra launchers for sweeps beyond one process: SLURM (composed only, no cluster here) and submitit local."""
from __future__ import annotations

import json
import os
import subprocess
import sys

from hydra import compose, initialize_config_dir

from tests.conftest import REPO_ROOT


def _hydra_launcher(*overrides: str):
    with initialize_config_dir(config_dir=str(REPO_ROOT / "configs"), version_base="1.3"):
        return compose(config_name="config", overrides=list(overrides), return_hydra_config=True).hydra.launcher


def test_slurm_launcher_composes_with_the_cluster_settings():
    launcher = _hydra_launcher("hydra/launcher=slurm", "hydra.launcher.partition=gpu",
                               "hydra.launcher.gpus_per_node=4", "hydra.launcher.timeout_min=60")
    assert launcher._target_ == "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher"
    assert (launcher.partition, launcher.gpus_per_node, launcher.timeout_min) == ("gpu", 4, 60)
    assert launcher.array_parallelism == 32 and launcher.cpus_per_task == 8 and launcher.mem_gb == 64
    assert _hydra_launcher("hydra/launcher=parallel")._target_.endswith("JoblibLauncher")


def test_submitit_local_launcher_runs_a_two_job_multirun(tmp_path):
    args = ["run", "-m", "hydra/launcher=local", "task=synth_chords", "task.n_train=48", "task.n_valid=48",
            "task.n_test=48", "task.clip_seconds=1.0", "trainer.max_epochs=2", "model=mfcc", "seed=0,1",
            f"data_root={tmp_path / 'data'}", f"cache_dir={tmp_path / 'cache'}",
            f"results_dir={tmp_path / 'results'}", "num_workers=0", f"hydra.sweep.dir={tmp_path / 'multirun'}"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO_ROOT)}
    out = subprocess.run([sys.executable, "-m", "benchmark", *args], cwd=REPO_ROOT, env=env, capture_output=True,
                         text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    records = sorted((tmp_path / "results" / "runs" / "synth_chords" / "mfcc").glob("*.json"))
    assert sorted(json.loads(p.read_text())["seed"] for p in records) == [0, 1]
    assert list((tmp_path / "multirun" / ".submitit").glob("*")), "the jobs did not go through submitit"
