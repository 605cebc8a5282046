"""Leaderboards and plots from hostile run records: no format can be broken out of, and no wrong number is shown.

Run records are files researchers exchange, so each test here takes a real committed record
(tests/fixtures/records/), plants one attack in a copy under tmp_path, and checks the rendered output of every
format (LaTeX, CSV, Markdown, the rich terminal) or the line that names the skipped file. The committed records
themselves must still render exactly as before (tests/test_run_records.py pins that).
"""
from __future__ import annotations

import copy
import csv
import io
import json
import os
import re
import threading
from pathlib import Path

import pytest
from rich.console import Console

from benchmark.leaderboard import (
    build_leaderboard, csv_text, load_records, markdown_escape, one_line, ranks, render_csv, render_latex,
    render_markdown, render_terminal, scan_records,
)
from benchmark.leaderboard.records import MAX_RECORD_BYTES, metric_range, parse_record
from benchmark.run_record import RecordFormatError, config_file_defaults
from tests.conftest import REPO_ROOT

RECORDS = REPO_ROOT / "tests" / "fixtures" / "records"
GOOD = RECORDS / "runs" / "synth_chords" / "mfcc" / "seed1-2265de5198.json"  # accuracy 1/6, layer 0, mlp probe
GOOD_ACCURACY = 100 / 6
INPUT = "\\input{/etc/passwd}"


def _record(**top) -> dict:
    """A fresh copy of the committed GOOD record with top-level fields replaced."""
    return {**json.loads(GOOD.read_text()), **top}


def _write(folder: Path, name: str, record) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(json.dumps(record))
    return path


def _folder(tmp_path: Path, *hostile: dict) -> Path:
    """GOOD plus each hostile record (seeds 10, 11, ...: never deduplicated against GOOD)."""
    folder = tmp_path / "records"
    _write(folder, "good.json", _record())
    for i, record in enumerate(hostile):
        _write(folder, f"hostile{i}.json", {**record, "seed": 10 + i})
    return folder


# ----------------------------------------------------------------------------------------------------------------
# LaTeX


@pytest.mark.parametrize("newline", ["\n", "\r", "\r\n", "\u2028", "\x0c", "\x85"])
def test_latex_a_line_break_in_a_config_value_cannot_become_live_latex(tmp_path, newline):
    hostile = _record(model=INPUT)
    hostile["config"] = copy.deepcopy(hostile["config"])
    hostile["config"]["probe"]["name"] = f"mlp{newline}{INPUT}"  # another protocol: named in the legend
    tex = render_latex(build_leaderboard(load_records(_folder(tmp_path, hostile))), "cmd")
    lines = tex.splitlines()  # splits at every separator above: as strict as any TeX engine
    live = [line for line in lines if not line.startswith("%")]
    assert not [line for line in live if "\\input" in line]
    assert [line for line in lines if line.startswith("%")] == lines[:1]  # one comment: the command, no record text
    (legend,) = [line for line in lines if "probe.name=mlp" in line and "passwd" in line]
    assert re.fullmatch(r"\\multicolumn\{\d+\}\{l\}\{\\footnotesize P[12] \(1 record\(s\)\): probe\.name=mlp "
                        r"+\\textbackslash\{\}input\\\{/etc/passwd\\\}\} \\\\", legend), legend
    (row,) = [line for line in live if line.startswith("\\textbackslash{}input")]
    assert row.split(" & ")[0] == "\\textbackslash{}input\\{/etc/passwd\\}"


def test_latex_escapes_every_special_character_of_a_record_string(tmp_path):
    name = "50% & $x$ #1 a_b ~ ^^5c {} [2pt] <|> \\relax"
    tex = render_latex(build_leaderboard(load_records(_folder(tmp_path, _record(model=name)))), "cmd")
    (row,) = [line for line in tex.splitlines() if line.startswith("50")]
    assert row.split(" & ")[0] == (
        "50\\% \\& \\$x\\$ \\#1 a\\_b \\textasciitilde{} \\textasciicircum{}\\textasciicircum{}5c \\{\\} {[}2pt{]} "
        "\\textless{}\\textbar{}\\textgreater{} \\textbackslash{}relax")


# ----------------------------------------------------------------------------------------------------------------
# CSV


FORMULAS = ["=cmd|' /C calc'!A0", "+1+2", "-1", "@SUM(A1:A2)", "\t=2+2", "\r=3+3", "  =4+4"]


