"""Deprecated name of fastcnn.tables (and bench.charts.bar_chart), kept while benchmarks/seeds.py imports it."""
from ..tables import cells, csv_text, markdown, read_csv, text, write_table, write_text  # noqa: F401
from .charts import bar_chart  # noqa: F401
