"""One run on several processes (Lightning DDP, gloo on the CPU) must give what one process gives.

Why these tests: a researcher who moves a sweep from one GPU to eight, or to two nodes, must get the same cache
and the same table. The end-to-end test runs the real command with one process and with ``trainer.devices=2``
started four ways (spawned by Lightning on one machine, by ``torchrun``, as ``srun`` starts a SLURM job's
tasks, and spawned inside a one-task SLURM job), at one torch thread per process each (torch's CPU kernels split their sums by thread count, so the
comparison fixes it), and compares the cache bytes and the record. The unit tests pin the pieces: shards dealt
out between ranks and reused by a rerun with another number of processes, predictions gathered across ranks
before a macro ROC-AUC is computed, and the settings that are refused.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from benchmark.cache import FeatureCache
from benchmark.distributed import DistributedSettings, Ranks, chunk_bounds, distributed_settings, launch
from benchmark.errors import ConfigError
from benchmark.extract import extract_split, load_or_extract
from benchmark.record import run_checksum
from tests.conftest import FIXTURES, REPO_ROOT
from tests.planted import PlantedEncoder
from tests.test_resume import SPEC, _tracks

SMALL_TAGS = ["task=synth_tags", "task.n_train=48", "task.n_valid=24", "task.n_test=24", "task.clip_seconds=2.0",
              "model=mert-v1-95m", f"model.checkpoint={FIXTURES / 'v1-95m-tiny'}", "trainer.max_epochs=4",
              "trainer.accelerator=cpu", "shard_tracks=8", "num_workers=0"]


def _run_args(tmp_path: Path, name: str, *overrides: str) -> list[str]:
    return ["run", f"data_root={tmp_path / 'data'}", f"cache_dir={tmp_path / name / 'cache'}",
            f"results_dir={tmp_path / name / 'results'}", f"hydra.run.dir={tmp_path / name / 'hydra'}", *overrides]


def _env(**extra: str) -> dict[str, str]:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO_ROOT), "OMP_NUM_THREADS": "1", **extra}


def _cli(tmp_path: Path, name: str, *overrides: str) -> subprocess.CompletedProcess:
    out = subprocess.run([sys.executable, "-m", "benchmark", *_run_args(tmp_path, name, *overrides)], cwd=REPO_ROOT,
                         env=_env(), capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    return out


def _slurm_job(tasks: int) -> dict[str, str]:
    """SLURM's variables for a one-node job of ``tasks`` tasks (what Lightning's SLURM environment reads)."""
    return {"SLURM_NTASKS": str(tasks), "SLURM_NTASKS_PER_NODE": str(tasks), "SLURM_JOB_ID": "4242",
            "SLURM_NODEID": "0", "SLURM_JOB_NAME": "benchmark", "SLURM_NODELIST": "localhost",
            "SLURM_JOB_NUM_NODES": "1"}


def _as_srun_starts_it(tmp_path: Path, name: str, *overrides: str) -> None:
    """Two tasks started the way ``srun --ntasks-per-node=2`` starts them: the same command in each, told its
    rank by SLURM's variables only (Lightning's SLURM environment reads them; no process is spawned)."""
    tasks = [subprocess.Popen([sys.executable, "-m", "benchmark", *_run_args(tmp_path, name, *overrides)],
                              cwd=REPO_ROOT, env=_env(**_slurm_job(2), SLURM_PROCID=str(r), SLURM_LOCALID=str(r)),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for r in (1, 0)]
    logs = [t.communicate(timeout=600)[0] for t in tasks]
    assert [t.returncode for t in tasks] == [0, 0], "\n".join(log[-2500:] for log in logs)


def _in_a_one_task_slurm_job(tmp_path: Path, name: str, *overrides: str) -> None:
    """An ``sbatch`` script that runs the command itself (one SLURM task): the processes are spawned here, and
    the ranks must not be read from SLURM's variables (every process would be rank 0)."""
    out = subprocess.run([sys.executable, "-m", "benchmark", *_run_args(tmp_path, name, *overrides)], cwd=REPO_ROOT,
                         env=_env(**_slurm_job(1), SLURM_PROCID="0", SLURM_LOCALID="0"), capture_output=True,
                         text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]


def _as_torchrun_starts_it(tmp_path: Path, name: str, *overrides: str) -> None:
    out = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "-m", "benchmark",
                          *_run_args(tmp_path, name, *overrides)], cwd=REPO_ROOT, env=_env(), capture_output=True,
                         text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]


def _cache_files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and p.suffix in (".f16", ".json")}


