"""Checking and redeeming vouchers at a place, and undoing a redemption: the desk's work, shared by the pages and
the API so that both refuse the same things with the same stable codes (REFUSALS, documented in docs/api.md).

Exactly once: every check is made again after locking the booklet's usable vouchers (lock → re-read → re-check),
and the partial unique index on Redemption (one active redemption per voucher) is the database's last barrier.
A retried request carrying the same idempotency key gets the first receipt back instead of a refusal.

Brute force: failed code checks (unknown, mistyped, forged) are counted per user (or API key), per organisation
and per IP address; past a limit every check is refused until the window ends, with the time to wait. Each
failure is journaled, without the code that was tried."""

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from passnum.common import ratelimit
from passnum.common.dates import french_date
from passnum.common.errors import DomainError
from passnum.common.money import format_euros
from passnum.common.standard import Service
from passnum.journal.services import journal_record
from passnum.places.enums import QualificationStatus
from passnum.places.models import Site, SiteService
from passnum.programs.models import Program
from passnum.programs.selectors import program_covers_commune_sql, program_shares
from passnum.settlement.enums import AccountKind, TransactionKind
from passnum.settlement.ledger import ledger_post, payable_account, program_account, split_by_shares
from passnum.vouchers import codes, signing
from passnum.vouchers.enums import VoucherStatus
from passnum.vouchers.models import Booklet, Receipt, Redemption, Voucher, VoucherStatusLog

S = VoucherStatus

# Stable code → HTTP status. The codes are a contract with API clients: never rename one.
REFUSALS: dict[str, int] = {
    "code_malformed": 422,
    "code_typo": 422,
    "qr_malformed": 422,
    "qr_unknown_key": 422,
    "qr_bad_signature": 422,
    "unknown_code": 404,
    "not_handed_out": 409,
    "not_yet_valid": 409,
    "expired": 409,
    "cancelled": 409,
    "already_redeemed": 409,
    "place_not_qualified": 403,
    "place_suspended": 403,
    "site_required": 422,
    "unknown_site": 404,
    "outside_territory": 403,
    "service_not_eligible": 422,
    "invalid_count": 422,
    "too_many_vouchers": 422,
    "not_enough_vouchers": 409,
    "rate_limited": 429,
    "idempotency_key_reused": 422,
    "reason_required": 422,
    "redemption_already_undone": 409,
    "undo_window_closed": 409,
    "redemption_claimed": 409,
    "not_a_place": 403,
}

# Failures that count towards the brute-force limit: someone may be guessing codes.
GUESS_FAILURES = frozenset(
    {"code_malformed", "code_typo", "qr_malformed", "qr_unknown_key", "qr_bad_signature", "unknown_code"}
)


class Refusal(DomainError):
    """A refused check, redemption or undo: a stable code (REFUSALS), a French message and, for some, context
    (dates, retry_after) that the API returns as extra members of its problem document."""

    def __init__(self, code: str, message: str, **context):
        super().__init__(message, code=code, **context)
        self.status = REFUSALS[code]


@dataclass(frozen=True)
class Desk:
    """Who is redeeming: the place (organisation), and the person or the API key acting for it, from where."""

    place: object
    user: object = None
    api_key: object = None
    ip: str = ""

    @property
    def actor(self):
        return self.user if getattr(self.user, "is_authenticated", False) else None

    def limit_keys(self) -> list[tuple[str, str]]:
        who = f"key:{self.api_key.pk}" if self.api_key is not None else f"user:{getattr(self.user, 'pk', '')}"
        return [("code_check:who", who), ("code_check:org", str(self.place.pk)), ("code_check:ip", self.ip or "?")]


@dataclass(frozen=True)
class EligibleService:
    code: str
    label: str
    max_vouchers: int


@dataclass
class Check:
    """What « Vérifier » shows: the voucher, its program, what is left in its booklet and what this site may do."""

    voucher: Voucher
    program: Program
    site: Site
    left: int
    services: list[EligibleService] = field(default_factory=list)

    @property
    def display_code(self) -> str:
        return codes.display(self.voucher.code)

    def service(self, code: str) -> EligibleService | None:
        return next((s for s in self.services if s.code == code), None)


