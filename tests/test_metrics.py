"""Metrics must equal the reference libraries (scikit-learn, mir_eval) called directly on the same predictions."""
from __future__ import annotations

import logging
import math

import mir_eval
import numpy as np
import pytest
from sklearn.metrics import accuracy_score, average_precision_score, r2_score, roc_auc_score

from benchmark.metrics import PRIMARY_METRIC, compute_metrics, higher_is_better, key_weight_matrix

PITCHES = ["C", "Db", "D", "Eb", "E", "F", "Gb", "G", "Ab", "A", "Bb", "B"]
KEYS = [f"{p} major" for p in PITCHES] + [f"{p} minor" for p in PITCHES]


def _key_onehot(pred: list[int], n: int = 24) -> np.ndarray:
    s = np.zeros((len(pred), n))
    s[np.arange(len(pred)), pred] = 1.0
    return s


# ---------------------------------------------------------------------------------------------------- primary / misc


def test_primary_metric_is_produced_for_every_task_type() -> None:
    rng = np.random.default_rng(0)
    cases = {
        "multiclass": (rng.integers(0, 3, 20), rng.normal(size=(20, 3)), ["a", "b", "c"]),
        "multiclass_balanced": (rng.integers(0, 3, 20), rng.normal(size=(20, 3)), ["a", "b", "c"]),
        "multilabel": (np.tile([[0, 1], [1, 0]], (10, 1)), rng.normal(size=(20, 2)), ["x", "y"]),
        "regression": (rng.normal(size=(20, 2)), rng.normal(size=(20, 2)), ["v", "a"]),
        "key": (rng.integers(0, 24, 20), rng.normal(size=(20, 24)), KEYS),
    }
    assert set(cases) == set(PRIMARY_METRIC)
    for task_type, (y, s, labels) in cases.items():
        out = compute_metrics(task_type, y, s, labels)
        assert PRIMARY_METRIC[task_type] in out
        assert all(isinstance(v, float) for v in out.values())
        for name in out:
            assert higher_is_better(name)


def test_higher_is_better_rejects_unknown_metric() -> None:
    assert higher_is_better("r2_valence")
    assert not higher_is_better("val_loss")
    with pytest.raises(KeyError):
        higher_is_better("mystery")


def test_unknown_task_type() -> None:
    with pytest.raises(ValueError, match="unknown task type"):
        compute_metrics("ranking", np.zeros(3), np.zeros((3, 2)), ["a", "b"])


# ---------------------------------------------------------------------------------------------------- multiclass


def test_multiclass_matches_sklearn() -> None:
    rng = np.random.default_rng(1)
    y = rng.integers(0, 5, 200)
    s = rng.normal(size=(200, 5))
    s[np.arange(200)[:70], y[:70]] += 3.0  # make it better than chance so a wrong argmax axis would show
    out = compute_metrics("multiclass", y, s, list("abcde"))
    assert out["accuracy"] == pytest.approx(accuracy_score(y, s.argmax(1)))
    assert out["accuracy"] > 0.35


def test_multiclass_perfect_and_constant() -> None:
    y = np.array([0, 1, 2, 2, 1, 0, 2])
    assert compute_metrics("multiclass", y, np.eye(3)[y], list("abc"))["accuracy"] == 1.0
    const = np.tile([0.0, 0.0, 1.0], (7, 1))
    assert compute_metrics("multiclass", y, const, list("abc"))["accuracy"] == pytest.approx(3 / 7)