def _assert_same_run(tmp_path: Path, one: str, other: str, processes: int) -> None:
    cache_one, cache_other = _cache_files(tmp_path / one / "cache"), _cache_files(tmp_path / other / "cache")
    assert sorted(cache_one) == sorted(cache_other) and any(k.endswith("train.f16") for k in cache_one)
    differing = [k for k in cache_one if cache_one[k] != cache_other[k]]
    assert differing == [], f"cache files differ between 1 process and {other}: {differing}"

    [path_one] = (tmp_path / one / "results").rglob("seed0-*.json")
    [path_other] = (tmp_path / other / "results").rglob("seed0-*.json")
    assert path_one.name == path_other.name, "the process count must not change the record's name (protocol)"
    rec_one, rec_other = json.loads(path_one.read_text()), json.loads(path_other.read_text())
    for key in ("heads", "layers", "selected", "test_score", "valid_history", "layer_weights", "chance_level",
                "split_sizes", "protocol_checksum"):
        assert rec_one[key] == rec_other[key], (other, key)
    assert rec_one["primary_metric"] == "roc_auc" and 0.0 < rec_one["test_score"] <= 1.0
    assert len(rec_one["heads"]) == 4  # the tiny fixture: 3 hidden states + the weighted sum
    assert (rec_one["timings"]["processes"], rec_other["timings"]["processes"]) == (1, processes)
    assert rec_one["timings"]["encoder_forward_calls"] == rec_other["timings"]["encoder_forward_calls"] > 0


@pytest.mark.slow  # ~75 s (4 two-process runs); CI runs -m slow; launch() is covered by the ROC-AUC test
def test_two_process_runs_give_the_cache_and_record_of_one_process(tmp_path):
    """Spawned on one machine, started by torchrun, started as srun starts a job's tasks, or spawned inside a
    one-task SLURM job: the same result."""
    one = _cli(tmp_path, "one", *SMALL_TAGS, "trainer.devices=1")
    two = _cli(tmp_path, "spawned", *SMALL_TAGS, "trainer.devices=2")
    assert "rank 0 of 2" in two.stdout and "rank 0 of 2" not in one.stdout
    _assert_same_run(tmp_path, "one", "spawned", 2)
    _as_torchrun_starts_it(tmp_path, "torchrun", *SMALL_TAGS, "trainer.devices=2")
    _assert_same_run(tmp_path, "one", "torchrun", 2)
    _as_srun_starts_it(tmp_path, "srun", *SMALL_TAGS, "trainer.devices=2")
    _assert_same_run(tmp_path, "one", "srun", 2)
    _in_a_one_task_slurm_job(tmp_path, "sbatch", *SMALL_TAGS, "trainer.devices=2")
    _assert_same_run(tmp_path, "one", "sbatch", 2)


class OneRankOf(Ranks):
    """Rank ``rank`` of a ``world``-process run executed alone, as if the other ranks had not started yet: what
    it leaves in the cache is exactly what that rank of an interrupted multi-process extraction leaves."""

    def __init__(self, rank: int, world: int) -> None:
        super().__init__()
        self._rank, self._world = rank, world

    @property
    def rank(self) -> int:
        return self._rank

    @property
    def world_size(self) -> int:
        return self._world

    def broadcast(self, obj: Any) -> Any:
        return [] if obj is None else obj  # rank 0 is absent: nothing is known to be done

    def gather_objects(self, obj: Any) -> list[Any]:
        return [obj]


def test_ranks_split_the_shards_and_a_rerun_with_another_process_count_reuses_them(tmp_path):
    tracks = _tracks(tmp_path / "audio", n=11)  # 4 shards of 3 tracks (the last holds 2)
    reference, alone = FeatureCache(tmp_path / "reference", {"k": 1}), PlantedEncoder()
    load_or_extract(alone, {"train": tracks}, reference, SPEC, batch_size=4, shard_tracks=3)

    cache = FeatureCache(tmp_path / "cache", {"k": 1})
    rank1 = PlantedEncoder()
    extract_split(rank1, tracks, cache, "train", SPEC, batch_size=4, shard_tracks=3, ranks=OneRankOf(1, 2))
    shards = sorted(p.name for p in cache.shard_dir("train", 3).glob("*.json"))
    assert shards == ["000001.json", "000003.json"], "rank 1 of 2 computes every other shard still to do"
    assert not cache.has("train", "x") and not (cache.dir / "train.f16").exists(), "only rank 0 merges"

    rerun = PlantedEncoder()  # one process now: it computes shards 0 and 2 only and merges all four
    features, stats = load_or_extract(rerun, {"train": tracks}, cache, SPEC, batch_size=4, shard_tracks=3)
    assert stats.per_split["train"]["shards_reused"] == 2
    assert 0 < rerun.calls < alone.calls and rank1.calls + rerun.calls == alone.calls  # no shard computed twice
    assert (cache.dir / "train.f16").read_bytes() == (reference.dir / "train.f16").read_bytes()
    assert cache.index("train")["track_ids"] == reference.index("train")["track_ids"]