def test_csv_formula_cells_from_records_are_quoted_but_the_suites_numbers_stay_numbers(tmp_path):
    hostile = [_record(model=m) for m in FORMULAS] + [_record(protocol_checksum="=HYPERLINK(\"http://e.x\")")]
    folder = _folder(tmp_path, *hostile)
    for path in sorted((RECORDS / "runs" / "synth_chords" / "mert-v1-95m").glob("*.json")):
        record = {**json.loads(path.read_text()), "task": "gtzan"}
        record["config"]["protocol"] = {"name": "marble", "preset": {}}  # made with MARBLE's protocol: a delta
        _write(folder / "gtzan", path.name, record)
    text = render_csv(build_leaderboard(load_records(folder), published="marble"))
    rows = list(csv.reader(io.StringIO(text)))
    header = rows[0]
    parsed = [dict(zip(header, r)) for r in rows[1:]]
    models = {r["model"] for r in parsed}
    assert {"'=cmd|' /C calc'!A0", "'+1+2", "'-1", "'@SUM(A1:A2)", "' =2+2", "' =3+3", "'  =4+4"} <= models
    (checksum_row,) = [r for r in parsed if "HYPERLINK" in r["checksums"]]
    assert checksum_row["checksums"] == "'=HYPERLINK(\"http://e.x\")"
    text_columns = [i for i, h in enumerate(header) if h in ("model", "variant", "layer", "protocol", "source",
                                                               "checksums") or h.endswith("/layer")]
    for row in rows[1:]:
        for i in text_columns:
            assert not row[i].lstrip().startswith(("=", "+", "-", "@")), (header[i], row[i])
    delta = next(r for r in parsed if r["gtzan/accuracy/delta"])["gtzan/accuracy/delta"]
    assert delta.startswith("-") and float(delta) < 0  # the suite's own negative number: not quoted


# ----------------------------------------------------------------------------------------------------------------
# Markdown


MD_ATTACK = ("evil\n| x | y |\n<img src=x onerror=alert(1)> `c` **b** [l](http://e.x) ![i](http://e.x/p.png) "
             "$x$ ~~s~~ _u_ a&b \\")


def test_markdown_record_text_cannot_break_the_table_or_inject_html(tmp_path):
    hostile = _record(model=MD_ATTACK)
    hostile["config"] = copy.deepcopy(hostile["config"])
    hostile["config"]["probe"]["name"] = "mlp\n\n# Heading <b>x</b>"
    board = build_leaderboard(load_records(_folder(tmp_path, hostile)))
    md = render_markdown(board, "python -m benchmark leaderboard")
    table = [line for line in md.splitlines() if line.startswith("|")]
    assert len(table) == 2 + len(board.rows) == 4
    cells = [re.split(r"(?<!\\)\|", line)[1:-1] for line in table]
    assert {len(c) for c in cells} == {len(cells[0])}
    (row,) = [c for c in cells[2:] if c[0].strip().startswith("evil")]
    assert row[0].strip() == ("evil \\| x \\| y \\| &lt;img src=x onerror=alert(1)&gt; \\`c\\` \\*\\*b\\*\\* "
                              "[l\\](http://e.x) ![i\\](http://e.x/p.png) \\$x\\$ \\~\\~s\\~\\~ \\_u\\_ a&amp;b \\\\")
    assert "<img" not in md and "<b>" not in md and not re.search(r"(?<!\\)\]\(", md)
    assert not [line for line in md.splitlines() if line.startswith("#")]
    (legend,) = [line for line in md.splitlines() if "Heading" in line]
    assert re.fullmatch(r"- P[12] \(1 record\(s\)\): probe\.name=mlp  # Heading &lt;b&gt;x&lt;/b&gt;", legend)


def test_markdown_escape_leaves_ordinary_names_as_they_were():
    for name in ("synth_chords accuracy", "mert-v1-95m", "probe.lr=[0.001], trainer.max_epochs=3", "0×2, 2×1"):
        assert markdown_escape(name) == name
    assert markdown_escape("_x_ a__b") == "\\_x\\_ a\\_\\_b"


# ----------------------------------------------------------------------------------------------------------------
# Terminal


