"""Database helpers that must work on both PostgreSQL and SQLite."""

from django.db import connection


def install_append_only_triggers(schema_editor, table: str) -> None:
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(
            """
            CREATE OR REPLACE FUNCTION passnum_refuse_change() RETURNS trigger AS $$
            BEGIN
              RAISE EXCEPTION 'append-only table %: % refused', TG_TABLE_NAME, TG_OP;
            END;
            $$ LANGUAGE plpgsql;
            """,
            params=None,  # the body's % are PL/pgSQL placeholders, not driver parameters
        )
        schema_editor.execute(
            f'CREATE TRIGGER "{table}_append_only" BEFORE UPDATE OR DELETE ON "{table}" '
            "FOR EACH ROW EXECUTE FUNCTION passnum_refuse_change();"
        )
    elif vendor == "sqlite":
        # UPDATE only: Django's test flush on SQLite empties tables with DELETE. SQLite is the demo engine;
        # the ORM refuses deletes everywhere, PostgreSQL (production) refuses them in the database too.
        schema_editor.execute(
            f'CREATE TRIGGER "{table}_no_update" BEFORE UPDATE ON "{table}" '
            f"BEGIN SELECT RAISE(ABORT, 'append-only table {table}: UPDATE refused'); END;"
        )


def drop_append_only_triggers(schema_editor, table: str) -> None:
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(f'DROP TRIGGER IF EXISTS "{table}_append_only" ON "{table}";')
    elif vendor == "sqlite":
        schema_editor.execute(f'DROP TRIGGER IF EXISTS "{table}_no_update";')


def is_postgresql() -> bool:
    return connection.vendor == "postgresql"
