"""Protocols whose scores cannot be right are refused before the encoder decodes any audio.

Each bad protocol is reproduced with a tiny dataset (a custom CSV manifest, or a task listing its tracks in code);
most tests call the checks directly (fast), and one end-to-end run per kind of refusal shows that the refusal
comes before extraction: no feature cache is written.
"""
from __future__ import annotations

import io
import shutil
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pytest
from rich.console import Console

from benchmark.cli import report_user_errors
from benchmark.errors import ProtocolError, UserError
from benchmark.protocol_checks import (FIRST_BLOCK, MAX_LISTED, _first_block, check_duplicate_audio,
                                       check_protocol, content_identities, find_duplicates, label_problems)
from benchmark.run_tracks import checked_tracks, split_tracks
from benchmark.runner import run
from benchmark.targets import CHORD_VOCABULARY, BeatTarget, ChordSegments
from benchmark.tasks.base import Task, Track
from benchmark.tasks.custom import CustomTask
from benchmark.tasks.registry import build_task
from tests.test_task_custom import write_collection


class ListedTask(Task):
    """A task of any kind whose tracks are given in code (the label checks read no audio)."""

    def __init__(self, task_type: str, labels: Sequence[str], tracks: list[Track]) -> None:
        super().__init__({})
        self.name, self.task_type, self.labels = f"listed_{task_type}", task_type, list(labels)
        self._tracks = tracks

    def tracks(self, data_root: Path) -> list[Track]:
        return list(self._tracks)


def _listed(task_type: str, labels: Sequence[str], targets: dict[str, list[Any]]) -> tuple[Task, dict]:
    """A ListedTask with one track per target, and its tracks per split."""
    tracks = [Track(f"{split}{i}", Path(f"/nonexistent/{split}{i}.wav"), split, target)
              for split, values in targets.items() for i, target in enumerate(values)]
    task = ListedTask(task_type, labels, tracks)
    return task, split_tracks(task, tracks)


def _custom(manifest: Path) -> tuple[CustomTask, dict[str, list[Track]]]:
    task = CustomTask({"manifest": str(manifest)})
    return task, split_tracks(task, task.tracks(manifest.parent))


def _append(manifest: Path, *rows: str) -> Path:
    manifest.write_text(manifest.read_text() + "".join(row + "\n" for row in rows))
    return manifest


def _console() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, width=400, color_system=None), out


def _assert_nothing_extracted(cache_dir: Path) -> None:
    """The refusal came before extraction: no feature cache (folder or data file) was written."""
    assert not (cache_dir / "features").exists()
    assert not list(cache_dir.rglob("*.f16"))  # (rglob of a folder that does not exist finds nothing)


# ------------------------------------------------------------------------------------------ duplicate audio
def test_same_file_under_two_track_ids_in_train_and_test_is_refused(tmp_path):
    manifest = _append(write_collection(tmp_path / "c", "multiclass"), "./audio/000.wav,test,low")
    task, by_split = _custom(manifest)
    with pytest.raises(ProtocolError) as info:
        check_protocol(task, by_split)
    message = str(info.value)
    real = (tmp_path / "c" / "audio" / "000.wav").resolve()
    assert f"1 pair(s) of tracks: 'audio/000.wav' (train) and './audio/000.wav' (test), same file {real}" in message
    assert "the same audio is in more than one split" in message
    assert "Fix the manifest / splits" in message and "allow_duplicate_audio=true" in message
    assert "\n" not in message  # one paragraph


def test_a_copy_under_another_name_is_found_by_its_content(tmp_path):
    manifest = write_collection(tmp_path / "c", "multiclass")
    audio = tmp_path / "c" / "audio"
    shutil.copy(audio / "005.wav", audio / "copy.wav")
    (audio / "link.wav").symlink_to(audio / "006.wav")
    task, by_split = _custom(_append(manifest, "audio/copy.wav,valid,high", "audio/link.wav,test,low"))
    with pytest.raises(ProtocolError) as info:
        check_protocol(task, by_split)
    message = str(info.value)
    assert message.count("pair(s)") == 1 and "2 pair(s) of tracks:" in message
    assert (f"'audio/005.wav' (train) and 'audio/copy.wav' (valid), identical content in "
            f"{(audio / '005.wav').resolve()} and {(audio / 'copy.wav').resolve()}") in message
    assert f"'audio/006.wav' (train) and 'audio/link.wav' (test), same file {(audio / '006.wav').resolve()}" \
        in message


