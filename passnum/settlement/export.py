"""Continuity export: a complete, documented archive from which anyone can finish paying every place if the
operator disappears (DESIGN.md, decision 6), and its verification from the archive alone.

`export_archive(out_dir)` writes one CSV file and one JSON Lines file per table, the SEPA payment files byte for
byte, `README.md` (French, generated from `archive_readme.md` and the table specs below, so the documentation
cannot drift from the columns) and `manifest.json` last (row counts, SHA-256 of every file, the ledger's chain
head). Every table is streamed with `.iterator()` and written row by row: memory stays constant whatever the
number of vouchers. Everything is read from one database snapshot (REPEATABLE READ on PostgreSQL).

`verify_archive(dir)` reads nothing but the archive: checksums and counts, CSV ≡ JSON Lines, every ledger
transaction's hash recomputed and chained, every transaction balanced, balances rebuilt from the entries, and
what the ledger says is owed checked against the claims and redemptions.

People's data: the archive keeps what paying places and continuing the service need, nothing more. No user
table at all (so no e-mail address, name or password hash, and no `*_by` columns); no API key, invitation or
digital-pass table (so no key or token hash, no phone or e-mail); of a beneficiary only the booklet's
pseudonymous reference (the distributor holds the person's record); no idempotency keys. Bank details of
organisations *are* exported: they are what a successor needs to pay places. The archive is therefore
confidential (IBANs, codes of vouchers still valid) and is not open data."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import itertools
import json
import os
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.db import connection, transaction
from django.db.models import F, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

FORMAT = "passnum-export"
FORMAT_VERSION = 1
GENESIS_HASH = "0" * 64
PAYMENT_FILES_DIR = "payment_files"
README_TEMPLATE = Path(__file__).with_name("archive_readme.md")
# The standalone script ships with the source tree (scripts/); copied into the archive when it is there.
REBUILD_SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "rebuild_balances.py"
CHUNK = 2000
MAX_PROBLEMS = 200


# --- table specifications --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    name: str
    doc: str  # French, for the README
    source: str | None = None  # ORM path read with values_list; defaults to `name`
    compute: Callable[[dict], Any] | None = None  # from the fetched values, when no single path fits
    type: str = "texte"  # texte, entier, centimes, booléen, horodatage, date, json

    @property
    def path(self) -> str | None:
        if self.compute is not None:
            return None
        return self.source or self.name


@dataclass(frozen=True)
class Table:
    name: str
    title: str
    doc: str
    queryset: Callable[[], QuerySet]
    columns: tuple[Column, ...]
    order_by: tuple[str, ...] = ("id",)
    extra: tuple[str, ...] = ()  # paths fetched only for computed columns

    @property
    def paths(self) -> list[str]:
        paths = [c.path for c in self.columns if c.path] + list(self.extra)
        return list(dict.fromkeys(paths))


def C(name, doc, type="texte", source=None, compute=None) -> Column:  # noqa: N802 (short spec helper)
    return Column(name=name, doc=doc, type=type, source=source, compute=compute)


ID = C("id", "Identifiant (clé primaire dans la plateforme ; les autres fichiers y renvoient).", "entier")


def _organisations() -> QuerySet:
    from passnum.accounts.models import Organisation
    from passnum.places.models import BankAccount as PlaceBankAccount

    validated = PlaceBankAccount.objects.filter(organisation=OuterRef("pk"), status="validated").order_by("-id")
    return Organisation.objects.annotate(
        bank_holder=Coalesce(Subquery(validated.values("holder_name")[:1]), F("bank_account__holder_name")),
        bank_iban_=Coalesce(Subquery(validated.values("iban")[:1]), F("bank_account__iban")),
        bank_bic_=Coalesce(Subquery(validated.values("bic")[:1]), F("bank_account__bic")),
    )


def _model(label: str) -> Callable[[], QuerySet]:
    def queryset() -> QuerySet:
        from django.apps import apps

        return apps.get_model(label).objects.all()

    return queryset


TS = "horodatage"

TABLES: tuple[Table, ...] = (
    Table(
        "organisations",
        "Organisations",
        "Financeurs, prescripteurs, lieux de médiation et opérateur : identité publique et coordonnées bancaires "
        "(celles sur lesquelles un lieu est payé, ou le compte d’où un financeur paie).",
        _organisations,
        (
            ID,
            C("name", "Nom."),
            C("slug", "Identifiant lisible, unique."),
            C("kind", "Type : `funder` (financeur), `distributor` (prescripteur), `place` (lieu), `operator`."),
            C("siret", "SIRET (14 chiffres) ou vide."),
            C("siren", "SIREN (9 chiffres) ou vide."),
            C("rna", "Numéro RNA d’association ou vide."),
            C("insee_code", "Code INSEE de la commune du siège, ou vide."),
            C("is_active", "Organisation active.", "booléen"),
            C("created_at", "Création.", TS),
            C(
                "bank_holder_name",
                "Titulaire du compte : pour un lieu, les coordonnées validées par un financeur, les seules que les "
                "fichiers de virements paient ; pour un financeur, le compte d’où partent ses virements.",
                source="bank_holder",
            ),
            C("bank_iban", "IBAN de ce compte (sans espaces), ou vide.", source="bank_iban_"),
            C("bank_bic", "BIC de ce compte.", source="bank_bic_"),
        ),
    ),
    Table(
        "programs",
        "Dispositifs",
        "Les dispositifs (campagnes) de pass numérique.",
        _model("programs.Program"),
        (
            ID,
            C("name", "Nom."),
            C("slug", "Identifiant lisible, unique."),
            C("description", "Description."),
            C("owner_id", "Financeur pilote (→ organisations.id).", "entier"),
            C("face_value_cents", "Valeur faciale d’un chèque, en centimes.", "centimes"),
            C("vouchers_per_booklet", "Chèques par carnet.", "entier"),
            C("valid_from", "Début de validité.", "date"),
            C("valid_until", "Fin de validité.", "date"),
            C("grace_days", "Délai de grâce après la fin de validité, en jours.", "entier"),
            C("eligible_services", "Services éligibles (codes du standard national).", "json"),
            C("target_publics", "Publics visés.", "json"),
            C("session_vouchers", "Plafond de chèques par séance, par service.", "json"),
            C("created_at", "Création.", TS),
            C("updated_at", "Dernière modification.", TS),
        ),
    ),
    Table(
        "program_funders",
        "Financeurs des dispositifs",
        "La part et le budget de chaque financeur dans chaque dispositif. **L’ordre de partage est celui des `id` "
        "croissants au sein d’un dispositif** (voir « Partage d’un montant »).",
        _model("programs.ProgramFunder"),
        (
            ID,
            C("program_id", "Dispositif (→ programs.id).", "entier"),
            C("funder_id", "Financeur (→ organisations.id).", "entier"),
            C("share_bps", "Part en points de base (10 000 = 100 %) ; la somme par dispositif vaut 10 000.", "entier"),
            C("budget_cents", "Budget engagé, en centimes.", "centimes"),
            C(
                "committed_cents",
                "Valeur des chèques émis sur ce budget, ni annulés ni expirés, en centimes.",
                "centimes",
            ),
        ),
    ),
    Table(
        "program_territories",
        "Territoires des dispositifs",
        "Communes, EPCI, départements et régions (codes INSEE) couverts par chaque dispositif.",
        _model("programs.ProgramTerritory"),
        (
            ID,
            C("program_id", "Dispositif (→ programs.id).", "entier"),
            C("level", "Niveau : `commune`, `epci`, `departement`, `region`."),
            C("code", "Code INSEE (ou SIREN de l’EPCI)."),
        ),
    ),
    Table(
        "booklets",
        "Carnets",
        "Les carnets de chèques. Du bénéficiaire, seule la référence pseudonyme est exportée : le prescripteur "
        "détient sa fiche et peut ainsi la rattacher au carnet.",
        _model("vouchers.Booklet"),
        (
            ID,
            C("program_id", "Dispositif (→ programs.id).", "entier"),
            C("number", "Numéro du carnet dans le dispositif.", "entier"),
            C("distributor_id", "Prescripteur qui le détient (→ organisations.id), ou vide.", "entier"),
            C("issued_at", "Émission.", TS),
            C("allocated_at", "Attribution au prescripteur.", TS),
            C("handed_out_at", "Remise au bénéficiaire.", TS),
            C(
                "beneficiary_reference",
                "Référence pseudonyme du bénéficiaire, ou vide.",
                source="beneficiary__reference",
            ),
        ),
    ),
    Table(
        "vouchers",
        "Chèques",
        "Chaque chèque, son code et son statut. Statuts : `issued` (émis), `distributed` (remis), `redeemed` "
        "(encaissé), `claimed` (en demande de remboursement), `paid` (payé), `expired`, `cancelled`.",
        _model("vouchers.Voucher"),
        (
            ID,
            C("booklet_id", "Carnet (→ booklets.id).", "entier"),
            C("program_id", "Dispositif (→ programs.id).", "entier"),
            C("position", "Rang dans le carnet.", "entier"),
            C("code", "Code du chèque (confidentiel tant que le chèque est utilisable)."),
            C("face_value_cents", "Valeur faciale, en centimes.", "centimes"),
            C("status", "Statut (voir ci-dessus)."),
            C("distributed_at", "Remise.", TS),
            C("redeemed_at", "Encaissement en cours de validité.", TS),
            C("claimed_at", "Entrée dans une demande de remboursement.", TS),
            C("paid_at", "Paiement (tous les financeurs ont payé leur part).", TS),
            C("expired_at", "Expiration.", TS),
            C("cancelled_at", "Annulation.", TS),
            C("cancel_reason", "Motif d’annulation."),
        ),
    ),
    Table(
        "receipts",
        "Reçus d’encaissement",
        "Un acte d’encaissement dans un lieu : un ou plusieurs chèques d’un carnet pour une séance.",
        _model("vouchers.Receipt"),
        (
            ID,
            C("place_id", "Lieu (→ organisations.id).", "entier"),
            C("site_id", "Site du lieu (identifiant interne), ou vide.", "entier"),
            C("booklet_id", "Carnet (→ booklets.id).", "entier"),
            C("service", "Service rendu (code du standard national)."),
            C("count", "Nombre de chèques.", "entier"),
            C("amount_cents", "Montant, en centimes.", "centimes"),
            C(
                "via_api",
                "Encaissé par l’API (logiciel du lieu) plutôt que par le guichet web.",
                "booléen",
                compute=lambda r: r["api_key_id"] is not None,
            ),
            C("redeemed_at", "Encaissement.", TS),
            C("undone_at", "Annulation par le lieu, ou vide.", TS),
            C("undo_reason", "Motif de l’annulation."),
        ),
        extra=("api_key_id",),
    ),
    Table(
        "redemptions",
        "Encaissements",
        "Un chèque utilisé dans un lieu. Un encaissement annulé (`undone_at` renseigné) ne compte plus ; au plus un "
        "encaissement non annulé par chèque.",
        _model("vouchers.Redemption"),
        (
            ID,
            C("voucher_id", "Chèque (→ vouchers.id).", "entier"),
            C("receipt_id", "Reçu (→ receipts.id), ou vide.", "entier"),
            C("place_id", "Lieu (→ organisations.id).", "entier"),
            C("service", "Service rendu."),
            C("amount_cents", "Valeur du chèque, en centimes.", "centimes"),
            C("redeemed_at", "Encaissement.", TS),
            C("undone_at", "Annulation, ou vide.", TS),
            C("undo_reason", "Motif de l’annulation."),
        ),
    ),
    Table(
        "settlement_runs",
        "Arrêtés de règlement",
        "Un arrêté regroupe les encaissements antérieurs à 00:00 (heure de Paris) le jour `cutoff`.",
        _model("settlement.SettlementRun"),
        (
            ID,
            C("cutoff", "Date d’arrêté.", "date"),
            C("created_at", "Création.", TS),
            C("updated_at", "Dernière exécution.", TS),
        ),
    ),
    Table(
        "claims",
        "Demandes de remboursement",
        "Ce qu’un financeur doit à un lieu pour un arrêté. Statuts : `submitted` (à valider), `approved` "
        "(validée), `in_payment` (virement préparé), `paid` (payée), `rejected` (entièrement rejetée).",
        _model("settlement.Claim"),
        (
            ID,
            C("reference", "Numéro, unique (DR-année-série-numéro)."),
            C("run_id", "Arrêté (→ settlement_runs.id).", "entier"),
            C("place_id", "Lieu à payer (→ organisations.id).", "entier"),
            C("funder_id", "Financeur qui paie (→ organisations.id).", "entier"),
            C("series", "Série de numérotation (une par financeur)."),
            C("year", "Année de numérotation.", "entier"),
            C("number", "Numéro dans la série, sans trou.", "entier"),
            C("status", "Statut (voir ci-dessus)."),
            C("lines_count", "Nombre de lignes.", "entier"),
            C("claimed_cents", "Montant demandé, en centimes (somme des lignes).", "centimes"),
            C("rejected_cents", "Montant rejeté par le financeur, en centimes.", "centimes"),
            C(
                "payable_cents",
                "À payer : demandé − rejeté, en centimes.",
                "centimes",
                compute=lambda r: r["claimed_cents"] - r["rejected_cents"],
            ),
            C("period_start", "Premier encaissement couvert.", TS),
            C("period_end", "Dernier encaissement couvert.", TS),
            C("created_at", "Création.", TS),
            C("approved_at", "Validation par le financeur.", TS),
            C("payment_file_id", "Fichier de virements (→ payment_files.id), ou vide.", "entier"),
            C("paid_at", "Paiement constaté.", TS),
            C("paid_reference", "Référence bancaire du paiement."),
        ),
    ),
    Table(
        "claim_lines",
        "Lignes des demandes",
        "Un chèque dans la demande d’un financeur : la part de ce financeur. Statuts : `claimed` (demandée, due), "
        "`rejected` (rejetée, voir finance_incidents), `paid` (payée).",
        _model("settlement.ClaimLine"),
        (
            ID,
            C("claim_id", "Demande (→ claims.id).", "entier"),
            C("place_id", "Lieu (copie de claims.place_id).", "entier", source="claim__place_id"),
            C("funder_id", "Financeur (→ organisations.id).", "entier"),
            C("voucher_id", "Chèque (→ vouchers.id).", "entier"),
            C("redemption_id", "Encaissement (→ redemptions.id).", "entier"),
            C("program_id", "Dispositif (copie de vouchers.program_id).", "entier", source="voucher__program_id"),
            C("service", "Service rendu."),
            C("redeemed_at", "Encaissement.", TS),
            C("amount_cents", "Part du financeur dans la valeur du chèque, en centimes.", "centimes"),
            C("status", "Statut (voir ci-dessus)."),
        ),
    ),
    Table(
        "finance_incidents",
        "Incidents financiers",
        "Une ligne rejetée par un financeur. Statuts : `open` (montant au compte `contested`, ni dû ni rendu), "
        "`reinstated` (ligne rétablie, à nouveau due), `written_off` (rejet confirmé, valeur rendue au budget).",
        _model("settlement.FinanceIncident"),
        (
            ID,
            C("line_id", "Ligne (→ claim_lines.id).", "entier"),
            C("claim_id", "Demande (→ claims.id).", "entier"),
            C("reason", "Motif du rejet."),
            C("status", "Statut (voir ci-dessus)."),
            C("opened_at", "Ouverture.", TS),
            C("closed_at", "Clôture, ou vide.", TS),
            C("resolution", "Conclusion."),
        ),
    ),
    Table(
        "payment_files",
        "Fichiers de virements",
        "Les messages SEPA (ISO 20022 pain.001) produits pour un financeur et un arrêté. Le fichier XML lui-même "
        f"est dans `{PAYMENT_FILES_DIR}/`, octet pour octet.",
        _model("settlement.PaymentFile"),
        (
            ID,
            C("run_id", "Arrêté (→ settlement_runs.id).", "entier"),
            C("funder_id", "Financeur débiteur (→ organisations.id).", "entier"),
            C("message_id", "Identifiant du message SEPA (MsgId)."),
            C("version", "Version du schéma."),
            C("status", "`ready` (à transmettre à la banque) ou `paid` (toutes ses demandes sont payées)."),
            C("transfers", "Nombre de virements.", "entier"),
            C("total_cents", "Montant total, en centimes.", "centimes"),
            C("sha256", "SHA-256 du fichier XML (octets UTF-8)."),
            C("created_at", "Création.", TS),
            C(
                "file",
                "Chemin du fichier XML dans l’archive.",
                compute=lambda r: payment_file_path(r["id"], r["message_id"]),
            ),
        ),
    ),
    Table(
        "ledger_accounts",
        "Comptes du grand livre",
        "Un compte par clé (voir « Comptes et clés »). `balance_cents` est le solde au moment de l’export ; il "
        "se recalcule en sommant ledger_entries.",
        _model("settlement.LedgerAccount"),
        (
            ID,
            C("key", "Clé du compte, unique (`payable:l12:f3`…)."),
            C("kind", "Nature du compte."),
            C("program_id", "Dispositif, pour les comptes par dispositif, sinon vide.", "entier"),
            C("funder_id", "Financeur.", "entier"),
            C("place_id", "Lieu, pour `payable` et `contested`, sinon vide.", "entier"),
            C(
                "balance_cents",
                "Solde à l’export, en centimes (positif ou négatif).",
                "centimes",
                compute=lambda r: r["_balance"],
            ),
        ),
    ),
    Table(
        "ledger_transactions",
        "Écritures du grand livre",
        "Les écritures, dans l’ordre de la chaîne (`seq`). Chaque empreinte couvre l’écriture, ses lignes et "
        "l’empreinte précédente (voir « Chaîne d’empreintes »).",
        _model("settlement.LedgerTransaction"),
        (
            ID,
            C("seq", "Numéro d’ordre, 1, 2, 3… sans trou.", "entier"),
            C("kind", "Nature de l’écriture (voir « Natures d’écritures »)."),
            C("created_at", "Horodatage, exactement sous la forme hachée (UTC, ISO 8601).", TS),
            C("memo", "Libellé libre (non couvert par l’empreinte)."),
            C("object_type", "Objet à l’origine (`vouchers.redemption`, `settlement.claim`…), ou vide."),
            C("object_id", "Identifiant de cet objet, ou vide."),
            C("prev_hash", "Empreinte de l’écriture précédente (64 zéros pour la première)."),
            C("hash", "Empreinte SHA-256 de cette écriture (hexadécimal minuscule)."),
        ),
        order_by=("seq",),
    ),
    Table(
        "ledger_entries",
        "Lignes du grand livre",
        "Les lignes de chaque écriture, triées par `seq` d’écriture. La somme des lignes d’une écriture est nulle.",
        _model("settlement.LedgerEntry"),
        (
            ID,
            C("transaction_id", "Écriture (→ ledger_transactions.id).", "entier"),
            C(
                "seq",
                "Numéro d’ordre de l’écriture (copie de ledger_transactions.seq).",
                "entier",
                source="transaction__seq",
            ),
            C("account_id", "Compte (→ ledger_accounts.id).", "entier"),
            C("account_key", "Clé du compte (copie de ledger_accounts.key).", source="account__key"),
            C("amount_cents", "Montant signé, en centimes (jamais 0).", "centimes"),
        ),
        order_by=("transaction__seq", "id"),
    ),
)

TABLES_BY_NAME = {t.name: t for t in TABLES}


def payment_file_path(pk: int, message_id: str) -> str:
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", message_id or "")[:60]
    return f"{PAYMENT_FILES_DIR}/{pk:06d}-{safe}.xml"


# --- value encoding ---------------------------------------------------------------------------------------


def canonical_datetime(value: dt.datetime) -> str:
    """UTC, Python's isoformat: the exact text the ledger hash covers (no `.ffffff` when microseconds are 0)."""
    if timezone.is_naive(value):
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC).isoformat()


