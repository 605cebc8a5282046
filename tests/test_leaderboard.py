"""Leaderboard and plots from REAL run records: two cheap encoders, two synthetic tasks, three seeds.

The records under tests/fixtures/records/ were written by the runner (tiny synthetic tasks, a few epochs; see
tests/fixtures/records/README.md for the code that made them), so the tests exercise the record format as it is
written, not a hand-made imitation, without training 13 runs on every test session; the expected numbers are
recomputed here from the JSON files with the standard library, independently of the pandas code under test.
One end-to-end test (the last one) still runs the real pipeline and builds a leaderboard from its output.
"""
from __future__ import annotations

import csv
import io
import json
import math
import re
import shutil
import statistics
from collections import Counter
from pathlib import Path

import pytest
from rich.console import Console

from benchmark.leaderboard import (
    Column, build_leaderboard, cell_text, load_records, notes, render_csv, render_latex, render_markdown,
)
from tests.conftest import REPO_ROOT

RECORDS = REPO_ROOT / "tests" / "fixtures" / "records"
# The settings the committed records were made with (README.md there); the end-to-end test uses them too.
SIZE = ["task.n_train=24", "task.n_valid=12", "task.n_test=12", "task.clip_seconds=0.75", "task.sample_rate=16000",
        "trainer.max_epochs=3", "trainer.patience=2"]
MODELS = ("mfcc", "mert-v1-95m")
TASKS = ("synth_chords", "synth_tags")
SEEDS = (0, 1, 2)
CHORDS_ACC = Column("synth_chords", "accuracy")
TAGS_AUC, TAGS_AP = Column("synth_tags", "roc_auc"), Column("synth_tags", "average_precision")


@pytest.fixture(scope="module")
def results() -> Path:
    """12 committed records (2 tasks x 2 encoders x 3 seeds) plus one synth_chords/mfcc record with the linear probe.

    Read-only: a test that changes records copies the folder to its tmp_path first.
    """
    records = [json.loads(p.read_text()) for p in sorted((RECORDS / "runs").rglob("*.json"))]
    runs = Counter((r["task"], r["model"], r["config"]["probe"]["name"], r["seed"]) for r in records)
    expected = Counter([(t, m, "mlp", s) for t in TASKS for m in MODELS for s in SEEDS]
                       + [("synth_chords", "mfcc", "linear", 0)])
    assert runs == expected, "tests/fixtures/records is not the set its README.md describes"
    return RECORDS


def _raw(results: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((results / "runs").rglob("*.json"))]


def _expected(results: Path, model: str, task: str, metric: str, probe: str = "mlp") -> list[float]:
    return [100 * r["selected"]["test"][metric] for r in _raw(results)
            if r["model"] == model and r["task"] == task and r["config"]["probe"]["name"] == probe]


def _row(board, model: str, probe_protocol: str | None = None):
    rows = [r for r in board.rows if r.key.model == model and not r.published]
    if probe_protocol is not None:
        rows = [r for r in rows if r.key.protocol == probe_protocol]
    return rows


def test_cells_are_mean_and_sample_std_over_seeds_of_the_records(results):
    board = build_leaderboard(load_records(results))
    assert [c for c in board.columns] == [CHORDS_ACC, TAGS_AUC, TAGS_AP]  # tags_scored is bookkeeping
    main = board.rows[0].key.protocol
    for model in MODELS:
        (row,) = _row(board, model, main)
        for column in board.columns:
            values = _expected(results, model, column.task, column.metric)
            assert len(values) == 3
            cell = row.cells[column]
            assert cell.n == 3
            assert cell.mean == pytest.approx(statistics.mean(values), abs=1e-9)
            assert cell.std == pytest.approx(statistics.stdev(values), abs=1e-9)  # sample std, n-1
            text = cell_text(cell, 1)
            assert text == f"{statistics.mean(values):.1f} ± {statistics.stdev(values):.1f} (3)"
        for task in TASKS:
            chosen = Counter("ws" if r["selected"]["layer"] is None else str(r["selected"]["layer"])
                             for r in _raw(results) if r["model"] == model and r["task"] == task
                             and r["config"]["probe"]["name"] == "mlp")
            if len(chosen) == 1:
                assert row.chosen_layers[task] == next(iter(chosen))
            else:
                for layer, n in chosen.items():
                    assert f"{layer}×{n}" in row.chosen_layers[task]
    population = build_leaderboard(load_records(results), ddof=0)
    cell = _row(population, "mfcc", main)[0].cells[CHORDS_ACC]
    assert cell.std == pytest.approx(statistics.pstdev(_expected(results, "mfcc", "synth_chords", "accuracy")))


