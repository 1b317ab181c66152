"""The append-only results store of a sweep: ``OUT/results.csv``, one row per finished run.

Why CSV: anyone can read it (pandas, a spreadsheet, ``cat``), and appending one line is
the cheapest write that survives ``kill -9``. Each append is one ``write`` of a whole
line followed by flush + fsync under an exclusive file lock, so rows are never
interleaved and a killed process leaves at most one partial last line. Readers drop a
last line without its newline; the next writer cuts it off before appending.

Only the process that drives a sweep writes here (a distributed backend ships results
back to it), so the store does not change when the backend does.
"""

from __future__ import annotations

import csv
import fcntl
import io
import json
import logging
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from detreduce.sweep.record import COLUMNS, NUMERIC, RunRecord

log = logging.getLogger("detreduce")

RESULTS_NAME = "results.csv"

# The columns derive from the results schema, :class:`~detreduce.sweep.record.RunRecord`:
# COLUMNS in file order, NUMERIC those read back as numbers. Values that do not fit a
# cell (per-class AP, selection figures) are JSON strings so the file stays a plain table.


def _cell(value: Any) -> str:
    """One CSV cell: numbers as repr, containers as compact JSON, text on one line."""
    if value is None:
        return ""
    if isinstance(value, float):
        return "" if value != value else repr(value)  # NaN → empty
    if isinstance(value, dict | list | tuple):
        return json.dumps(value, sort_keys=True, default=_json_default, separators=(",", ":"))
    return " ".join(str(value).split())


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


class ResultsStore:
    """Append-only CSV of run rows; safe against kill -9 (loses at most the row being written)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    # ------------------------------------------------------------------ writing
    def append(self, row: RunRecord | dict[str, Any]) -> None:
        """Append one run row durably (whole line, flush, fsync, under an exclusive lock).

        ``row`` is a :class:`RunRecord` or its :meth:`~RunRecord.to_row` dict. Keys outside
        the file's header are kept in the ``figures`` JSON column when the header has one,
        so a newer detreduce can still append to an older file.
        """
        if isinstance(row, RunRecord):
            row = row.to_row()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a+b") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                header = self._header_locked(fh)
                line = self._format(row, header)
                fh.seek(0, os.SEEK_END)
                fh.write(line.encode("utf-8"))
                fh.flush()
                os.fsync(fh.fileno())
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def _header_locked(self, fh: io.BufferedRandom) -> list[str]:
        """The file's header, writing it if the file is new; cuts a partial last line."""
        fh.seek(0)
        data = fh.read()
        if not data.strip():
            fh.truncate(0)
            fh.write(self._format({c: c for c in COLUMNS}, list(COLUMNS)).encode())
            return list(COLUMNS)
        if not data.endswith(b"\n"):
            cut = data.rfind(b"\n") + 1
            log.warning(
                "%s: dropping a partially written last line (%d bytes) left by an interrupted run",
                self.path,
                len(data) - cut,
            )
            fh.truncate(cut)
            data = data[:cut]
            if not cut:  # only a partial header: start afresh
                fh.write(self._format({c: c for c in COLUMNS}, list(COLUMNS)).encode())
                return list(COLUMNS)
        first = data.split(b"\n", 1)[0].decode("utf-8")
        return next(csv.reader([first]))

    @staticmethod
    def _format(row: dict[str, Any], header: list[str]) -> str:
        row = dict(row)
        extra = {k: row.pop(k) for k in list(row) if k not in header}
        if extra and "figures" in header:
            figures = row.get("figures") or {}
            if isinstance(figures, str):
                figures = json.loads(figures) if figures else {}
            row["figures"] = {**figures, **extra}
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerow([_cell(row.get(c)) for c in header])
        return buf.getvalue()

    # ------------------------------------------------------------------ reading
    def rows(self) -> list[dict[str, str]]:
        """Every complete row as strings, in file order (a partial last line is dropped)."""
        if not self.path.exists():
            return []
        text = self.path.read_bytes().decode("utf-8", errors="replace")
        if text and not text.endswith("\n"):
            log.warning("%s: ignoring a partially written last line", self.path)
            text = text[: text.rfind("\n") + 1]
        lines = text.splitlines()
        if not lines:
            return []
        header = next(csv.reader([lines[0]]))
        out = []
        for lineno, fields in enumerate(csv.reader(lines[1:]), start=2):
            if len(fields) != len(header):
                log.warning("%s:%d: skipping a malformed row", self.path, lineno)
                continue
            out.append(dict(zip(header, fields, strict=True)))
        return out

    def records(self) -> list[RunRecord]:
        """Every complete row as a :class:`RunRecord`, in file order (typed, JSON parsed)."""
        return [RunRecord.from_row(row) for row in self.rows()]

    def frame(self, latest: bool = True) -> pd.DataFrame:
        """The rows as a DataFrame with numeric columns parsed.

        With ``latest`` only the last row of each ``run_id`` is kept (a failed run that
        was retried and then finished shows its final outcome).
        """
        df = pd.DataFrame(self.rows(), columns=None)
        if df.empty:
            return pd.DataFrame(columns=list(COLUMNS))
        for col in COLUMNS:  # a file written by hand or by an older version may lack some
            if col not in df:
                df[col] = ""
        for col in NUMERIC:
            df[col] = pd.to_numeric(df[col], errors="coerce")
        missing = df["run_id"].astype(str) == ""
        if missing.any():
            df.loc[missing, "run_id"] = [
                f"{m}_f{f:g}_s{s:g}"
                for m, f, s in zip(
                    df.loc[missing, "method"],
                    df.loc[missing, "fraction"],
                    df.loc[missing, "seed"],
                    strict=True,
                )
            ]
        if latest:
            df = df.drop_duplicates("run_id", keep="last").reset_index(drop=True)
        return df

    def finished(self, statuses: Iterable[str] = ("ok",)) -> set[str]:
        """Run ids whose last recorded status is one of ``statuses``."""
        wanted = set(statuses)
        last: dict[str, str] = {}
        for row in self.rows():
            last[row.get("run_id", "")] = row.get("status", "")
        return {rid for rid, status in last.items() if status in wanted}


def read_results(run_dir: str | os.PathLike[str], latest: bool = True) -> pd.DataFrame:
    """Read ``run_dir/results.csv`` (or a results.csv path) into a DataFrame."""
    path = Path(run_dir)
    if path.is_dir():
        path = path / RESULTS_NAME
    return ResultsStore(path).frame(latest=latest)
