"""The one CSV import of work orders, used by the admin page, `manage.py import_work_orders` and the
dashboard upload (through `start_work_order_import` and the Celery task in `shops.tasks`).

What a file may look like: whatever a shop-management system or a spreadsheet exports. UTF-8 with or
without BOM, cp1252/Latin-1, UTF-16 with BOM; CRLF, LF or CR line ends; comma, semicolon, tab or pipe
delimited; headers in the many spellings listed in `HEADER_SYNONYMS`; statuses in `STATUS_SYNONYMS`.

Decisions worth knowing:
- Status column is required, like the RO number: a file without one is rejected. Importing "received"
  for every row instead would silently move cars backwards on a re-import. An empty or unknown status
  is a row error.
- "In Shop" means `received`: it says the car is there, not that anyone is working on it, and the
  receptionist must not tell a caller work has started when it may not have.
- Dates are US month-first (`11/4/26`, `11/04/2026 10:00 AM`, `14:30`), ISO (`2026-11-04`,
  `2026-11-04T10:00`, with an offset or `Z`) or written out (`Nov 4 2026`). Times without an offset
  are in the shop's time zone. A date without a time means "that day": it is stored as the shop's
  closing time that weekday (latest `BusinessHours.closes_at`), or 17:00 when the shop has no hours
  that day, so the receptionist says "by the end of Wednesday" rather than "at midnight".
- Columns missing from the file are left alone on work orders that already exist (a file with only
  RO number and Status updates statuses and nothing else); an empty cell in a present column clears it.
- A cell that our own export escaped against spreadsheet formulas (`'=…`, `'+1…`) is un-escaped.

Transactions: each batch is written in its own transaction. Everything that can make the whole file
unusable (not a CSV, empty, header only, required columns missing) is decided before the first write,
so a rejected file changes nothing; row errors never block good rows; progress written by the
callback is visible to other connections while the import runs. An import that crashes half-way
leaves the batches before the crash, and running it again is safe (it updates by RO number).

Memory: rows are held one batch at a time. The only thing that grows with the file is the set of RO
numbers already seen (about 100 bytes each), which is how a number repeated in a later batch is
counted once.
"""

from shops.importing.jobs import preview_work_order_import, run_work_order_import, start_work_order_import
from shops.importing.report import MAX_ERRORS, PREVIEW_ROWS, ImportReport, RowError
from shops.importing.service import import_work_orders
from shops.importing.values import parse_datetime_text, parse_time_text, phone_to_e164, split_vehicle
from shops.importing.vocabulary import HEADER_SYNONYMS, MULTI_WORD_MAKES, STATUS_SYNONYMS

__all__ = [
    "HEADER_SYNONYMS",
    "MAX_ERRORS",
    "MULTI_WORD_MAKES",
    "PREVIEW_ROWS",
    "STATUS_SYNONYMS",
    "ImportReport",
    "RowError",
    "import_work_orders",
    "parse_datetime_text",
    "parse_time_text",
    "phone_to_e164",
    "preview_work_order_import",
    "run_work_order_import",
    "split_vehicle",
    "start_work_order_import",
]
