"""Meta-tests over every model of the project."""

import pytest
from django.apps import apps
from django.db import DatabaseError, connection, models, transaction

from passnum.journal.models import JournalEntry
from passnum.journal.services import journal_record

PROJECT_MODELS = [m for m in apps.get_models() if m.__module__.startswith("passnum.")]


def test_project_models_found():
    assert len(PROJECT_MODELS) >= 15


@pytest.mark.parametrize("model", PROJECT_MODELS, ids=lambda m: m._meta.label)
def test_money_is_integer_cents_and_never_float(model):
    for field in model._meta.get_fields():
        if not getattr(field, "concrete", False):
            continue
        if any(word in field.name for word in ("cents", "amount", "budget", "price", "value")):
            assert not isinstance(field, models.FloatField | models.DecimalField), f"{model.__name__}.{field.name}"
        if field.name.endswith("_cents"):
            assert isinstance(field, models.IntegerField), f"{model.__name__}.{field.name} must be an integer"


@pytest.mark.parametrize("model", PROJECT_MODELS, ids=lambda m: m._meta.label)
def test_models_have_str(model):
    assert model.__str__ is not models.Model.__str__, f"{model.__name__} has no __str__"


@pytest.mark.parametrize("model", PROJECT_MODELS, ids=lambda m: m._meta.label)
def test_choice_fields_store_codes_not_labels(model):
    for field in model._meta.get_fields():
        for value, _label in getattr(field, "choices", None) or []:
            if isinstance(value, str):
                assert value == value.strip() and " " not in value, f"{model.__name__}.{field.name}: {value!r}"


@pytest.mark.django_db
def test_journal_is_append_only_in_the_database():
    entry = journal_record(action="test.write", data={"n": 1})
    with pytest.raises(TypeError):
        entry.save()
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE journal_journalentry SET action = 'x' WHERE id = %s", [entry.id])
    assert JournalEntry.objects.get(pk=entry.pk).action == "test.write"
