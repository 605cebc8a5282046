"""Task kinds: the registry, and selection that follows the primary metric's direction everywhere.

The central tests register a kind whose primary metric is an ERROR (lower is better) and check that early
stopping, the best checkpoint, the learning rate per layer, the reported layer and the progress line all pick the
minimum. Each would fail with the old code, which maximised whatever the metric (best_score started at -inf and
improved on ``>``; the sweep took ``max``/``np.argmax``): it would keep the worst epoch and select the worst layer.
"""
from __future__ import annotations

import numpy as np
import pytest
from rich.console import Console

from benchmark.cache import SplitFeatures
from benchmark.kinds import Metric, get_kind, kind_names, metric, register_kind, unregister_kind
from benchmark.kinds.beat import BEAT
from benchmark.kinds.clip import KEY, MULTICLASS, MULTILABEL, REGRESSION, ClassKind
from benchmark.kinds.losses import CROSS_ENTROPY
from benchmark.probe import make_heads
from benchmark.sweep import EpochReport, HeadResult, summarise, train_sweep


class ErrorRateKind(ClassKind):
    """Multiclass whose primary metric is the error rate, 1 - accuracy: the mirror image of ``multiclass``."""

    name = "multiclass_error_test"
    primary = Metric("error_rate_test", higher_is_better=False)
    metrics = (primary, Metric("accuracy"))

    def scores(self, y_true, y_score, labels):
        accuracy = MULTICLASS.scores(y_true, y_score, labels)["accuracy"]
        return {"error_rate_test": 1.0 - accuracy, "accuracy": accuracy}


@pytest.fixture
def error_kind():
    kind = register_kind(ErrorRateKind())
    yield kind
    unregister_kind(kind.name)


# ------------------------------------------------------------------------------------------------- registry
def test_builtin_kinds_and_what_they_declare() -> None:
    assert set(kind_names()) >= {"multiclass", "multilabel", "regression", "key", "beat"}
    table = {k.name: (k.level, k.loss.name, k.primary.name, k.primary.higher_is_better)
             for k in (MULTICLASS, MULTILABEL, REGRESSION, KEY, BEAT)}
    assert table == {
        "multiclass": ("clip", "cross_entropy", "accuracy", True),
        "multilabel": ("clip", "bce", "roc_auc", True),
        "regression": ("clip", "mse", "r2", True),
        "key": ("clip", "cross_entropy", "weighted_score", True),
        "beat": ("frame", "bce", "f_measure", True),
    }
    for name in ("multiclass", "multilabel", "regression", "key", "beat"):
        assert get_kind(name).name == name
    with pytest.raises(ValueError, match="unknown task type 'ranking'"):
        get_kind("ranking")


def test_beat_kind_declares_what_the_frame_level_evaluator_computes() -> None:
    from benchmark.frame_level import BEAT_METRICS, BeatEvaluator

    assert tuple(m.name for m in BEAT.metrics) == BEAT_METRICS
    assert BeatEvaluator.primary == BEAT.primary.name


def test_every_task_names_a_registered_kind_of_its_level() -> None:
    """Adding a task of an existing kind needs nothing outside its module: the kind it names exists, and the
    task's level (which routes it to the clip- or frame-level data path) is the kind's unless it says otherwise,
    in which case it must agree."""
    import inspect

    from benchmark.tasks import custom, registry

    registry.task_kinds()
    assert registry._TASKS
    for key, cls in registry._TASKS.items():
        if cls is custom.CustomTask:  # its type comes from the manifest: one of custom.TYPES, all clip-level
            assert all(get_kind(t).level == "clip" for t in custom.TYPES)
            continue
        kind = get_kind(cls.task_type)
        declared = inspect.getattr_static(cls, "level")
        assert not isinstance(declared, str) or declared == kind.level, key


def test_metric_directions_come_from_the_kinds(error_kind) -> None:
    assert metric("accuracy").higher_is_better and metric("r2_valence").higher_is_better
    assert not metric("error_rate_test").higher_is_better
    assert not metric("val_loss").higher_is_better
    with pytest.raises(KeyError):
        metric("mystery")

    from benchmark.metrics import higher_is_better  # what the leaderboard reads

    assert higher_is_better("error_rate_test") is False


def test_a_metric_name_keeps_one_direction() -> None:
    class Confused(ErrorRateKind):
        name = "confused_test"
        primary = Metric("accuracy", higher_is_better=False)
        metrics = (primary,)

    with pytest.raises(ValueError, match="metric 'accuracy' is lower-is-better, but kind multiclass"):
        register_kind(Confused())
    assert "confused_test" not in kind_names()
    with pytest.raises(ValueError, match="already registered"):
        register_kind(type(MULTICLASS)())