def test_terminal_shows_rich_markup_from_records_literally(tmp_path):
    hostile = _record(model="[bold red]pwned[/bold red] :thumbs_up:", task="[blink]t[/blink]")
    hostile["config"] = copy.deepcopy(hostile["config"])
    hostile["config"]["probe"]["name"] = "[link=file:///etc/passwd]mlp[/link]"
    console = Console(file=io.StringIO(), record=True, width=400, color_system=None)
    render_terminal(build_leaderboard(load_records(_folder(tmp_path, hostile))), console)
    shown = console.export_text()
    assert "[bold red]pwned[/bold red] :thumbs_up:" in shown
    assert "[blink]t[/blink] accuracy" in shown
    assert "probe.name=[link=file:///etc/passwd]mlp[/link]" in shown


# ----------------------------------------------------------------------------------------------------------------
# Numbers: a record's score is shown only if it is a finite JSON number within its metric's range


def _with_accuracy(value) -> dict:
    record = _record()
    record["selected"] = {**record["selected"], "test": {"accuracy": value}}
    return record


@pytest.mark.parametrize("value, reason", [
    ("0.99", "selected.test.accuracy='0.99' is a string, not a number"),
    (1e308, "selected.test.accuracy=1e+308 is outside [0, 1], the range of accuracy"),
    (float("inf"), "selected.test.accuracy=inf is not a finite number"),
    (float("nan"), "selected.test.accuracy=nan is not a finite number"),
    (True, "selected.test.accuracy=True is a boolean, not a number"),
    ({"x": [1]}, "selected.test.accuracy={'x': [1]} is an object, not a number"),
    (1.5, "selected.test.accuracy=1.5 is outside [0, 1], the range of accuracy"),
    (-0.1, "selected.test.accuracy=-0.1 is outside [0, 1], the range of accuracy"),
])
def test_a_score_that_is_no_valid_number_skips_its_record_and_names_it(tmp_path, value, reason):
    folder = _folder(tmp_path, _with_accuracy(value))
    scan = scan_records(folder)
    assert [str(s) for s in scan.skipped] == [f"skipped {folder / 'hostile0.json'}: {reason}"]
    board = build_leaderboard(scan.records)
    (row,) = board.rows  # only GOOD: the bad score is neither averaged in nor ranked first
    (cell,) = row.cells.values()
    assert cell.n == 1 and cell.mean == pytest.approx(GOOD_ACCURACY)
    assert "**16.7 (1)**" in render_markdown(board, "cmd")


def test_a_huge_integer_score_is_refused_not_overflowed(tmp_path):
    folder = tmp_path / "records"
    folder.mkdir()
    (folder / "big.json").write_text(json.dumps(_record()).replace('"test": {"accuracy": 0.16666666666666666}',
                                                                   '"test": {"accuracy": 1' + "0" * 400 + "}"))
    (skipped,) = scan_records(folder).skipped
    assert skipped.reason.startswith("selected.test.accuracy=1000") and skipped.reason.endswith(
        "... is not a finite number")


def test_metric_ranges():
    assert metric_range("accuracy") == metric_range("downbeat_f_measure") == (0.0, 1.0)
    low, high = metric_range("r2_valence")
    assert high == 1.0 and low < -1e6
    assert metric_range("mae")[0] == 0.0 and metric_range("tags_scored")[0] == 0.0
    record = _record(task="emo")
    for metric, value, ok in [("r2_valence", -3.0, True), ("r2_valence", 1.2, False), ("mae", -1.0, False),
                              ("my_custom_score", 42.0, True), ("my_custom_score", 1e300, False)]:
        record["selected"] = {**record["selected"], "test": {metric: value}}
        if ok:
            assert parse_record(copy.deepcopy(record)).selected.test == {metric: value}
        else:
            with pytest.raises(RecordFormatError, match=f"selected.test.{metric}="):
                parse_record(copy.deepcopy(record))


def test_a_non_finite_mean_in_memory_is_never_ranked_best():
    board = build_leaderboard(load_records(RECORDS))
    column = board.columns[0]
    best = next(i for (i, label), rank in ranks(board).items() if label == column.label and rank == 1)
    worst = next(i for i, r in enumerate(board.rows) if column in r.cells and i != best)
    board.rows[worst].cells[column].mean = float("inf")
    assert ranks(board).get((worst, column.label)) is None and ranks(board)[(best, column.label)] == 1
    assert next(csv.reader(io.StringIO(render_csv(board).splitlines()[worst + 1])))[6] == ""


# ----------------------------------------------------------------------------------------------------------------
# Malformed records: skipped one by one, named with the reason; the rest is read


def _set(path: str, value):
    """A change to GOOD: ``path`` (dotted) set to ``value``."""
    def change(record):
        *parents, last = path.split(".")
        target = record
        for key in parents:
            target = target[key]
        target[last] = value
        return record
    return change


