"""The labelled evaluation set (voice/tests/data): intent accuracy and privacy, measured and enforced.

Run with `-s` to see the report: `pytest voice/tests/test_eval_set.py -s`.
"""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync
from django.db import transaction

from voice.evaluation import EvalReport, EvalRun, build_shop, load

pytestmark = pytest.mark.django_db


def _run(django_db_blocker, **files: str) -> EvalReport:
    with django_db_blocker.unblock(), transaction.atomic():
        result = async_to_sync(EvalRun(build_shop(), **files).run)()
        transaction.set_rollback(True)
    return result


def _print(title: str, result: EvalReport) -> None:
    print(f"\n{title}: {result.summary()}")
    for line in result.misses + result.failures + result.leaks:
        print("  " + line)


@pytest.fixture(scope="module")
def report(django_db_setup, django_db_blocker):
    result = _run(django_db_blocker)
    _print("evaluation set", result)
    return result


@pytest.fixture(scope="module")
def holdout(django_db_setup, django_db_blocker):
    result = _run(django_db_blocker, utterances="eval_holdout.json", conversations="eval_holdout.json")
    _print("held-out set", result)
    return result


def test_it_has_a_big_enough_labelled_set():
    assert len(load("eval_utterances.json")["utterances"]) >= 300
    assert len(load("eval_conversations.json")["conversations"]) >= 30


def test_it_classifies_at_least_95_percent_of_intents_correctly(report):
    assert report.utterance_accuracy >= 0.95, report.summary()
    assert report.turn_accuracy >= 0.95, report.summary()


def test_it_never_leaks_a_work_order_to_a_caller_not_verified_for_it(report, holdout):
    assert report.leaks == []
    assert holdout.leaks == []


def test_it_passes_the_conversations_checks(report):
    assert report.check_rate >= 0.95, "\n".join(report.failures)


def test_it_extracts_the_labelled_entities(report):
    assert report.entity_accuracy >= 0.9, report.summary()


def test_it_does_about_as_well_on_phrasings_it_was_not_tuned_on(holdout):
    assert holdout.accuracy >= 0.9, holdout.summary()
