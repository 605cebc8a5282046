"""A run's record and checkpoint survive what users do to them: edit the manifest, kill, Ctrl-C, fill the disk.

Why these tests: each case is a fault a tester met with ``model=mfcc`` on small data, and each test reproduces it
as it happened and fails on the code that had it.

1. A custom manifest edited in place (labels changed) named the same record, so the rerun was skipped.
2. ``kill -9`` at the record's commit, or a full disk while checkpointing, left ``*.tmp<pid>`` files for ever.
3. A run killed after its last epoch resumed with one more (empty) epoch in ``valid_history``.
4. Ctrl-C during training exited 1 with no message (Lightning's own handler); now 130 with the stage.
5. A full disk printed a bare ``[Errno 28]``; now the folder, its free space and the space needed.
6. A weight file holding pickled code was refused with torch's advice to load it unsafely.
"""
from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from rich.console import Console

import benchmark.runner as runner
from benchmark.cli import main, report_user_errors
from benchmark.errors import UserError
from benchmark.interrupt import RunInterrupted
from benchmark.probe import LayerSweepProbe
from benchmark.record import (FINGERPRINT_KEY, record_path, run_checksum, sweep_checkpoint_path,
                              with_dataset_fingerprint, write_record)
from benchmark.storage import StorageError
from benchmark.tasks.base import DatasetMissingError
from tests.conftest import FIXTURES
from tests.test_resume import _train
from tests.test_task_custom import write_collection

QUIET = Console(quiet=True)
SMALL = ["task=synth_key", "model=mfcc", "task.n_train=24", "task.n_valid=12", "task.n_test=12",
         "task.clip_seconds=1.0", "trainer.accelerator=cpu", "shard_tracks=4"]
# Several learning rates, plateau halving and a patience that stops every head well before max_epochs.
TRAINING = ["probe.lr=[1e-3,1e-2]", "trainer.max_epochs=60", "trainer.patience=3", "trainer.lr_decay_patience=2"]


class Killed(BaseException):
    """What ``kill -9`` does to the code after the point it strikes: nothing there runs, no handler reacts."""


def _dead_pid() -> int:
    """The pid of a process that has finished (what a killed writer's pid is by the next run)."""
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True)
    return int(done.stdout)


def _cli_args(tmp_path: Path, *overrides: str) -> list[str]:
    """``run`` in tmp, with Hydra's logging set-up off: in this process it would outlive the test."""
    return ["run", f"data_root={tmp_path / 'data'}", f"cache_dir={tmp_path / 'cache'}",
            f"results_dir={tmp_path / 'results'}", f"hydra.run.dir={tmp_path / 'hydra'}", "num_workers=0",
            "hydra/job_logging=none", "hydra/hydra_logging=none", *overrides]


def _comparable(record: dict) -> dict:
    """A record minus what differs between two runs of one protocol: when it was made and how long it took."""
    return {k: v for k, v in record.items() if k not in ("timings", "created")}


@pytest.fixture
def cli(monkeypatch):
    """``benchmark.cli.main`` in this process (Hydra rewrites ``sys.argv``; restored afterwards)."""
    monkeypatch.setattr(sys, "argv", [sys.argv[0]])
    return main


# ---------------------------------------------------------------------------------- 1. records keyed by content
def test_an_edited_custom_manifest_names_a_new_record_and_builtin_names_stay(tmp_path, cli, capsys):
    manifest = write_collection(tmp_path / "collection", "multiclass")
    args = _cli_args(tmp_path, "task=custom", f"task.manifest={manifest}", "model=mfcc", "trainer.max_epochs=2")
    folder = tmp_path / "results" / "runs" / "custom" / "mfcc"
    assert cli(args) == 0
    [first] = sorted(folder.glob("*.json"))

    original = manifest.read_text()
    manifest.write_text(original.replace(",low\n", ",bass\n"))  # the user relabels a class in place
    capsys.readouterr()
    assert cli(args) == 0
    assert "record exists" not in capsys.readouterr().out
    [second] = [p for p in sorted(folder.glob("*.json")) if p != first]
    record = json.loads(second.read_text())
    digest = hashlib.sha256(manifest.read_bytes()).hexdigest()
    assert record["dataset"]["labels"] == ["bass", "high", "mid"]
    assert record["config"][FINGERPRINT_KEY] == digest == record["dataset"]["manifest_sha256"]
    # the record alone gives its checksum and its name back, without the manifest on disk
    manifest.write_text(original)
    assert run_checksum({k: v for k, v in record["config"].items() if k != "seed"}) == record["protocol_checksum"]
    assert record_path(tmp_path / "results", record["config"]) == second
    assert json.loads(first.read_text())["config"][FINGERPRINT_KEY] != digest

    assert cli(args) == 0  # the original manifest again: its record is found, nothing runs
    assert "record exists" in capsys.readouterr().out
    assert len(list(folder.glob("*.json"))) == 2


