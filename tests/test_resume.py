"""Interrupted and damaged extractions must not cost the work already done.

Why these tests: a real extraction runs for hours. A ``kill -9`` or Ctrl-C must leave only complete shards
(never a partial file that a later run could read), a rerun must compute only the missing shards, and the final
split files must be byte-identical to an uninterrupted run's, for window rows and for frame rows. A file that
cannot be decoded must be skipped, recorded, and -- when a split loses too much -- stop the run only after the
rest was cached, so fixing the file and rerunning reuses everything else.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from rich.console import Console

from benchmark.audio import WindowSpec
from benchmark.cache import FeatureCache
from benchmark.extract import Pooling, load_or_extract
from benchmark.run_tracks import DatasetIncompleteError
from benchmark.runner import run
from benchmark.tasks.base import Track
from tests.conftest import REPO_ROOT
from tests.planted import PlantedEncoder

SR = 16000
SPEC = WindowSpec(window=1.0, hop=1.0, min_fraction=0.25)
SHARD = 3


def _tracks(folder: Path, n: int = 11) -> list[Track]:
    """Clips of varied length (tails of several lengths, one shorter than the encoder's receptive field)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    tracks = []
    for i in range(n):
        seconds = 0.05 if i == 4 else 1.0 + 0.37 * (i % 5)
        x = (0.3 * rng.standard_normal(int(seconds * SR))).astype(np.float32)
        path = folder / f"clip{i:02d}.wav"
        if not path.exists():  # rewriting the same audio would change its stamp, and so its cache key
            sf.write(path, x, SR)
        tracks.append(Track(f"clip{i:02d}", path, "train", 0))
    return tracks


class Interrupting(PlantedEncoder):
    """Raises KeyboardInterrupt (as Ctrl-C would) on forward call ``stop_at``."""

    def __init__(self, stop_at: int) -> None:
        super().__init__(planted=2)
        self.stop_at = stop_at

    def hidden_states(self, waveforms, lengths=None):
        if self.calls + 1 == self.stop_at:
            raise KeyboardInterrupt
        return super().hidden_states(waveforms, lengths)


def _extract(encoder, tracks, cache_root: Path, pooling: Pooling = Pooling()):
    cache = FeatureCache(cache_root, {"test": "resume", "pooling": pooling.mode})
    return cache, load_or_extract(encoder, {"train": tracks}, cache, SPEC, batch_size=2, pooling=pooling,
                                  shard_tracks=SHARD)


def _shard_state(cache: FeatureCache) -> tuple[list[dict], list[str]]:
    """(indices of the complete shards, names of any other file) in the shard folder."""
    folder = cache.shard_dir("train", SHARD)
    indices, others = [], []
    for p in sorted(folder.iterdir()) if folder.exists() else []:
        if p.suffix == ".json":
            meta = json.loads(p.read_text())
            data = p.with_suffix(".f16")
            assert data.stat().st_size == meta["rows"] * int(np.prod(meta["row_shape"])) * 2
            indices.append(meta)
        elif p.suffix != ".f16":
            others.append(p.name)
    return indices, others


@pytest.mark.parametrize("pooling", [Pooling(), Pooling(mode="none", layers=(1, 2))], ids=["windows", "frames"])
def test_keyboard_interrupt_keeps_complete_shards_and_resumes_bit_identically(tmp_path, pooling):
    tracks = _tracks(tmp_path / "audio")
    full = PlantedEncoder(planted=2)
    ref_cache, (_, ref_stats) = _extract(full, tracks, tmp_path / "ref", pooling)
    assert ref_stats.per_split["train"]["shards"] == 4 and full.calls == ref_stats.forward_calls > 4
    assert ref_stats.flagged["train"]["padded_short"] == ["clip04"]
    assert ref_stats.skipped["train"] == []
    assert not (ref_cache.dir / "shards").exists()  # merged, then deleted

    stop_at = full.calls // 2 + 1
    with pytest.raises(KeyboardInterrupt):
        _extract(Interrupting(stop_at), tracks, tmp_path / "resumed", pooling)
    cache = FeatureCache(tmp_path / "resumed", {"test": "resume", "pooling": pooling.mode})
    shards, others = _shard_state(cache)
    assert others == []  # no partial or temporary file survives
    assert 1 <= len(shards) < 4
    assert not cache.has("train", "anything") and not (cache.dir / "train.index.json").exists()
    kept_calls = sum(s["forward_calls"] for s in shards)
    assert kept_calls < stop_at

    again = PlantedEncoder(planted=2)
    _, (_, stats) = _extract(again, tracks, tmp_path / "resumed", pooling)
    assert again.calls == full.calls - kept_calls  # only the missing shards ran
    assert stats.per_split["train"]["shards_reused"] == len(shards)
    assert (cache.dir / "train.f16").read_bytes() == (ref_cache.dir / "train.f16").read_bytes()
    assert cache.index("train") == ref_cache.index("train")
    assert stats.flagged == ref_stats.flagged

    untouched = PlantedEncoder(planted=2)
    _extract(untouched, tracks, tmp_path / "resumed", pooling)
    assert untouched.calls == 0


SCRIPT = r'''
import json, sys, time
from pathlib import Path
sys.path.insert(0, {repo!r})
from tests.test_resume import _tracks, _extract
from tests.planted import PlantedEncoder

class Slow(PlantedEncoder):
    def hidden_states(self, waveforms, lengths=None):
        time.sleep(float(sys.argv[2]))
        return super().hidden_states(waveforms, lengths)

enc = Slow(planted=2)
tracks = _tracks(Path(sys.argv[1]) / "audio")
_extract(enc, tracks, Path(sys.argv[1]) / "cache")
print(json.dumps({{"calls": enc.calls}}))
'''


@pytest.mark.slow  # ~9 s (a killed subprocess); shard reuse after an interrupt is tested by default above
def test_sigkill_mid_extraction_leaves_complete_shards_and_a_rerun_finishes_the_rest(tmp_path):
    script = tmp_path / "extract.py"
    script.write_text(SCRIPT.format(repo=str(REPO_ROOT)))
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "HF_HUB_OFFLINE": "1"}
    work = tmp_path / "work"
    proc = subprocess.Popen([sys.executable, str(script), str(work), "0.4"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    cache = FeatureCache(work / "cache", {"test": "resume", "pooling": "time_mean"})
    folder = cache.shard_dir("train", SHARD)
    deadline = time.time() + 120
    while time.time() < deadline and not (folder.exists() and any(folder.glob("*.json"))):
        assert proc.poll() is None, proc.stderr.read().decode()
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    shards, others = _shard_state(cache)
    assert 1 <= len(shards) < 4
    assert all(".tmp" in name or ".part" in name for name in others)  # a killed writer's temporaries at most
    assert not (cache.dir / "train.index.json").exists()

    done = subprocess.run([sys.executable, str(script), str(work), "0"], env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    calls = json.loads(done.stdout.strip().splitlines()[-1])["calls"]
    ref = PlantedEncoder(planted=2)
    ref_cache, _ = _extract(ref, _tracks(tmp_path / "ref_audio"), tmp_path / "ref")
    assert calls == ref.calls - sum(s["forward_calls"] for s in shards)
    assert (cache.dir / "train.f16").read_bytes() == (ref_cache.dir / "train.f16").read_bytes()
    assert [p for p in cache.dir.rglob("*") if ".tmp" in p.name or ".part" in p.name] == []  # cleaned up


SMALL = ["task=synth_chords", "task.n_train=24", "task.n_valid=12", "task.n_test=12", "task.clip_seconds=1.0",
         "trainer.max_epochs=1", "shard_tracks=4"]


def test_undecodable_audio_is_skipped_recorded_and_stops_the_run_only_after_caching(compose_config, tmp_path):
    run(compose_config(*SMALL, "trainer.max_epochs=1"), console=Console(quiet=True),
        encoder=PlantedEncoder(planted=1))  # renders the data
    bad = tmp_path / "data" / "synth_chords" / "audio" / "train_0005.wav"
    if not bad.exists():
        bad = sorted((tmp_path / "data" / "synth_chords").rglob("*train*0005*.wav"))[0]
    original = bad.read_bytes()
    bad.write_bytes(b"RIFF" + b"\x00" * 100)  # a header that promises audio and holds none
    shutil.rmtree(tmp_path / "cache")

    first = PlantedEncoder(planted=1)
    with pytest.raises(DatasetIncompleteError, match="train_0005"):
        run(compose_config(*SMALL, "max_missing_fraction=0.01"), console=Console(quiet=True), encoder=first)
    assert first.calls > 0

    cached = PlantedEncoder(planted=1)
    record = run(compose_config(*SMALL, "max_missing_fraction=1.0"), console=Console(quiet=True), encoder=cached)
    assert cached.calls == 0  # everything was cached before the first run stopped
    assert record["split_sizes"] == {"train": 23, "valid": 12, "test": 12}
    assert record["skipped"]["train"] == [bad.stem] or any("0005" in t for t in record["skipped"]["train"])
    assert record["flagged"] == {"padded_short": {"train": [], "valid": [], "test": []},
                                 "non_finite": {"train": [], "valid": [], "test": []}}

    bad.write_bytes(original)  # the file is fixed: only its shard is computed again
    fixed = PlantedEncoder(planted=1)
    record = run(compose_config(*SMALL, "max_missing_fraction=0.01", "seed=1"), console=Console(quiet=True),
                 encoder=fixed)
    assert 0 < fixed.calls < first.calls
    assert record["split_sizes"]["train"] == 24 and record["skipped"]["train"] == []
    assert list((tmp_path / "results").rglob("*.ckpt*")) == []  # the sweep checkpoint goes once the record exists


# ------------------------------------------------------------------------------------------- probe resume
class _Crash(RuntimeError):
    pass


def _sweep_inputs():
    from benchmark.cache import SplitFeatures
    from benchmark.evaluation import ClipEvaluator

    rng = np.random.default_rng(0)
    labels = {s: rng.integers(0, 4, n) for s, n in (("train", 160), ("valid", 60), ("test", 60))}
    splits = {}
    for s, y in labels.items():
        x = rng.standard_normal((len(y), 3, 8)).astype(np.float16)
        x[np.arange(len(y)), 1, y] += 1.5
        splits[s] = SplitFeatures(features=x, window_track=np.arange(len(y)), track_ids=[str(i) for i in range(len(y))])
    evaluators = {s: ClipEvaluator("multiclass", list("abcd"), splits[s].window_track, labels[s])
                  for s in ("valid", "test")}
    return splits, labels["train"], evaluators


def _train(checkpoint, crash_after: int | None = None, monkeypatch=None):
    from benchmark.probe import make_heads
    from benchmark.sweep import train_sweep

    splits, y, evaluators = _sweep_inputs()
    if crash_after is not None:
        import lightning as L

        class CrashAfter(L.Callback):
            def on_train_epoch_end(self, trainer, module):
                if trainer.current_epoch + 1 == crash_after:
                    raise _Crash("interrupted")

        original = L.Trainer.__init__

        def patched(self, *args, **kwargs):
            kwargs["callbacks"] = [*kwargs.get("callbacks", []), CrashAfter()]
            original(self, *args, **kwargs)

        monkeypatch.setattr(L.Trainer, "__init__", patched)
    return train_sweep(splits, y, evaluators, "cross_entropy", 4, make_heads([0, 1, 2], True, [1e-3, 1e-2]),
                       {"hidden": 16, "dropout": 0.3}, {"max_epochs": 9, "patience": 3, "lr_decay_patience": 2,
                                                        "batch_size": 32, "accelerator": "cpu",
                                                        "progress_bar": False},
                       seed=3, checkpoint=checkpoint, checkpoint_tag="t1")


def test_an_interrupted_probe_sweep_resumes_from_its_checkpoint_to_the_same_result(tmp_path, monkeypatch):
    reference, ref_model = _train(None)
    checkpoint = tmp_path / "run.sweep.ckpt"
    with pytest.raises(_Crash):
        _train(checkpoint, crash_after=4, monkeypatch=monkeypatch)
    monkeypatch.undo()
    assert checkpoint.exists()
    import torch

    saved = torch.load(checkpoint, weights_only=True)
    assert len(saved["sweep_selection"]["history"]) == 4 and saved["sweep_tag"] == "t1"
    resumed, model = _train(checkpoint)
    assert len(model.history) == len(ref_model.history)
    np.testing.assert_array_equal(np.array(model.history), np.array(ref_model.history))
    assert [(r.head, r.best_epoch, r.valid, r.test) for r in resumed] == \
        [(r.head, r.best_epoch, r.valid, r.test) for r in reference]
    # a checkpoint of another sweep (other tag) is not resumed from
    from benchmark.sweep import resumable_checkpoint

    assert resumable_checkpoint(checkpoint, "other") is None and not checkpoint.exists()
