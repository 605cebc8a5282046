"""giantsteps_key with ``task.ensemble=marble``: MARBLE v1's four per-song strategies over 30 s clips, the test
strategy chosen on validation, and the default (mean of the windows' softmax probabilities) left as it was.

The hand-made example has three songs whose four strategies disagree, including two vote ties that must go to
the lowest class index (as ``scipy.stats.mode``) and songs where ``max`` differs from ``mean``; every expected
value is also recomputed clip by clip with scipy and mir_eval.
"""
from __future__ import annotations

import hashlib

import mir_eval
import numpy as np
import pytest
import soundfile as sf
import torch
from rich.console import Console
from scipy.special import softmax
from scipy.stats import mode

import benchmark.tasks.giantsteps_key as gk
from benchmark.errors import ConfigError
from benchmark.evaluation import ClipEvaluator, KeyEnsembleEvaluator
from benchmark.kinds import metric
from benchmark.kinds.clip import KEY, KEY_ENSEMBLE
from benchmark.metrics import KEY_ENSEMBLE_STRATEGIES, best_key_ensemble, key_ensemble_predictions, \
    key_ensemble_scores
from benchmark.record import record_path, run_checksum

LABELS = gk.LABELS
IDX = {label: i for i, label in enumerate(LABELS)}
BASE = -5.0  # the logit of every class a clip does not name


def _clip(**logits: float) -> np.ndarray:
    """One clip's 24 logits: ``BASE`` except the named keys (``C_major=3.0``)."""
    row = np.full(len(LABELS), BASE)
    for name, value in logits.items():
        row[IDX[name.replace("_", " ")]] = value
    return row


# Song A, C major: clip argmaxes C minor, A minor, C minor, A minor, G major. vote: a C minor / A minor tie ->
# C minor (the lower index, 12 < 21; parallel key, 0.2). max: G major's 9.0 (fifth, 0.5). gmean: C major, second
# in every clip, has the highest mean logit (1.0). mean: A minor, the surer of the two tied leaders (relative, 0.3).
SONG_A = ("C major", [_clip(C_minor=3.0, C_major=2.0), _clip(A_minor=3.2, C_major=2.0),
                      _clip(C_minor=3.0, C_major=2.0), _clip(A_minor=3.2, C_major=2.0),
                      _clip(G_major=9.0, C_major=2.0)])
# Song B, A minor: one loud C major clip. vote, gmean and mean: A minor (1.0); max: C major (relative, 0.3).
SONG_B = ("A minor", [_clip(A_minor=4.0), _clip(A_minor=4.0), _clip(C_major=8.0)])
# Song C, G major: vote: a D major / G minor tie -> D major (index 2 < 19; fifth, 0.5); max and mean: D major
# (0.5); gmean: G minor, high in the two confident clips and the leader of the two unsure ones (parallel, 0.2).
SONG_C = ("G major", [_clip(D_major=6.0, G_minor=5.5), _clip(D_major=6.0, G_minor=5.5),
                      _clip(G_minor=-4.0), _clip(G_minor=-4.0)])
SONGS = (SONG_A, SONG_B, SONG_C)

EXPECTED_KEYS = {  # per song A, B, C
    "vote": ["C minor", "A minor", "D major"],
    "max": ["G major", "C major", "D major"],
    "gmean": ["C major", "A minor", "G minor"],
    "mean": ["A minor", "A minor", "D major"],
}
EXPECTED_SCORES = {  # mean over the three songs of mir_eval's weighted score
    "vote": (0.2 + 1.0 + 0.5) / 3,   # 0.5667; ties to the highest index would give (0.3 + 1.0 + 0.2) / 3 = 0.5
    "max": (0.5 + 0.3 + 0.5) / 3,    # 0.4333
    "gmean": (1.0 + 1.0 + 0.2) / 3,  # 0.7333
    "mean": (0.3 + 1.0 + 0.5) / 3,   # 0.6
}