def test_fingerprint_is_absent_for_builtin_tasks_and_a_missing_manifest_is_left_to_the_run(compose_config, tmp_path):
    builtin = compose_config(*SMALL)
    assert with_dataset_fingerprint(builtin) is builtin  # built-in record names and checksums do not move
    missing = compose_config("task=custom", f"task.manifest={tmp_path / 'gone.csv'}", "model=mfcc")
    assert with_dataset_fingerprint(missing) is missing
    assert record_path(tmp_path / "results", missing).name.startswith("seed0-")  # no crash before the run
    with pytest.raises(DatasetMissingError, match="manifest not found"):
        runner.run(missing, console=QUIET)


# ------------------------------------------------------------------------------ 2. temporaries of dead writers
def test_the_next_run_removes_the_temporaries_a_killed_run_left(compose_config, tmp_path):
    config = compose_config(*SMALL, "trainer.max_epochs=3")
    path = record_path(tmp_path / "results", config)
    path.parent.mkdir(parents=True)
    dead, alive = _dead_pid(), os.getppid()  # not this process's pid: its own writes use that name
    planted = {
        "record": path.with_name(f"{path.name}.tmp{dead}"),  # kill -9 at the record's commit
        "checkpoint": path.with_name(f"{path.stem}.sweep.ckpt.tmp{dead}"),  # a failed or killed checkpoint
        "live": path.with_name(f"{path.name}.tmp{alive}"),  # a writer that still runs
        "other seed": path.with_name(f"seed7-0123456789.json.tmp{dead}"),  # maybe written on another machine
    }
    for file in planted.values():
        file.write_bytes(b"{partial")
    runner.run(config, console=QUIET)
    assert path.exists()
    assert not planted["record"].exists() and not planted["checkpoint"].exists()
    assert planted["live"].exists() and planted["other seed"].exists()
    assert not sweep_checkpoint_path(path).exists()


def test_a_record_found_by_the_cli_takes_its_leftover_checkpoint_with_it(tmp_path, cli):
    args = _cli_args(tmp_path, *SMALL, "trainer.max_epochs=2")
    assert cli(args) == 0
    [path] = (tmp_path / "results").rglob("*.json")
    leftover = sweep_checkpoint_path(path)  # killed after writing the record, before deleting the checkpoint
    leftover.write_bytes(b"ckpt")
    stale = path.with_name(f"{path.name}.tmp{_dead_pid()}")
    stale.write_bytes(b"{")
    assert cli(args) == 0
    assert not leftover.exists() and not stale.exists()


def test_sweep_checkpoints_are_written_next_to_the_record_only(tmp_path, monkeypatch):
    """Lightning's default writer stages every checkpoint in the system's temporary folder, where a killed run
    leaves it unnamed; the sweep writes its ``.tmp<pid>`` beside the record instead."""
    import tempfile

    def nowhere(*args, **kwargs):
        raise AssertionError("a checkpoint was staged in the system's temporary folder")

    monkeypatch.setattr(tempfile, "mkstemp", nowhere)
    checkpoint = tmp_path / "runs" / "seed0-0123456789.sweep.ckpt"
    _train(checkpoint)
    assert [p.name for p in checkpoint.parent.iterdir()] == [checkpoint.name]


# ------------------------------------------------------------- 3. a resumed record equals an uninterrupted one
def _kill_at_record_commit(monkeypatch):
    def killed(path, record):
        raise Killed

    monkeypatch.setattr(runner, "write_record", killed)


def _kill_in_epoch_two(monkeypatch):
    original = LayerSweepProbe.on_train_epoch_start

    def killed(self):
        if self.current_epoch == 2:
            raise Killed
        original(self)

    monkeypatch.setattr(LayerSweepProbe, "on_train_epoch_start", killed)


@pytest.mark.parametrize("kill", [_kill_at_record_commit, _kill_in_epoch_two], ids=["at_record_commit", "epoch_2"])
def test_a_record_resumed_after_a_kill_equals_an_uninterrupted_one(compose_config, tmp_path, monkeypatch, kill):
    config = compose_config(*SMALL, *TRAINING)
    runner.run(config, console=QUIET)
    path = record_path(tmp_path / "results", config)
    reference = json.loads(path.read_text())
    epochs = len(reference["valid_history"])
    assert 3 < epochs < 60  # every head stopped early: the stop Lightning does not save in a checkpoint
    path.unlink()

    with monkeypatch.context() as patch:
        kill(patch)
        with pytest.raises(Killed):
            runner.run(config, console=QUIET)
    checkpoint = sweep_checkpoint_path(path)
    assert checkpoint.exists() and not path.exists()
    saved = torch.load(checkpoint, weights_only=True)["sweep_selection"]["history"]
    assert len(saved) == (epochs if kill is _kill_at_record_commit else 2)

    runner.run(config, console=QUIET)
    resumed = json.loads(path.read_text())
    assert len(resumed["valid_history"]) == epochs
    assert resumed["valid_history"] == reference["valid_history"]
    assert _comparable(resumed) == _comparable(reference)
    assert not checkpoint.exists()