def test_metric_direction_helpers() -> None:
    up, down = Metric("u"), Metric("d", higher_is_better=False)
    assert up.better(2, 1) and not up.better(1, 1) and not up.better(float("nan"), 1)
    assert down.better(1, 2) and not down.better(1, 1) and not down.better(float("nan"), 1)
    assert up.worst == -np.inf and down.worst == np.inf
    values = [0.3, 0.1, 0.9, 0.1, 0.9]
    assert up.best_index(values) == 2 and down.best_index(values) == 1  # first best on ties
    assert up.best(range(5), key=values.__getitem__) == 2 and down.best(range(5), key=values.__getitem__) == 1


# ------------------------------------------------------------------------------------ lower-is-better selection
def _split(rng, n, informative: list[int], labels, num_states=4, dim=8, strength=3.0) -> SplitFeatures:
    x = rng.standard_normal((n, num_states, dim)).astype(np.float16)
    for layer in informative:
        x[np.arange(n), layer, labels + layer] += strength
    return SplitFeatures(features=x, window_track=np.arange(n), track_ids=[str(i) for i in range(n)])


def _sweep(kind_name: str):
    """Layer 1 carries the labels strongly, layer 2 weakly, layers 0 and 3 not at all; two learning rates."""
    rng = np.random.default_rng(0)
    labels = {s: rng.integers(0, 4, n) for s, n in (("train", 200), ("valid", 80), ("test", 80))}
    splits = {s: _split(rng, len(y), [1], y) for s, y in labels.items()}
    for s, y in labels.items():  # a weaker copy of the signal in layer 2
        splits[s].features[np.arange(len(y)), 2, y + 2] += np.float16(1.0)
    kind = get_kind(kind_name)
    evaluators = {s: kind.build_evaluator(list("abcd"), splits[s].window_track, labels[s]) for s in ("valid", "test")}
    return train_sweep(splits, labels["train"], evaluators, kind.loss, 4, make_heads([0, 1, 2, 3], True, [1e-3, 3e-2]),
                       {"hidden": 16, "dropout": 0.2},
                       {"max_epochs": 14, "patience": 4, "lr_decay_patience": 2, "batch_size": 32,
                        "accelerator": "cpu", "progress_bar": False}, seed=0)


def test_lower_is_better_primary_selects_the_minimum_checkpoint_and_layer(error_kind) -> None:
    results, model = _sweep(error_kind.name)
    assert model.primary == "error_rate_test"
    history = np.array(model.history)  # [epochs, heads] validation error per epoch
    for h, r in enumerate(results):
        # the kept checkpoint is the first epoch with the lowest validation error, and it is what is scored
        assert r.best_epoch == int(np.argmin(history[:, h])), r.head.name
        assert model.best_score[h] == history[:, h].min()
        assert r.valid["error_rate_test"] == pytest.approx(history[:, h].min(), abs=1e-9)
    assert history[:, 1:3].min() < history[0, 1:3].max()  # the errors did change: the test is not vacuous

    rows, selected = summarise(results, "error_rate_test")
    for row in rows:  # per layer, the learning rate with the lowest validation error
        mine = [r for r in results if r.head.layer == row.layer]
        assert row.valid["error_rate_test"] == min(r.valid["error_rate_test"] for r in mine)
    assert selected.valid["error_rate_test"] == min(row.valid["error_rate_test"] for row in rows)
    assert selected.layer in (1, None)  # the informative layer (or the weighted sum leaning on it) ...
    assert selected.valid["error_rate_test"] < 0.5  # ... not a noise layer at chance (0.75 error)


@pytest.mark.slow  # ~6 s; a run of a lower-is-better kind is tested by default below
def test_lower_is_better_selection_mirrors_the_higher_is_better_one(error_kind) -> None:
    """error = 1 - accuracy: minimising the one must take every decision that maximising the other takes
    (epochs kept, heads stopped, learning rates halved, rates per layer, the layer), at the same numbers."""
    err_results, err_model = _sweep(error_kind.name)
    acc_results, acc_model = _sweep("multiclass")
    np.testing.assert_allclose(np.array(err_model.history), 1.0 - np.array(acc_model.history), atol=1e-12)
    assert [r.best_epoch for r in err_results] == [r.best_epoch for r in acc_results]
    assert [r.valid["accuracy"] for r in err_results] == [r.valid["accuracy"] for r in acc_results]
    assert [r.test["accuracy"] for r in err_results] == [r.test["accuracy"] for r in acc_results]
    err_rows, err_sel = summarise(err_results, "error_rate_test")
    acc_rows, acc_sel = summarise(acc_results, "accuracy")
    assert [(r.layer, r.lr) for r in err_rows] == [(r.layer, r.lr) for r in acc_rows]
    assert (err_sel.layer, err_sel.lr) == (acc_sel.layer, acc_sel.lr)


