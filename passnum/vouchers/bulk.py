"""Fast insertion of freshly issued vouchers: COPY on PostgreSQL (psycopg 3), batched INSERTs on SQLite.

Each chunk runs in a savepoint; a code collision (unique index) regenerates that chunk's colliding codes and
retries, so a million vouchers issue in one transaction without ever holding a duplicate."""

from collections.abc import Callable, Iterable

from django.db import IntegrityError, connection, transaction

from passnum.vouchers import codes
from passnum.vouchers.enums import VoucherStatus
from passnum.vouchers.models import Booklet, Voucher

CHUNK = 20_000
COLUMNS = ("booklet_id", "program_id", "position", "code", "face_value_cents", "status", "cancel_reason")


def _table() -> str:
    return connection.ops.quote_name(Voucher._meta.db_table)


def _copy(rows: list[tuple]) -> None:
    with connection.cursor() as cursor, connection.wrap_database_errors:
        pg = cursor.cursor  # the psycopg 3 cursor under Django's wrapper
        with pg.copy(f"COPY {_table()} ({', '.join(COLUMNS)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)


def _insert(rows: list[tuple]) -> None:
    placeholders = ", ".join(["%s"] * len(COLUMNS))
    sql = f"INSERT INTO {_table()} ({', '.join(COLUMNS)}) VALUES ({placeholders})"  # noqa: S608 — names from the model
    with connection.cursor() as cursor:
        cursor.executemany(sql, rows)


def insert_vouchers(
    specs: Iterable[tuple[int, int, int, int]],
    *,
    total: int,
    on_progress: Callable[[int, int], None] | None = None,
) -> int:
    """`specs` yields (booklet_id, program_id, position, face_value_cents). Returns the number inserted."""
    write = _copy if connection.vendor == "postgresql" else _insert
    done = 0
    chunk: list[tuple] = []

    def flush() -> None:
        nonlocal done, chunk
        for attempt in range(5):
            try:
                with transaction.atomic():
                    write(chunk)
                break
            except IntegrityError:
                if attempt == 4:
                    raise
                codes_in_chunk = [row[3] for row in chunk]
                taken = set(Voucher.objects.filter(code__in=codes_in_chunk).values_list("code", flat=True))
                seen: set[str] = set()
                fixed = []
                for row in chunk:
                    code = row[3]
                    while code in taken or code in seen:
                        code = codes.generate_code()
                    seen.add(code)
                    fixed.append((*row[:3], code, *row[4:]))
                chunk = fixed
        done += len(chunk)
        chunk = []
        if on_progress:
            on_progress(done, total)

    for booklet_id, program_id, position, value in specs:
        chunk.append((booklet_id, program_id, position, codes.generate_code(), value, VoucherStatus.ISSUED, ""))
        if len(chunk) >= CHUNK:
            flush()
    if chunk:
        flush()
    return done


def insert_booklets(*, program_id: int, first: int, count: int, issued_at) -> list[int]:
    """Create booklets numbered first…first+count-1; returns their ids in number order."""
    if connection.vendor == "postgresql":
        table = connection.ops.quote_name(Booklet._meta.db_table)
        sql = f"COPY {table} (program_id, number, issued_at, hand_out_key) FROM STDIN"
        with connection.cursor() as cursor, connection.wrap_database_errors, cursor.cursor.copy(sql) as copy:
            for i in range(count):
                copy.write_row((program_id, first + i, issued_at, ""))
    else:
        Booklet.objects.bulk_create(
            [Booklet(program_id=program_id, number=first + i, issued_at=issued_at) for i in range(count)],
            batch_size=5000,
        )
    return list(
        Booklet.objects.filter(program_id=program_id, number__gte=first, number__lt=first + count)
        .order_by("number")
        .values_list("id", flat=True)
    )
