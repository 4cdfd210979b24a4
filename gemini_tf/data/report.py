"""`DataReport`: every row read is either used or skipped for a named reason.

Loaders never drop data silently. By default a bad row is skipped, counted per
reason and, for the first few, remembered as `file:line`; with `strict=True`
the first bad row raises a `DataError` that names it.
"""

from __future__ import annotations

import collections
import dataclasses

REASONS = {
    "missing_image": "image file not found",
    "unreadable_image": "image file is empty, truncated or not an image",
    "empty_text": "text is empty",
    "bad_label": "label is not 0/1, true/false or yes/no",
    "outside_root": "image path escapes the manifest's folder",
}
MAX_OFFENDERS = 5


class DataError(ValueError):
    """A bad row in strict mode, or a source that cannot be read at all."""


@dataclasses.dataclass
class DataReport:
    """Counts of rows read, used and skipped per reason, for one data source."""

    source: str
    strict: bool = False
    rows_read: int = 0
    used: int = 0
    skipped: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    offenders: list[str] = dataclasses.field(default_factory=list)

    def skip(self, where: str, reason: str, detail: str = "") -> None:
        """Records (or, in strict mode, raises for) one bad row at `where` (file:line)."""
        message = f"{where}: {REASONS[reason]}{f' ({detail})' if detail else ''}"
        if self.strict:
            raise DataError(message)
        self.skipped[reason] += 1
        if len(self.offenders) < MAX_OFFENDERS:
            self.offenders.append(message)

    @property
    def num_skipped(self) -> int:
        return sum(self.skipped.values())

    def summary(self) -> str:
        lines = [f"{self.source}: {self.rows_read} rows read, {self.used} used, {self.num_skipped} skipped"]
        lines += [f"  {reason}: {count}" for reason, count in sorted(self.skipped.items())]
        lines += [f"  e.g. {offender}" for offender in self.offenders]
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {
            "source": self.source,
            "rows_read": self.rows_read,
            "used": self.used,
            "skipped": dict(self.skipped),
            "offenders": list(self.offenders),
        }
