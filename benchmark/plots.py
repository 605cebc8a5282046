"""Per-layer plots and a model x task heat map, drawn from the run records (matplotlib, Agg backend).

Why these plots: the suite's question is *which layer* knows what, so the per-layer curves (validation, which
chose the layer, next to test, which only reports) are the primary result, and the learned weighted-sum weights
show where the probe itself leaned. Every series has its own line style, marker and hatch as well as its colour,
so the figures survive black-and-white printing. The functions return the ``Figure`` so tests can count the
artists; :func:`plot_command` saves PNG and SVG under ``<results_dir>/plots/``. Records are read as typed
:class:`~benchmark.run_record.RunRecord` objects through ``benchmark.leaderboard.records`` and grouped by
``benchmark.leaderboard.grouping``, so the series carry the leaderboard's protocol ids and row labels.
"""
from __future__ import annotations

import math
from collections import Counter
from pathlib import Path
from typing import Any, Sequence

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from benchmark.leaderboard.build import build_leaderboard  # noqa: E402
from benchmark.leaderboard.grouping import RowKey, group_records  # noqa: E402
from benchmark.leaderboard.escape import file_stem, plot_text, rich_text  # noqa: E402
from benchmark.leaderboard.records import as_record  # noqa: E402
from benchmark.leaderboard.table import Leaderboard  # noqa: E402
from benchmark.run_record import WEIGHTED_SUM, RunRecord  # noqa: E402

# (line style, marker, bar hatch) per series: distinguishable without colour.
STYLES: tuple[tuple[Any, str, str], ...] = (
    ("-", "o", ""), ("--", "s", "//"), ("-.", "^", "\\\\"), (":", "D", "xx"), ((0, (5, 1, 1, 1)), "v", ".."),
    ((0, (3, 1, 1, 1, 1, 1)), "P", "--"), ((0, (1, 1)), "X", "++"), ((0, (8, 2)), "h", "oo"),
)
COLORS = plt.get_cmap("tab10").colors


def _series_label(key: RowKey, several_protocols: bool) -> str:
    return f"{key.label} ({key.protocol})" if several_protocols else key.label


