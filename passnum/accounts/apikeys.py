"""API keys: an organisation's software calls /api/v1/ with `Authorization: Bearer <key>`.

A key is "pn_" + 43 URL-safe characters (256 random bits from `secrets`). Only its SHA-256 is stored (a fast hash is
enough for 256 random bits: nothing to brute-force) and its first 10 characters, so that people can tell their keys
apart. The key itself is shown once, at creation, and never again: it is in no URL, no log, no journal.

Only distributors and places use the API (hand-out, redemption). Who may create or revoke a key (the organisation's
admins) is checked by the views (accounts.perms.is_admin); the command is for the operator's staff."""

import hashlib
import secrets

from django.db import connection, transaction
from django.utils import timezone

from passnum.accounts.enums import OrganisationKind
from passnum.accounts.models import ApiKey, Organisation
from passnum.common.errors import DomainError, InvalidTransition
from passnum.journal.services import journal_record

KEY_PREFIX = "pn_"
PREFIX_LENGTH = 10  # "pn_" + 7 characters: shown in lists, enough to tell keys apart
MAX_KEY_LENGTH = 100  # a real key has 46 characters; anything much longer is not a key (no query for it)
NAME_MAX_LENGTH = ApiKey._meta.get_field("name").max_length
API_KINDS = (OrganisationKind.DISTRIBUTOR, OrganisationKind.PLACE)


def key_hash(raw: str) -> str:
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


def api_key_create(*, organisation: Organisation, name: str, actor=None) -> tuple[ApiKey, str]:
    """A new key for `organisation`: (the stored key, the key in clear). Show the clear key once, then forget it."""
    name = " ".join((name or "").split())
    if not name:
        raise DomainError(
            "Donnez un nom à la clé, par exemple le logiciel qui l’utilisera.", code="name_required", field="name"
        )
    if len(name) > NAME_MAX_LENGTH:
        raise DomainError(
            f"Le nom de la clé fait au plus {NAME_MAX_LENGTH} caractères.", code="name_too_long", field="name"
        )
    if organisation.kind not in API_KINDS:
        raise DomainError(
            "Seuls les prescripteurs et les lieux de médiation numérique utilisent l’API.", code="api_not_for_kind"
        )
    if not organisation.is_active:
        raise DomainError("Cette organisation est désactivée.", code="organisation_inactive")
    raw = KEY_PREFIX + secrets.token_urlsafe(32)
    with transaction.atomic():
        api_key = ApiKey.objects.create(
            organisation=organisation,
            name=name,
            prefix=raw[:PREFIX_LENGTH],
            key_hash=key_hash(raw),
            created_by=actor if getattr(actor, "is_authenticated", False) else None,
        )
        journal_record(
            action="api_key.create",
            actor=actor,
            organisation=organisation,
            obj=api_key,
            data={"name": name, "prefix": api_key.prefix},
        )
    return api_key, raw


def api_key_revoke(*, api_key: ApiKey, actor=None) -> ApiKey:
    """Revoke the key: from now on every request made with it is refused (401). Cannot be undone."""
    with transaction.atomic():
        api_key = ApiKey.objects.select_for_update().select_related("organisation").get(pk=api_key.pk)
        if api_key.revoked_at is not None:
            raise InvalidTransition("Cette clé est déjà révoquée.", code="api_key_revoked")
        api_key.revoked_at = timezone.now()
        api_key.revoked_by = actor if getattr(actor, "is_authenticated", False) else None
        api_key.save(update_fields=["revoked_at", "revoked_by"])
        journal_record(
            action="api_key.revoke",
            actor=actor,
            organisation=api_key.organisation,
            obj=api_key,
            data={"name": api_key.name, "prefix": api_key.prefix},
        )
    return api_key


def api_key_authenticate(raw: str | None) -> ApiKey | None:
    """The active key of an active organisation matching `raw`, with its organisation, in one query; else None.

    Every API request starts here: the statement is written once per process (not rebuilt by the ORM each time),
    and its text never changes, so that PostgreSQL prepares it once per connection. Not cached: a revoked key is
    refused from the next request on."""
    raw = (raw or "").strip()
    if not raw.startswith(KEY_PREFIX) or len(raw) > MAX_KEY_LENGTH:
        return None
    with connection.cursor() as cursor:
        cursor.execute(_authenticate_sql(), [key_hash(raw)])
        row = cursor.fetchone()
    if row is None:
        return None
    api_key = _build(ApiKey, "k", row, 0)
    api_key.organisation = _build(Organisation, "o", row, len(ApiKey._meta.concrete_fields))
    return api_key


_SQL: dict[str, str] = {}
_CONVERTERS: dict[tuple, list] = {}


def _authenticate_sql() -> str:
    sql = _SQL.get(connection.vendor)
    if sql is None:
        qn = connection.ops.quote_name

        def columns(model, alias):
            return ", ".join(f"{alias}.{qn(f.column)}" for f in model._meta.concrete_fields)

        sql = _SQL[connection.vendor] = (
            f"SELECT {columns(ApiKey, 'k')}, {columns(Organisation, 'o')} "  # noqa: S608 (names only)
            f"FROM {ApiKey._meta.db_table} k INNER JOIN {Organisation._meta.db_table} o ON o.id = k.organisation_id "
            "WHERE k.key_hash = %s AND k.revoked_at IS NULL AND o.is_active LIMIT 1"
        )
    return sql


def _build(model, alias: str, row, start: int):
    """An instance of `model` from its columns in `row` (from `start`), with each field's converters, as the ORM
    builds it."""
    fields = model._meta.concrete_fields
    converters = _CONVERTERS.get((model, connection.vendor))
    if converters is None:
        converters = _CONVERTERS[(model, connection.vendor)] = [
            (col, connection.ops.get_db_converters(col) + col.get_db_converters(connection))
            for col in (f.get_col(alias) for f in fields)
        ]
    values = list(row[start : start + len(fields)])
    for i, (col, funcs) in enumerate(converters):
        for func in funcs:
            values[i] = func(values[i], col, connection)
    return model.from_db(connection.alias, [f.attname for f in fields], values)


def api_keys_of(*, organisation: Organisation):
    """The organisation's keys, newest first, with who created and revoked them."""
    return (
        ApiKey.objects.filter(organisation=organisation)
        .select_related("created_by", "revoked_by")
        .order_by("-created_at", "-id")
    )


def api_key_get_for(*, organisation: Organisation, pk) -> ApiKey | None:
    """One key of the organisation (None for another organisation's: outsiders learn nothing)."""
    return api_keys_of(organisation=organisation).filter(pk=pk).first()