def test_average_is_over_tasks_of_the_mean_over_each_tasks_metrics(results):
    board = build_leaderboard(load_records(results))
    main = board.rows[0].key.protocol
    for model in MODELS:
        (row,) = _row(board, model, main)
        chords = statistics.mean(_expected(results, model, "synth_chords", "accuracy"))
        auc = statistics.mean(_expected(results, model, "synth_tags", "roc_auc"))
        ap = statistics.mean(_expected(results, model, "synth_tags", "average_precision"))
        assert row.average == pytest.approx((chords + (auc + ap) / 2) / 2)
        assert row.average != pytest.approx((chords + auc + ap) / 3)  # not a flat mean over metric columns
        assert row.average_tasks == 2
    (linear,) = [r for r in board.rows if r.key.protocol != main]
    assert linear.average_tasks == 1 and not board.full_coverage(linear)
    assert linear.average == pytest.approx(linear.cells[CHORDS_ACC].mean)
    markdown = render_markdown(board, "python -m benchmark leaderboard")
    line = next(x for x in markdown.splitlines() if x.startswith("| mfcc |") and f"| {linear.key.protocol} |" in x)
    assert line.rstrip(" |").endswith("†")


def test_a_run_with_another_probe_setting_is_its_own_protocol_group(results):
    records = load_records(results)
    assert len(records) == 13
    board = build_leaderboard(records)
    assert set(board.protocols) == {"P1", "P2"}
    assert board.protocols["P1"].records == 12 and board.protocols["P2"].records == 1
    assert board.protocols["P2"].differing["probe.name"] == "linear"
    assert board.protocols["P1"].differing["probe.name"] == "mlp"
    mfcc_rows = _row(board, "mfcc")
    assert sorted(r.key.protocol for r in mfcc_rows) == ["P1", "P2"]
    by_protocol = {r.key.protocol: r for r in mfcc_rows}
    assert by_protocol["P1"].cells[CHORDS_ACC].n == 3  # the linear-probe seed 0 is not averaged in
    assert by_protocol["P2"].cells[CHORDS_ACC].n == 1
    assert by_protocol["P2"].cells[CHORDS_ACC].mean == pytest.approx(
        _expected(results, "mfcc", "synth_chords", "accuracy", probe="linear")[0])
    assert TAGS_AUC not in by_protocol["P2"].cells
    for row in board.rows:  # a row never spans two checksums within one task
        assert len(row.checksums) == len({c.task for c in row.cells})
    notes = render_markdown(board, "cmd")
    assert "P2 (1 record(s)): probe.dropout=0.0, probe.hidden=0, probe.name=linear" in notes


def test_runs_with_another_task_setting_get_their_own_row(results, tmp_path):
    shutil.copytree(results, tmp_path / "results")
    for path in sorted((results / "runs" / "synth_chords" / "mfcc").glob("*.json")):
        record = json.loads(path.read_text())
        if record["config"]["probe"]["name"] != "mlp":
            continue
        record["config"]["task"]["window_seconds"] = 2.0  # as if run with task.window_seconds=2
        record["protocol_checksum"] = "f" * 20
        record["selected"]["test"]["accuracy"] = 0.5
        (tmp_path / "results" / "windowed").mkdir(exist_ok=True)
        (tmp_path / "results" / "windowed" / path.name).write_text(json.dumps(record))
    board = build_leaderboard(load_records(tmp_path / "results"))
    assert set(board.protocols) == {"P1", "P2"}  # the shared settings did not change
    p1 = {r.key.label: r for r in board.rows if r.key.protocol == "P1"}
    assert set(p1) == {"mfcc", "mfcc [task.window_seconds=2.0]", "mert-v1-95m"}
    windowed = p1["mfcc [task.window_seconds=2.0]"]
    assert windowed.cells[CHORDS_ACC].mean == pytest.approx(50.0) and windowed.cells[CHORDS_ACC].n == 3
    assert p1["mfcc"].cells[CHORDS_ACC].mean == pytest.approx(
        statistics.mean(_expected(results, "mfcc", "synth_chords", "accuracy")))
    assert TAGS_AUC in p1["mfcc"].cells and TAGS_AUC not in windowed.cells


