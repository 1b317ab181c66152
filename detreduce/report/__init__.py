"""Sweep reports: summary tables, plots and a Markdown report from ``results.csv``."""

from detreduce.report.markdown import write_report
from detreduce.report.tables import pareto_front, summary_table

__all__ = ["pareto_front", "summary_table", "write_report"]
