"""``protocol=marble`` reproduces MARBLE v1's settings value for value, for every seed model and the thirteen tasks.

Why: a protocol that claims to be someone's must compose to their settings; the preset in
configs/protocol/marble.yaml is written by hand, so every value is checked here against the facts read from
MARBLE's repository (tests/fixtures/refdata/marble/protocol_v1.csv: the reference data's rows for the first five
tasks byte for byte, and rows for MTG-Jamendo, NSynth and VocalSet read from the same commit; its PROVENANCE.md says
which). Settings this suite cannot reproduce exactly are asserted as the documented choice (README 'Two protocols').
"""
from __future__ import annotations

import csv
import hashlib
import re

import pytest
from hydra import compose, initialize_config_dir

from benchmark.audio import WindowSpec, window_bounds
from benchmark.config_store import resolved_config, validate_run_config
from benchmark.record import protocol_fields, run_checksum
from benchmark.resources import config_dir
from benchmark.tasks.registry import build_task
from tests.conftest import REFDATA

ROWS = list(csv.DictReader((REFDATA / "marble" / "protocol_v1.csv").open(encoding="utf-8")))
MODELS = {"MERT-v1-330M": "mert-v1-330m", "MERT-v1-95M": "mert-v1-95m", "MERT-v0-public": "mert-v0-public",
          "MERT-v0": "mert-v0", "music2vec-v1": "music2vec-v1"}
TASKS = {"GTZAN": "gtzan", "MTT": "mtt", "GS": "giantsteps_key", "EMO": "emomusic", "GTZANBT": "gtzan_beat",
         "MTGTop50": "mtg_top50", "MTGGenre": "mtg_genre", "MTGMood": "mtg_moodtheme",
         "MTGInstrument": "mtg_instrument", "NSynthI": "nsynth_instrument", "NSynthP": "nsynth_pitch",
         "VocalSetS": "vocalset_singer", "VocalSetT": "vocalset_technique"}
# The tasks added after the first five: MTG-Jamendo's four tag subsets, NSynth and VocalSet (checked further below).
LATER_TASKS = ("MTGTop50", "MTGGenre", "MTGMood", "MTGInstrument", "NSynthI", "NSynthP", "VocalSetS", "VocalSetT")


def _composed(*overrides: str) -> dict:
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        return resolved_config(compose(config_name="config", overrides=list(overrides)))


def _marble(model: str, task: str, *overrides: str) -> dict:
    return _composed(f"task={task}", f"model={model}", "protocol=marble", *overrides)


def test_the_reference_covers_five_models_and_thirteen_tasks():
    assert len(ROWS) == 65 and {(r["model"], r["task"]) for r in ROWS} == {(m, t) for m in MODELS for t in TASKS}
    assert all(r["commit"] == "d9300e335eefdad8d6b825418e8c44b22d0919c7" for r in ROWS)
    # the first 25 rows are the reference data's file byte for byte; the 40 after them were added here (PROVENANCE.md)
    lines = (REFDATA / "marble" / "protocol_v1.csv").read_bytes().split(b"\n")
    assert hashlib.sha256(b"\n".join(lines[:26]) + b"\n").hexdigest() == \
        "5f9304c21e6c6f878d1768b5dbb518214e97c13713362101b726ca1498fdf2c0"
    assert [r["task"] for r in ROWS[25:]] == [t for _ in MODELS for t in LATER_TASKS]


