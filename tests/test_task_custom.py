"""custom: a researcher's own CSV manifest, one end-to-end run per task type with MFCC, and every error case."""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from rich.console import Console

from benchmark.errors import ConfigError
from benchmark.runner import run
from benchmark.tasks.base import DatasetMissingError
from benchmark.tasks.custom import CustomTask, ManifestError
from benchmark.tasks.registry import build_task

SR = 16000
SPLIT_SIZES = {"train": 18, "valid": 9, "test": 9}


def tone(freq: float, gain_db: float, rng: np.random.Generator, noise: float = 0.0, seconds: float = 1.5,
         extra_freq: float | None = None) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    x = np.sin(2 * np.pi * freq * t + rng.uniform(0, 6.28)) + 0.3 * np.sin(4 * np.pi * freq * t)
    if extra_freq is not None:
        x += np.sin(2 * np.pi * extra_freq * t)
    x += noise * rng.standard_normal(t.size)
    return (x / np.abs(x).max() * 10 ** (gain_db / 20)).astype(np.float32)


def write_collection(folder: Path, kind: str) -> Path:
    """A small collection in its own folder: audio/<n>.wav plus manifest.csv of the given kind."""
    rng = np.random.default_rng({"multiclass": 1, "multilabel": 2, "regression": 3}[kind])
    (folder / "audio").mkdir(parents=True)
    classes = {"low": 150.0, "mid": 600.0, "high": 2400.0}
    lines = {"multiclass": "path,split,label", "multilabel": "track_id,path,split,labels",
             "regression": "path,split,gain_db,comment,pitch"}[kind]
    rows = [lines]
    n = 0
    for split, size in SPLIT_SIZES.items():
        for i in range(size):
            rel = f"audio/{n:03d}.wav"
            if kind == "multiclass":
                name = list(classes)[i % 3]
                sf.write(folder / rel, tone(classes[name] * rng.uniform(0.95, 1.05), -12, rng), SR)
                rows.append(f"{rel},{split},{name}")
            elif kind == "multilabel":
                tags = [t for t, on in zip(("bass", "noise", "whistle"), ((i >> 0) & 1, (i >> 1) & 1, (i >> 2) & 1))
                        if on]
                x = tone(110.0 if "bass" in tags else 440.0, -12, rng, noise=0.5 if "noise" in tags else 0.0,
                         extra_freq=3000.0 if "whistle" in tags else None)
                sf.write(folder / rel, x, SR)
                rows.append(f"clip{n},{rel},{split},{';'.join(tags)}")  # an empty cell for no tag
            else:
                gain, pitch = rng.uniform(-30, -3), rng.uniform(200, 1000)
                sf.write(folder / rel, tone(pitch, gain, rng), SR)
                rows.append(f"{rel},{split},{gain:.3f},take {i},{pitch:.1f}")
            n += 1
    manifest = folder / "manifest.csv"
    manifest.write_text("\n".join(rows) + "\n")
    return manifest


@pytest.mark.parametrize("kind, overrides, metrics", [
    ("multiclass", [], {"accuracy"}),
    ("multilabel", [], {"roc_auc", "average_precision", "tags_scored"}),
    ("regression", ["task.targets=[gain_db,pitch]"], {"r2", "r2_gain_db", "r2_pitch"}),
])
def test_end_to_end_with_mfcc(tmp_path, compose_config, kind, overrides, metrics):
    manifest = write_collection(tmp_path / "collection", kind)
    config = compose_config("task=custom", f"task.manifest={manifest}", "model=mfcc", "trainer.max_epochs=30",
                            *overrides)
    record = run(config, console=Console(quiet=True))
    assert record["task"] == "custom" and record["task_type"] == kind
    assert record["split_sizes"] == SPLIT_SIZES
    assert record["dataset"]["manifest_sha256"] == hashlib.sha256(manifest.read_bytes()).hexdigest()
    for row in record["layers"]:
        assert set(row["test"]) == metrics
    score = record["test_score"]
    if kind == "multiclass":
        assert record["dataset"]["labels"] == ["high", "low", "mid"]  # sorted, not in order of appearance
        assert 0.0 <= score <= 1.0 and score > 0.6  # three octave-spaced pitches: MFCCs separate them
    elif kind == "multilabel":
        assert record["dataset"]["labels"] == ["bass", "noise", "whistle"]
        assert 0.0 <= score <= 1.0 and score > 0.7
    else:
        assert record["dataset"]["labels"] == ["gain_db", "pitch"]
        assert np.isfinite(score) and score <= 1.0
        assert record["selected"]["test"]["r2_pitch"] > 0.3  # a pure tone's pitch moves its MFCCs


