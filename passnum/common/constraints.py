"""A foreign key over several columns, which Django 5.2 does not have.

`CompositeForeignKey(fields=["claim", "funder"], to="settlement.Claim", to_fields=["id", "funder"], name=…)`
in a model's `Meta.constraints` makes the database check that (claim_id, funder_id) is a row of the claim
table: the claim exists *and* the line's funder is the claim's. One check where two single-column keys would
make two and still let the funder disagree with the claim. The target columns need a unique constraint.

Like Django's own foreign keys it is deferred to the commit. PostgreSQL gets `ALTER TABLE … ADD CONSTRAINT`;
SQLite, which cannot add a constraint to a table, gets it in the table's definition when Django rebuilds it."""

from django.db import DEFAULT_DB_ALIAS
from django.db.models import BaseConstraint


class CompositeForeignKey(BaseConstraint):
    def __init__(self, *, fields, to, to_fields, name, **kwargs):
        if len(fields) != len(to_fields) or len(fields) < 2:
            raise ValueError("CompositeForeignKey: as many target fields as fields, two or more")
        super().__init__(name=name, **kwargs)
        self.fields = tuple(fields)
        self.to = to
        self.to_fields = tuple(to_fields)

    def _target(self, model):
        # The first field is a foreign key to the target: its model is resolved in whatever registry `model` lives
        # in (a migration's historical models, or the throwaway one SQLite rebuilds a table with).
        target = model._meta.get_field(self.fields[0]).related_model
        if target is None or isinstance(target, str) or target._meta.label_lower != self.to.lower():
            raise ValueError(f"{self.name}: {self.fields[0]} must be a foreign key to {self.to}")
        return target

    def _definition(self, model, schema_editor) -> str:
        quote = schema_editor.quote_name
        target = self._target(model)
        columns = ", ".join(quote(model._meta.get_field(f).column) for f in self.fields)
        to_columns = ", ".join(quote(target._meta.get_field(f).column) for f in self.to_fields)
        return (
            f"FOREIGN KEY ({columns}) REFERENCES {quote(target._meta.db_table)} ({to_columns}) "
            "DEFERRABLE INITIALLY DEFERRED"
        )

    def constraint_sql(self, model, schema_editor):
        return f"CONSTRAINT {schema_editor.quote_name(self.name)} {self._definition(model, schema_editor)}"

    def create_sql(self, model, schema_editor):
        table = schema_editor.quote_name(model._meta.db_table)
        return f"ALTER TABLE {table} ADD {self.constraint_sql(model, schema_editor)}"

    def remove_sql(self, model, schema_editor):
        table = schema_editor.quote_name(model._meta.db_table)
        return f"ALTER TABLE {table} DROP CONSTRAINT {schema_editor.quote_name(self.name)}"

    def validate(self, model, instance, exclude=None, using=DEFAULT_DB_ALIAS):
        """The database checks it at commit; model validation has nothing to add."""

    def __eq__(self, other):
        if isinstance(other, CompositeForeignKey):
            return (self.name, self.fields, self.to, self.to_fields) == (
                other.name,
                other.fields,
                other.to,
                other.to_fields,
            )
        return super().__eq__(other)

    def __repr__(self):
        return f"<{self.__class__.__name__}: {self.fields} → {self.to}{self.to_fields} name={self.name!r}>"

    def deconstruct(self):
        path, args, kwargs = super().deconstruct()
        kwargs.update(fields=list(self.fields), to=self.to, to_fields=list(self.to_fields))
        return path, args, kwargs
