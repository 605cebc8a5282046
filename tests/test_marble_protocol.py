"""``protocol=marble`` reproduces MARBLE v1's settings value for value, for every seed model and the five tasks.

Why: a protocol that claims to be someone's must compose to their settings; the preset in
configs/protocol/marble.yaml is written by hand, so every value is checked here against the facts read from
MARBLE's repository (tests/fixtures/refdata/marble/protocol_v1.csv, a byte copy with provenance). Settings this
suite cannot reproduce exactly are asserted as the documented choice (README 'Two protocols').
"""
from __future__ import annotations

import csv
import re

import pytest
from hydra import compose, initialize_config_dir

from benchmark.config_store import resolved_config, validate_run_config
from benchmark.record import protocol_fields, run_checksum
from benchmark.resources import config_dir
from tests.conftest import REFDATA

ROWS = list(csv.DictReader((REFDATA / "marble" / "protocol_v1.csv").open(encoding="utf-8")))
MODELS = {"MERT-v1-330M": "mert-v1-330m", "MERT-v1-95M": "mert-v1-95m", "MERT-v0-public": "mert-v0-public",
          "MERT-v0": "mert-v0", "music2vec-v1": "music2vec-v1"}
TASKS = {"GTZAN": "gtzan", "MTT": "mtt", "GS": "giantsteps_key", "EMO": "emomusic", "GTZANBT": "gtzan_beat"}


def _composed(*overrides: str) -> dict:
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        return resolved_config(compose(config_name="config", overrides=list(overrides)))


def _marble(model: str, task: str, *overrides: str) -> dict:
    return _composed(f"task={task}", f"model={model}", "protocol=marble", *overrides)


def test_the_reference_covers_five_models_and_five_tasks():
    assert len(ROWS) == 25 and {(r["model"], r["task"]) for r in ROWS} == {(m, t) for m in MODELS for t in TASKS}


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