def test_tracks_targets_and_paths(tmp_path):
    manifest = write_collection(tmp_path / "c", "multilabel")
    task = build_task({"kind": "custom", "manifest": str(manifest), "type": None, "targets": None})
    assert task.task_type == "auto" and task.labels == []  # decided by the manifest
    tracks = task.tracks(tmp_path)
    assert task.task_type == "multilabel" and task.labels == ["bass", "noise", "whistle"]
    assert tracks[0].track_id == "clip0" and tracks[0].target == ()  # empty labels cell: no tag
    assert tracks[7].target == (0, 1, 2)
    assert tracks[3].path == tmp_path / "c" / "audio" / "003.wav"
    y = task.target_array(tracks)
    assert y.shape == (36, 3) and y[7].tolist() == [1.0, 1.0, 1.0]

    reg = write_collection(tmp_path / "r", "regression")
    task = CustomTask({"manifest": str(reg)})  # no label columns, no targets: every numeric column
    tracks = task.tracks(tmp_path)
    assert task.task_type == "regression" and task.labels == ["gain_db", "pitch"]  # 'comment' is text
    y = task.target_array(tracks)
    assert len(tracks[0].target) == 2 and y.shape == (36, 2)
    assert -30 <= y[:, 0].min() and y[:, 0].max() <= -3  # in the manifest's own units (dB)
    task = CustomTask({"manifest": str(reg), "targets": ["pitch"]})
    assert task.task_type == "regression" and task.labels == ["pitch"]
    assert len(task.tracks(tmp_path)[0].target) == 1