def as_marble_run(record: dict, **deviations) -> dict:
    """A record as ``protocol=marble`` writes it: the protocol section with its preset (here the record's own
    layers, so it followed the preset), then ``deviations`` applied to the run's config (top-level keys)."""
    record = json.loads(json.dumps(record))
    config = record["config"]
    config["protocol"] = {"name": "marble", "reference": "a43992899/MARBLE-Benchmark@d9300e3",
                          "source": "committed config", "preset": {"layers": config.get("layers", "all")}}
    config.update(deviations)
    return record


def test_published_rows_and_delta_on_a_matching_model_and_task(results, tmp_path):
    shutil.copytree(results, tmp_path / "results")
    for path in sorted((results / "runs" / "synth_chords" / "mert-v1-95m").glob("*.json")):
        record = json.loads(path.read_text())  # a real MERT-v1-95M record, relabelled as a GTZAN run
        record["task"] = "gtzan"
        (tmp_path / "results" / "crafted").mkdir(exist_ok=True)
        (tmp_path / "results" / "crafted" / path.name).write_text(json.dumps(as_marble_run(record)))
    board = build_leaderboard(load_records(tmp_path / "results"), published="marble")
    gtzan = Column("gtzan", "accuracy")
    assert gtzan in board.columns and board.delta_columns == [gtzan]
    published = {r.key.model: r for r in board.rows if r.published}
    assert published["mert-v1-95m"].source == "MARBLE (published)"
    assert published["mert-v1-95m"].cells[gtzan].mean == pytest.approx(74.8)
    assert published["Jukebox-5B"].cells[gtzan].mean == pytest.approx(77.9)
    assert all(r.cells.keys() == {gtzan} for r in published.values())  # the paper has no synth tasks
    (ours,) = [r for r in _row(board, "mert-v1-95m") if gtzan in r.cells]
    mean = statistics.mean(_expected(results, "mert-v1-95m", "synth_chords", "accuracy"))
    assert ours.cells[gtzan].mean == pytest.approx(mean)
    assert ours.deltas[gtzan] == pytest.approx(mean - 74.8)
    assert not _row(board, "mfcc")[0].deltas  # MFCC is not in the paper
    parsed = list(csv.DictReader(io.StringIO(render_csv(board))))
    row = next(r for r in parsed if r["model"] == "mert-v1-95m" and r["source"] == "ours" and r["gtzan/accuracy"])
    assert float(row["gtzan/accuracy/delta"]) == pytest.approx(mean - 74.8)
    pub = next(r for r in parsed if r["model"] == "MusiCNN")
    assert pub["source"] == "MARBLE (published)" and float(pub["gtzan/accuracy"]) == pytest.approx(73.5)
    assert (REPO_ROOT / "results" / "reference" / "README.md").read_text().count("MARBLE") >= 1


def test_no_published_delta_for_another_protocol_or_a_changed_setting(results, tmp_path):
    """A delta claims "same recipe": the default protocol and a marble run with an overridden setting get none,
    and the legend says why."""
    for kind in ("default", "deviating"):
        folder = tmp_path / kind
        shutil.copytree(results, folder)
        for path in sorted((results / "runs" / "synth_chords" / "mert-v1-95m").glob("*.json")):
            record = {**json.loads(path.read_text()), "task": "gtzan"}
            if kind == "deviating":
                record = as_marble_run(record)
                record["config"]["layers"] = [3]  # overridden on the command line: no longer the preset's
            (folder / "crafted").mkdir(exist_ok=True)
            (folder / "crafted" / path.name).write_text(json.dumps(record))
        board = build_leaderboard(load_records(folder), published="marble")
        gtzan = Column("gtzan", "accuracy")
        (ours,) = [r for r in _row(board, "mert-v1-95m") if gtzan in r.cells]
        assert not ours.deltas and board.delta_columns == []
        legend = "\n".join(notes(board))
        if kind == "default":
            assert "No Δ for P1: protocol sweep, not marble" in legend
        else:
            assert "protocol=marble with settings changed from it: layers=[3]" in legend


def _latex_rows(tex: str) -> list[str]:
    body = tex.split("\\begin{tabular}", 1)[1].split("\\end{tabular}", 1)[0]
    return [line for line in body.splitlines()[1:] if line.rstrip().endswith("\\\\")]