@pytest.mark.parametrize(
    "y, s, match",
    [
        (np.array([0, 1]), np.zeros((3, 2)), "rows"),
        (np.array([0, 1]), np.zeros((2, 3)), "columns"),
        (np.array([0, 2]), np.zeros((2, 2)), "outside"),
        (np.array([0, 1]), np.array([[0.0, np.nan], [1.0, 0.0]]), "NaN"),
        (np.array([0.5, 1.0]), np.zeros((2, 2)), "integer"),
        (np.zeros((0,), dtype=int), np.zeros((0, 2)), "empty"),
    ],
)
def test_multiclass_validation(y: np.ndarray, s: np.ndarray, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        compute_metrics("multiclass", y, s, ["a", "b"])


# ---------------------------------------------------------------------------------------------------- multilabel


def test_multilabel_matches_sklearn() -> None:
    rng = np.random.default_rng(2)
    y = (rng.random((300, 6)) < 0.3).astype(np.float32)
    s = rng.normal(size=(300, 6)) + 1.5 * y * rng.random(6)  # different skill per tag
    out = compute_metrics("multilabel", y, s, [f"t{i}" for i in range(6)])
    assert out["roc_auc"] == pytest.approx(roc_auc_score(y, s, average="macro"), abs=1e-12)
    assert out["average_precision"] == pytest.approx(average_precision_score(y, s, average="macro"), abs=1e-12)
    assert out["tags_scored"] == 6.0
    assert 0.5 < out["roc_auc"] < 1.0


def test_multilabel_tag_without_positives_is_left_out(caplog: pytest.LogCaptureFixture) -> None:
    rng = np.random.default_rng(3)
    y = (rng.random((100, 5)) < 0.4).astype(np.int64)
    y[:, 1] = 0  # "never_seen": no positive in this split
    y[:, 3] = 1  # "always_on": no negative
    s = rng.normal(size=(100, 5)) + y
    labels = ["rock", "never_seen", "jazz", "always_on", "pop"]
    with caplog.at_level(logging.WARNING, logger="benchmark.metrics"):
        out = compute_metrics("multilabel", y, s, labels)
        compute_metrics("multilabel", y, s, labels)  # same unscorable set again: no second warning
    keep = [0, 2, 4]
    assert out["roc_auc"] == pytest.approx(roc_auc_score(y[:, keep], s[:, keep], average="macro"), abs=1e-12)
    assert out["average_precision"] == pytest.approx(
        average_precision_score(y[:, keep], s[:, keep], average="macro"), abs=1e-12
    )
    assert out["tags_scored"] == 3.0
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "never_seen" in warnings[0].getMessage() and "always_on" in warnings[0].getMessage()
    assert "rock" not in warnings[0].getMessage()


def test_multilabel_no_scorable_tag_gives_nan() -> None:
    y = np.zeros((4, 2))
    out = compute_metrics("multilabel", y, np.zeros((4, 2)), ["nothing_a", "nothing_b"])
    assert math.isnan(out["roc_auc"]) and math.isnan(out["average_precision"]) and out["tags_scored"] == 0.0


def test_multilabel_perfect_and_constant() -> None:
    rng = np.random.default_rng(4)
    y = (rng.random((50, 4)) < 0.5).astype(int)
    y[0], y[1] = 1, 0  # every tag has both classes
    perfect = compute_metrics("multilabel", y, y * 2.0 - 1.0, list("abcd"))
    assert perfect["roc_auc"] == 1.0 and perfect["average_precision"] == 1.0
    const = compute_metrics("multilabel", y, np.full((50, 4), 0.7), list("abcd"))
    assert const["roc_auc"] == 0.5
    # AP of a constant score is the positive rate of each tag
    assert const["average_precision"] == pytest.approx(y.mean(axis=0).mean())


def test_multilabel_validation() -> None:
    with pytest.raises(ValueError, match="only 0 and 1"):
        compute_metrics("multilabel", np.array([[0, 2], [1, 0]]), np.zeros((2, 2)), ["a", "b"])
    with pytest.raises(ValueError, match="NaN"):
        compute_metrics("multilabel", np.array([[0, 1], [1, 0]]), np.array([[np.nan, 0], [0, 0]]), ["a", "b"])
    with pytest.raises(ValueError, match="shape"):
        compute_metrics("multilabel", np.array([0, 1]), np.zeros((2, 2)), ["a", "b"])


# ---------------------------------------------------------------------------------------------------- regression


def test_regression_two_targets_matches_sklearn() -> None:
    rng = np.random.default_rng(5)
    y = rng.normal(size=(80, 2)) * [1.0, 10.0] + [0.0, 5.0]
    pred = y + rng.normal(size=(80, 2)) * [0.3, 8.0]  # good on valence, poor on arousal
    out = compute_metrics("regression", y, pred, ["valence", "arousal"])
    assert out["r2_valence"] == pytest.approx(r2_score(y[:, 0], pred[:, 0]), abs=1e-12)
    assert out["r2_arousal"] == pytest.approx(r2_score(y[:, 1], pred[:, 1]), abs=1e-12)
    assert out["r2"] == pytest.approx(r2_score(y, pred, multioutput="uniform_average"), abs=1e-12)
    assert out["r2"] == pytest.approx((out["r2_valence"] + out["r2_arousal"]) / 2)
    assert out["r2_valence"] > 0.8 > out["r2_arousal"]


def test_regression_perfect_and_constant() -> None:
    rng = np.random.default_rng(6)
    y = rng.normal(size=(30, 2))
    assert compute_metrics("regression", y, y.copy(), ["a", "b"])["r2"] == 1.0
    mean_pred = np.tile(y.mean(axis=0), (30, 1))
    assert compute_metrics("regression", y, mean_pred, ["a", "b"])["r2"] == pytest.approx(0.0, abs=1e-12)


def test_regression_single_target_1d() -> None:
    y = np.array([1.0, 2.0, 3.0, 4.0])
    p = np.array([1.1, 1.9, 3.2, 3.7])
    out = compute_metrics("regression", y, p, ["tempo"])
    assert out["r2"] == pytest.approx(r2_score(y, p)) and out["r2_tempo"] == out["r2"]


def test_regression_validation() -> None:
    with pytest.raises(ValueError, match="shape|columns"):
        compute_metrics("regression", np.zeros((5, 2)), np.zeros((5, 3)), ["a", "b"])
    with pytest.raises(ValueError, match="NaN"):
        compute_metrics("regression", np.zeros((2, 1)), np.array([[np.inf], [0.0]]), ["a"])


# ---------------------------------------------------------------------------------------------------- key


def test_key_matches_mir_eval_on_random_predictions() -> None:
    rng = np.random.default_rng(7)
    y = rng.integers(0, 24, 400)
    s = rng.normal(size=(400, 24))
    s[np.arange(120), y[:120]] += 5.0
    out = compute_metrics("key", y, s, KEYS)
    pred = s.argmax(1)
    expected = np.mean([mir_eval.key.weighted_score(KEYS[t], KEYS[p]) for t, p in zip(y, pred)])
    assert out["weighted_score"] == pytest.approx(expected, abs=1e-12)
    assert out["accuracy"] == pytest.approx(np.mean(y == pred))
    assert out["weighted_score"] > out["accuracy"]  # random errors hit related keys sometimes


@pytest.mark.parametrize(
    "ref, est, score",
    [
        ("C major", "C major", 1.0),
        ("C major", "G major", 0.5),  # fifth above
        ("A minor", "E minor", 0.5),
        ("C major", "F major", 0.0),  # fifth below: mir_eval's rule is one-directional
        ("C major", "A minor", 0.3),  # relative minor
        ("A minor", "C major", 0.3),  # relative major
        ("C major", "C minor", 0.2),  # parallel
        ("Db minor", "Db major", 0.2),
        ("C major", "D major", 0.0),
        ("C major", "E minor", 0.0),
    ],
)
def test_key_relations_exact_values(ref: str, est: str, score: float) -> None:
    y = np.array([KEYS.index(ref)])
    out = compute_metrics("key", y, _key_onehot([KEYS.index(est)]), KEYS)
    assert out["weighted_score"] == score
    assert out["accuracy"] == (1.0 if score == 1.0 else 0.0)


def test_key_enharmonic_spellings_are_the_same_key() -> None:
    # label set spelled with sharps for the reference and flats for the prediction
    labels = ["C# major", "Db major", "F# minor", "Gb minor", "A major"]
    y = np.array([0, 2, 4])
    out = compute_metrics("key", y, _key_onehot([1, 3, 4], n=5), labels)
    assert out["weighted_score"] == 1.0 and out["accuracy"] == 1.0
    # Db major -> Ab major (its fifth) when the reference is spelled C#
    labels2 = ["C# major", "Ab major"]
    out2 = compute_metrics("key", np.array([0]), _key_onehot([1], n=2), labels2)
    assert out2["weighted_score"] == 0.5


def test_key_weight_matrix_rows() -> None:
    w = key_weight_matrix(tuple(KEYS))
    for row in w:
        assert sorted(row.tolist()) == [0.0] * 20 + [0.2, 0.3, 0.5, 1.0]


def test_key_perfect_and_constant() -> None:
    y = np.arange(24)
    assert compute_metrics("key", y, np.eye(24), KEYS)["weighted_score"] == 1.0
    const = compute_metrics("key", y, _key_onehot([0] * 24), KEYS)  # always "C major"
    # C major scores 1 for C major, 0.5 for F major (C is its fifth), 0.3 for A minor, 0.2 for C minor
    assert const["weighted_score"] == pytest.approx((1.0 + 0.5 + 0.3 + 0.2) / 24)
    assert const["accuracy"] == pytest.approx(1 / 24)


def test_key_rejects_bad_labels_and_shapes() -> None:
    with pytest.raises(ValueError, match="mir_eval key"):
        compute_metrics("key", np.array([0]), np.zeros((1, 2)), ["C major", "H dorian"])
    with pytest.raises(ValueError, match="columns"):
        compute_metrics("key", np.array([0]), np.zeros((1, 23)), KEYS)


def test_balanced_multiclass_matches_sklearn_and_ignores_class_sizes() -> None:
    from sklearn.metrics import accuracy_score, balanced_accuracy_score

    from benchmark.kinds.base import get_kind
    from benchmark.metrics import balanced_multiclass_scores

    rng = np.random.default_rng(0)
    y = rng.choice(5, size=200, p=[0.5, 0.2, 0.15, 0.1, 0.05])
    scores = rng.random((200, 5))
    got = balanced_multiclass_scores(y, scores, list("abcde"))
    assert got["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(y, scores.argmax(1)))
    assert got["accuracy"] == pytest.approx(accuracy_score(y, scores.argmax(1)))
    kind = get_kind("multiclass_balanced")
    assert kind.primary.name == "balanced_accuracy"
    # the majority class alone has accuracy 0.5 here but balanced accuracy 1/5: chance is 1/classes
    assert kind.chance(y, y, list("abcde")) == pytest.approx(0.2)