@pytest.mark.parametrize("row", ROWS, ids=lambda r: f"{r['model']}-{r['task']}")
def test_marble_composes_to_marble_v1_settings(row):
    model, task = MODELS[row["model"]], TASKS[row["task"]]
    config = _marble(model, task)
    validate_run_config(config)  # every value also passes the schemas
    probe, trainer, t, m = config["probe"], config["trainer"], config["task"], config["model"]

    # layer: an index, or MARBLE's weighted sum of hidden states 1..L with standard-normal logits
    if row["layer"] == "all":
        assert config["layers"] == "weighted_sum"
        assert "hidden_states[1.." in row["weighted_sum"] and "torch.randn" in row["weighted_sum"]
        assert probe["weighted_sum_layers"] == "transformer" and probe["weighted_sum_init"] == "randn"
    else:
        assert config["layers"] == [int(row["layer"])]
    # learning rate: fixed, except GiantSteps's LR finder (not reproducible from any file: 1e-3, documented)
    if row["auto_lr_find"] == "true":
        assert float(probe["lr"]) == 1e-3 and "LR finder" in config["protocol"]["source"]
    else:
        assert float(probe["lr"]) == float(row["lr"])
    # head and optimiser
    assert [probe["hidden"]] == [int(x) for x in re.findall(r"\d+", row["hidden_layer_sizes"])]
    assert probe["dropout"] == float(row["dropout"]) and probe["weight_decay"] == float(row["weight_decay"])
    assert row["optimizer"] == "torch.optim.Adam" and probe["standardize"] is False  # features as they are
    # schedule
    assert trainer["max_epochs"] == int(row["max_epochs"])
    assert trainer["patience"] == int(row["earlystop_patience"])
    assert trainer["lr_decay_patience"] == int(row["plateau_patience"])
    assert trainer["lr_decay_factor"] == float(row["plateau_factor"])
    # torch ReduceLROnPlateau's counting (threshold 1e-4 rel) and Lightning EarlyStopping's check_finite
    assert trainer["lr_decay_rule"] == "reduce_on_plateau" and trainer["lr_decay_threshold"] == 1e-4
    assert trainer["stop_on_non_finite"] is True and row["monitor_mode"] == "max"
    assert row["precision"].startswith("16 ") and trainer["precision"] == "16-mixed"
    # batch: 64 files, every window of each
    assert trainer["batch_size"] == int(row["batch_size_files"]) and trainer["batch_unit"] == "tracks"
    # waveform normalisation: the model card's processor_normalize, not the hub preprocessor config
    assert m["normalize"] is (row["processor_normalize"].split()[0] == "true")
    # ... applied to each file's whole (cropped) waveform once, before windowing (extract_bert_features.py)
    assert m["normalize_scope"] == "file" and config["protocol"]["preset"]["model"]["normalize_scope"] == "file"
    # windows
    if row["task"] == "GTZANBT":
        assert row["beat_eval_clip_s"] == "30" and t["window_seconds"] == 30.0  # evaluation clip (train: see README)
        assert t["f_aggregation"] == "pooled" and "pooled over all tracks" in row["beat_f_aggregation"]
        dbn = row["beat_dbn"]
        assert f"min_bpm {t['min_bpm']:g}" in dbn and f"max_bpm {t['max_bpm']:g}" in dbn
        assert f"transition_lambda {t['transition_lambda']:g}" in dbn and t["decoder"] == "dbn"
        return
    crop = float(row["crop_to_length_in_sec"]) if row["crop_to_length_in_sec"] else None
    assert t["crop_seconds"] == crop
    window = float(row["sliding_window_size_in_sec"]) if row["sliding_window_size_in_sec"] else None
    if window is None:  # MERT-v1: the whole clip (~30 s; GiantSteps' clips are 30 s) in one pass
        assert "whole clip" in row["chunks_per_file"] and t["window_seconds"] == 30.0
    else:
        assert t["window_seconds"] == window
    if row["task"] == "GS":
        assert t["ensemble"] == "marble" and "vote" in row["gs_ensemble"] and "gmean" in row["gs_ensemble"]


LATER_ROWS = [r for r in ROWS if r["task"] in LATER_TASKS]
# What MARBLE's windows cover in these tasks (the rows' chunks_per_file and notes say so): a VocalSet chunk is
# 44100 // 1000 * 3000 samples at 44.1 kHz (benchmark/tasks/VocalSet/preprocess.py), an NSynth note 4 s.
VOCALSET_CHUNK = (132_000, 44_100)
NSYNTH_NOTE_SECONDS = 4
# MARBLE's monitor -> this suite's task kind and its primary metric (selection, early stopping and the plateau)
MONITORS = {"valid_aucroc": ("multilabel", "roc_auc"), "valid_acc": ("multiclass", "accuracy")}