def test_latex_is_booktabs_with_escaped_names_and_best_bold_second_underlined(results):
    board = build_leaderboard(load_records(results))
    tex = render_latex(board, "python -m benchmark leaderboard format=latex")
    assert tex.count("\\begin{tabular}") == 1 and tex.count("\\end{tabular}") == 1
    spec = re.search(r"\\begin\{tabular\}\{([lcr]+)\}", tex).group(1)
    positions = [tex.index(x) for x in ("\\toprule", "\\midrule", "\\bottomrule", "\\end{tabular}")]
    assert positions == sorted(positions)
    for line in _latex_rows(tex):
        spans = sum(int(n) for n in re.findall(r"\\multicolumn\{(\d+)\}", line))
        cells = line.count("&") + 1 - len(re.findall(r"\\multicolumn", line)) + spans
        assert cells == len(spec), line
    code = "\n".join(x for x in tex.splitlines() if not x.startswith("%"))
    assert "synth\\_chords" in code and "average\\_precision" in code
    assert not re.search(r"(?<!\\)_", code)  # every underscore escaped
    assert code.count("{") == code.count("}")

    header = _latex_rows(tex)[1].split(" & ")
    rows = _latex_rows(tex.split("\\bottomrule")[0] + "\\end{tabular}")[2:]
    assert len(rows) == len(board.rows)
    col = header.index("accuracy")
    means = sorted(((r.cells[CHORDS_ACC].mean, i) for i, r in enumerate(board.rows) if CHORDS_ACC in r.cells),
                   reverse=True)
    best, second = means[0], next(m for m in means if round(m[0], 9) < round(means[0][0], 9))
    assert rows[best[1]].split(" & ")[col].startswith(f"\\textbf{{{best[0]:.1f}}}")
    assert rows[second[1]].split(" & ")[col].startswith(f"\\underline{{{second[0]:.1f}}}")
    assert sum("\\textbf" in r.split(" & ")[col] for r in rows) == sum(m[0] == best[0] for m in means)


def test_csv_and_markdown_parse_back_to_the_same_numbers(results):
    board = build_leaderboard(load_records(results))
    parsed = list(csv.DictReader(io.StringIO(render_csv(board))))
    assert len(parsed) == len(board.rows)
    for line, row in zip(parsed, board.rows):
        assert line["model"] == row.key.model and line["protocol"] == row.key.protocol
        for c, cell in row.cells.items():
            assert float(line[f"{c.task}/{c.metric}"]) == pytest.approx(cell.mean, abs=1e-12)
            assert int(line[f"{c.task}/{c.metric}/n"]) == cell.n
        assert float(line["average"]) == pytest.approx(row.average)
        assert int(line["average_tasks"]) == row.average_tasks

    markdown = render_markdown(board, "python -m benchmark leaderboard")
    lines = markdown.splitlines()
    assert lines[0].startswith("_Generated by `python -m benchmark leaderboard` on ")
    assert "do not edit by hand" in lines[0]
    table = [x for x in lines if x.startswith("|")]
    split = [[c.strip() for c in re.split(r"(?<!\\)\|", x)[1:-1]] for x in table]
    header, body = split[0], split[2:]
    assert header[:2] == ["model", "protocol"] and header[-1] == "average"
    assert len(body) == len(board.rows) and all(len(r) == len(header) for r in body)
    for cells, row in zip(body, board.rows):
        for c, cell in row.cells.items():
            assert cells[header.index(c.label)].strip("*") == cell_text(cell, 1)
            mean = float(cells[header.index(c.label)].strip("*").split()[0])
            assert mean == pytest.approx(cell.mean, abs=0.05)