def test_the_refusal_lists_ten_pairs_and_counts_the_rest(tmp_path):
    shared = tmp_path / "one.wav"
    shared.write_bytes(b"RIFF" + bytes(100))
    tracks = [Track("t0", shared, "train", 0)] + [Track(f"x{i}", shared, "test", 0) for i in range(12)]
    tracks.append(Track("v0", tmp_path / "other.wav", "valid", 1))
    task = ListedTask("multiclass", ["a", "b"], tracks)
    with pytest.raises(ProtocolError) as info:
        check_duplicate_audio(task, split_tracks(task, tracks))
    message = str(info.value)
    assert "12 pair(s) of tracks:" in message and "... (+2 more)" in message
    assert message.count(" (test), same file") == MAX_LISTED == 10
    assert "'t0' (train) and 'x9' (test)" in message and "'x10'" not in message


def test_files_sharing_only_their_first_block_are_not_copies(tmp_path):
    head = bytes(FIRST_BLOCK)  # e.g. two recordings that open with the same stretch of digital silence
    a, b, c = tmp_path / "a.wav", tmp_path / "b.wav", tmp_path / "c.wav"
    a.write_bytes(head + b"first recording")
    b.write_bytes(head + b"other recording")  # same size, same first block, different content
    c.write_bytes(head + b"first recording")  # a true copy of a
    assert _first_block(str(a)) == _first_block(str(b)) == _first_block(str(c))  # the cheap key collides
    ids = content_identities([str(a), str(b), str(c)])
    assert ids[str(a)] == ids[str(c)] != ids[str(b)]
    found = find_duplicates([Track("a", a, "train", 0), Track("b", b, "test", 0), Track("c", c, "test", 0)])
    assert found.across_count == 1 and [(p.first.track_id, p.second.track_id) for p in found.across] == [("a", "c")]


def test_different_parts_of_one_file_are_different_audio(tmp_path):
    long = tmp_path / "long.wav"
    long.write_bytes(bytes(1000))
    tracks = [Track("a", long, "train", 0, offset=0.0, duration=10.0),
              Track("b", long, "test", 0, offset=10.0, duration=10.0),
              Track("c", long, "test", 0, offset=0.0, duration=10.0)]
    found = find_duplicates(tracks)
    assert found.across_count == 1 and found.across[0].second.track_id == "c"


def test_the_same_file_twice_within_a_split_is_a_warning(tmp_path):
    manifest = _append(write_collection(tmp_path / "c", "multiclass"), "./audio/000.wav,train,low")
    task, by_split = _custom(manifest)
    console, out = _console()
    check_protocol(task, by_split, console=console)  # not refused
    text = out.getvalue()
    assert "warning: task custom: the same audio is listed more than once within a split" in text
    assert "1 pair(s) of tracks: 'audio/000.wav' (train) and './audio/000.wav' (train), same file" in text


def test_allow_duplicate_audio_accepts_them_knowingly(tmp_path):
    manifest = write_collection(tmp_path / "c", "multiclass")
    shutil.copy(tmp_path / "c" / "audio" / "000.wav", tmp_path / "c" / "audio" / "copy.wav")
    task, by_split = _custom(_append(manifest, "audio/copy.wav,test,low"))
    with pytest.raises(ProtocolError):
        check_protocol(task, by_split, allow_duplicate_audio=False)
    console, out = _console()
    check_protocol(task, by_split, allow_duplicate_audio=True, console=console)
    assert "1 pair(s) of tracks in different splits hold the same audio, accepted with allow_duplicate_audio=true" \
        in out.getvalue()


def test_missing_files_are_left_to_the_tracks_stage(tmp_path):
    manifest = _append(write_collection(tmp_path / "c", "multiclass"), "audio/../audio/009.wav,test,low")
    (tmp_path / "c" / "audio" / "009.wav").unlink()  # both tracks of the duplicate are absent: skipped, not compared
    task = CustomTask({"manifest": str(manifest)})
    config = {"max_missing_fraction": 0.5, "verify_checksums": False}
    by_split, skipped, _ = checked_tracks(task, tmp_path, config, Console(quiet=True))
    assert skipped["train"] == ["audio/009.wav"] and skipped["test"] == ["audio/../audio/009.wav"]
    assert len(by_split["test"]) == 9
    assert content_identities([str(tmp_path / "nowhere.wav")]) == {}  # an unreadable file has no identity


def test_a_duplicate_run_stops_before_extraction_with_the_cli_message(tmp_path, compose_config, capsys):
    manifest = write_collection(tmp_path / "c", "multiclass")
    shutil.copy(tmp_path / "c" / "audio" / "003.wav", tmp_path / "c" / "audio" / "copy.wav")
    _append(manifest, "audio/copy.wav,test,low")
    config = compose_config("task=custom", f"task.manifest={manifest}", "model=mfcc")
    assert config["allow_duplicate_audio"] is False  # the default of configs/config.yaml
    status = report_user_errors(lambda: run(config, console=Console(quiet=True)))
    err = capsys.readouterr().err
    assert status == 1 and err.startswith("error: task custom: the same audio is in more than one split")
    assert "'audio/003.wav' (train) and 'audio/copy.wav' (test), identical content" in err
    assert "Traceback" not in err
    _assert_nothing_extracted(Path(config["cache_dir"]))


