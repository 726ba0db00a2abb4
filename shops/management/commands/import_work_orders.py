from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from shops.importing import import_work_orders
from shops.models import Shop


class Command(BaseCommand):
    help = (
        "Import a CSV export of work orders into a shop (updates by RO number). "
        "Exit status: 0 all rows imported, 1 some rows skipped, 2 file rejected or bad arguments."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("shop", help="the shop's slug")
        parser.add_argument("file", type=Path, help="the CSV file")
        parser.add_argument("--dry-run", action="store_true", help="check the file and report; change nothing")

    def handle(self, *args: Any, **options: Any) -> None:
        shop = Shop.objects.filter(slug=options["shop"]).first()
        if shop is None:
            raise CommandError(f"No shop with slug {options['shop']!r}.", returncode=2)
        path: Path = options["file"]
        if not path.is_file():
            raise CommandError(f"No such file: {path}", returncode=2)

        report = import_work_orders(shop=shop, file=path, dry_run=options["dry_run"])
        if report.rejected:
            raise CommandError(f"File rejected, nothing changed: {report.rejected}", returncode=2)

        self.stdout.write(f"created {report.created}, updated {report.updated}, skipped {report.skipped}")
        for error in report.errors:
            self.stdout.write(f"line {error.line}, column {error.column or '-'}: {error.reason}")
        if report.errors_omitted:
            self.stdout.write(f"… and {report.errors_omitted} more errors")
        if options["dry_run"]:
            self.stdout.write("Dry run: nothing was saved.")
        if report.exit_code:
            raise CommandError(f"{report.skipped} row(s) skipped, see above.", returncode=report.exit_code)
