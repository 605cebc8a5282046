"""Leaderboards from run records: mean ± std over seeds per model and task metric, in four formats.

Every number comes from the JSON run records the runner writes (``<results_dir>/runs/**.json``); nothing is
typed in by hand, so ``results/leaderboard.md`` can always be regenerated and checked against the records.

Rules (the ones a reader of a paper table needs to trust it):

- A cell is the *test* score of the layer selected on *validation* (or, with ``by_layer``, of one given layer),
  as a mean over seeds ± the **sample** standard deviation (``ddof=1``; one seed shows no spread) with the seed
  count: ``74.8 ± 1.0 (3)``. Scores are shown in percent, the scale the published tables use.
- Seeds are only averaged within one ``protocol_checksum`` (the run's full config minus seed and file locations):
  runs made with other probe / trainer / model / task settings are never mixed. Rows carry a protocol id; the
  settings that tell the protocols apart are named under the table.
- The average column averages a task's metrics first, then the tasks (so a task with two metrics weighs as much
  as a task with one), over the tasks the row has; a row with fewer tasks than the table is marked.
- ``published=marble`` adds the MARBLE paper's rows (``results/reference/``), marked as published, and a delta
  column (ours minus published) for each metric the paper reports where we measured the same model and task.

Modules, in the order data flows: ``records`` (files -> validated, migrated RunRecords), ``grouping`` (protocols
and row keys), ``table`` (cells over seeds, averages, ranks), ``published`` (reference rows and deltas), ``build``
(the pipeline), ``render`` (the four formats from one cell iterator, record text escaped by ``escape``),
``command`` (the CLI command). Records are exchanged files: ``records`` checks every field it reads (numbers must
be finite JSON numbers within their metric's range) and skips a bad file with its name and the reason. Rendering
reads only the records: no config file of this checkout changes how a record is shown (the one exception is the
migration of records written before ``schema_version`` existed, see ``records``).
"""
from benchmark.leaderboard.build import build_leaderboard
from benchmark.leaderboard.command import FORMATS, as_list, leaderboard_command, read_records
from benchmark.leaderboard.escape import csv_text, latex_comment, markdown_code, markdown_escape, one_line, rich_text
from benchmark.leaderboard.grouping import (
    SUMMARY_KEYS, Grouped, Protocol, RowKey, flatten, group_records, shared_settings,
)
from benchmark.leaderboard.published import PUBLISHED, REFERENCE_DIR, add_published, read_published
from benchmark.leaderboard.records import (
    METRIC_RANGES, REQUIRED_KEYS, RecordScan, Skipped, as_record, check_record, load_records, metric_range, migrate,
    parse_record, read_record, scan_records,
)
from benchmark.leaderboard.render import (
    CellValue, ValueColumn, cell_parts, cell_text, default_decimals, delta_text, fmt_number, latex_escape, notes,
    render_csv, render_latex, render_markdown, render_terminal, row_values, value_columns,
)
from benchmark.leaderboard.table import (
    BOOKKEEPING_METRICS, FIELD_METRICS, Cell, Column, Leaderboard, Row, chosen_layers_text, ranks, records_frame,
    row_average, sort_rows, task_metrics,
)
from benchmark.run_record import WEIGHTED_SUM, LayerScores, RunRecord

__all__ = [
    "BOOKKEEPING_METRICS", "FIELD_METRICS", "FORMATS", "METRIC_RANGES", "PUBLISHED", "REFERENCE_DIR",
    "REQUIRED_KEYS", "SUMMARY_KEYS", "WEIGHTED_SUM", "Cell", "CellValue", "Column", "Grouped", "LayerScores",
    "Leaderboard", "Protocol", "RecordScan", "Row", "RowKey", "RunRecord", "Skipped", "ValueColumn",
    "add_published", "as_list", "as_record", "build_leaderboard", "cell_parts", "cell_text", "check_record",
    "chosen_layers_text", "csv_text", "default_decimals", "delta_text", "flatten", "fmt_number", "group_records",
    "latex_comment", "latex_escape", "leaderboard_command", "load_records", "markdown_code", "markdown_escape",
    "metric_range", "migrate", "notes", "one_line", "parse_record", "ranks", "read_published", "read_record",
    "read_records", "records_frame", "render_csv", "render_latex", "render_markdown", "render_terminal",
    "rich_text", "row_average", "row_values", "scan_records", "shared_settings", "sort_rows", "task_metrics",
    "value_columns",
]
