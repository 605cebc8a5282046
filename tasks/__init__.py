"""Tasks: one module per task (data reading, splits, label encoding); metrics live in benchmark.metrics."""