# ---------------------------------------------------------------------------------------------- 4. Ctrl-C
def test_ctrl_c_during_training_says_the_epoch_and_checkpoint_and_exits_130(tmp_path, cli, monkeypatch, capsys):
    args = _cli_args(tmp_path, *SMALL, *TRAINING)
    original = LayerSweepProbe.training_step

    def pressed(self, batch, batch_idx):
        if self.current_epoch == 2:
            raise KeyboardInterrupt  # what Ctrl-C raises in the middle of a training step
        return original(self, batch, batch_idx)

    handler = signal.getsignal(signal.SIGINT)
    with monkeypatch.context() as patch:
        patch.setattr(LayerSweepProbe, "training_step", pressed)
        with pytest.raises(SystemExit) as stopped:
            cli(args)
    assert stopped.value.code == 130
    [checkpoint] = (tmp_path / "results").rglob("*.sweep.ckpt")
    err = capsys.readouterr().err
    assert (f"interrupted during probe training at epoch 2 (of at most 60); the checkpoint {checkpoint} holds its "
            f"first 2 epoch(s). Finished work is kept: run the same command again to resume") in err
    assert "Traceback" not in err
    assert signal.getsignal(signal.SIGINT) == handler  # Lightning leaves Ctrl-C ignored; it is given back

    assert cli(args) == 0  # the same command resumes and finishes
    [path] = (tmp_path / "results").rglob("*.json")
    assert len(json.loads(path.read_text())["valid_history"]) > 2 and not checkpoint.exists()