# --- fixed statements ----------------------------------------------------------------------------------------
#
# The desk's reads have a fixed shape: their SQL is written once per process here, not rebuilt by the ORM on
# every request (a third of a redemption's CPU), and its text never changes, so that PostgreSQL prepares it once
# per connection (settings: server-side binding, DB_PREPARE_THRESHOLD). Rows become model instances through
# Model.from_db with each field's own converters, as the ORM does.


class _Columns:
    """Some columns of a model under a table alias: their SQL, and instances built from a row's slice."""

    def __init__(self, model, alias: str, only: tuple[str, ...] | None = None):
        self.model, self.alias = model, alias
        self.fields = [f for f in model._meta.concrete_fields if only is None or f.attname in only]
        self.names = [f.attname for f in self.fields]
        self._converters: dict[str, list] = {}

    def sql(self) -> str:
        qn = connection.ops.quote_name
        return ", ".join(f"{self.alias}.{qn(f.column)}" for f in self.fields)

    def build(self, row, start: int = 0):
        converters = self._converters.get(connection.vendor)
        if converters is None:
            converters = self._converters[connection.vendor] = [
                (col, connection.ops.get_db_converters(col) + col.get_db_converters(connection))
                for col in (f.get_col(self.alias) for f in self.fields)
            ]
        values = list(row[start : start + len(self.fields)])
        for i, (col, funcs) in enumerate(converters):
            for func in funcs:
                values[i] = func(values[i], col, connection)
        return self.model.from_db(connection.alias, self.names, values)


def _fixed(build) -> callable:
    """The SQL text `build()` writes, once per database vendor."""
    texts: dict[str, str] = {}

    def text() -> str:
        sql = texts.get(connection.vendor)
        if sql is None:
            sql = texts[connection.vendor] = build()
        return sql

    return text


def _rows(sql: str, params) -> list:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


# Sites: what the desk needs of them (the API and the pages show the name).
_SITE = _Columns(Site, "s", only=("id", "organisation_id", "name", "status", "commune_id"))
_SITES_SQL = _fixed(
    lambda: f"SELECT {_SITE.sql()} FROM {Site._meta.db_table} s WHERE s.organisation_id = %s ORDER BY s.name ASC"  # noqa: S608
)
_SITE_SQL = _fixed(
    lambda: f"SELECT {_SITE.sql()} FROM {Site._meta.db_table} s WHERE s.organisation_id = %s AND s.id = %s"  # noqa: S608
)

# A voucher with its program and booklet, and what the site may do with it (program_covers_commune, catalogue):
# one row per service of the site's catalogue (one row with NULLs if it has none), one round trip.
_VOUCHER, _PROGRAM, _BOOKLET = _Columns(Voucher, "v"), _Columns(Program, "p"), _Columns(Booklet, "b")
_FIND_SQL = _fixed(
    lambda: (
        f"SELECT {_VOUCHER.sql()}, {_PROGRAM.sql()}, {_BOOKLET.sql()}, "  # noqa: S608 (table names only)
        f"{program_covers_commune_sql('v.program_id')} AS covers, ss.service, ss.vouchers_per_session "
        f"FROM {Voucher._meta.db_table} v "
        f"INNER JOIN {Program._meta.db_table} p ON p.id = v.program_id "
        f"INNER JOIN {Booklet._meta.db_table} b ON b.id = v.booklet_id "
        f"LEFT OUTER JOIN {SiteService._meta.db_table} ss ON ss.site_id = %s "
        f"WHERE v.code = %s ORDER BY ss.service ASC"
    )
)