def test_layer_figure_has_one_line_per_model_and_the_weights(results):
    from benchmark.plots import layer_figure

    records = load_records(results)
    fig = layer_figure(records, "synth_chords")
    valid, test, weights = fig.axes[:3]
    series = ["mert-v1-95m (P1)", "mfcc (P1)", "mfcc (P2)"]  # the linear probe is its own series
    for ax in (valid, test):
        gids = [line.get_gid() for line in ax.get_lines()]
        assert sorted(g for g in gids if g.startswith("curve:")) == [f"curve:{s}" for s in series]
        # MFCC is one hidden state, so its runs train no weighted sum (a weighted sum of one state is that state)
        assert sorted(g for g in gids if g.startswith("ws:")) == ["ws:mert-v1-95m (P1)"]
        assert len([g for g in gids if g.startswith("selected:")]) == 3
    assert [line.get_gid() for line in test.get_lines()].count("chance") == 1
    curve = next(x for x in valid.get_lines() if x.get_gid() == "curve:mert-v1-95m (P1)")
    assert list(curve.get_xdata()) == [0, 1, 2]  # the tiny MERT fixture: 3 hidden states
    valid_by_layer = [statistics.mean(100 * row["valid"]["accuracy"] for r in _raw(results)
                                      if r["model"] == "mert-v1-95m" and r["task"] == "synth_chords"
                                      for row in r["layers"] if row["layer"] == layer) for layer in (0, 1, 2)]
    assert list(curve.get_ydata()) == pytest.approx(valid_by_layer)
    styles = {(x.get_linestyle(), x.get_marker()) for x in valid.get_lines() if x.get_gid().startswith("curve:")}
    assert len(styles) == 3  # told apart without colour
    bars = [p for p in weights.patches if str(p.get_gid()).startswith("weights:")]
    assert {p.get_gid() for p in bars} == {"weights:mert-v1-95m (P1)"}  # mfcc has a single state: no bars
    assert len(bars) == 3
    mean_w = [statistics.mean(next(iter(r["layer_weights"].values()))[k] for r in _raw(results)
                              if r["model"] == "mert-v1-95m" and r["task"] == "synth_chords") for k in range(3)]
    assert [p.get_height() for p in bars] == pytest.approx(mean_w)


def test_plot_and_leaderboard_commands_write_their_files(results, tmp_path):
    from benchmark.cli import main

    out = tmp_path / "results"
    shutil.copytree(results, out)
    assert main(["plot", "task=synth_tags", f"results_dir={out}"]) == 0
    for name in ("synth_tags_layers", "heatmap"):
        png, svg = out / "plots" / f"{name}.png", out / "plots" / f"{name}.svg"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
        assert "<svg" in svg.read_text()[:2000]
    assert not (out / "plots" / "synth_chords_layers.png").exists()

    from benchmark.plots import heatmap_figure

    board = build_leaderboard(load_records(out))
    fig = heatmap_figure(board)
    texts = [t for t in fig.axes[0].texts if t.get_gid() == "cell"]
    assert len(texts) == 3 * 2  # three rows (mfcc P1, mfcc P2, mert P1) x two tasks
    assert sum(t.get_text() == "—" for t in texts) == 1  # the linear run has no synth_tags

    assert main(["leaderboard", f"results_dir={out}"]) == 0
    md = (out / "leaderboard.md").read_text()
    assert md.startswith(f"_Generated by `python -m benchmark leaderboard results_dir={out}` on ")
    tex = tmp_path / "paper" / "table.tex"
    assert main(["leaderboard", "tasks=[synth_tags,gtzan]", "format=latex", f"out={tex}", "published=marble",
                 f"results_dir={out}"]) == 0
    text = tex.read_text()
    assert "\\multicolumn{3}{c}{synth\\_tags}" in text and "MERT-v1-95M" not in text  # ours names
    assert "MARBLE (published)" in text and "mert-v1-95m" in text
    assert main(["leaderboard", "by_layer=true", "format=csv", f"out={tmp_path / 't.csv'}",
                 f"results_dir={out}"]) == 0
    layers = {(r["model"], r["protocol"], r["layer"]) for r in csv.DictReader(open(tmp_path / "t.csv"))}
    assert {("mert-v1-95m", "P1", x) for x in ("0", "1", "2", "weighted_sum")} <= layers


def test_end_to_end_runs_write_records_the_leaderboard_reads(compose_config, tmp_path):
    """The one test that trains: run -> record on disk -> leaderboard, on the settings of the committed records."""
    from benchmark.record import record_path
    from benchmark.runner import run

    quiet = Console(quiet=True)
    configs = [compose_config("task=synth_chords", *SIZE, "model=mfcc", f"seed={seed}") for seed in (0, 1)]
    for config in configs:
        run(config, console=quiet)
    results = tmp_path / "results"
    paths = sorted((results / "runs").rglob("*.json"))
    assert paths == sorted(record_path(results, c) for c in configs)
    fresh = [json.loads(p.read_text()) for p in paths]

    board = build_leaderboard(load_records(results))
    assert board.columns == [CHORDS_ACC] and set(board.protocols) == {"P1"}
    assert board.protocols["P1"].records == 2
    (row,) = board.rows
    assert row.key.model == "mfcc" and row.key.protocol == "P1" and not row.published
    values = [100 * r["selected"]["test"]["accuracy"] for r in fresh]
    cell = row.cells[CHORDS_ACC]
    assert cell.n == 2
    assert cell.mean == pytest.approx(statistics.mean(values), abs=1e-9)
    assert cell.std == pytest.approx(statistics.stdev(values), abs=1e-9)
    assert row.average == pytest.approx(cell.mean) and row.average_tasks == 1
    (line,) = [x for x in render_markdown(board, "cmd").splitlines() if x.startswith("| mfcc | P1 |")]
    cells = [c.strip().strip("*") for c in line.split("|")[1:-1]]
    assert cells[2] == cell_text(cell, 1) and cells[-1] == f"{cell.mean:.1f}"

    # The committed records must still be in the format the runner writes: a renamed or dropped field means
    # tests/fixtures/records is stale (regenerate it with the code in its README.md).
    committed = json.loads(next((RECORDS / "runs" / "synth_chords" / "mfcc").glob("seed0-*.json")).read_text())
    for record in fresh:
        missing = set(committed) - set(record)
        assert not missing, f"the runner no longer writes {sorted(missing)}: regenerate tests/fixtures/records"
        assert set(committed["selected"]) <= set(record["selected"])