def _windows(task: dict, seconds: float, sample_rate: int) -> list[tuple[int, int]]:
    spec = WindowSpec(window=task["window_seconds"], hop=task["hop_seconds"] or task["window_seconds"],
                      min_fraction=task["window_min_fraction"], crop=task["crop_seconds"])
    return window_bounds(int(round(seconds * sample_rate)), sample_rate, spec)


@pytest.mark.parametrize("row", LATER_ROWS, ids=lambda r: f"{r['model']}-{r['task']}")
def test_the_later_tasks_window_and_select_as_marble_does(row):
    """MTG, NSynth and VocalSet beyond what the general test checks: MARBLE's windows cut at the model's rate
    (non-overlapping, a last window under 1 s dropped), the number of outputs and the monitored metric."""
    config = _marble(MODELS[row["model"]], TASKS[row["task"]])
    t, sr = config["task"], int(row["target_sr"])
    assert t["hop_seconds"] is None and row["sliding_window_overlap_pct"] == "0.0"
    # MARBLE drops a last window shorter than 1 s (extract_bert_features.py): min_fraction x window = 1 s
    assert t["window_min_fraction"] * t["window_seconds"] == pytest.approx(1.0, rel=1e-5)
    if row["task"].startswith("MTG"):  # the whole track in 30 s windows from 0 s
        assert "every non-overlapping 30 s window of the whole track" in row["chunks_per_file"]
        assert float(row["sliding_window_size_in_sec"]) == 30.0 and not row["crop_to_length_in_sec"]
        whole = [(0, 30 * sr), (30 * sr, 60 * sr), (60 * sr, 90 * sr)]
        assert _windows(t, 95.5, sr) == [*whole, (90 * sr, int(95.5 * sr))]
        assert _windows(t, 90.9, sr) == whole  # a 0.9 s tail is dropped
        assert _windows(t, 91.0, sr)[-1] == (90 * sr, 91 * sr)  # a 1 s tail is kept
        assert "split-0" in row["notes"] and ".low.mp3" in row["notes"]
    elif row["task"].startswith("NSynth"):  # the whole note, one window
        assert f"{NSYNTH_NOTE_SECONDS} s note" in row["chunks_per_file"]
        assert _windows(t, NSYNTH_NOTE_SECONDS, sr) == [(0, NSYNTH_NOTE_SECONDS * sr)]
    else:  # VocalSet: the whole chunk, one window
        samples, rate = VOCALSET_CHUNK
        assert f"{samples:,} samples at 44.1 kHz" in row["chunks_per_file"]
        assert "44100//1000*3000" in row["notes"] and 44_100 // 1000 * 3000 == samples and rate == 44_100
        assert _windows(t, samples / rate, sr) == [(0, int(round(samples / rate * sr)))]
    # the outputs MARBLE's head has, and the metric its early stopping, checkpoint and plateau follow
    task = build_task(t)
    assert task.num_outputs == int(re.search(r"\((\d+) ", row["loss"]).group(1))
    assert (task.task_type, task.kind.primary.name) == MONITORS[row["monitor"]]
    assert row["loss"].startswith("BCEWithLogitsLoss" if task.task_type == "multilabel" else "CrossEntropyLoss")


