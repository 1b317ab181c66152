"""Reports: summary tables, plots and a Markdown report from ``results.csv``, and the
self-contained HTML page of one reduction (``detreduce show``)."""

from detreduce.report.html import write_selection_page
from detreduce.report.markdown import write_report
from detreduce.report.tables import pareto_front, summary_table

__all__ = ["pareto_front", "summary_table", "write_report", "write_selection_page"]
