"""Build passnum/geo/data/geo-cog2026.json.gz from npm @etalab/decoupage-administratif 6.0.0.

Usage: python scripts/build_geo_data.py [--source DIR] [--out DIR]

The output is deterministic (sorted rows, gzip mtime 0): rebuilding from the same source gives the same bytes.
"""

import argparse
import gzip
import hashlib
import json
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SOURCE = Path("/work/shared/reference/geo/decoupage-administratif-6.0.0")
DEFAULT_OUT = ROOT / "passnum" / "geo" / "data"

PACKAGE = "@etalab/decoupage-administratif"
VERSION = "6.0.0"
TARBALL_SHA256 = "c189ffd5b33fe40c2f19e1a923ce557f190622f39228745d3195d746dfe00c4a"
VINTAGE = "COG 2026"
DATA_FILE = "geo-cog2026.json.gz"
SOURCE_FILES = ("regions.json", "departements.json", "epci.json", "communes.json")

# Source `type` -> CommuneKind value (passnum/geo/enums.py).
KINDS = {
    "commune-actuelle": "actuelle",
    "commune-deleguee": "deleguee",
    "commune-associee": "associee",
    "arrondissement-municipal": "arrondissement",
}
COLUMNS = {
    "regions": ["code", "name"],
    "departements": ["code", "name", "region"],
    "epci": ["code", "name", "kind"],
    # region is not stored: it is always the département's region (checked below).
    "communes": ["code", "name", "kind", "departement", "epci", "parent", "population", "postal_codes"],
}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def build(source: Path) -> tuple[dict, dict]:
    raw = {name: json.loads((source / name).read_text(encoding="utf-8")) for name in SOURCE_FILES}

    regions = sorted([r["code"], r["nom"]] for r in raw["regions.json"])
    departements = sorted([d["code"], d["nom"], d["region"]] for d in raw["departements.json"])
    dep_region = {d[0]: d[2] for d in departements}

    epcis = sorted([e["code"], e["nom"], e["type"]] for e in raw["epci.json"])
    epci_of = {}
    for e in raw["epci.json"]:
        for member in e["membres"]:
            if member["code"] in epci_of:
                raise SystemExit(f"commune {member['code']} appartient à deux EPCI")
            epci_of[member["code"]] = e["code"]

    actual = {c["code"]: c for c in raw["communes.json"] if c["type"] == "commune-actuelle"}
    communes = []
    folded = 0
    for c in raw["communes.json"]:
        kind = KINDS[c["type"]]
        code = c["code"]
        if kind == "actuelle":
            parent = None
            owner = c
        else:
            parent = c["chefLieu"] if kind in ("deleguee", "associee") else c["commune"]
            owner = actual[parent]
            if code in actual:
                # The "commune déléguée chef-lieu" keeps the code of the new commune it is part of:
                # one code, one row; the actual commune already covers its territory.
                folded += 1
                continue
        # Non-actual entries take their parent's attachments, so territory filters work on one row.
        departement = owner["departement"]
        if dep_region[departement] != owner["region"]:
            raise SystemExit(f"commune {code}: région incohérente avec son département")
        communes.append(
            [
                code,
                c["nom"],
                kind,
                departement,
                epci_of.get(owner["code"]),
                parent,
                c.get("population"),
                sorted(set(c.get("codesPostaux", []))),
            ]
        )
    communes.sort(key=lambda row: (row[2] != "actuelle", row[0]))  # parents before children

    data = {
        "vintage": VINTAGE,
        "source": f"npm {PACKAGE}@{VERSION}",
        "columns": COLUMNS,
        "regions": regions,
        "departements": departements,
        "epci": epcis,
        "communes": communes,
    }
    stats = {
        "regions": len(regions),
        "departements": len(departements),
        "epci": len(epcis),
        "communes": len(communes),
        "communes_actuelles": sum(1 for row in communes if row[2] == "actuelle"),
        "deleguees_fusionnees": folded,
        "codes_postaux": sum(len(row[7]) for row in communes),
    }
    return data, stats


def write(data: dict, out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    payload = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    target = out / DATA_FILE
    with target.open("wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz:
        gz.write(payload)
    return target


def write_source_md(source: Path, out: Path, target: Path, stats: dict) -> None:
    files = "\n".join(f"| `{name}` | `{sha256(source / name)}` |" for name in SOURCE_FILES)
    text = f"""# Données géographiques — provenance

Le fichier `{DATA_FILE}` est dérivé, par `scripts/build_geo_data.py`, des fichiers `data/*.json`
du paquet npm **`{PACKAGE}` {VERSION}** (dépôt `https://github.com/etalab/decoupage-administratif`).

- Millésime : **{VINTAGE}** (Code officiel géographique de l'Insee, codes postaux La Poste).
- Archive npm : sha256 `{TARBALL_SHA256}`.
- Fichier produit : sha256 `{sha256(target)}`.

## Fichiers source lus

| fichier | sha256 |
|---|---|
{files}

## Contenu

| table | lignes |
|---|---|
| régions (dont collectivités d'outre-mer) | {stats["regions"]} |
| départements (dont collectivités d'outre-mer) | {stats["departements"]} |
| EPCI à fiscalité propre | {stats["epci"]} |
| communes (toutes sortes) | {stats["communes"]} |
| dont communes actuelles | {stats["communes_actuelles"]} |
| codes postaux (couples code, commune) | {stats["codes_postaux"]} |

Les communes déléguées, associées et les arrondissements municipaux portent le département,
la région et l'EPCI de leur commune de rattachement. {stats["deleguees_fusionnees"]} communes déléguées
portent le même code Insee que leur commune nouvelle : elles ne forment pas de ligne à part.

## Licences

- Données : Licence Ouverte (Etalab) ; producteurs Insee (Code officiel géographique, populations)
  et La Poste (base officielle des codes postaux, elle aussi sous Licence Ouverte).
- Code du paquet npm : licence MIT, texte copié dans `LICENSE-code-MIT.txt`.

Copie de référence dans le projet : `shared/reference/geo/decoupage-administratif-6.0.0/`
(voir `shared/reference/README.md`, collecte du 2026-11-25).
"""
    (out / "SOURCE.md").write_text(text, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)

    data, stats = build(args.source)
    target = write(data, args.out)
    write_source_md(args.source, args.out, target, stats)
    shutil.copyfile(args.source / "LICENSE-code-MIT.txt", args.out / "LICENSE-code-MIT.txt")
    print(f"{target} : {target.stat().st_size} octets, {stats}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