# ------------------------------------------------------------------------------------------------- labels
def test_a_class_only_in_valid_or_test_is_refused(tmp_path):
    text = "path,split,label\n" + "".join(f"t{i}.wav,train,{'ab'[i % 2]}\n" for i in range(6))
    text += "v0.wav,valid,a\nv1.wav,valid,c\nv2.wav,valid,c\nx0.wav,test,b\nx1.wav,test,c\nx2.wav,test,d\n"
    (tmp_path / "m.csv").write_text(text)
    task, by_split = _custom(tmp_path / "m.csv")
    problems = label_problems(task, by_split)
    assert problems == [
        "task custom: 2 class(es) appear in valid or test but have no training example: 'c' (valid 2, test 1), "
        "'d' (test 1); a probe cannot predict a class it never saw, so those tracks are scored wrong by "
        "construction. Fix the manifest / splits: move some of their tracks into train, or drop them."]
    with pytest.raises(ProtocolError, match="'c' \\(valid 2, test 1\\), 'd' \\(test 1\\)"):
        check_protocol(task, by_split)


def test_a_train_split_of_one_class_is_refused(tmp_path):
    text = "path,split,label\n" + "".join(f"t{i}.wav,train,a\n" for i in range(4))
    text += "v0.wav,valid,a\nv1.wav,valid,b\nx0.wav,test,a\nx1.wav,test,b\n"
    (tmp_path / "m.csv").write_text(text)
    task, by_split = _custom(tmp_path / "m.csv")  # two classes in the manifest: the manifest reader lets it pass
    problems = label_problems(task, by_split)
    assert len(problems) == 2
    assert problems[0].startswith("task custom: the train split holds only one class ('a', 4 track(s))")
    assert "Fix the manifest / splits so that train holds examples of at least two classes" in problems[0]
    assert "'b' (valid 1, test 1)" in problems[1]


def test_key_tasks_are_checked_as_classes():
    keys = ["C major", "C minor", "D major", "D minor"]
    task, by_split = _listed("key", keys, {"train": [0, 1, 0, 1], "valid": [0, 1], "test": [1, 3]})
    (problem,) = label_problems(task, by_split)
    assert "1 class(es) appear in valid or test but have no training example: 'D minor' (test 1)" in problem
    task, by_split = _listed("key", keys, {"train": [0, 1, 2], "valid": [2], "test": [0]})
    assert label_problems(task, by_split) == []  # a key never used anywhere is not a problem


def test_a_tag_without_a_positive_training_example_is_refused(tmp_path):
    rows = ["track_id,path,split,labels"] + [f"t{i},t{i}.wav,train,{'bass' if i % 2 else 'noise'}" for i in range(6)]
    rows += ["v0,v0.wav,valid,bass;whistle", "v1,v1.wav,valid,noise", "x0,x0.wav,test,whistle",
             "x1,x1.wav,test,", "x2,x2.wav,test,bass"]
    (tmp_path / "m.csv").write_text("\n".join(rows) + "\n")
    task, by_split = _custom(tmp_path / "m.csv")
    assert task.task_type == "multilabel" and task.labels == ["bass", "noise", "whistle"]
    (problem,) = label_problems(task, by_split)
    assert problem.startswith("task custom: 1 tag(s) have no positive example among the 6 training track(s): "
                              "'whistle' (2 positive(s) in valid/test)")
    assert "Fix the manifest / splits: give each tag positive training tracks, or remove it." in problem


def test_a_constant_regression_target_in_train_is_refused():
    targets = {"train": [(120.0, 0.1), (120.0, 0.5), (120.0, 0.9)], "valid": [(90.0, 0.2)], "test": [(140.0, 0.3)]}
    task, by_split = _listed("regression", ["tempo", "energy"], targets)
    (problem,) = label_problems(task, by_split)
    assert ("1 regression target(s) have the same value on all 3 training track(s): 'tempo' = 120;" in problem
            and "'energy'" not in problem)
    targets["train"][1] = (121.0, 0.5)
    assert label_problems(*_listed("regression", ["tempo", "energy"], targets)) == []


