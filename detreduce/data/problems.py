"""Problems found in a dataset, and the policy that decides what happens to them.

``warn`` (default, as Ultralytics users expect) skips the bad item and keeps a record;
``raise`` stops at the first problem with a one-line :class:`DatasetError`.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import asdict, dataclass

from detreduce.errors import ConfigError, DatasetError

logger = logging.getLogger("detreduce")

ON_ERROR_CHOICES = ("warn", "raise")

#: Problem kinds, with what happens to the bad item under ``on_error='warn'``.
PROBLEM_KINDS: dict[str, str] = {
    "malformed_line": "label line skipped (wrong field count or non-numeric value)",
    "coords_out_of_range": "box skipped (normalized coordinate outside [0, 1] beyond tolerance)",
    "unknown_class": "box skipped (class id not in names)",
    "degenerate_box": "box skipped (zero or negative width or height)",
    "label_without_image": "label file ignored (no image with that stem)",
    "unreadable_image": "image skipped (missing, zero bytes, corrupt or truncated)",
    "duplicate_image": "later copy skipped (same bytes as an earlier image)",
    "unknown_image_id": "annotation skipped (image id not in the images list)",
    "unknown_category": "annotation skipped (category id not in the categories list)",
    "crowd_box": "iscrowd annotation skipped (use iscrowd='keep' to keep it)",
    "malformed_annotation": "annotation skipped (missing or invalid field)",
    "missing_annotation": "image skipped (listed in a split file but its annotation file is "
    "missing: not taken for a background image)",
    "split_overlap": "listing skipped (the image is also listed in another split: leakage; "
    "the evaluation split keeps it)",
    "empty_split": "split has no images",
}


@dataclass(frozen=True)
class Problem:
    """One problem: what kind, in which file, at which line (1-based) when it applies."""

    kind: str
    file: str
    message: str
    line: int | None = None

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        return f"{where}: {self.kind}: {self.message}"

    def to_dict(self) -> dict:
        return asdict(self)


class ProblemLog:
    """Collects problems while a dataset is read, applying the ``on_error`` policy."""

    def __init__(self, on_error: str = "warn") -> None:
        if on_error not in ON_ERROR_CHOICES:
            raise ConfigError(
                f"on_error must be one of {', '.join(ON_ERROR_CHOICES)}, got {on_error!r}"
            )
        self.on_error = on_error
        self.problems: list[Problem] = []

    def add(self, kind: str, file: str, message: str, line: int | None = None) -> None:
        problem = Problem(kind=kind, file=str(file), message=message, line=line)
        if self.on_error == "raise":
            raise DatasetError(str(problem))
        self.problems.append(problem)

    def counts(self) -> dict[str, int]:
        return dict(Counter(p.kind for p in self.problems))


def summarize(problems: list[Problem], first: int = 5) -> str:
    """Counts per kind and the first few problems, for one log message."""
    if not problems:
        return "no problems found"
    counts = Counter(p.kind for p in problems)
    head = ", ".join(f"{kind}: {n}" for kind, n in counts.most_common())
    lines = [f"{len(problems)} problem(s) skipped ({head}); first {min(first, len(problems))}:"]
    lines += [f"  {p}" for p in problems[:first]]
    return "\n".join(lines)