def _drop_test(record):
    del record["selected"]["test"]
    return record


def _deep_config(record):
    nested = 1
    for _ in range(100):
        nested = {"a": nested}
    record["config"]["task"]["extra"] = nested
    return record


@pytest.mark.parametrize("change, reason", [
    (_set("seed", "x"), "seed='x' is a string, not an integer"),
    (_drop_test, "selected.test is missing"),
    (_set("selected", []), "selected=[] is a list, not an object"),
    (_set("selected.test", [0.5]), "selected.test=[0.5] is a list, not an object of metric scores"),
    (_set("selected.layer", "0"), "selected.layer='0' is a string, not an integer"),
    (_set("selected.layer", 7), "selected.layer=7 is not one of the layers the record reports"),
    (_set("selected.lr", "0.001"), "selected.lr='0.001' is a string, not a number"),
    (_set("layers", {}), "layers={} is an object, not a list"),
    (_set("config", []), "config=[] is a list, not an object"),
    (_set("config.model", "mfcc"), "config.model='mfcc' is a string, not an object"),
    (_set("layer_weights", [0.5]), "layer_weights=[0.5] is a list, not an object"),
    (_set("model", 5), "model=5 is a number, not a string"),
    (_set("task", " "), "task is empty"),
    (_set("chance_level", "0.1"), "chance_level='0.1' is a string, not a number"),
    (_deep_config, "nested more than 32 levels deep"),
])
def test_a_malformed_record_is_skipped_with_its_file_and_reason(tmp_path, change, reason):
    bad = change(_record(seed=10))
    folder = _folder(tmp_path)
    path = _write(folder, "bad.json", bad)
    scan = scan_records(folder)
    assert [r.seed for r in scan.records] == [1]
    assert [str(s) for s in scan.skipped] == [f"skipped {path}: {reason}"]


def _huge(path: Path) -> None:
    with path.open("wb") as f:  # sparse: the size without the disk
        f.truncate(MAX_RECORD_BYTES + 1)


@pytest.mark.parametrize("write, reason", [
    (lambda p: p.write_text('{"task": '), "invalid JSON (Expecting value at line 1 column 10)"),
    (lambda p: p.write_text(json.dumps([_record()])), "not a JSON object but a list"),
    (lambda p: p.write_text("[" * 100_000 + "]" * 100_000), "JSON nested too deeply to read"),
    (lambda p: p.write_bytes(b'{"task": "\xff"}'), "not UTF-8 text (invalid start byte at byte 10)"),
    (_huge, f"larger than a run record may be ({MAX_RECORD_BYTES} bytes); not read"),
    (lambda p: p.write_text(json.dumps(_record(schema_version=1, config_defaults=[]))),
     "config_defaults=[] is a list, not an object"),
])
def test_an_unreadable_file_is_skipped_with_its_name_and_reason(tmp_path, write, reason):
    folder = _folder(tmp_path)
    write(folder / "bad.json")
    (folder / "bench.json").write_text(json.dumps({"created": "x", "speedup": 1.4}))  # another tool's: counted
    scan = scan_records(folder)
    assert [r.seed for r in scan.records] == [1]
    assert scan.messages() == [f"skipped {folder / 'bad.json'}: {reason}",
                               f"ignored 2 JSON file(s) under {folder} that are not valid run records (1 named above)"]


def test_a_fifo_named_like_a_record_does_not_block_the_scan(tmp_path):
    folder = _folder(tmp_path)
    os.mkfifo(folder / "pipe.json")
    found = []
    thread = threading.Thread(target=lambda: found.append(scan_records(folder)), daemon=True)
    thread.start()
    thread.join(timeout=20)
    assert found, "scan_records blocked on a FIFO"
    assert [str(s) for s in found[0].skipped] == [f"skipped {folder / 'pipe.json'}: not a regular file"]


def test_a_skip_line_is_one_line_whatever_the_file_name(tmp_path):
    folder = _folder(tmp_path)
    _write(folder, "evil\nname\u202e.json", _with_accuracy("0.5"))
    (line,) = [str(s) for s in scan_records(folder).skipped]
    assert "\n" not in line and "\u202e" not in line
    assert line == f"skipped {folder}/evil name\ufffd.json: selected.test.accuracy='0.5' is a string, not a number"