def test_frame_level_kinds_need_something_to_learn():
    beats = BeatTarget((0.5, 1.0, 1.5), (0.5,))
    task, by_split = _listed("beat", ["beat", "downbeat"], {"train": [BeatTarget(()), BeatTarget(())],
                                                            "valid": [beats], "test": [beats]})
    (problem,) = label_problems(task, by_split)
    assert "none of the 2 training track(s) has an annotated beat" in problem
    by_split["train"] = []
    (problem,) = label_problems(task, by_split)
    assert problem.startswith("task listed_beat: the train split has no usable track")

    c_major = ChordSegments((0.0,), (4.0,), ("C:maj",))
    two = ChordSegments((0.0, 2.0), (2.0, 4.0), ("C:maj", "A:min"))
    task, by_split = _listed("chord_frames", CHORD_VOCABULARY, {"train": [c_major, c_major], "valid": [two],
                                                                "test": [two]})
    (problem,) = label_problems(task, by_split)
    assert "the training annotations hold 1 chord class(es) ('C:maj')" in problem
    task, by_split = _listed("chord_frames", CHORD_VOCABULARY, {"train": [c_major, two], "valid": [two],
                                                                "test": [two]})
    assert label_problems(task, by_split) == []


def test_on_a_partial_copy_label_findings_are_warnings(tmp_path):
    """Training files absent on disk may hold the missing class: the user allowed the loss, so it is a warning."""
    text = "path,split,label\n" + "".join(f"t{i}.wav,train,{'ab'[i % 2]}\n" for i in range(4))
    text += "v0.wav,valid,a\nx0.wav,test,b\nx1.wav,test,c\n"
    (tmp_path / "m.csv").write_text(text)
    task, by_split = _custom(tmp_path / "m.csv")
    with pytest.raises(ProtocolError, match="'c' \\(test 1\\)"):
        check_protocol(task, by_split)
    console, out = _console()
    check_protocol(task, by_split, train_skipped=2, console=console)
    text = out.getvalue()
    assert "warning: task custom: 1 class(es) appear in valid or test but have no training example" in text
    assert "partial copy: 2 training track(s) are absent or corrupt on disk" in text


def test_a_class_only_in_test_stops_the_run_before_extraction(tmp_path, compose_config):
    manifest = write_collection(tmp_path / "c", "multiclass")
    lines = manifest.read_text().splitlines()
    lines[-1] = lines[-1].rsplit(",", 1)[0] + ",extra"  # the last test track gets a class train never has
    manifest.write_text("\n".join(lines) + "\n")
    config = compose_config("task=custom", f"task.manifest={manifest}", "model=mfcc")
    with pytest.raises(ProtocolError, match=r"1 class\(es\) appear in valid or test but have no training "
                                            r"example: 'extra' \(test 1\)") as info:
        run(config, console=Console(quiet=True))
    assert isinstance(info.value, UserError)
    _assert_nothing_extracted(Path(config["cache_dir"]))


# ------------------------------------------------------------------------------------------ committed tasks
@pytest.mark.parametrize("kind, sizes", [
    ("synth_chords", (24, 12, 12)), ("synth_key", (24, 12, 12)), ("synth_tags", (24, 8, 8)),
    ("synth_tempo", (24, 8, 8)), ("synth_beats", (6, 2, 2)), ("synth_chord_frames", (6, 2, 2)),
])
def test_the_synthetic_tasks_pass_every_check(tmp_path, kind, sizes):
    task = build_task({"kind": kind, "n_train": sizes[0], "n_valid": sizes[1], "n_test": sizes[2],
                       "clip_seconds": 1.0, "sample_rate": 16000, "render_workers": 1})
    task.prepare(tmp_path)
    by_split = split_tracks(task, task.tracks(tmp_path))
    assert {s: len(t) for s, t in by_split.items()} == dict(zip(("train", "valid", "test"), sizes))
    assert label_problems(task, by_split) == []
    found = find_duplicates([t for tracks in by_split.values() for t in tracks])
    assert (found.across_count, found.within_count) == (0, 0)
    console, out = _console()
    check_protocol(task, by_split, console=console)
    assert out.getvalue() == ""  # not even a warning
    if kind == "synth_tags":  # every tag has a training positive at these sizes
        y = np.asarray(task.target_array(by_split["train"]))
        assert y.shape == (24, 6) and (y.sum(axis=0) > 0).all()


def test_the_committed_config_and_schema_agree_on_the_override(compose_config):
    assert compose_config("model=mfcc")["allow_duplicate_audio"] is False
    assert compose_config("model=mfcc", "allow_duplicate_audio=true")["allow_duplicate_audio"] is True


def test_the_check_command_runs_the_protocol_checks(tmp_path, capsys):
    """``python -m benchmark check`` answers "would a run start?": the dataset is complete, but the same file is in
    train and test, so it says so and exits 1 (and says OK once the manifest is fixed)."""
    from benchmark.cli import main

    clean = write_collection(tmp_path / "c", "multiclass")
    assert main(["check", "task=custom", f"task.manifest={clean}"]) == 0
    assert "protocol: OK" in capsys.readouterr().out
    manifest = _append(clean, "./audio/000.wav,test,low")
    assert main(["check", "task=custom", f"task.manifest={manifest}"]) == 1
    err = capsys.readouterr().err
    assert "protocol: " in err and "the same audio is in more than one split" in err