# The booklet's usable vouchers, locked (select_for_update: nothing on SQLite, which locks the whole database).
_LOCK_SQL = _fixed(
    lambda: (
        f"SELECT {_VOUCHER.sql()} FROM {Voucher._meta.db_table} v "  # noqa: S608
        "WHERE v.booklet_id = %s AND v.status = %s ORDER BY v.position ASC"
        + (" FOR UPDATE" if connection.features.has_select_for_update else "")
    )
)


# PostgreSQL: a redemption's rows in one statement (receipt, redemptions, status log, vouchers' status), as _write
# writes them through the ORM elsewhere. The partial unique index on Redemption and the receipt's idempotency key
# constraint apply to it as to separate statements (IntegrityError, the whole statement rolled back).
_WRITE_SQL = _fixed(
    lambda: (
        f"WITH r AS (INSERT INTO {Receipt._meta.db_table} (place_id, site_id, booklet_id, service, count, "  # noqa: S608
        "amount_cents, redeemed_by_id, api_key_id, redeemed_at, idempotency_key, undone_at, undo_reason, "
        "undone_by_id) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, NULL, '', NULL) RETURNING id), "
        f"d AS (INSERT INTO {Redemption._meta.db_table} (voucher_id, receipt_id, place_id, service, amount_cents, "
        "redeemed_by_id, redeemed_at, undone_at, undo_reason) SELECT x.id, r.id, %s::bigint, %s::varchar, x.amount, "
        "%s::bigint, %s::timestamptz, NULL, '' FROM r, UNNEST(%s::bigint[], %s::integer[]) AS x(id, amount)), "
        f"l AS (INSERT INTO {VoucherStatusLog._meta.db_table} (voucher_id, from_status, to_status, reason, actor_id, "
        "organisation_id, at) SELECT x.id, %s::varchar, %s::varchar, '', %s::bigint, %s::bigint, %s::timestamptz "
        "FROM UNNEST(%s::bigint[]) AS x(id)), "
        f"u AS (UPDATE {Voucher._meta.db_table} SET status = %s, redeemed_at = %s WHERE id = ANY(%s::bigint[])) "
        "SELECT id FROM r"
    )
)


@dataclass(frozen=True)
class _SiteFacts:
    """What _find read for a site along with the voucher: is the site's commune in the program's territory, and
    its catalogue [(service, vouchers per session)] in service order."""

    site_id: int
    covers: bool
    catalogue: list[tuple[str, int]]


# --- parsing and finding ------------------------------------------------------------------------------------


def parse_code(raw: str) -> str:
    """A typed code or a scanned QR payload → the canonical code; the QR's signature is verified."""
    raw = (raw or "").strip()
    prefix = signing.PREFIX + "."
    if raw[: len(prefix)].upper() == prefix:
        # Some scanners (keyboard wedges in lowercase mode) send the prefix as « pn1. »: only the prefix is
        # case-insensitive, the rest is signed as printed.
        try:
            raw = signing.verify_payload(prefix + raw[len(prefix) :])
        except signing.SignatureError as exc:
            raise Refusal(exc.code, str(exc)) from exc
    try:
        return codes.normalise(raw)
    except codes.CodeChecksumError as exc:
        raise Refusal("code_typo", str(exc)) from exc
    except codes.CodeFormatError as exc:
        raise Refusal("code_malformed", str(exc)) from exc


def _limits() -> dict[str, tuple[int, int]]:
    return settings.PASSNUM_CODE_CHECK_LIMITS