def test_chunk_bounds_cover_every_row_once_in_order():
    for rows in (0, 1, 5, 64, 65):
        for world in (1, 2, 3, 8):
            bounds = chunk_bounds(rows, world)
            assert len(bounds) == world and bounds[0][0] == 0 and bounds[-1][1] == rows
            assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))
            assert max(b - a for a, b in bounds) - min(b - a for a, b in bounds) <= 1


def _auc_worker(ranks: Ranks, targets: np.ndarray, scores: np.ndarray) -> dict[str, Any]:
    lo, hi = chunk_bounds(len(scores), ranks.world_size)[ranks.rank]
    local = torch.from_numpy(scores[lo:hi])[None]  # [1 head, rows, tags]
    gathered = ranks.gather_rows(local)[0].numpy()
    per_rank = roc_auc_score(targets[lo:hi], scores[lo:hi], average="macro")
    return {"gathered": gathered, "mean_of_ranks": float(np.mean(ranks.gather_objects(per_rank))),
            "world": ranks.world_size}


def test_macro_roc_auc_is_computed_on_predictions_gathered_from_every_rank():
    rng = np.random.default_rng(0)
    targets = (rng.random((41, 5)) < 0.4).astype(int)  # an odd row count: the ranks hold 20 and 21 rows
    targets[:2] = 1
    targets[2:4] = 0
    targets[-2:] = [[1, 0, 1, 0, 1], [0, 1, 0, 1, 0]]
    scores = (0.6 * targets + rng.random(targets.shape)).astype(np.float32)
    out = launch(DistributedSettings(accelerator="cpu", devices=2), _auc_worker, targets, scores)
    assert out["world"] == 2
    np.testing.assert_array_equal(out["gathered"], scores)  # every row, once, in order
    whole = roc_auc_score(targets, out["gathered"], average="macro")
    assert whole == roc_auc_score(targets, scores, average="macro")
    assert abs(out["mean_of_ranks"] - whole) > 1e-4, "the per-rank mean is not the macro ROC-AUC"


@pytest.mark.parametrize("trainer,fragment", [
    ({"devices": 0}, "trainer.devices=0"),
    ({"devices": "two"}, "trainer.devices='two'"),
    ({"num_nodes": 0}, "trainer.num_nodes=0"),
    ({"strategy": "fsdp"}, "trainer.strategy='fsdp'"),
    ({"accelerator": "tpu"}, "trainer.accelerator='tpu'"),
])
def test_impossible_process_settings_are_refused_with_the_fix(trainer, fragment):
    with pytest.raises(ConfigError, match="trainer"):
        distributed_settings(trainer)
    with pytest.raises(ConfigError) as info:
        distributed_settings(trainer)
    assert fragment in str(info.value)


def test_settings_of_a_multi_node_run():
    settings = distributed_settings({"devices": 4, "num_nodes": 2, "accelerator": "gpu"})
    assert settings.world_size == 8 and settings.strategy == "ddp"


def test_process_layout_does_not_change_the_protocol_and_old_records_keep_their_checksum():
    base = {"seed": 0, "task": {"name": "t"}, "trainer": {"max_epochs": 5, "devices": 1, "accelerator": "auto"}}
    wide = {**base, "trainer": {"max_epochs": 5, "devices": 8, "accelerator": "gpu", "num_nodes": 2,
                                "strategy": "ddp"}}
    assert run_checksum(base) == run_checksum(wide)
    assert run_checksum(base) != run_checksum({**base, "trainer": {**base["trainer"], "max_epochs": 6}})
    records = sorted((REPO_ROOT / "results" / "runs").rglob("*.json"))
    assert records, "results/runs holds the suite's committed records"
    for path in records:  # written before num_nodes/strategy existed: their checksums must not move
        record = json.loads(path.read_text())
        config = {k: v for k, v in record["config"].items() if k != "seed"}
        assert run_checksum(config) == record["protocol_checksum"], path


def test_a_missing_dataset_stops_a_multi_process_run_with_its_own_error(compose_config):
    """Checked before any process starts: the user sees the dataset error itself, not a launcher's wrapper."""
    from rich.console import Console

    from benchmark.runner import run
    from benchmark.tasks.base import DatasetMissingError

    config = compose_config("task=gtzan", "model=mfcc", "trainer.devices=2", "trainer.accelerator=cpu")
    with pytest.raises(DatasetMissingError) as info:
        run(config, console=Console(quiet=True))
    assert "gtzan" in str(info.value) and "prepare" in str(info.value)