def _arrays(songs=SONGS) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(window logits ``[W, 24]``, the song of each window ``[W]``, each song's key index ``[T]``)."""
    logits = np.vstack([np.vstack(clips) for _, clips in songs])
    track = np.concatenate([np.full(len(clips), i) for i, (_, clips) in enumerate(songs)])
    return logits, track, np.array([IDX[key] for key, _ in songs])


def _direct(songs=SONGS) -> dict[str, list[str]]:
    """Each strategy's key per song, computed clip by clip with scipy as MARBLE does (not through the suite)."""
    out: dict[str, list[str]] = {name: [] for name in KEY_ENSEMBLE_STRATEGIES}
    for _, clips in songs:
        logits = np.vstack(clips)
        out["vote"].append(LABELS[int(mode(logits.argmax(axis=1)).mode)])
        out["max"].append(LABELS[int(logits.max(axis=0).argmax())])
        out["gmean"].append(LABELS[int(logits.mean(axis=0).argmax())])
        out["mean"].append(LABELS[int(softmax(logits, axis=1).mean(axis=0).argmax())])
    return out


# ----------------------------------------------------------------------------------------------------------------
# The four strategies


def test_each_strategy_gives_the_expected_keys_and_they_all_disagree():
    logits, track, _ = _arrays()
    preds = key_ensemble_predictions(logits, track, len(SONGS))
    assert {name: [LABELS[i] for i in p] for name, p in preds.items()} == EXPECTED_KEYS == _direct()
    assert len({tuple(p) for p in preds.values()}) == 4  # four different answers
    # gmean is the geometric mean of the probabilities, as its name says
    for (_, clips), key in zip(SONGS, EXPECTED_KEYS["gmean"]):
        assert LABELS[int(np.log(softmax(np.vstack(clips), axis=1)).mean(axis=0).argmax())] == key


def test_vote_ties_go_to_the_lowest_class_index():
    for song, tied in ((SONG_A, ("C minor", "A minor")), (SONG_C, ("D major", "G minor"))):
        logits, track, _ = _arrays([song])
        counts = np.bincount(logits.argmax(axis=1), minlength=24)
        assert counts[IDX[tied[0]]] == counts[IDX[tied[1]]] == counts.max()  # really a tie
        assert LABELS[int(key_ensemble_predictions(logits, track, 1)["vote"][0])] == tied[0]
        assert IDX[tied[0]] < IDX[tied[1]]


def test_max_reads_the_logits_not_the_probabilities():
    """E major song: clip 1 is torn between E major (10.0) and B major (10.5), clip 2 is a lone, sure A major
    (2.0). The largest logit is B major's (fifth above E, 0.5); the largest probability would be A major's (0.98
    against 0.62; a fifth below, 0.0)."""
    song = ("E major", [_clip(E_major=10.0, B_major=10.5), _clip(A_major=2.0)])
    logits, track, y = _arrays([song])
    probs = softmax(logits, axis=1)
    assert LABELS[int(probs.max(axis=0).argmax())] == "A major"
    assert _direct([song])["max"] == ["B major"]
    assert LABELS[int(key_ensemble_predictions(logits, track, 1)["max"][0])] == "B major"
    assert key_ensemble_scores(y, logits, track, LABELS)["ensemble_max"] == 0.5


def test_scores_equal_mir_eval_weighted_scores_and_the_expected_values():
    logits, track, y = _arrays()
    scores = key_ensemble_scores(y, logits, track, LABELS)
    direct = _direct()
    for name in KEY_ENSEMBLE_STRATEGIES:
        by_mir_eval = np.mean([mir_eval.key.weighted_score(ref, est)
                               for (ref, _), est in zip(SONGS, direct[name])])
        assert scores[f"ensemble_{name}"] == pytest.approx(by_mir_eval, abs=1e-12)
        assert scores[f"ensemble_{name}"] == pytest.approx(EXPECTED_SCORES[name], abs=1e-12)
    assert scores["ensemble_vote"] == pytest.approx(0.5666666666666667)
    assert scores["ensemble_max"] == pytest.approx(0.4333333333333333)
    assert scores["ensemble_gmean"] == pytest.approx(0.7333333333333333)
    assert scores["ensemble_mean"] == pytest.approx(0.6)
    # weighted_score / accuracy are the mean strategy's: the suite's default aggregation
    assert scores["weighted_score"] == scores["ensemble_mean"]
    assert scores["accuracy"] == pytest.approx(1 / 3)  # only song B's mean key is right


def test_the_default_evaluator_is_the_mean_strategy_on_probabilities():
    """The default path (ClipEvaluator on softmax outputs) scores what ``ensemble_mean`` scores: the default's
    name, mean_probabilities, says what it does."""
    logits, track, y = _arrays()
    probs = torch.softmax(torch.as_tensor(logits, dtype=torch.float32), dim=-1)[None]
    default = ClipEvaluator(KEY, LABELS, track, y)(probs)[0]
    assert default == {"weighted_score": pytest.approx(EXPECTED_SCORES["mean"]), "accuracy": pytest.approx(1 / 3)}


def test_a_song_without_a_clip_is_refused():
    logits, track, y = _arrays()
    with pytest.raises(ValueError, match="no window"):
        key_ensemble_scores(np.append(y, 0), logits, track, LABELS)


# ----------------------------------------------------------------------------------------------------------------
# Val-select


def _named(vote, max_, gmean, mean) -> dict[str, float]:
    return {"ensemble_vote": vote, "ensemble_max": max_, "ensemble_gmean": gmean, "ensemble_mean": mean}


def test_the_best_strategy_is_strictly_higher_and_ties_go_to_the_earlier():
    assert best_key_ensemble(_named(0.5, 0.7, 0.7, 0.6)) == "max"  # max and gmean tie: the earlier
    assert best_key_ensemble(_named(0.6, 0.6, 0.6, 0.6)) == "vote"
    assert best_key_ensemble(_named(0.5, 0.5, 0.5, 0.5 + 1e-9)) == "mean"  # strictly higher wins
    assert best_key_ensemble(_named(0.2, 0.4, 0.1, 0.4)) == "max"
    assert best_key_ensemble(_named(0.1, 0.2, 0.3, 0.3)) == "gmean"


def test_valid_chooses_per_head_and_test_reports_that_strategy():
    """Two heads. On valid, head 0 sees the example (gmean best) and head 1 the first clip of each song repeated
    (every strategy gives the same keys: a four-way tie, so vote, the first). On test they swap data: each head's
    test score is its own validation strategy's, not the test-best one."""
    logits, track, y = _arrays()
    repeated = np.vstack([np.vstack([clips[0]] * len(clips)) for _, clips in SONGS])  # C minor, A minor, D major
    evaluators = KEY_ENSEMBLE.build_evaluators(LABELS, {"valid": track, "test": track}, {"valid": y, "test": y})
    valid, test = evaluators["valid"], evaluators["test"]
    assert (valid.primary, test.primary) == ("ensemble_best", "ensemble_val_select")
    assert metric(valid.primary).higher_is_better and metric(test.primary).higher_is_better

    got = valid(torch.as_tensor(np.stack([logits, repeated])))
    assert valid.chosen == ["gmean", "vote"]
    assert got[0]["ensemble_best"] == got[0]["ensemble_val_select"] == pytest.approx(EXPECTED_SCORES["gmean"])
    assert got[0]["ensemble_val_select_index"] == 2.0
    assert [got[1][f"ensemble_{n}"] for n in KEY_ENSEMBLE_STRATEGIES] == [pytest.approx((0.2 + 1.0 + 0.5) / 3)] * 4
    assert got[1]["ensemble_val_select"] == got[1]["ensemble_vote"] and got[1]["ensemble_val_select_index"] == 0.0

    scored = test(torch.as_tensor(np.stack([repeated, logits])))
    assert scored[0]["ensemble_val_select"] == scored[0]["ensemble_gmean"] == pytest.approx(0.5666666666666667)
    assert scored[1]["ensemble_val_select"] == scored[1]["ensemble_vote"] == pytest.approx(EXPECTED_SCORES["vote"])
    assert scored[1]["ensemble_best"] == pytest.approx(EXPECTED_SCORES["gmean"])  # test-best, not reported as such
    assert [scored[h]["ensemble_val_select_index"] for h in (0, 1)] == [2.0, 0.0]
    assert test.chosen is None  # only validation chooses


def test_val_select_picks_the_validation_strategy_not_the_test_best():
    """Validation prefers gmean (the example); on test, where the four differ, gmean is not best: the reported
    test score is gmean's, below the test-best ``ensemble_best``."""
    logits, track, y = _arrays()
    evaluators = KEY_ENSEMBLE.build_evaluators(LABELS, {"valid": track, "test": track}, {"valid": y, "test": y})
    evaluators["valid"](torch.as_tensor(logits[None]))
    # test keys: song A is A minor (now mean's key scores 1.0), B and C as before: mean is the test-best strategy
    test_y = np.array([IDX["A minor"], IDX["A minor"], IDX["G major"]])
    evaluators = {**evaluators, "test": KeyEnsembleEvaluator(LABELS, track, test_y, select_from=evaluators["valid"])}
    got = evaluators["test"](torch.as_tensor(logits[None]))[0]
    # against A minor song A's keys score: vote C minor 0.0, max G major 0.0, gmean C major 0.3, mean A minor 1.0
    assert got["ensemble_mean"] == pytest.approx((1.0 + 1.0 + 0.5) / 3)
    assert got["ensemble_gmean"] == pytest.approx((0.3 + 1.0 + 0.2) / 3)
    assert got["ensemble_best"] == got["ensemble_mean"]
    assert got["ensemble_val_select"] == pytest.approx(0.5) and got["ensemble_val_select_index"] == 2.0


def test_test_before_valid_is_refused():
    logits, track, y = _arrays()
    evaluators = KEY_ENSEMBLE.build_evaluators(LABELS, {"valid": track, "test": track}, {"valid": y, "test": y})
    with pytest.raises(RuntimeError, match="score valid before test"):
        evaluators["test"](torch.as_tensor(logits[None]))


# ----------------------------------------------------------------------------------------------------------------
# Through the sweep and the runner


def test_train_sweep_scores_test_with_each_heads_validation_strategy():
    from benchmark.cache import SplitFeatures
    from benchmark.probe import make_heads
    from benchmark.sweep import train_sweep

    rng = np.random.default_rng(3)

    def split(songs: int, clips: int = 3):
        keys = rng.integers(0, 24, songs)
        track = np.repeat(np.arange(songs), clips)
        x = rng.standard_normal((len(track), 2, 32)).astype(np.float16)
        x[np.arange(len(track)), 0, keys[track]] += 1.5  # layer 0 knows the key a little, layer 1 not at all
        return SplitFeatures(features=x, window_track=track, track_ids=[str(i) for i in range(songs)]), keys

    (train, y_train), (valid, y_valid), (test, y_test) = split(60), split(20), split(20)
    splits = {"train": train, "valid": valid, "test": test}
    evaluators = KEY_ENSEMBLE.build_evaluators(LABELS, {s: splits[s].window_track for s in ("valid", "test")},
                                               {"valid": y_valid, "test": y_test})
    results, model = train_sweep(
        splits, y_train[train.window_track], evaluators, KEY_ENSEMBLE.loss, 24, make_heads([0, 1], False, [1e-2]),
        {"hidden": 0, "dropout": 0.0, "standardize": True, "weight_decay": 0.0},
        {"max_epochs": 4, "patience": 10, "batch_size": 32, "accelerator": "cpu", "progress_bar": False}, seed=0)
    for h, r in enumerate(results):
        chosen = best_key_ensemble(r.valid)
        assert r.valid["ensemble_val_select"] == r.valid["ensemble_best"] == r.valid[f"ensemble_{chosen}"]
        assert r.test["ensemble_val_select"] == r.test[f"ensemble_{chosen}"]
        assert r.test["ensemble_val_select_index"] == KEY_ENSEMBLE_STRATEGIES.index(chosen)
        # early stopping read ensemble_best: the restored head's validation score is its best epoch's
        assert r.valid["ensemble_best"] == pytest.approx(max(epoch[h] for epoch in model.history), abs=1e-6)


@pytest.mark.slow  # ~5 s end to end; the ensemble strategies have fast tests in this file
def test_end_to_end_marble_run_records_val_select(compose_config, tmp_path, monkeypatch):
    from benchmark.runner import run
    from tests.test_task_giantsteps_key import _copy_annotations, _tonal_preview

    monkeypatch.setenv("BENCHMARK_HASH_CACHE", str(tmp_path / "digests.json"))
    songs = gk.read_manifest()
    chosen = ([s for s in songs if s.split == "train"][:4] + [s for s in songs if s.split == "valid"][:2]
              + [s for s in songs if s.split == "test"][:2])
    root = tmp_path / "data" / "giantsteps_key"
    _copy_annotations(root, chosen)
    rng = np.random.default_rng(0)
    md5s = dict(gk.md5_table())
    for s in chosen:  # 65 s previews: two 30 s windows per song
        path = gk.audio_path(root, s.repo, s.id)
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, _tonal_preview(s.key, 65.0, 22050, rng), 22050, format="MP3")
        md5s[(s.repo, s.id)] = hashlib.md5(path.read_bytes()).hexdigest()
    monkeypatch.setattr(gk, "md5_table", lambda: md5s)

    config = compose_config("task=giantsteps_key", "task.ensemble=marble", "model=mfcc", "trainer.max_epochs=3",
                            "max_missing_fraction=1.0")
    record = run(config, console=Console(quiet=True))
    assert record["task_type"] == "key" and record["primary_metric"] == "ensemble_val_select"
    selected = record["selected"]
    assert record["test_score"] == selected["test"]["ensemble_val_select"]
    for head in record["heads"]:
        chosen_strategy = best_key_ensemble(head["valid"])
        assert head["test"]["ensemble_val_select"] == head["test"][f"ensemble_{chosen_strategy}"]
        assert head["valid"]["ensemble_val_select"] == head["valid"]["ensemble_best"]
        assert set(head["test"]) == {*(f"ensemble_{n}" for n in KEY_ENSEMBLE_STRATEGIES), "ensemble_best",
                                     "ensemble_val_select", "ensemble_val_select_index", "weighted_score",
                                     "accuracy"}
    assert record["protocol_checksum"] != run_checksum(
        {k: v for k, v in compose_config("task=giantsteps_key", "model=mfcc", "trainer.max_epochs=3",
                                         "max_missing_fraction=1.0").items() if k != "seed"})