def test_every_committed_record_passes_the_checks():
    for folder in (RECORDS, REPO_ROOT / "results"):
        scan = scan_records(folder)
        assert scan.skipped == [] and len(scan.records) >= 8


def test_a_schema_0_config_name_is_never_followed_as_a_path():
    assert config_file_defaults({"model": {"name": "mfcc"}})["model"]["name"] == "mfcc"
    # configs/model/../task/synth_chords.yaml exists: a name that is a path must not reach it
    assert config_file_defaults({"model": {"name": "../task/synth_chords"}})["model"] is None


# ----------------------------------------------------------------------------------------------------------------
# The commands


def test_leaderboard_command_renders_the_good_records_and_names_the_bad_one(tmp_path, capsys):
    from benchmark.cli import main

    folder = _folder(tmp_path, _with_accuracy("0.99"))
    code = main(["leaderboard", f"records={folder}", "format=csv", f"results_dir={tmp_path / 'results'}"])
    out, err = capsys.readouterr()
    assert code == 0
    (row,) = list(csv.DictReader(io.StringIO(out)))
    assert row["model"] == "mfcc" and float(row["synth_chords/accuracy"]) == pytest.approx(GOOD_ACCURACY)
    skipped = [line for line in err.splitlines() if line.startswith("skipped ")]
    assert skipped == [f"skipped {folder / 'hostile0.json'}: selected.test.accuracy='0.99' is a string, not a number"]


def test_plot_command_reads_records_through_the_same_checks(tmp_path, capsys):
    from benchmark.cli import main
    from benchmark.plots import layer_figure

    folder = tmp_path / "records"
    for path in sorted((RECORDS / "runs" / "synth_chords" / "mert-v1-95m").glob("*.json")):
        _write(folder, path.name, json.loads(path.read_text()))
    bad = json.loads(path.read_text())
    bad["seed"] = 9
    bad["layers"][1]["valid"]["accuracy"] = "0.5"  # the plots draw validation curves
    bad_path = _write(folder, "bad.json", bad)
    code = main(["plot", "task=synth_chords", f"records={folder}", f"results_dir={tmp_path / 'results'}"])
    err = capsys.readouterr().err
    assert code == 0 and (tmp_path / "results" / "plots" / "synth_chords_layers.svg").is_file()
    assert [line for line in err.splitlines() if line.startswith("skipped ")] == [
        f"skipped {bad_path}: layers[1].valid.accuracy='0.5' is a string, not a number"]
    with pytest.raises(RecordFormatError, match="layers\\[1\\].valid.accuracy"):
        layer_figure([bad], "synth_chords")
    no_lr = json.loads(path.read_text())  # a weighted-sum head without a learning rate: drawn, not a crash
    for entry in no_lr["layers"]:
        entry["lr"] = None
    layer_figure([no_lr], "synth_chords")


def test_one_line_and_csv_text():
    assert one_line("a\nb\r\nc\td\u2028e\x00f\u202eg\ud800") == "a b  c d e\ufffdf\ufffdg\ufffd"
    assert csv_text("mert-v1-95m") == "mert-v1-95m" and csv_text("-1.2") == "'-1.2" and csv_text("") == ""


def test_plots_show_record_names_literally_and_write_only_inside_the_plots_folder(tmp_path, capsys):
    from benchmark.cli import main

    folder = tmp_path / "records"
    for model in ("$\\frac{1}$ x", "_hidden"):  # mathtext that does not parse; a name legends would leave out
        for path in sorted((RECORDS / "runs" / "synth_chords" / "mert-v1-95m").glob("*.json")):
            record = {**json.loads(path.read_text()), "model": model, "task": "../../escaped"}
            _write(folder / model.strip("$\\_ "), path.name, record)
    plots = tmp_path / "out" / "plots"
    assert main(["plot", f"records={folder}", f"results_dir={tmp_path / 'out'}", f"plots_dir={plots}"]) == 0
    written = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*.svg"))
    assert written == [Path("out/plots/_._.._escaped_layers.svg"), Path("out/plots/heatmap.svg")]
    svg = (plots / "_._.._escaped_layers.svg").read_text()
    assert "$\\frac{1}$ x" in svg and "_hidden" in svg  # the names as text, in the legends

    from benchmark.plots import layer_figure

    fig = layer_figure(load_records(folder), "../../escaped")
    weights_legend = [t.get_text() for t in fig.axes[2].get_legend().get_texts()]
    assert weights_legend == ["\\$\\frac{1}\\$ x", "_hidden"]