def json_value(value):
    if isinstance(value, dt.datetime):
        return canonical_datetime(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def csv_text(value) -> str:
    """How a JSON Lines value is written in the CSV file. Shared by export and verification."""
    if value is None:
        return ""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return str(value)


# --- export -----------------------------------------------------------------------------------------------


@dataclass
class ExportManifest:
    path: Path
    created_at: str
    counts: dict[str, int] = field(default_factory=dict)
    files: dict[str, dict] = field(default_factory=dict)
    chain_head_seq: int = 0
    chain_head_hash: str = GENESIS_HASH

    def as_json(self) -> dict:
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "created_at": self.created_at,
            "readme": "README.md",
            "tables": {
                t.name: {
                    "rows": self.counts[t.name],
                    "csv": f"{t.name}.csv",
                    "jsonl": f"{t.name}.jsonl",
                    "columns": [c.name for c in t.columns],
                }
                for t in TABLES
            },
            "payment_files": self.counts.get(PAYMENT_FILES_DIR, 0),
            "ledger": {"head_seq": self.chain_head_seq, "head_hash": self.chain_head_hash},
            "files": dict(sorted(self.files.items())),
        }


def _table_rows(table: Table, balances: dict[str, int] | None = None) -> Iterator[list]:
    paths = table.paths
    qs = table.queryset().order_by(*table.order_by).values_list(*paths)
    for values in qs.iterator(chunk_size=CHUNK):
        raw = dict(zip(paths, values, strict=True))
        if balances is not None:
            raw["_balance"] = balances.get(raw["key"], 0)
        yield [json_value(c.compute(raw) if c.compute else raw[c.path]) for c in table.columns]


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _write_table(out_dir: Path, table: Table, rows: Iterable[list], progress) -> int:
    names = [c.name for c in table.columns]
    count = 0
    with (
        (out_dir / f"{table.name}.csv").open("w", encoding="utf-8", newline="") as fcsv,
        (out_dir / f"{table.name}.jsonl").open("w", encoding="utf-8", newline="\n") as fjson,
    ):
        writer = csv.writer(fcsv, lineterminator="\r\n")
        writer.writerow(names)
        for row in rows:
            writer.writerow([csv_text(v) for v in row])
            fjson.write(json.dumps(dict(zip(names, row, strict=True)), ensure_ascii=False) + "\n")
            count += 1
            if progress and count % 50_000 == 0:
                progress(table.name, count)
    if progress:
        progress(table.name, count)
    return count


