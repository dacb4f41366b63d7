from django.db import models


class AppendOnlyQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise TypeError(f"{self.model.__name__} is append-only: no update")

    def delete(self):
        raise TypeError(f"{self.model.__name__} is append-only: no delete")


class AppendOnlyModel(models.Model):
    """Rows are written once. The database refuses UPDATE and DELETE too (triggers in the migrations)."""

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        abstract = True

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise TypeError(f"{type(self).__name__} is append-only: no update")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise TypeError(f"{type(self).__name__} is append-only: no delete")