class Series:
    """One model (row key) on one task: per-layer valid/test scores over seeds and its weighted-sum weights."""

    def __init__(self, label: str, records: list[RunRecord], metric: str, scale: float) -> None:
        self.label, self.metric, self.seeds = label, metric, len(records)
        layers = sorted({row.layer for r in records for row in r.layers if row.layer is not None})
        self.layers = np.array(layers, dtype=float)
        self.valid = self._per_layer(records, "valid", layers, scale)
        self.test = self._per_layer(records, "test", layers, scale)
        self.ws_valid = self._ws(records, "valid", scale)
        self.ws_test = self._ws(records, "test", scale)
        choices = Counter(r.selected.name for r in records)
        best = max(choices.values())
        # the most common choice; ties go to the shallowest layer, the weighted sum last
        self.selected = min((c for c, n in choices.items() if n == best),
                            key=lambda c: math.inf if c == WEIGHTED_SUM else int(c))
        self.weights = self._weights(records)

    def _per_layer(self, records: list[RunRecord], split: str, layers: list[int], scale: float) -> np.ndarray:
        """``[seeds, layers]`` scores (NaN where a seed lacks a layer)."""
        out = np.full((len(records), len(layers)), np.nan)
        col = {layer: j for j, layer in enumerate(layers)}
        for i, r in enumerate(records):
            for row in r.layers:
                scores = getattr(row, split)
                if row.layer is not None and self.metric in scores:
                    out[i, col[row.layer]] = float(scores[self.metric]) * scale
        return out

    def _ws(self, records: list[RunRecord], split: str, scale: float) -> np.ndarray:
        return np.array([float(getattr(row, split)[self.metric]) * scale for r in records for row in r.layers
                         if row.layer is None and self.metric in getattr(row, split)])

    @staticmethod
    def _weights(records: list[RunRecord]) -> np.ndarray | None:
        """``[seeds, states]`` learned softmax weights of the weighted-sum head kept by selection (its lr)."""
        rows = []
        for r in records:
            weights = r.layer_weights
            ws_row = next((row for row in r.layers if row.layer is None), None)
            if not weights or ws_row is None:
                continue
            name = f"{WEIGHTED_SUM}@lr={ws_row.lr:g}" if ws_row.lr is not None else None
            rows.append(np.asarray(weights.get(name, next(iter(weights.values()))), dtype=float))
        if not rows or len({len(w) for w in rows}) != 1:
            return None
        return np.stack(rows)

    @staticmethod
    def mean_std(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        with np.errstate(all="ignore"):
            mean = np.nanmean(values, axis=0)
            n = np.sum(~np.isnan(values), axis=0)
            std = np.where(n > 1, np.nanstd(values, axis=0, ddof=1) if values.shape[0] > 1 else 0.0, 0.0)
        return mean, std


def _task_series(records: Sequence[RunRecord], task: str, scale: float) -> tuple[list[Series], str]:
    grouped = group_records(records)  # over all records: the same protocol ids and labels as the leaderboard
    by_key: dict[RowKey, list[RunRecord]] = {}
    for record, key in grouped:
        if record.task == task:
            by_key.setdefault(key, []).append(record)
    if not by_key:
        raise ValueError(f"no run records for task {task!r}")
    first = next(iter(by_key.values()))[0]
    metric = first.primary_metric or next(iter(first.selected.test))
    several = len(grouped.protocols) > 1
    series = [Series(_series_label(k, several), rs, metric, scale)
              for k, rs in sorted(by_key.items(), key=lambda kv: (kv[0].protocol, kv[0].label))]
    return series, metric


def layer_figure(records: Sequence[RunRecord], task: str, percent: bool = True) -> Figure:
    """Validation and test score per layer for every model of ``task``, and the learned layer weights.

    Artists carry a ``gid`` so that tests (and anyone post-editing an SVG) can find them:
    ``curve:<series>`` (one line per model and split), ``ws:<series>`` (the weighted-sum score, horizontal),
    ``selected:<series>`` (the layer chosen on validation) and ``weights:<series>`` (the bars).
    """
    scale = 100.0 if percent else 1.0
    records = [as_record(r) for r in records]
    series, metric = _task_series(records, task, scale)
    fig, axes = plt.subplots(1, 3, figsize=(17, 5.6), gridspec_kw={"width_ratios": [1, 1, 1.15]})
    ax_valid, ax_test, ax_weights = axes
    unit = " (%)" if percent else ""
    all_layers = [x for s in series for x in s.layers]
    x_max = max(all_layers) if all_layers else 0.0
    ws_x = x_max + 1.0  # where the weighted sum's marker sits, right of the deepest layer
    for ax, split in ((ax_valid, "valid"), (ax_test, "test")):
        for i, s in enumerate(series):
            style, marker, _ = STYLES[i % len(STYLES)]
            color = COLORS[i % len(COLORS)]
            mean, std = s.mean_std(getattr(s, split))
            ax.plot(s.layers, mean, linestyle=style, marker=marker, color=color, linewidth=1.8, markersize=6,
                    label=plot_text(s.label), gid=f"curve:{s.label}")
            if s.seeds > 1 and len(s.layers) > 1:
                ax.fill_between(s.layers, mean - std, mean + std, color=color, alpha=0.15, linewidth=0)
            ws = getattr(s, f"ws_{split}")
            ws_mean = float(np.mean(ws)) if len(ws) else math.nan
            if len(ws):
                ax.plot([-0.4, ws_x], [ws_mean, ws_mean], linestyle=style, marker=marker, markevery=[1],
                        color=color, linewidth=1.0, alpha=0.85, markerfacecolor="white",
                        label=f"{plot_text(s.label)}: weighted sum", gid=f"ws:{s.label}")
            if s.selected == WEIGHTED_SUM:
                sx, sy = ws_x, ws_mean
            else:
                j = int(np.flatnonzero(s.layers == int(s.selected))[0])
                sx, sy = s.layers[j], mean[j]
            if not math.isnan(sy):
                ax.plot([sx], [sy], linestyle="none", marker="*", markersize=17, color=color,
                        markeredgecolor="black", markeredgewidth=1.0, zorder=5, gid=f"selected:{s.label}")
        chance = [float(r.chance_level) * scale for r in records
                  if r.task == task and r.chance_level is not None]
        if split == "test" and chance:
            ax.axhline(float(np.mean(chance)), color="black", linestyle=(0, (1, 3)), linewidth=1.2, gid="chance")
        ax.set_title(f"{'validation' if split == 'valid' else 'test'} {plot_text(metric)}{unit}")
        ax.set_xlabel("layer (hidden state; 0 = input embedding)")
        _layer_ticks(ax, x_max, ws_x)
        ax.grid(True, alpha=0.3)
    ax_valid.set_ylabel(f"{plot_text(metric)}{unit}")
    _share_y(ax_valid, ax_test)
    _weights_panel(ax_weights, series)
    fig.suptitle(f"{plot_text(task)}: {plot_text(metric)} per layer, mean over seeds (band: ± sample std); "
                 f"★ layer chosen on validation; flat lines: weighted sum of all layers", fontsize=11)
    handles = [h for h in ax_valid.get_lines() if str(h.get_gid()).startswith("curve:")]
    labels = [h.get_label() for h in handles]
    ws_proxy = plt.Line2D([0, 1], [0, 0], color="grey", linewidth=1.0, marker="o", markevery=[1],
                          markerfacecolor="white")
    star = plt.Line2D([], [], linestyle="none", marker="*", markersize=13, color="grey", markeredgecolor="black")
    chance_proxy = plt.Line2D([], [], color="black", linestyle=(0, (1, 3)), linewidth=1.2)
    extra = ["thin flat line, open marker at 'ws': weighted-sum score (same style as the model)",
             "★ layer chosen on validation (most seeds)", "dotted black (test panel): chance level"]
    ncol = min(3, len(handles) + 3)
    fig.legend(handles + [ws_proxy, star, chance_proxy], labels + extra, loc="lower center", ncol=ncol,
               frameon=False, fontsize=9)
    rows = math.ceil((len(handles) + 3) / ncol)
    fig.tight_layout(rect=(0, 0.02 + 0.05 * rows, 1, 0.96))
    return fig


def _layer_ticks(ax, x_max: float, ws_x: float) -> None:
    ticks = list(range(int(x_max) + 1))
    step = max(1, math.ceil(len(ticks) / 13))
    shown = ticks[::step]
    ax.set_xticks(shown + [ws_x])
    ax.set_xticklabels([str(t) for t in shown] + ["ws"])
    ax.set_xlim(-0.6, ws_x + 0.6)


def _share_y(a, b) -> None:
    lo = min(a.get_ylim()[0], b.get_ylim()[0])
    hi = max(a.get_ylim()[1], b.get_ylim()[1])
    a.set_ylim(lo, hi)
    b.set_ylim(lo, hi)


def _weights_panel(ax, series: list[Series]) -> None:
    """Grouped bars: the mean learned softmax weight of each layer per model (error bars: sample std)."""
    # a weighted sum of a single state is that state (weight 1.0): nothing to show
    with_weights = [(i, s) for i, s in enumerate(series) if s.weights is not None and s.weights.shape[1] > 1]
    if not with_weights:
        ax.text(0.5, 0.5, "no weighted-sum head over several layers\nin these records", ha="center",
                va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return
    width = 0.8 / len(with_weights)
    legend = []  # explicit: matplotlib would leave out a model whose name starts with "_"
    for k, (i, s) in enumerate(with_weights):
        _, _, hatch = STYLES[i % len(STYLES)]
        mean = s.weights.mean(axis=0)
        err = s.weights.std(axis=0, ddof=1) if len(s.weights) > 1 else None
        x = np.arange(len(mean)) - 0.4 + width * (k + 0.5)
        bars = ax.bar(x, mean, width=width, yerr=err, color=COLORS[i % len(COLORS)], alpha=0.75, hatch=hatch,
                      edgecolor="black", linewidth=0.6, capsize=2, label=plot_text(s.label),
                      error_kw={"linewidth": 0.8})
        legend.append((bars, plot_text(s.label)))
        for patch in bars.patches:
            patch.set_gid(f"weights:{s.label}")
        uniform = 1.0 / len(mean)
        ax.plot([-0.5, len(mean) - 0.5], [uniform, uniform], color=COLORS[i % len(COLORS)],
                linestyle=STYLES[i % len(STYLES)][0], linewidth=1.0, gid=f"uniform:{s.label}")
    n_states = max(len(s.weights[0]) for _, s in with_weights)
    ax.set_xticks(range(n_states))
    if n_states > 13:
        ax.set_xticks(range(0, n_states, math.ceil(n_states / 13)))
    ax.set_xlim(-0.6, n_states - 0.4)
    ax.set_title("learned weighted-sum layer weights (mean over seeds)\nline: uniform weight 1/layers, model's style",
                 fontsize=10)
    ax.set_xlabel("layer (hidden state)")
    ax.set_ylabel("softmax weight")
    ax.legend([h for h, _ in legend], [label for _, label in legend], fontsize=8, frameon=False)
    ax.grid(True, axis="y", alpha=0.3)


def heatmap_figure(board: Leaderboard) -> Figure:
    """Model x task grid of the test score of the layer chosen on validation (each task's first metric).

    Colour is relative within each task column (tasks have different scales); the number in each cell is the
    score itself, so the figure reads without colour.
    """
    tasks = list(board.tasks)
    first = {t: next(c for c in board.columns if c.task == t) for t in tasks if any(c.task == t
                                                                                      for c in board.columns)}
    tasks = [t for t in tasks if t in first]
    rows = [r for r in board.rows if not r.published]
    several = len(board.protocols) > 1
    values = np.full((len(rows), len(tasks)), np.nan)
    spread = np.full_like(values, np.nan)
    seeds = np.zeros(values.shape, dtype=int)
    for i, r in enumerate(rows):
        for j, t in enumerate(tasks):
            cell = r.cells.get(first[t])
            if cell is not None:
                values[i, j], spread[i, j], seeds[i, j] = cell.mean, cell.std, cell.n
    relative = np.full_like(values, np.nan)
    for j in range(len(tasks)):
        col = values[:, j]
        lo, hi = np.nanmin(col) if np.isfinite(col).any() else 0, np.nanmax(col) if np.isfinite(col).any() else 1
        relative[:, j] = (col - lo) / (hi - lo) if hi > lo else 0.5
    fig, ax = plt.subplots(figsize=(max(6.5, 1.9 * len(tasks) + 3.5), max(3.0, 0.6 * len(rows) + 2.0)))
    cmap = plt.get_cmap("viridis").with_extremes(bad="white")
    ax.imshow(np.ma.masked_invalid(relative), cmap=cmap, vmin=0, vmax=1, aspect="auto")
    unit = "%" if board.percent else ""
    for i in range(len(rows)):
        for j in range(len(tasks)):
            if np.isnan(values[i, j]):
                ax.text(j, i, "—", ha="center", va="center", color="black", gid="cell")
                continue
            digits = 1 if board.percent else 3
            text = f"{values[i, j]:.{digits}f}\n"
            if not np.isnan(spread[i, j]):
                text += f"± {spread[i, j]:.{digits}f} "
            text += f"({seeds[i, j]})"
            dark = relative[i, j] < 0.55
            ax.text(j, i, text, ha="center", va="center", fontsize=9, color="white" if dark else "black",
                    fontweight="bold" if relative[i, j] == 1.0 else "normal", gid="cell")
    ax.set_xticks(range(len(tasks)))
    ax.set_xticklabels([f"{plot_text(t)}\n{plot_text(first[t].metric)}{' (' + unit + ')' if unit else ''}"
                        for t in tasks], fontsize=9)
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels([plot_text(f"{r.key.label} ({r.key.protocol})" if several else r.key.label) for r in rows],
                       fontsize=9)
    ax.set_title("Test score of the layer chosen on validation\nmean ± sample std (seeds); colour relative "
                 "within a task;\nbold: best in the task", fontsize=10)
    fig.tight_layout()
    return fig


def save(fig: Figure, stem: Path) -> list[Path]:
    """Write ``<stem>.png`` and ``<stem>.svg`` (no timestamp: regenerating unchanged records gives the same SVG)."""
    stem.parent.mkdir(parents=True, exist_ok=True)
    # appended, not with_suffix: that would cut a stem with a dot in it ("task.v2_layers" -> "task.png")
    paths = [stem.parent / f"{stem.name}.png", stem.parent / f"{stem.name}.svg"]
    fig.savefig(paths[0], dpi=150)
    with plt.rc_context({"svg.fonttype": "none", "svg.hashsalt": "mir-probe"}):  # text stays text; stable ids
        fig.savefig(paths[1], metadata={"Date": None})
    plt.close(fig)
    return paths


def plot_command(config: dict[str, Any], console=None) -> list[Path]:
    """Per-task layer figures for the requested tasks (default: all) and the heat map; returns the files."""
    from benchmark.console import make_console
    from benchmark.leaderboard.command import as_list, read_records, records_source

    console = console or make_console()
    results_dir, source = records_source(config)
    records = read_records(source)  # the leaderboard's validation: bad files named on stderr and skipped
    models = as_list(config.get("models"))
    if models:
        records = [r for r in records if r.model in models]
    if not records:
        raise ValueError(f"no run records under {source}{f' for models {models}' if models else ''}; "
                         "records are written by `python -m benchmark run`")
    tasks = as_list(config.get("tasks")) or sorted({r.task for r in records})
    known = {r.task for r in records}
    missing = [t for t in tasks if t not in known]
    if missing:
        raise ValueError(f"no run records for task(s) {missing} under {source}; tasks with records: "
                         f"{', '.join(sorted(known)) or 'none'}")
    out_dir = Path(config.get("plots_dir") or results_dir / "plots")
    percent = bool(config.get("percent", True))
    written: list[Path] = []
    for task in tasks:
        # the task name comes from the records: never a path (../../x) out of the plots folder
        written += save(layer_figure(records, task, percent=percent), out_dir / f"{file_stem(task)}_layers")
    board = build_leaderboard(records, percent=percent, ddof=int(config.get("ddof", 1)))
    written += save(heatmap_figure(board), out_dir / "heatmap")
    for path in written:
        console.print(rich_text(f"wrote {path}"))
    return written
