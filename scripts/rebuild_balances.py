#!/usr/bin/env python3
"""Rebuild who owes what to whom from a pass numérique continuity archive, without the platform.

Standard library only: copy this file next to an archive and run it anywhere Python 3.9+ runs.

    python3 rebuild_balances.py ARCHIVE_DIR                 # balances, in French
    python3 rebuild_balances.py ARCHIVE_DIR --verify-chain  # also recompute every hash; exit 1 if broken
    python3 rebuild_balances.py ARCHIVE_DIR --json          # the same figures as JSON (integer cents)

It reads only ledger_transactions.csv, ledger_entries.csv and organisations.csv (see the archive's README.md:
« Chaîne d’empreintes », « Comptes du grand livre »). Memory stays small: entries are streamed in `seq` order.
"""

import argparse
import csv
import hashlib
import itertools
import json
import sys
from collections import defaultdict
from pathlib import Path

GENESIS = "0" * 64


def rows(path):
    with open(path, encoding="utf-8", newline="") as f:
        yield from csv.DictReader(f)


def tx_hash(tx, lines):
    body = "\n".join(f"{key}={amount}" for key, amount in sorted(lines))
    head = "|".join([tx["seq"], tx["kind"], tx["created_at"], tx["object_type"], tx["object_id"], tx["prev_hash"]])
    return hashlib.sha256(f"{head}\n{body}".encode()).hexdigest()


def euros(cents):
    sign = "-" if cents < 0 else ""
    whole, rest = divmod(abs(cents), 100)
    return f"{sign}{whole:,}".replace(",", " ") + f",{rest:02d} €"


def rebuild(archive):
    """Stream the ledger once: balances, what each funder paid each place, and the chain check."""
    balances = defaultdict(int)
    paid_to_place = defaultdict(int)  # (funder, place) -> cents, from `pay` transactions
    problems = []
    entries = itertools.groupby(rows(archive / "ledger_entries.csv"), key=lambda r: int(r["seq"]))
    pending = next(entries, None)
    prev_hash, expected = GENESIS, 1
    for tx in rows(archive / "ledger_transactions.csv"):
        seq = int(tx["seq"])
        while pending is not None and pending[0] < seq:
            problems.append(f"lignes sans écriture n° {pending[0]}")
            for e in pending[1]:
                balances[e["account_key"]] += int(e["amount_cents"])
            pending = next(entries, None)
        lines = []
        if pending is not None and pending[0] == seq:
            lines = [(e["account_key"], int(e["amount_cents"])) for e in pending[1]]
            pending = next(entries, None)
        for key, amount in lines:
            balances[key] += amount
            if tx["kind"] == "pay" and key.startswith("payable:"):
                _, place, funder = key.split(":")
                paid_to_place[(funder[1:], place[1:])] -= amount
        if sum(a for _, a in lines) != 0 or not lines:
            problems.append(f"écriture n° {seq} déséquilibrée ou vide")
        if seq != expected:
            problems.append(f"chaîne rompue : écriture n° {expected} manquante (trouvé n° {seq})")
        if tx["prev_hash"] != prev_hash:
            problems.append(f"chaîne rompue à l’écriture n° {seq} (empreinte précédente)")
        if tx_hash(tx, lines) != tx["hash"]:
            problems.append(f"écriture n° {seq} modifiée (empreinte)")
        prev_hash, expected = tx["hash"], seq + 1
    while pending is not None:
        problems.append(f"lignes sans écriture n° {pending[0]}")
        for e in pending[1]:
            balances[e["account_key"]] += int(e["amount_cents"])
        pending = next(entries, None)
    manifest_path = archive / "manifest.json"
    if manifest_path.exists():
        head = json.loads(manifest_path.read_text(encoding="utf-8")).get("ledger", {})
        if (head.get("head_seq"), head.get("head_hash")) != (expected - 1, prev_hash):
            problems.append("la dernière écriture n’est pas la tête de chaîne du manifeste")
    return balances, paid_to_place, problems, (expected - 1, prev_hash)


def main(argv=None):
    parser = argparse.ArgumentParser(description="Soldes du pass numérique recalculés depuis une archive.")
    parser.add_argument("archive", type=Path)
    parser.add_argument("--json", action="store_true", help="sortie JSON (centimes)")
    parser.add_argument("--verify-chain", action="store_true", help="contrôle la chaîne ; code 1 si rompue")
    args = parser.parse_args(argv)

    names = {r["id"]: r["name"] for r in rows(args.archive / "organisations.csv")}
    balances, paid_to_place, problems, (head_seq, head_hash) = rebuild(args.archive)
    pairs = defaultdict(lambda: {"owed_cents": 0, "contested_cents": 0, "paid_cents": 0})
    for key, amount in balances.items():
        kind, *rest = key.split(":")
        if kind in ("payable", "contested"):
            place, funder = rest[0][1:], rest[1][1:]
            pairs[(funder, place)]["owed_cents" if kind == "payable" else "contested_cents"] += amount
    for pair, amount in paid_to_place.items():
        pairs[pair]["paid_cents"] += amount
    owed = [
        {"funder_id": int(f), "place_id": int(p), **figures}
        for (f, p), figures in sorted(pairs.items(), key=lambda item: (int(item[0][0]), int(item[0][1])))
    ]
    accounts = {key: amount for key, amount in sorted(balances.items()) if amount != 0}

    if args.json:
        out = {"owed": owed, "accounts": accounts, "chain": {"head_seq": head_seq, "head_hash": head_hash}}
        if args.verify_chain:
            out["chain"]["problems"] = problems
        print(json.dumps(out, ensure_ascii=False, indent=2))
    else:
        print("Financeur → lieu : reste dû / contesté / déjà payé")
        for row in owed:
            f, p = str(row["funder_id"]), str(row["place_id"])
            print(
                f"  f{f} {names.get(f, '?')} → l{p} {names.get(p, '?')} : dû {euros(row['owed_cents'])} ; "
                f"contesté {euros(row['contested_cents'])} ; payé {euros(row['paid_cents'])}"
            )
        print(f"Total dû : {euros(sum(r['owed_cents'] for r in owed))}")
        print("Soldes de tous les comptes :")
        for key, amount in accounts.items():
            print(f"  {key:<28} {euros(amount):>20}")
        print(f"Tête de chaîne : écriture n° {head_seq}, {head_hash}")
        if args.verify_chain:
            for p in problems:
                print(f"✗ {p}", file=sys.stderr)
            print("✓ Chaîne d’empreintes intacte." if not problems else f"✗ {len(problems)} problème(s).")
    return 1 if args.verify_chain and problems else 0


if __name__ == "__main__":
    sys.exit(main())