def test_where_the_330m_configs_reuse_the_95m_layer_the_source_says_so():
    """MARBLE's 330M configs for these tasks copy the 95M base config, layer index included (MTGGenre's v0,
    v0-public and music2vec configs too): reproduced as committed, and the run's protocol.source names it."""
    reused = [r for r in LATER_ROWS if "MERT-v1-95M base config" in r["notes"] and r["layer"] != "all"]
    assert {(r["model"], r["task"]) for r in reused} == (
        {("MERT-v1-330M", t) for t in LATER_TASKS if t != "MTGInstrument"}
        | {(m, "MTGGenre") for m in ("MERT-v0-public", "MERT-v0", "music2vec-v1")})
    base = {r["task"]: r["layer"] for r in LATER_ROWS if r["model"] == "MERT-v1-95M"}
    for row in reused:
        assert row["layer"] == base[row["task"]]
        source = _marble(MODELS[row["model"]], TASKS[row["task"]])["protocol"]["source"]
        assert "95M" in source and source.startswith("committed config")


def test_nsynth_trains_for_at_most_50_epochs_and_the_record_keeps_it():
    config = _marble("mert-v1-95m", "nsynth_pitch")
    assert config["trainer"]["max_epochs"] == 50 and config["protocol"]["preset"]["trainer"]["max_epochs"] == 50
    assert _marble("mert-v1-95m", "vocalset_singer")["trainer"]["max_epochs"] == 100


@pytest.mark.slow  # ~24 s (32 Hydra compositions); each task's marble windows are also checked by default above
def test_tasks_that_share_features_compose_the_same_windows():
    """The four mtg_* tasks, the two nsynth_* and the two vocalset_* tasks each read one shared feature cache; the
    protocol must not give them different windows (a model MARBLE does not cover included). The windows depend on
    the model's family only (configs/protocol/marble.yaml), so one model of each family is composed."""
    keys = ("window_seconds", "hop_seconds", "window_min_fraction", "crop_seconds")
    groups = [("mtg_top50", "mtg_genre", "mtg_moodtheme", "mtg_instrument"), ("nsynth_instrument", "nsynth_pitch"),
              ("vocalset_singer", "vocalset_technique")]
    for model in ("mert-v1-95m", "mert-v0", "music2vec-v1", "mfcc"):  # families v1, v0, music2vec; not in MARBLE
        for group in groups:
            windows = {tuple(_marble(model, task)["task"][k] for k in keys) for task in group}
            assert len(windows) == 1, (model, group, windows)


@pytest.mark.parametrize("window,expected", [(30.0, 1 / 30), (5.0, 0.2)])
def test_a_tail_shorter_than_one_second_is_dropped_as_marble_does(window, expected):
    """MARBLE drops a last window shorter than 1 s: window_min_fraction x window = 1 s."""
    emo = _marble("mert-v1-95m" if window == 5.0 else "music2vec-v1", "emomusic")["task"]
    assert emo["window_seconds"] == window and emo["window_min_fraction"] == pytest.approx(expected, rel=1e-5)


def test_an_override_still_applies_and_is_kept_apart_from_the_preset():
    config = _marble("mert-v1-95m", "gtzan", "probe.lr=1e-2")
    assert config["probe"]["lr"] == 1e-2 and config["protocol"]["preset"]["probe"]["lr"] == 5e-3


def test_a_model_or_task_marble_does_not_cover_gets_the_stated_fallback():
    config = _marble("mfcc", "synth_chords")
    assert config["layers"] == "weighted_sum" and float(config["probe"]["lr"]) == 1e-3
    assert config["protocol"]["source"].startswith("not in MARBLE v1")
    assert config["model"]["normalize"] is None  # the model's own setting
    assert config["model"]["normalize_scope"] == "window"  # a baseline has no normalisation (and refuses file)


def test_the_protocol_is_part_of_the_checksum_and_the_default_changes_nothing():
    default = _composed("task=gtzan", "model=mert-v1-95m")
    assert "protocol" not in protocol_fields(default)  # records from before protocols keep their names
    marble = _marble("mert-v1-95m", "gtzan")
    assert protocol_fields(marble)["protocol"]["name"] == "marble"
    assert run_checksum(marble) != run_checksum(default)
    assert set(marble["protocol"]) == {"name", "reference", "source", "preset"}  # the lookup tables are not kept