def test_records_from_before_and_after_the_process_layout_keys_share_a_protocol():
    """A record written before trainer.num_nodes / trainer.strategy existed and one written after (single
    process) group in one protocol, as their checksums already do."""
    from benchmark.leaderboard import shared_settings

    old = {"trainer": {"max_epochs": 100, "patience": 10, "devices": 1}, "probe": {"name": "mlp"}, "seed": 0,
           "task": {"name": "a"}, "model": {"name": "m"}, "cache_dir": "/x"}
    new = {**old, "trainer": {**old["trainer"], "num_nodes": 1, "strategy": "ddp", "devices": 2}, "seed": 1,
           "task": {"name": "b"}, "cache_dir": "/y"}
    assert shared_settings({"config": old}) == shared_settings({"config": new})
    other = {**old, "trainer": {**old["trainer"], "patience": 20}}
    assert shared_settings({"config": other}) != shared_settings({"config": old})


def test_a_lower_is_better_column_ranks_its_minimum_first_and_stays_out_of_the_average():
    """An error column is ranked by its minimum, and the average (ranked as a score) averages scores only."""
    from benchmark.leaderboard.grouping import RowKey
    from benchmark.leaderboard.table import Cell, Column, Row, _rank, metric_higher_is_better, row_average

    assert metric_higher_is_better("accuracy") and not metric_higher_is_better("val_loss")
    out: dict = {}
    _rank({0: 0.30, 1: 0.10, 2: 0.20}, metric_higher_is_better("val_loss"), "t val_loss", out)
    assert out == {(1, "t val_loss"): 1, (2, "t val_loss"): 2}
    acc, loss = Column("t", "accuracy"), Column("t", "val_loss")
    row = Row(RowKey("P1", "m"), "ours", cells={acc: Cell(0.8, math.nan, 1), loss: Cell(0.4, math.nan, 1)})
    assert row_average(row, [acc, loss]) == (0.8, 1)


def test_published_marble_rows_cover_every_marble_task_of_the_suite():
    """Each MARBLE v1 column the suite has a task for maps to a filled CSV column (13 tasks, 20 numbers per row)."""
    from benchmark.leaderboard.published import PUBLISHED, read_published
    from benchmark.tasks.registry import task_kinds

    spec = PUBLISHED["marble"]
    table = read_published("marble")
    tasks = {task for task, _ in spec["columns"]}
    assert tasks == {"gtzan", "mtt", "giantsteps_key", "emomusic", "gtzan_beat", "mtg_top50", "mtg_genre",
                     "mtg_moodtheme", "mtg_instrument", "nsynth_instrument", "nsynth_pitch", "vocalset_technique",
                     "vocalset_singer"}
    assert tasks <= set(task_kinds())
    assert set(spec["columns"].values()) == set(table.columns)
    # every model of ours that MARBLE reports has every column but the beat one filled (MARBLE v1 reports beat F
    # for its own models only), and the values are the paper's: two read back as a spot check
    for model in spec["models"].values():
        assert table.loc[model].drop("gtzan_beat_f1").notna().all(), model
    assert table.loc["MERT-v1-95M", "mtg_top50_roc_auc"] == 83.0 and table.loc["MERT-v1-330M", "mtg_genre_ap"] == 18.6
    assert table.loc["MERT-v1-95M", "vocalset_singer_acc"] == 83.7