def test_summarise_minimises_a_lower_is_better_metric_given_by_name(error_kind) -> None:
    from benchmark.probe import HeadSpec

    def result(layer, lr, err):
        return HeadResult(HeadSpec(layer, lr), 0, {"error_rate_test": err}, {"error_rate_test": err})

    results = [result(0, 1e-3, 0.4), result(0, 1e-2, 0.2), result(1, 1e-3, 0.1), result(1, 1e-2, 0.3),
               result(None, 1e-3, 0.5)]
    rows, selected = summarise(results, "error_rate_test")
    assert [(r.layer, r.lr) for r in rows] == [(0, 1e-2), (1, 1e-3), (None, 1e-3)]
    assert (selected.layer, selected.lr) == (1, 1e-3)
    _, alone = summarise([result(0, 1e-3, 0.4)], Metric("error_rate_test", higher_is_better=False))
    assert alone.layer == 0  # a Metric object is taken as it is
    with pytest.raises(KeyError):
        summarise(results, "unregistered_metric")


def test_progress_line_names_the_lowest_error(error_kind) -> None:
    from benchmark.probe import HeadSpec

    class Module:
        primary = "error_rate_test"
        selection = error_kind.primary
        heads = [HeadSpec(0, 1e-3), HeadSpec(1, 1e-3), HeadSpec(2, 1e-3)]
        best_score = np.array([0.6, 0.2, 0.7])
        stopped = np.zeros(3, dtype=bool)
        history = [[0.6, 0.2, 0.7]]

    class Trainer:
        sanity_checking = False

    console = Console(record=True, width=200)
    EpochReport(console).on_train_epoch_end(Trainer(), Module())
    assert "best valid error_rate_test 0.2000 (layer_1@lr=0.001)" in console.export_text()


def test_an_evaluator_with_an_undeclared_primary_metric_is_refused() -> None:
    """No direction is guessed: a probe scored on a metric no kind declares stops at construction."""

    class Undeclared:
        primary = "mystery_score"

        def __call__(self, row_scores):
            return [{"mystery_score": 0.0}] * row_scores.shape[0]

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 20)
    splits = {s: _split(rng, 20, [1], y) for s in ("train", "valid", "test")}
    with pytest.raises(KeyError, match="mystery_score"):
        train_sweep(splits, y, {"valid": Undeclared(), "test": Undeclared()}, CROSS_ENTROPY, 2,
                    make_heads([0], False, [1e-3]), {"hidden": 4}, {"max_epochs": 1, "accelerator": "cpu",
                                                                   "progress_bar": False}, seed=0)


# ------------------------------------------------------------------------------------- through the runner
def test_a_run_of_a_lower_is_better_kind_selects_the_minimum(compose_config, monkeypatch, error_kind) -> None:
    """A task of a new kind needs only its module (here: a class naming the kind): the runner builds its
    targets, evaluators, loss and chance from the kind, and the record selects the lowest validation error."""
    from benchmark.runner import run
    from benchmark.tasks import registry
    from benchmark.tasks.synth_chords import SynthChords
    from tests.planted import PlantedEncoder

    class ChordErrors(SynthChords):
        task_type = error_kind.name

    monkeypatch.setitem(registry._TASKS, "synth_chords_error_test", ChordErrors)
    config = compose_config("task=synth_chords", "task.n_train=192", "task.n_valid=96", "task.n_test=96",
                            "task.clip_seconds=1.0", "trainer.max_epochs=12", "trainer.patience=4", "seed=0",
                            "probe.lr=[1e-3,1e-2]", "trainer.progress_bar=false")
    config["task"]["kind"] = "synth_chords_error_test"
    record = run(config, console=Console(quiet=True), encoder=PlantedEncoder(planted=3))

    assert record["task_type"] == error_kind.name and record["primary_metric"] == "error_rate_test"
    rows = {row["name"]: row for row in record["layers"]}
    valid = {name: row["valid"]["error_rate_test"] for name, row in rows.items()}
    assert record["selected"]["name"] == min(valid, key=valid.get)
    assert record["selected"]["name"] in ("3", "weighted_sum")  # the planted layer, not a noise layer
    assert valid["3"] < min(valid[str(i)] for i in (0, 1, 2, 4))
    assert record["test_score"] == record["selected"]["test"]["error_rate_test"]
    assert record["chance_level"] > 0.9  # 48 classes: the best constant class errs on almost every clip
    history = np.array(record["valid_history"])
    for h, head in enumerate(record["heads"]):
        assert head["best_epoch"] == int(np.argmin(history[:, h])), head["name"]
    for name, row in rows.items():  # per layer, the learning rate with the lower validation error
        mine = [hd["valid"]["error_rate_test"] for hd in record["heads"]
                if (hd["layer"] is None and name == "weighted_sum") or str(hd["layer"]) == name]
        assert row["valid"]["error_rate_test"] == min(mine)
