from __future__ import annotations

import io
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from shops.management.commands.import_work_orders import Command
from shops.models import WorkOrder
from shops.tests.factories import ShopFactory

pytestmark = pytest.mark.django_db

SAMPLE = Path(__file__).parent / "data" / "work_orders_sample.csv"
WITH_ERRORS = (
    "RO Number,Customer Name,Customer Phone,Status\r\n"
    "1,Ann Lee,(555) 555-0101,Received\r\n"
    "2,Bo Diaz,not a phone,Ready\r\n"
    "3,Cy Young,,Sorta Done\r\n"
)


@pytest.fixture
def shop():
    return ShopFactory(slug="joes-garage")


def run(*args: str) -> tuple[str, CommandError | None]:
    out = io.StringIO()
    try:
        call_command("import_work_orders", *args, stdout=out, stderr=io.StringIO())
    except CommandError as exc:
        return out.getvalue(), exc
    return out.getvalue(), None


def test_it_imports_a_clean_file_and_exits_0(shop):
    out, error = run("joes-garage", str(SAMPLE))

    assert error is None
    assert out.splitlines() == ["created 40, updated 0, skipped 0"]
    assert WorkOrder.objects.filter(shop=shop).count() == 40


def test_it_prints_row_errors_and_exits_1(shop, tmp_path):
    path = tmp_path / "orders.csv"
    path.write_text(WITH_ERRORS)

    out, error = run("joes-garage", str(path))

    assert error is not None and error.returncode == 1
    assert out.splitlines() == [
        "created 1, updated 0, skipped 2",
        "line 3, column Customer Phone: not a usable phone number",
        "line 4, column Status: unknown status 'Sorta Done'",
    ]
    assert list(WorkOrder.objects.filter(shop=shop).values_list("number", flat=True)) == ["1"]


def test_it_exits_2_for_a_rejected_file_and_changes_nothing(shop, tmp_path):
    path = tmp_path / "orders.pdf"
    path.write_bytes(b"%PDF-1.4\n...")

    out, error = run("joes-garage", str(path))

    assert error is not None and error.returncode == 2
    assert "PDF" in str(error) and "nothing changed" in str(error)
    assert not WorkOrder.objects.exists()


def test_it_exits_2_for_an_unknown_shop(shop):
    _out, error = run("no-such-shop", str(SAMPLE))
    assert error is not None and error.returncode == 2
    assert "No shop with slug 'no-such-shop'" in str(error)


def test_it_exits_2_for_a_missing_file(shop, tmp_path):
    _out, error = run("joes-garage", str(tmp_path / "missing.csv"))
    assert error is not None and error.returncode == 2
    assert "No such file" in str(error)


def test_it_changes_nothing_in_a_dry_run(shop):
    out, error = run("joes-garage", str(SAMPLE), "--dry-run")

    assert error is None
    assert out.splitlines() == ["created 40, updated 0, skipped 0", "Dry run: nothing was saved."]
    assert not WorkOrder.objects.exists()


# The process exit status, as a shell or cron sees it (run_from_argv turns CommandError into sys.exit).
# It closes the database connections when it finishes, hence a transactional test.
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("content", "slug", "status"), [(WITH_ERRORS, "joes-garage", 1), ("%PDF-1", "joes-garage", 2), ("", "nope", 2)]
)
def test_it_sets_the_process_exit_status(tmp_path, capsys, content, slug, status):
    ShopFactory(slug="joes-garage")
    path = tmp_path / "orders.csv"
    path.write_text(content)

    with pytest.raises(SystemExit) as exited:
        Command().run_from_argv(["manage.py", "import_work_orders", slug, str(path)])

    assert exited.value.code == status
    assert "CommandError" in capsys.readouterr().err


@pytest.mark.django_db(transaction=True)
def test_it_exits_0_from_the_command_line_for_a_clean_file():
    ShopFactory(slug="joes-garage")
    Command().run_from_argv(["manage.py", "import_work_orders", "joes-garage", str(SAMPLE)])  # no SystemExit
    assert WorkOrder.objects.count() == 40