def _guard(desk: Desk) -> None:
    limits = _limits()
    checks = [(scope, key, *limits[scope.split(":")[1]]) for scope, key in desk.limit_keys()]
    retry_after = ratelimit.blocked(checks)
    if retry_after:
        minutes = max(1, -(-retry_after // 60))
        raise Refusal(
            "rate_limited",
            f"Trop de codes erronés : par sécurité, la vérification est bloquée. Réessayez dans {minutes} min.",
            retry_after=retry_after,
        )


def _count_failure(desk: Desk, refusal: Refusal) -> None:
    limits = _limits()
    for scope, key in desk.limit_keys():
        limit, window = limits[scope.split(":")[1]]
        ratelimit.hit(scope, key, limit=limit, window=window)
    journal_record(
        action="voucher.check_failed",
        actor=desk.actor,
        organisation=desk.place,
        data={"refusal": refusal.code, "api_key": getattr(desk.api_key, "pk", None)},
    )


def _find(desk: Desk, raw_code: str, site: Site) -> Voucher:
    """The voucher, with its program and booklet, and (voucher.site_facts) what `site` may do with it."""
    _guard(desk)
    try:
        code = parse_code(raw_code)
        rows = _rows(_FIND_SQL(), [site.commune_id, site.pk, code])
        if not rows:
            raise Refusal("unknown_code", "Code inconnu : aucun chèque ne porte ce code. Vérifiez la saisie.")
    except Refusal as exc:
        _count_failure(desk, exc)
        raise
    row = rows[0]
    voucher = _VOUCHER.build(row)
    at = len(_VOUCHER.fields)
    voucher.program = _PROGRAM.build(row, at)
    at += len(_PROGRAM.fields)
    voucher.booklet = _BOOKLET.build(row, at)
    at += len(_BOOKLET.fields)
    voucher.site_facts = _SiteFacts(
        site_id=site.pk,
        covers=bool(row[at] and site.commune_id),
        catalogue=[(r[at + 1], r[at + 2]) for r in rows if r[at + 1] is not None],
    )
    return voucher


def _already_redeemed(voucher: Voucher) -> Refusal:
    active = (
        Redemption.objects.filter(voucher=voucher, undone_at__isnull=True)
        .select_related("place", "receipt__site")
        .first()
    )
    if active is None:
        return Refusal("already_redeemed", "Ce chèque a déjà été encaissé.")
    where = active.receipt.site.name if active.receipt and active.receipt.site else active.place.name
    when = timezone.localtime(active.redeemed_at)
    return Refusal(
        "already_redeemed",
        f"Ce chèque a déjà été encaissé le {french_date(when.date())} à {when:%H:%M} par « {where} ».",
        redeemed_at=active.redeemed_at.isoformat(),
        place=where,
    )


def _check_usable(voucher: Voucher, today: dt.date) -> None:
    """The voucher itself, wherever it is presented."""
    program = voucher.program
    if voucher.status == S.ISSUED:
        raise Refusal(
            "not_handed_out",
            "Ce chèque n’a pas encore été remis à un bénéficiaire : il n’est pas utilisable. "
            "La personne doit le recevoir d’un prescripteur.",
        )
    if voucher.status == S.CANCELLED:
        raise Refusal("cancelled", "Ce chèque a été annulé (perdu, volé ou retiré) : il ne peut pas être encaissé.")
    if voucher.status in (S.REDEEMED, S.CLAIMED, S.PAID):
        raise _already_redeemed(voucher)
    if voucher.status == S.EXPIRED or today > program.valid_until:
        raise Refusal(
            "expired",
            f"Ce chèque a expiré le {french_date(program.valid_until)}.",
            valid_until=program.valid_until.isoformat(),
        )
    if today < program.valid_from:
        raise Refusal(
            "not_yet_valid",
            f"Ce chèque n’est utilisable qu’à partir du {french_date(program.valid_from)}.",
            valid_from=program.valid_from.isoformat(),
        )


def site_for(place, site_id=None) -> Site:
    """The site of `place` where vouchers are taken: the one asked for, or its only qualified one."""
    if getattr(place, "kind", None) != "place":
        raise Refusal("not_a_place", "Seul un lieu de médiation numérique peut encaisser des chèques.")
    if site_id not in (None, ""):
        try:
            found = _rows(_SITE_SQL(), [place.pk, int(site_id)])
        except (TypeError, ValueError, OverflowError):
            found = []
        site = _SITE.build(found[0]) if found else None
        if site is None:
            raise Refusal("unknown_site", "Ce lieu n’existe pas ou n’est pas le vôtre.")
    else:
        sites = [_SITE.build(row) for row in _rows(_SITES_SQL(), [place.pk])]
        candidates = [s for s in sites if s.status in (QualificationStatus.QUALIFIED, QualificationStatus.SUSPENDED)]
        qualified = [s for s in candidates if s.status == QualificationStatus.QUALIFIED]
        if len(qualified) > 1:
            raise Refusal("site_required", "Votre structure a plusieurs lieux : précisez celui où a lieu la séance.")
        site = (qualified or candidates or [None])[0]
        if site is None:
            raise Refusal(
                "place_not_qualified",
                "Votre lieu n’est pas encore qualifié : il ne peut pas encaisser de chèques.",
            )
    if site.status == QualificationStatus.SUSPENDED:
        raise Refusal(
            "place_suspended",
            f"« {site.name} » est suspendu : il ne peut pas encaisser de chèques. Contactez le financeur.",
        )
    if site.status != QualificationStatus.QUALIFIED:
        raise Refusal(
            "place_not_qualified",
            f"« {site.name} » n’est pas qualifié pour ce dispositif : il ne peut pas encaisser de chèques.",
        )
    return site


def _eligible_services(program: Program, catalogue: list[tuple[str, int]]) -> list[EligibleService]:
    caps = program.session_vouchers or {}
    out = []
    for service, per_session in catalogue:
        if service not in program.eligible_services:
            continue
        cap = min(per_session, int(caps.get(service, per_session)))
        label = Service(service).label if service in Service.values else service
        out.append(EligibleService(code=service, label=label, max_vouchers=max(1, cap)))
    return out


def _check_site(voucher: Voucher, site: Site) -> list[EligibleService]:
    """The site may take this voucher: its commune is in the program's territory, and its catalogue has a service
    the program allows. From what _find read with the voucher."""
    program, facts = voucher.program, voucher.site_facts
    if facts.site_id != site.pk:
        raise ValueError("the voucher was found for another site")
    if site.commune_id is None or not facts.covers:
        raise Refusal(
            "outside_territory",
            f"« {site.name} » est hors du territoire du dispositif « {program.name} » : "
            "ce chèque ne peut pas y être encaissé.",
        )
    services = _eligible_services(program, facts.catalogue)
    if not services:
        raise Refusal(
            "service_not_eligible",
            f"Aucun service de « {site.name} » n’est éligible au dispositif « {program.name} ».",
        )
    return services


def _check_service(services: list[EligibleService], service: str, count: int, left: int) -> EligibleService:
    chosen = next((s for s in services if s.code == service), None)
    if chosen is None:
        label = Service(service).label if service in Service.values else service
        raise Refusal(
            "service_not_eligible",
            f"Le service « {label} » n’est pas éligible ici : choisissez un service de votre catalogue "
            "prévu par le dispositif.",
        )
    if not isinstance(count, int) or count < 1:
        raise Refusal("invalid_count", "Le nombre de chèques est au moins 1.")
    if count > chosen.max_vouchers:
        raise Refusal(
            "too_many_vouchers",
            f"Une séance « {chosen.label} » prend au plus {chosen.max_vouchers} chèque(s).",
            max_vouchers=chosen.max_vouchers,
        )
    if count > left:
        raise Refusal(
            "not_enough_vouchers",
            f"Il ne reste que {left} chèque(s) utilisable(s) dans ce carnet ({count} demandé(s)).",
            left=left,
        )
    return chosen


def _left_in_booklet(booklet_id: int) -> int:
    return Voucher.objects.filter(booklet_id=booklet_id, status=S.DISTRIBUTED).count()


# --- check ---------------------------------------------------------------------------------------------------


def voucher_check(
    *, raw_code: str, desk: Desk, site_id=None, service: str | None = None, count: int | None = None
) -> Check:
    """« Vérifier »: everything « Encaisser » would refuse, refused now, without writing anything but the
    brute-force counters. With `service` (and `count`), that choice is checked too."""
    site = site_for(desk.place, site_id)
    voucher = _find(desk, raw_code, site)
    _check_usable(voucher, timezone.localdate())
    services = _check_site(voucher, site)
    left = _left_in_booklet(voucher.booklet_id)
    if service:
        _check_service(services, service, 1 if count is None else count, left)
    return Check(voucher=voucher, program=voucher.program, site=site, left=left, services=services)


# --- redeem --------------------------------------------------------------------------------------------------


def _shares(program: Program) -> list[tuple[int, int]]:
    # Shares freeze at a program's first issuance (programs.services): a redeemable voucher's split is stable,
    # so it is kept per process, keyed by the program's id and creation time (ids can be reused in tests).
    key = (program.pk, program.created_at)
    shares = _SHARES.get(key)
    if shares is None:
        if len(_SHARES) > 4096:
            _SHARES.clear()
        shares = _SHARES[key] = program_shares(program_id=program.pk)
    return shares


_SHARES: dict[tuple, list[tuple[int, int]]] = {}


def _replay(desk: Desk, key: str, voucher: Voucher, service: str, count: int) -> Receipt | None:
    """The receipt a previous request with this idempotency key created, if any; refused if that request
    asked for something else."""
    if not key:
        return None
    receipt = Receipt.objects.filter(place=desk.place, idempotency_key=key).first()
    if receipt is None:
        return None
    same = (
        receipt.booklet_id == voucher.booklet_id
        and receipt.service == service
        and receipt.count == count
        and receipt.redemptions.filter(voucher=voucher).exists()
    )
    if not same:
        raise Refusal(
            "idempotency_key_reused",
            "Cette clé d’idempotence a déjà servi pour un autre encaissement.",
        )
    receipt.replayed = True
    return receipt


def redeem(
    *,
    raw_code: str,
    desk: Desk,
    service: str,
    count: int = 1,
    site_id=None,
    idempotency_key: str = "",
) -> Receipt:
    """« Encaisser »: take `count` vouchers of the booklet (the one presented first, then the next ones in
    order) for one session of `service` at the site. Returns the receipt (`receipt.replayed` is True when it is
    the result of an earlier request with the same idempotency key)."""
    key = (idempotency_key or "").strip()[:64]
    site = site_for(desk.place, site_id)
    voucher = _find(desk, raw_code, site)
    try:
        return _redeem(voucher=voucher, desk=desk, site=site, service=service, count=count, key=key)
    except (Refusal, IntegrityError):
        replay = _replay(desk, key, voucher, service, count)
        if replay is not None:
            return replay
        raise


def _redeem(*, voucher: Voucher, desk: Desk, site: Site, service: str, count: int, key: str) -> Receipt:
    today = timezone.localdate()
    _check_usable(voucher, today)
    program = voucher.program
    services = _check_site(voucher, site)
    with transaction.atomic():
        usable = [_VOUCHER.build(row) for row in _rows(_LOCK_SQL(), [voucher.booklet_id, S.DISTRIBUTED])]
        first = next((v for v in usable if v.pk == voucher.pk), None)
        if first is None:  # taken (or cancelled…) while we waited for the lock: say what happened
            voucher.refresh_from_db(fields=["status"])
            _check_usable(voucher, today)
            raise _already_redeemed(voucher)
        _check_service(services, service, count, len(usable))
        taken = [first] + [v for v in usable if v.pk != first.pk][: count - 1]
        receipt = _write(taken, desk=desk, site=site, program=program, service=service, key=key)
    receipt.replayed = False
    return receipt


def _payable_lines(program: Program, place_id: int, amounts: list[int], sign: int = 1) -> list:
    """Ledger lines moving these vouchers' value from handed-out to payable to the place (sign=-1: back), each
    funder's share split per voucher."""
    totals: dict[int, int] = defaultdict(int)
    for amount in amounts:
        for fid, part in split_by_shares(amount, _shares(program)):
            totals[fid] += part
    lines = []
    for fid, part in totals.items():
        lines.append((program_account(AccountKind.HANDED_OUT, program_id=program.pk, funder_id=fid), -sign * part))
        lines.append((payable_account(place_id=place_id, funder_id=fid), sign * part))
    return lines


def _write(taken: list[Voucher], *, desk: Desk, site: Site | None, program: Program, service: str, key: str) -> Receipt:
    """Write one redemption of `taken` (locked, distributed): receipt, redemptions, statuses, ledger, journal."""
    now = timezone.now()
    amount = sum(v.face_value_cents for v in taken)
    receipt = Receipt(
        place=desk.place,
        site=site,
        booklet_id=taken[0].booklet_id,
        service=service,
        count=len(taken),
        amount_cents=amount,
        redeemed_by=desk.actor,
        api_key=desk.api_key,
        redeemed_at=now,
        idempotency_key=key,
    )
    if connection.vendor == "postgresql":
        actor_id, ids = getattr(desk.actor, "pk", None), [v.pk for v in taken]
        [(receipt.pk,)] = _rows(
            _WRITE_SQL(),
            [
                *(desk.place.pk, getattr(site, "pk", None), receipt.booklet_id, service, len(taken), amount),
                *(actor_id, getattr(desk.api_key, "pk", None), now, key),
                *(desk.place.pk, service, actor_id, now, ids, [v.face_value_cents for v in taken]),
                *(S.DISTRIBUTED, S.REDEEMED, actor_id, desk.place.pk, now, ids),
                *(S.REDEEMED, now, ids),
            ],
        )
        receipt._state.adding, receipt._state.db = False, connection.alias
    else:
        _write_rows(receipt, taken, desk=desk, service=service, now=now)
    lines = _payable_lines(program, desk.place.pk, [v.face_value_cents for v in taken])
    ledger_post(kind=TransactionKind.REDEEM, lines=lines, obj=receipt)
    # The API answers with these codes: no need to read them back.
    receipt.voucher_codes = [v.code for v in sorted(taken, key=lambda v: v.position)]
    journal_record(
        action="receipt.create",
        actor=desk.actor,
        organisation=desk.place,
        obj=receipt,
        data={"count": len(taken), "service": service, "api_key": getattr(desk.api_key, "pk", None)},
    )
    return receipt


def _write_rows(receipt: Receipt, taken: list[Voucher], *, desk: Desk, service: str, now) -> None:
    """_WRITE_SQL through the ORM (SQLite)."""
    receipt.save(force_insert=True)
    Redemption.objects.bulk_create(
        [
            Redemption(
                voucher=v,
                receipt=receipt,
                place=desk.place,
                service=service,
                amount_cents=v.face_value_cents,
                redeemed_by=desk.actor,
                redeemed_at=now,
            )
            for v in taken
        ]
    )
    VoucherStatusLog.objects.bulk_create(
        [
            VoucherStatusLog(
                voucher=v,
                from_status=S.DISTRIBUTED,
                to_status=S.REDEEMED,
                actor=desk.actor,
                organisation=desk.place,
                at=now,
            )
            for v in taken
        ]
    )
    Voucher.objects.filter(pk__in=[v.pk for v in taken]).update(status=S.REDEEMED, redeemed_at=now)


def redeem_locked_voucher(*, voucher: Voucher, desk: Desk, service: str, site: Site | None = None) -> Receipt:
    """One voucher, already found, redeemed without the desk's place checks (site, territory, catalogue): for
    the demo data and tests of the lifecycle. The voucher's own rules (status, dates, program) still apply."""
    with transaction.atomic():
        locked = Voucher.objects.select_for_update(of=("self",)).select_related("program").get(pk=voucher.pk)
        if locked.status in (S.REDEEMED, S.CLAIMED, S.PAID):
            raise _already_redeemed(locked)
        if locked.status != S.DISTRIBUTED:
            _check_usable(locked, timezone.localdate())
        if service not in locked.program.eligible_services:
            raise Refusal("service_not_eligible", "Ce service n’est pas éligible pour ce dispositif.")
        receipt = _write([locked], desk=desk, site=site, program=locked.program, service=service, key="")
    receipt.replayed = False
    return receipt


# --- undo ----------------------------------------------------------------------------------------------------


def undo_window() -> dt.timedelta:
    return dt.timedelta(hours=settings.PASSNUM_UNDO_WINDOW_HOURS)


def receipt_undo(*, receipt: Receipt, reason: str, desk: Desk) -> Receipt:
    """The place takes back a redemption within the undo window: its vouchers return to `distributed` and the
    ledger is reversed. Refused once the vouchers are claimed (a claim lists them)."""
    reason = (reason or "").strip()
    if not reason:
        raise Refusal("reason_required", "Indiquez le motif de l’annulation.")
    if receipt.place_id != desk.place.pk:
        raise Refusal("not_a_place", "Cet encaissement n’est pas le vôtre.")
    with transaction.atomic():
        receipt = Receipt.objects.select_for_update().get(pk=receipt.pk)
        if receipt.undone_at is not None:
            raise Refusal(
                "redemption_already_undone",
                f"Cet encaissement a déjà été annulé le {french_date(timezone.localtime(receipt.undone_at).date())}.",
            )
        now = timezone.now()
        if now - receipt.redeemed_at > undo_window():
            hours = settings.PASSNUM_UNDO_WINDOW_HOURS
            raise Refusal(
                "undo_window_closed",
                f"Un encaissement ne peut être annulé que dans les {hours} h qui suivent. "
                "Contactez le financeur pour corriger.",
            )
        redemptions = list(receipt.redemptions.filter(undone_at__isnull=True).order_by("voucher_id"))
        vouchers = list(
            Voucher.objects.select_for_update(of=("self",))
            .select_related("program")
            .filter(pk__in=[r.voucher_id for r in redemptions])
            .order_by("pk")
        )
        if any(v.status != S.REDEEMED for v in vouchers):
            raise Refusal(
                "redemption_claimed",
                "Ces chèques sont déjà en cours de remboursement : l’encaissement ne peut plus être annulé.",
            )
        receipt.undone_at = now
        receipt.undo_reason = reason[:200]
        receipt.undone_by = desk.actor
        receipt.save(update_fields=["undone_at", "undo_reason", "undone_by"])
        Redemption.objects.filter(pk__in=[r.pk for r in redemptions]).update(undone_at=now, undo_reason=reason[:200])
        VoucherStatusLog.objects.bulk_create(
            [
                VoucherStatusLog(
                    voucher=v,
                    from_status=S.REDEEMED,
                    to_status=S.DISTRIBUTED,
                    reason=reason[:200],
                    actor=desk.actor,
                    organisation=desk.place,
                    at=now,
                )
                for v in vouchers
            ]
        )
        Voucher.objects.filter(pk__in=[v.pk for v in vouchers]).update(status=S.DISTRIBUTED, redeemed_at=None)
        # A receipt's vouchers come from one booklet, hence one program.
        lines = _payable_lines(vouchers[0].program, receipt.place_id, [r.amount_cents for r in redemptions], sign=-1)
        ledger_post(kind=TransactionKind.REDEEM_UNDO, lines=lines, memo=reason, obj=receipt)
        journal_record(
            action="receipt.undo",
            actor=desk.actor,
            organisation=desk.place,
            obj=receipt,
            data={"reason": reason[:200], "count": len(vouchers), "api_key": getattr(desk.api_key, "pk", None)},
        )
    return receipt


def can_undo(receipt: Receipt, now=None) -> bool:
    """Within the window, not undone, and no claim lists its vouchers yet."""
    now = now or timezone.now()
    if receipt.undone_at is not None or now - receipt.redeemed_at > undo_window():
        return False
    return not receipt.redemptions.exclude(voucher__status=S.REDEEMED).exists()


def receipts_of(*, place):
    return Receipt.objects.filter(place=place).select_related("site", "booklet__program")


def receipt_summary(receipt: Receipt) -> str:
    return f"{receipt.count} chèque(s), {format_euros(receipt.amount_cents)}"