def test_absolute_paths_type_override_and_identity(tmp_path, monkeypatch):
    audio = tmp_path / "x.wav"
    sf.write(audio, np.zeros(1600, np.float32), SR)
    csv_path = tmp_path / "sub" / "m.csv"
    csv_path.parent.mkdir()
    csv_path.write_text(f"path,split,label,labels\n{audio},train,a,p;q\nrel.wav,valid,b,p\nrel2.wav,test,a,\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ManifestError, match="task.type=multiclass"):
        CustomTask({"manifest": "sub/m.csv"}).tracks(tmp_path)  # both columns: say which
    task = CustomTask({"manifest": "sub/m.csv", "type": "multiclass"})
    tracks = task.tracks(tmp_path)
    assert tracks[0].path == audio and tracks[1].path == tmp_path / "sub" / "rel.wav"
    assert [t.target for t in tracks] == [0, 1, 0]
    first = task.dataset_identity()
    assert first["manifest_sha256"] == hashlib.sha256(csv_path.read_bytes()).hexdigest()
    csv_path.write_text(csv_path.read_text().replace("rel2.wav,test,a", "rel2.wav,test,b"))
    changed = CustomTask({"manifest": "sub/m.csv", "type": "multiclass"})
    changed.tracks(tmp_path)
    assert changed.dataset_identity()["manifest_sha256"] != first["manifest_sha256"]
    assert CustomTask({"manifest": "sub/m.csv", "type": "multilabel"}).tracks(tmp_path)[2].target == ()


# ------------------------------------------------------------------------------------------------- errors
def _tracks(tmp_path: Path, text: str, **cfg) -> list:
    path = tmp_path / "m.csv"
    path.write_text(text)
    return CustomTask({"manifest": str(path), **cfg}).tracks(tmp_path)


@pytest.mark.parametrize("text, cfg, match", [
    ("path,split,label\na.wav,train,x\nb.wav,validation,y\nc.wav,test,x\nd.wav,dev,y\n", {},
     r"unknown split value\(s\) \['dev', 'validation'\] \(first on line 3\).*train, valid, test"),
    ("path,split,label\na.wav,train,x\nb.wav,train,y\nc.wav,test,x\n", {}, r"no rows in split\(s\) \['valid'\]"),
    ("file,split,label\na.wav,train,x\n", {}, "no 'path' column.*relative to the CSV"),
    ("path,label\na.wav,x\n", {}, "no 'split' column"),
    ("path,split,score\na.wav,train,1.5\nb.wav,valid,n/a\nc.wav,test,2\n", {"targets": ["score"]},
     "line 3: target column 'score' holds 'n/a', not a finite number"),
    ("path,split,score\na.wav,train,1.5\nb.wav,valid,inf\nc.wav,test,2\n", {"targets": ["score"]}, "'inf'"),
    ("path,split,score\na.wav,train,1\nb.wav,train,1\nc.wav,valid,2\nd.wav,test,3\n", {},
     "'score' has the same value in every train row"),
    ("path,split,score\na.wav,train,1\nb.wav,valid,2\nc.wav,test,3\n", {"targets": ["valence"]},
     r"\['valence'\] named in task.targets are not in the header"),
    ("path,split,note\na.wav,train,hi\nb.wav,valid,yo\nc.wav,test,ok\n", {}, "cannot tell what to predict"),
    ("path,split,label\na.wav,train,x\na.wav,valid,y\nc.wav,test,x\n", {}, "listed twice"),
    ("path,split,label\na.wav,train,x\nb.wav,valid,\nc.wav,test,y\n", {}, "line 3: empty 'label'"),
    ("path,split,label\na.wav,train,x\nb.wav,valid,x\nc.wav,test,x\n", {}, "only one class"),
    ("path,split\n", {}, "no rows"),
    ("", {}, "empty"),
    ("path,split,label\na.wav,train,x\n", {"type": "multilabel"}, "needs a 'labels' column"),
])
def test_manifest_errors_name_the_fix(tmp_path, text, cfg, match):
    with pytest.raises(ManifestError, match=match):
        _tracks(tmp_path, text, **cfg)


def test_bad_config_values_are_refused():
    with pytest.raises(ValueError, match="not one of multiclass, multilabel, regression"):
        CustomTask({"manifest": "m.csv", "type": "key"})
    with pytest.raises(ValueError, match="task.targets is for regression"):
        CustomTask({"manifest": "m.csv", "type": "multiclass", "targets": ["a"]})


def test_missing_manifest(tmp_path, compose_config, capsys):
    with pytest.raises(ConfigError, match=r"task.manifest has no value .* run task.manifest=VALUE"):
        run(compose_config("task=custom", "model=mfcc"), console=Console(quiet=True))  # manifest: ??? unset
    with pytest.raises(DatasetMissingError, match="no manifest given; pass task.manifest="):
        CustomTask({}).manifest_path()  # built in code without a manifest
    missing = tmp_path / "nope.csv"
    with pytest.raises(DatasetMissingError, match="manifest not found: .*nope.csv"):
        CustomTask({"manifest": str(missing)}).tracks(tmp_path)

    from benchmark.cli import main

    assert main(["check", "task=custom", f"task.manifest={missing}"]) == 1
    assert f"manifest not found: {missing}" in capsys.readouterr().err


def test_check_lists_missing_audio(tmp_path, capsys):
    manifest = write_collection(tmp_path / "c", "multiclass")
    (tmp_path / "c" / "audio" / "000.wav").unlink()
    from benchmark.cli import main

    assert main(["check", "task=custom", f"task.manifest={manifest}"]) == 1
    out = capsys.readouterr().out
    assert "train 17 of 18 tracks present" in out and "audio/000.wav" in out