def test_ctrl_c_during_extraction_names_the_split_and_the_cache(compose_config, tmp_path, monkeypatch, capsys):
    from benchmark.encoders.baselines import HandcraftedEncoder

    config = compose_config(*SMALL, "trainer.max_epochs=2")
    original, calls = HandcraftedEncoder.hidden_states, []

    def pressed(self, *args, **kwargs):
        calls.append(1)
        if len(calls) % 3 == 0:  # every third batch: each run below gets two shards further
            raise KeyboardInterrupt
        return original(self, *args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(HandcraftedEncoder, "hidden_states", pressed)
        with pytest.raises(RunInterrupted) as stopped:
            runner.run(config, console=QUIET)
        assert report_user_errors(lambda: runner.run(config, console=QUIET)) == 130  # the CLI's handling
    cache = tmp_path / "cache" / "features"
    assert re.fullmatch(rf"extraction of the train split's features \(cache {re.escape(str(cache))}/\w+: every "
                        r"complete shard is kept\)", stopped.value.where)
    assert "interrupted during extraction of the train split's features" in capsys.readouterr().err
    shards = list(cache.rglob("shards/**/*.json"))
    assert shards  # finished shards were kept for the rerun
    runner.run(config, console=QUIET)


# ---------------------------------------------------------------------------------------------- 5. full disk
def _free_text(message: str, folder: Path) -> None:
    assert f"(folder {folder}: " in message
    assert re.search(r": \d+(\.\d)? (B|kB|MB|GB|TB) free, about \d+(\.\d)? (B|kB|MB|GB|TB) needed\)", message)


def test_a_full_disk_at_the_record_names_the_folder_space_and_leaves_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "results" / "runs" / "synth_key" / "mfcc" / "seed0-0123456789.json"
    real_open = open

    class FullDisk:
        """A file whose write stops half-way with ENOSPC, without a file name (as the kernel reports it)."""

        def __init__(self, name, mode):
            self.file = real_open(name, mode)

        def write(self, text):
            self.file.write(text[: len(text) // 2])
            self.file.flush()
            raise OSError(errno.ENOSPC, "No space left on device")

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.file.close()

    monkeypatch.setattr("benchmark.cache.open", FullDisk, raising=False)
    record = {"task": "synth_key", "scores": list(range(2000))}
    with pytest.raises(StorageError) as full:
        write_record(path, record)
    message = str(full.value)
    assert message.startswith(f"{path}: the disk is full (folder {path.parent}: ")
    _free_text(message, path.parent)
    size = len(json.dumps(record, indent=2).encode())
    assert f"about {size / 1000:.1f} kB needed" in message
    assert list(path.parent.iterdir()) == []  # the half-written temporary is gone
    assert isinstance(full.value, UserError) and isinstance(full.value, OSError)


@pytest.mark.parametrize("code, reason", [(errno.ENOSPC, "the disk is full"), (errno.EDQUOT, "quota"),
                                          (errno.EROFS, "read-only"), (errno.EACCES, "permission denied")])
def test_a_failed_checkpoint_write_names_the_folder_and_leaves_no_temporary(tmp_path, monkeypatch, code, reason):
    checkpoint = tmp_path / "runs" / "seed0-0123456789.sweep.ckpt"
    real_replace = os.replace

    def replace(src, dst):
        if str(dst).endswith(".ckpt"):
            raise OSError(code, os.strerror(code))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(StorageError) as failed:
        _train(checkpoint)
    message = str(failed.value)
    assert message.startswith(f"{checkpoint}: ") and reason in message
    _free_text(message, checkpoint.parent)
    assert list(checkpoint.parent.iterdir()) == []  # neither a temporary nor a checkpoint

    def job() -> int:
        raise failed.value

    assert report_user_errors(job) == 1  # printed as `error: <message>`, no traceback


class FillsUp(io.RawIOBase):
    """A file on a disk that fills up after ``room`` bytes: later writes fail with ENOSPC and no file name."""

    def __init__(self, name: str, room: int) -> None:
        super().__init__()
        self.file, self.room = open(name, "wb"), room

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        if len(data) > self.room:
            raise OSError(errno.ENOSPC, "No space left on device")
        self.room -= len(data)
        return self.file.write(data)

    def close(self) -> None:
        self.file.close()
        super().close()


@pytest.mark.parametrize("disk", ["fills_up_mid_write", "dev_full"])
def test_a_checkpoint_write_the_disk_refuses_is_explained_and_leaves_no_temporary(tmp_path, monkeypatch, disk):
    """ENOSPC met by torch's writer itself: mid-write it arrives as a bare RuntimeError ("unexpected pos")."""
    import benchmark.sweep as sweep

    if disk == "dev_full" and not Path("/dev/full").exists():
        pytest.skip("needs Linux's /dev/full (every write: ENOSPC)")
    real_open = open

    def full(name, mode="r", *args, **kwargs):
        if disk == "dev_full":
            Path(name).touch()  # the temporary exists, as a real write leaves it
            return real_open("/dev/full", mode, *args, **kwargs)
        return FillsUp(name, room=2000)

    monkeypatch.setattr(sweep, "open", full, raising=False)
    checkpoint = tmp_path / "runs" / "seed0-0123456789.sweep.ckpt"
    with pytest.raises(StorageError) as failed:
        _train(checkpoint)
    assert str(failed.value).startswith(f"{checkpoint}: the disk is full (folder {checkpoint.parent}: ")
    _free_text(str(failed.value), checkpoint.parent)
    assert list(checkpoint.parent.iterdir()) == []


# ------------------------------------------------------------------------------------ 6. weights holding code
class Payload:
    """What a malicious weight file holds: unpickling it calls ``print("pwned")``."""

    def __reduce__(self):
        return (print, ("pwned",))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")  # torch's note on a plain pickle.dumps file
@pytest.mark.parametrize("writer", ["torch.save", "pickle"])
def test_a_weight_file_holding_code_is_refused_with_our_message_only(tmp_path, monkeypatch, capfd, writer):
    import pickle

    from benchmark.cli import user_error_message
    from benchmark.encoders.registry import build_encoder
    from tests.test_mert_native import model_yaml

    monkeypatch.setenv("BENCHMARK_HASH_CACHE", str(tmp_path / "sha256.json"))
    folder = tmp_path / "snapshot"
    shutil.copytree(FIXTURES / "v0-tiny", folder, ignore=shutil.ignore_patterns("expected"))
    weights = folder / "pytorch_model.bin"
    state = {"weights": torch.zeros(2), "payload": Payload()}
    if writer == "torch.save":
        torch.save(state, weights)
    else:
        weights.write_bytes(pickle.dumps(state))
    with pytest.raises(UserError) as refused:
        build_encoder(model_yaml("mert-v0", checkpoint=str(folder)))
    message = user_error_message(refused.value)
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()
    assert message.startswith(f"Refused to load {weights} (sha256 {digest}): it holds pickled code")
    assert "not plain tensors" in message and "download the official snapshot again" in message
    assert "model.safetensors" in message
    assert "weights_only=False" not in message and "will likely succeed" not in message
    assert isinstance(refused.value, pickle.UnpicklingError)
    assert refused.value.__suppress_context__  # torch's advice is not shown as a cause either
    assert "pwned" not in capfd.readouterr().out  # the payload never ran