# ----------------------------------------------------------------------------------------------------------------
# The setting


def test_an_unknown_ensemble_is_a_config_error_naming_the_key_and_values(compose_config):
    from benchmark.config_store import validate_run_config
    from benchmark.tasks.registry import build_task

    with pytest.raises(ConfigError, match=r"task\.ensemble='median': must be one of mean_probabilities, marble"):
        build_task({"name": "giantsteps_key", "kind": "giantsteps_key", "ensemble": "median"})
    config = compose_config("task=giantsteps_key", "task.ensemble=median", "model=mfcc")
    with pytest.raises(ConfigError, match=r"task\.ensemble='median'.*mean_probabilities.*marble"):
        validate_run_config(config)


def test_the_setting_picks_the_kind_and_the_default_is_the_key_kind(compose_config):
    from benchmark.config_store import validate_run_config
    from benchmark.tasks.registry import build_task

    default = compose_config("task=giantsteps_key", "model=mfcc")
    assert default["task"]["ensemble"] == "mean_probabilities"
    assert validate_run_config(default).task.ensemble == "mean_probabilities"
    assert build_task(default["task"]).kind is KEY
    assert build_task({k: v for k, v in default["task"].items() if k != "ensemble"}).kind is KEY
    marble = build_task({**default["task"], "ensemble": "marble"})
    assert marble.kind is KEY_ENSEMBLE and marble.task_type == "key"
    assert KEY.loss.name == "cross_entropy" and KEY_ENSEMBLE.loss.name == "cross_entropy_logits"
    logits = torch.tensor([[2.0, -1.0, 0.5]])
    assert torch.equal(KEY_ENSEMBLE.activate(logits), logits)  # the evaluator sees logits
    assert torch.allclose(KEY.activate(logits), logits.softmax(-1))


def test_the_default_leaves_the_protocol_checksum_and_record_name_unchanged(compose_config):
    with_key = compose_config("task=giantsteps_key", "model=mfcc")
    assert with_key["task"]["ensemble"] == "mean_probabilities"
    without = {**with_key, "task": {k: v for k, v in with_key["task"].items() if k != "ensemble"}}
    assert run_checksum(with_key) == run_checksum(without)
    assert record_path(with_key["results_dir"], with_key) == record_path(without["results_dir"], without)
    marble = {**with_key, "task": {**with_key["task"], "ensemble": "marble"}}
    assert run_checksum(marble) != run_checksum(without)
