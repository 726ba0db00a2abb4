"""What an import did: the report every caller (admin, command, task) reads."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

MAX_ERRORS = 1000  # kept in the report; `skipped` and `errors_omitted` still count every one
PREVIEW_ROWS = 20


@dataclass(frozen=True)
class RowError:
    line: int  # 1-based physical line in the file; the header is line 1
    column: str  # the column's name as written in the file's header ("" when not about one column)
    reason: str


@dataclass
class ImportReport:
    created: int = 0
    updated: int = 0
    skipped: int = 0
    errors: list[RowError] = field(default_factory=list)
    rejected: str | None = None  # why the whole file was refused; nothing was changed
    errors_omitted: int = 0  # row errors beyond MAX_ERRORS, counted but not kept
    ignored_columns: list[str] = field(default_factory=list)  # header cells we did not understand
    preview: list[dict[str, Any]] = field(default_factory=list)  # first PREVIEW_ROWS rows, as stored

    @property
    def exit_code(self) -> int:
        """0 clean, 1 some rows skipped, 2 file rejected."""
        if self.rejected:
            return 2
        return 1 if self.skipped or self.errors else 0

    def add_error(self, error: RowError) -> None:
        if len(self.errors) < MAX_ERRORS:
            self.errors.append(error)
        else:
            self.errors_omitted += 1