def _write_payment_files(out_dir: Path) -> int:
    from passnum.settlement.models import PaymentFile

    folder = out_dir / PAYMENT_FILES_DIR
    folder.mkdir(exist_ok=True)
    count = 0
    for pk, message_id, content in (
        PaymentFile.objects.order_by("id").values_list("id", "message_id", "content").iterator(chunk_size=100)
    ):
        (out_dir / payment_file_path(pk, message_id)).write_bytes(content.encode("utf-8"))
        count += 1
    return count


def render_readme() -> str:
    """The archive's README: the shipped template with the tables' documentation generated from TABLES."""
    parts = []
    for t in TABLES:
        parts.append(f"### `{t.name}.csv` / `{t.name}.jsonl` — {t.title}\n\n{t.doc}\n")
        parts.append("| colonne | type | signification |\n|---|---|---|")
        parts.extend(f"| `{c.name}` | {c.type} | {c.doc} |" for c in t.columns)
        parts.append("")
    text = README_TEMPLATE.read_text(encoding="utf-8")
    return text.replace("<!-- TABLES -->", "\n".join(parts).rstrip() + "\n").replace(
        "<!-- FORMAT_VERSION -->", str(FORMAT_VERSION)
    )


def export_archive(out_dir: Path, *, progress=None) -> ExportManifest:
    """Write the archive into `out_dir` (created if needed; existing archive files are overwritten)."""
    from passnum.settlement.ledger import account_balances
    from passnum.settlement.models import LedgerTransaction

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "manifest.json").unlink(missing_ok=True)  # written last: no manifest means no complete archive
    manifest = ExportManifest(path=out_dir, created_at=canonical_datetime(timezone.now()))
    outermost = not connection.in_atomic_block
    with transaction.atomic():
        if outermost and connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        balances = account_balances()  # one row per account: small
        for table in TABLES:
            rows = _table_rows(table, balances if table.name == "ledger_accounts" else None)
            manifest.counts[table.name] = _write_table(out_dir, table, rows, progress)
        manifest.counts[PAYMENT_FILES_DIR] = _write_payment_files(out_dir)
        last = LedgerTransaction.objects.order_by("-seq").values_list("seq", "hash").first()
    if last:
        manifest.chain_head_seq, manifest.chain_head_hash = last
    (out_dir / "README.md").write_text(render_readme(), encoding="utf-8")
    if REBUILD_SCRIPT.is_file():
        (out_dir / REBUILD_SCRIPT.name).write_bytes(REBUILD_SCRIPT.read_bytes())
    for path in sorted(_archive_files(out_dir)):
        rel = path.relative_to(out_dir).as_posix()
        manifest.files[rel] = {"sha256": _sha256_file(path), "bytes": path.stat().st_size}
    tmp = out_dir / "manifest.json.tmp"
    tmp.write_text(json.dumps(manifest.as_json(), ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, out_dir / "manifest.json")
    return manifest


def _archive_files(out_dir: Path) -> Iterator[Path]:
    for path in out_dir.rglob("*"):
        if path.is_file() and path.name != "manifest.json":
            yield path


def archive_files_listed(out_dir: Path) -> list[str]:
    """Files named by an existing archive's manifest (used by `passnum export --force` to replace it)."""
    try:
        manifest = json.loads((Path(out_dir) / "manifest.json").read_text(encoding="utf-8"))
        return [*manifest.get("files", {}), "manifest.json"]
    except (OSError, ValueError, AttributeError):
        return []


# --- verification from the archive alone -------------------------------------------------------------------


def archive_transaction_hash(
    *, seq: str, kind: str, created_at: str, object_type: str, object_id: str, prev_hash: str, lines
) -> str:
    """The ledger's hash formula on the archive's text fields (README, « Chaîne d’empreintes »)."""
    body = "\n".join(f"{key}={amount}" for key, amount in sorted(lines))
    head = "|".join([seq, kind, created_at, object_type, object_id, prev_hash])
    return hashlib.sha256(f"{head}\n{body}".encode()).hexdigest()


def split_largest_remainder(total: int, weights: list[int]) -> list[int]:
    """Floor of each share; the cents left go one each to the largest remainders, ties to the earlier weight."""
    denominator = sum(weights)
    parts = [total * w // denominator for w in weights]
    order = sorted(range(len(weights)), key=lambda i: (-(total * weights[i] % denominator), i))
    for i in order[: total - sum(parts)]:
        parts[i] += 1
    return parts


class Problems(list):
    """French problems, capped so a badly damaged archive still gives a readable report."""

    def __init__(self):
        super().__init__()
        self.dropped = 0

    def add(self, text: str) -> None:
        if len(self) < MAX_PROBLEMS:
            self.append(text)
        else:
            self.dropped += 1

    def result(self) -> list[str]:
        out = list(self)
        if self.dropped:
            out.append(f"… et {self.dropped} autre(s) problème(s).")
        return out


def _euros(cents: int) -> str:
    sign = "−" if cents < 0 else ""
    euros, rest = divmod(abs(cents), 100)
    return f"{sign}{euros:,}".replace(",", "\u202f") + f",{rest:02d} €"


def _csv_rows(path: Path) -> Iterator[dict]:
    with path.open(encoding="utf-8", newline="") as f:
        yield from csv.DictReader(f)


def _int(value: str) -> int | None:
    return int(value) if value not in ("", None) else None


def verify_archive(directory: Path) -> list[str]:
    """Check an archive from its files alone. Returns French problems; an empty list means it is sound."""
    directory = Path(directory)
    problems = Problems()
    try:
        manifest = json.loads((directory / "manifest.json").read_text(encoding="utf-8"))
    except OSError:
        return ["manifest.json absent : l’archive est incomplète (l’export a pu être interrompu)."]
    except ValueError as exc:
        return [f"manifest.json illisible : {exc}."]
    if manifest.get("format") != FORMAT or manifest.get("format_version") != FORMAT_VERSION:
        return [f"Format d’archive inconnu : {manifest.get('format')} v{manifest.get('format_version')}."]
    _check_files(directory, manifest, problems)
    for table in TABLES:
        try:
            _check_table(directory, table, manifest, problems)
        except (OSError, ValueError, csv.Error) as exc:
            problems.add(f"{table.name} : fichier illisible ({exc}).")
    try:
        balances = _check_ledger(directory, manifest, problems)
        _check_domain(directory, balances, problems)
    except (OSError, ValueError, KeyError, TypeError, csv.Error) as exc:
        problems.add(f"Grand livre : vérification impossible, fichier illisible ou incomplet ({exc}).")
    return problems.result()


def _check_files(directory: Path, manifest: dict, problems: Problems) -> None:
    listed = manifest.get("files", {})
    for rel, meta in listed.items():
        path = directory / rel
        if not path.is_file():
            problems.add(f"Fichier {rel} manquant.")
        elif _sha256_file(path) != meta.get("sha256"):
            problems.add(f"Fichier {rel} modifié : son empreinte SHA-256 ne correspond pas au manifeste.")
    for path in _archive_files(directory):
        rel = path.relative_to(directory).as_posix()
        if rel not in listed:
            problems.add(f"Fichier {rel} absent du manifeste : il ne fait pas partie de l’export.")
    if sum(1 for rel in listed if rel.startswith(f"{PAYMENT_FILES_DIR}/")) != manifest.get("payment_files", 0):
        problems.add("Le nombre de fichiers de virements ne correspond pas au manifeste.")


def _check_table(directory: Path, table: Table, manifest: dict, problems: Problems) -> None:
    spec = manifest.get("tables", {}).get(table.name)
    if spec is None:
        problems.add(f"Table {table.name} absente du manifeste.")
        return
    names = [c.name for c in table.columns]
    csv_path, json_path = directory / f"{table.name}.csv", directory / f"{table.name}.jsonl"
    if not csv_path.is_file() or not json_path.is_file():
        return  # already reported by the checksums
    with csv_path.open(encoding="utf-8", newline="") as fcsv, json_path.open(encoding="utf-8") as fjson:
        reader = csv.reader(fcsv)
        header = next(reader, None)
        if header != names:
            problems.add(f"{table.name}.csv : colonnes inattendues.")
            return
        rows = 0
        for csv_row, json_line in itertools.zip_longest(reader, fjson):
            if csv_row is None or json_line is None:
                problems.add(f"{table.name} : le CSV et le JSON Lines n’ont pas le même nombre de lignes.")
                break
            rows += 1
            record = json.loads(json_line)
            if [csv_text(record.get(n)) for n in names] != csv_row:
                problems.add(f"{table.name}, ligne {rows} : le CSV et le JSON Lines diffèrent.")
    if rows != spec.get("rows"):
        problems.add(f"{table.name} : {rows} ligne(s), le manifeste en annonce {spec.get('rows')}.")


def _check_ledger(directory: Path, manifest: dict, problems: Problems) -> dict[str, int]:
    """Recompute every hash and the chain, check every transaction balances, rebuild every balance."""
    accounts = {int(r["id"]): r for r in _csv_rows(directory / "ledger_accounts.csv")}
    balances: dict[str, int] = defaultdict(int)
    entries = _csv_rows(directory / "ledger_entries.csv")
    groups = itertools.groupby(entries, key=lambda r: int(r["seq"]))
    pending = next(groups, None)
    last_group_seq = 0
    prev_hash, expected_seq = GENESIS_HASH, 1

    def advance():
        nonlocal pending, last_group_seq
        if pending is not None and pending[0] <= last_group_seq:
            problems.add(f"Lignes du grand livre dans le désordre autour de l’écriture n° {pending[0]}.")
        if pending is not None:
            last_group_seq = pending[0]
        pending = next(groups, None)

    for tx in _csv_rows(directory / "ledger_transactions.csv"):
        seq = int(tx["seq"])
        while pending is not None and pending[0] < seq:
            problems.add(f"Lignes du grand livre rattachées à l’écriture n° {pending[0]}, absente.")
            for row in pending[1]:
                balances[row["account_key"]] += int(row["amount_cents"])
            advance()
        lines: list[tuple[str, int]] = []
        if pending is not None and pending[0] == seq:
            for row in pending[1]:
                account = accounts.get(int(row["account_id"]))
                if account is None or account["key"] != row["account_key"]:
                    problems.add(f"Écriture n° {seq} : ligne sur un compte inconnu ({row['account_key']}).")
                if row["transaction_id"] != tx["id"]:
                    problems.add(f"Écriture n° {seq} : une ligne renvoie à une autre écriture.")
                amount = int(row["amount_cents"])
                if amount == 0:
                    problems.add(f"Écriture n° {seq} : ligne à 0 sur {row['account_key']}.")
                lines.append((row["account_key"], amount))
                balances[row["account_key"]] += amount
            advance()
        if not lines:
            problems.add(f"Écriture n° {seq} ({tx['kind']}) sans ligne.")
        total = sum(amount for _, amount in lines)
        if total != 0:
            problems.add(f"Écriture n° {seq} ({tx['kind']}) déséquilibrée : somme {_euros(total)}.")
        if len({key for key, _ in lines}) != len(lines):
            problems.add(f"Écriture n° {seq} : un compte y figure deux fois.")
        if seq != expected_seq:
            problems.add(f"Chaîne rompue : écriture n° {expected_seq} manquante (trouvé n° {seq}).")
        if tx["prev_hash"] != prev_hash:
            problems.add(f"Chaîne rompue à l’écriture n° {seq} : l’empreinte précédente ne correspond pas.")
        recomputed = archive_transaction_hash(
            seq=tx["seq"],
            kind=tx["kind"],
            created_at=tx["created_at"],
            object_type=tx["object_type"],
            object_id=tx["object_id"],
            prev_hash=tx["prev_hash"],
            lines=lines,
        )
        if recomputed != tx["hash"]:
            problems.add(f"Écriture n° {seq} ({tx['kind']}) modifiée : son empreinte ne correspond plus.")
        prev_hash, expected_seq = tx["hash"], seq + 1
    while pending is not None:
        problems.add(f"Lignes du grand livre rattachées à l’écriture n° {pending[0]}, absente.")
        for row in pending[1]:
            balances[row["account_key"]] += int(row["amount_cents"])
        advance()
    head = manifest.get("ledger", {})
    if (head.get("head_seq"), head.get("head_hash")) != (expected_seq - 1, prev_hash):
        problems.add(
            f"Chaîne : la dernière écriture (n° {expected_seq - 1}) ne correspond pas à la tête annoncée par le "
            f"manifeste (n° {head.get('head_seq')})."
        )
    if sum(balances.values()) != 0:
        problems.add(f"La somme de tous les comptes vaut {_euros(sum(balances.values()))} au lieu de 0.")
    for account in accounts.values():
        rebuilt, stated = balances.get(account["key"], 0), int(account["balance_cents"])
        if rebuilt != stated:
            problems.add(
                f"Compte {account['key']} : les lignes donnent {_euros(rebuilt)}, le fichier des comptes "
                f"{_euros(stated)}."
            )
    known = {a["key"] for a in accounts.values()}
    for key in sorted(set(balances) - known):
        problems.add(f"Compte {key} : des lignes y sont passées mais il est absent du fichier des comptes.")
    return dict(balances)


def _check_domain(directory: Path, balances: dict[str, int], problems: Problems) -> None:
    """What the ledger says each funder owes or has paid agrees with the claims and redemptions."""
    claims = {  # one small tuple per claim: memory follows the number of claims, not of vouchers
        int(r["id"]): (r["reference"], int(r["lines_count"]), int(r["claimed_cents"]), int(r["rejected_cents"]))
        for r in _csv_rows(directory / "claims.csv")
    }
    open_lines = {int(r["line_id"]) for r in _csv_rows(directory / "finance_incidents.csv") if r["status"] == "open"}
    expected: dict[str, int] = defaultdict(int)
    per_claim: dict[int, list[int]] = defaultdict(lambda: [0, 0, 0])
    for line in _csv_rows(directory / "claim_lines.csv"):
        claim_id, amount = int(line["claim_id"]), int(line["amount_cents"])
        place, funder = line["place_id"], line["funder_id"]
        totals = per_claim[claim_id]
        totals[0] += 1
        totals[1] += amount
        if line["status"] == "claimed":
            expected[f"payable:l{place}:f{funder}"] += amount
        elif line["status"] == "paid":
            expected[f"paid:f{funder}"] += amount
        elif line["status"] == "rejected":
            totals[2] += amount
            if int(line["id"]) in open_lines:
                expected[f"contested:l{place}:f{funder}"] += amount
    for claim_id, (reference, *stated) in claims.items():
        if per_claim.get(claim_id, [0, 0, 0]) != stated:
            problems.add(f"Demande {reference} : ses totaux ne correspondent pas à ses lignes.")
    for claim_id in sorted(set(per_claim) - set(claims)):
        problems.add(f"Lignes de demande rattachées à la demande {claim_id}, absente.")
    # Redeemed, not yet claimed: each funder's share of the voucher is owed to the place.
    shares: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for pf in sorted(_csv_rows(directory / "program_funders.csv"), key=lambda r: int(r["id"])):
        shares[int(pf["program_id"])].append((int(pf["funder_id"]), int(pf["share_bps"])))
    unclaimed = {
        int(v["id"]): (int(v["program_id"]), int(v["face_value_cents"]))
        for v in _csv_rows(directory / "vouchers.csv")
        if v["status"] == "redeemed"
    }
    for r in _csv_rows(directory / "redemptions.csv"):
        if r["undone_at"] or int(r["voucher_id"]) not in unclaimed:
            continue
        program_id, face = unclaimed[int(r["voucher_id"])]
        funders = shares.get(program_id, [])
        for (funder_id, _), part in zip(funders, split_largest_remainder(face, [b for _, b in funders]), strict=True):
            expected[f"payable:l{r['place_id']}:f{funder_id}"] += part
    for key in sorted(k for k in set(balances) | set(expected) if k.split(":")[0] in ("payable", "paid", "contested")):
        actual, wanted = balances.get(key, 0), expected.get(key, 0)
        if actual != wanted:
            problems.add(
                f"Compte {key} : le grand livre dit {_euros(actual)}, les demandes et encaissements disent "
                f"{_euros(wanted)}."
            )
