"""The national standard: import (CSV v1.0.x and v0.1.1, JSON of the national map and hubs), export (v1.0.1) and
the open-data URLs."""

import csv
import json
import time
from pathlib import Path

import frictionless
import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError
from django.db.models import Count

from passnum.geo.models import Commune, PostalCode
from passnum.journal.models import JournalEntry
from passnum.places import standard
from passnum.places.models import Site
from passnum.places.services import ApplicantData, BankData, SiteData, place_signup, site_decide
from passnum.places.standard import (
    EXPORT_SOURCE,
    export_csv,
    export_json,
    export_rows,
    import_file,
    open_data_sites,
    schema_descriptor,
)
from tests.factories import OrganisationFactory

pytestmark = pytest.mark.django_db

REFERENCE = Path(__file__).resolve().parents[3] / "shared" / "reference" / "mediation-numerique"
SCHEMAS = Path(standard.__file__).parent / "schemas"


def example(name: str) -> Path:
    path = REFERENCE / name
    if not path.exists():
        pytest.skip(f"reference file missing: {path}")
    return path


def example_row() -> tuple[list[str], dict[str, str]]:
    with example("exemple-valide-v1.csv").open(encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        return list(reader.fieldnames), next(reader)


def write_v1(path: Path, rows: list[dict], *, header: list[str] | None = None, delimiter: str = ",") -> Path:
    fieldnames, base = example_row()
    fieldnames = header or fieldnames
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fieldnames, delimiter=delimiter, extrasaction="ignore")
        writer.writeheader()
        for i, overrides in enumerate(rows):
            writer.writerow({**base, "id": f"lieu-{i + 1}", "source": "Hub test", **overrides})
    return path


def validate(path: Path, descriptor: dict) -> frictionless.Report:
    """frictionless's own validation of a whole CSV file against a Table Schema (a copy: frictionless mutates it)."""
    schema = frictionless.Schema.from_descriptor(json.loads(json.dumps(descriptor)))
    return frictionless.Resource(path=path.name, basepath=str(path.parent), schema=schema).validate()


def rejected(report) -> dict[str, str]:
    return {issue.id: issue.reason for issue in report.rejected}


# --- Official examples ----------------------------------------------------------------------------------------


def test_official_v1_example_becomes_a_listed_site():
    report = import_file(example("exemple-valide-v1.csv"))
    assert report.readable and (report.rows, report.created, report.rejected) == (1, 1, [])
    assert "v1.0.x" in report.format and "« , »" in report.format
    site = Site.objects.get()
    assert (site.source, site.source_id, site.status, site.organisation) == ("Hubik", "structure-1", "listed", None)
    assert (site.name, site.pivot, site.postal_code, site.commune_id) == (
        "Anonymal",
        "43493312300029",
        "51100",
        "51454",
    )
    assert site.commune_name == Commune.objects.get(code="51454").name
    assert (site.latitude, site.longitude) == (43.52609, 5.41423)
    assert site.services == ["outils_du_quotidien", "insertion_professionnelle", "loisirs_creations"]
    assert site.publics == ["jeunes", "femmes"]
    assert site.supports == ["surdite", "illettrisme", "langues_anglais"]
    assert site.access_modes == ["se_presenter", "telephoner"]
    assert site.opening_hours == "Mo-Fr 09:00-12:00,14:00-18:30; Sa 08:30-12:00"
    assert (site.email, site.website) == ("contact@laquincaillerie.tl", "https://www.laquincaillerie.tl/")
    assert (site.typologie, site.phone, str(site.updated_on)) == ("TIERS_LIEUX|ASSO", "+33180059880", "2024-04-02")
    assert site.booking_url == "https://www.rdv-solidarites.fr/"
    assert site.standard_row["formations_labels"].startswith("Formé à « Mon Espace Santé »")
    assert JournalEntry.objects.get(action="places.import").data["created"] == 1


def test_official_v011_example_becomes_a_listed_site():
    report = import_file(example("exemple-valide-v0.1.1.csv"))
    assert (report.created, report.rejected) == (1, []), report.as_text()
    assert "v0.1.1" in report.format
    site = Site.objects.get()
    assert (site.source_id, site.status, site.commune_id) == ("structure-1", "listed", "51454")
    assert site.services == ["demarches_administratives", "outils_du_quotidien"]
    assert (site.publics, site.supports) == (["familles_enfants"], ["deficience_visuelle"])
    assert (site.typologie, site.website) == ("TIERS_LIEUX|ASSO", "https://www.laquincaillerie.tl/")
    assert site.standard_row["conditions_acces"].endswith("pour accéder au lieu")


def test_demo_places_file_is_valid_v101_and_imports():
    from passnum.common.demo import PLACES_CSV

    assert validate(PLACES_CSV, schema_descriptor("1.0.1")).valid
    report = import_file(PLACES_CSV)
    assert report.readable and report.rejected == [] and report.created == report.rows > 0


def test_rerun_creates_no_duplicate_and_updates_listed_sites(tmp_path):
    path = write_v1(tmp_path / "hub.csv", [{}, {}, {}])
    assert import_file(path).created == 3
    again = import_file(path)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 3)
    write_v1(path, [{}, {"nom": "Nouveau nom"}, {}])
    third = import_file(path)
    assert (third.created, third.updated, third.unchanged) == (0, 1, 2)
    assert Site.objects.count() == 3 and Site.objects.get(source_id="lieu-2").name == "Nouveau nom"


def test_never_overwrites_a_site_of_an_organisation(tmp_path):
    org = OrganisationFactory(place=True, siret="21510045400010")
    mine = Site.objects.create(
        organisation=org, status="qualified", name="Le vrai nom", address="1 rue A", postal_code="51100",
        commune_name="Reims", source="Hub test", source_id="lieu-1",
    )  # fmt: skip
    report = import_file(write_v1(tmp_path / "hub.csv", [{}, {}]))
    assert (report.created, [(s.line, s.id) for s in report.skipped]) == (1, [(2, "lieu-1")])
    mine.refresh_from_db()
    assert (mine.name, mine.status, mine.organisation_id) == ("Le vrai nom", "qualified", org.id)


def test_source_column_then_option_then_file_name(tmp_path):
    path = write_v1(tmp_path / "Lieux Hub 2024.csv", [{"source": ""}, {"source": "Ville"}])
    import_file(path)
    import_file(path, source="hub-grand-est")
    assert sorted(Site.objects.values_list("source", "source_id")) == [
        ("Ville", "lieu-2"),
        ("hub-grand-est", "lieu-1"),
        ("lieux-hub-2024", "lieu-1"),
    ]
    assert import_file(path, source="pass-numerique").refused


# --- The v1.0.2 defect ---------------------------------------------------------------------------------------------


def test_etapes_numeriques_accepted_in_both_spellings(tmp_path):
    spaced, glued = "Étapes numériques (La Poste)", "Étapes numériques(La Poste)"
    rows = [{"formations_labels": spaced}, {"formations_labels": f"ORDI 3.0|{glued}"}, {"formations_labels": "Autre"}]
    report = import_file(write_v1(tmp_path / "v102.csv", rows))
    assert report.created == 2 and list(rejected(report)) == ["lieu-3"]
    assert "formations_labels" in rejected(report)["lieu-3"]


def test_shipped_v102_schema_has_the_defect_and_differs_from_v101_only_there(tmp_path):
    v101, v102 = schema_descriptor("1.0.1"), schema_descriptor("1.0.2")
    assert [f for f in v101["fields"] if f["name"] != "formations_labels"] == [
        f for f in v102["fields"] if f["name"] != "formations_labels"
    ]
    fieldnames, base = example_row()
    for label, valid in (("Étapes numériques(La Poste)", True), ("Étapes numériques (La Poste)", False)):
        path = tmp_path / "one.csv"
        with path.open("w", encoding="utf-8", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=fieldnames)
            writer.writeheader()
            writer.writerow({**base, "formations_labels": label})
        assert validate(path, v102).valid is valid  # if upstream fixes the regex, drop the patch


# --- Broken files ----------------------------------------------------------------------------------------------------


def test_latin1_file_is_refused_whole_with_a_french_message(tmp_path):
    text = example("exemple-valide-v1.csv").read_text(encoding="utf-8")
    path = tmp_path / "latin1.csv"
    path.write_bytes(text.replace("«", '"').replace("»", '"').encode("cp1252"))
    report = import_file(path)
    assert not report.readable and Site.objects.count() == 0
    assert "UTF-8" in report.refused and "ligne 2" in report.refused and "« é »" in report.refused
    assert "Rien n’a été importé" in report.as_text()


def test_utf8_with_bom_and_semicolon_delimiter(tmp_path):
    path = write_v1(tmp_path / "excel.csv", [{}, {}], delimiter=";")
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    report = import_file(path)
    assert report.created == 2 and "« ; »" in report.format


def test_missing_required_column_refuses_the_whole_file(tmp_path):
    fieldnames, _ = example_row()
    path = write_v1(tmp_path / "no-pivot.csv", [{}, {}], header=[h for h in fieldnames if h not in ("pivot", "nom")])
    report = import_file(path)
    assert "Colonnes obligatoires absentes" in report.refused and "pivot, nom" in report.refused
    assert Site.objects.count() == 0


def test_unknown_header_is_refused(tmp_path):
    path = tmp_path / "autre.csv"
    path.write_text("a,b,c\n1,2,3\n", encoding="utf-8")
    assert "En-tête non reconnu" in import_file(path).refused


def test_bad_rows_are_rejected_with_their_reason_and_the_others_kept(tmp_path):
    rows = [
        {},
        {"code_postal": "5110"},
        {"code_insee": "99999"},
        {"code_insee": "2C123"},
        {"code_insee": "", "code_postal": "99999"},
        {"latitude": "49,25"},
        {"date_maj": "02/04/2024"},
        {"services": "Cuisine|Maîtrise des outils numériques du quotidien"},
        {"nom": ""},
        {"telephone": "03 26 00 00 00"},
        {"horaires": "le lundi matin, sur rendez-vous"},
        {"latitude": "95", "longitude": "4"},
    ]
    report = import_file(write_v1(tmp_path / "mixed.csv", rows))
    reasons = rejected(report)
    assert set(reasons) == {f"lieu-{n}" for n in (2, 3, 4, 5, 6, 7, 8, 9, 10)}
    assert reasons["lieu-2"] == "code_postal : « 5110 » n’est pas un code postal (5 chiffres)"
    assert "commune 99999 inconnue" in reasons["lieu-3"]
    assert "n’est pas un code INSEE" in reasons["lieu-4"]
    assert "99999 ne correspond à aucune commune" in reasons["lieu-5"]
    assert "n’est pas un nombre" in reasons["lieu-6"] and "n’est pas une date" in reasons["lieu-7"]
    assert reasons["lieu-8"] == "services : hors du vocabulaire du standard : « Cuisine » (séparateur « | »)"
    assert reasons["lieu-9"] == "nom : champ obligatoire vide"
    assert "format international" in reasons["lieu-10"]
    assert [i.line for i in report.rejected if i.id == "lieu-2"] == [3]
    assert report.created == 3  # unreadable hours are kept as-is; impossible coordinates are dropped
    assert Site.objects.get(source_id="lieu-11").opening_hours == "le lundi matin, sur rendez-vous"
    assert Site.objects.get(source_id="lieu-12").latitude is None
    text = report.as_text()
    assert "rejetés : 9" in text and "ligne 3 (id « lieu-2 ») : code_postal" in text
    assert "horaires hors syntaxe OpenStreetMap" in text and "coordonnées hors limites" in text


def test_duplicated_ids_keep_the_first(tmp_path):
    report = import_file(write_v1(tmp_path / "dup.csv", [{"id": "x"}, {"id": "y"}, {"id": "x", "nom": "Bis"}]))
    assert report.created == 2 and [(i.line, i.id) for i in report.rejected] == [(4, "x")]
    assert "déjà vu ligne 2" in report.rejected[0].reason
    assert Site.objects.get(source_id="x").name == "Anonymal"


def test_commune_found_by_postal_code_and_name(tmp_path):
    shared = PostalCode.objects.filter(commune__kind="actuelle").values("code").annotate(n=Count("commune"))
    code = shared.filter(n__gte=2).order_by("code").first()["code"]
    communes = list(Commune.objects.filter(postal_codes__code=code, kind="actuelle").order_by("code")[:2])
    rows = [
        {"code_insee": "", "code_postal": "51100", "commune": "REIMS CEDEX"},
        {"code_insee": "", "code_postal": code, "commune": communes[1].name.upper()},
        {"code_insee": "", "code_postal": code, "commune": "Ailleurs-sur-Mer"},
    ]
    report = import_file(write_v1(tmp_path / "cp.csv", rows))
    assert Site.objects.get(source_id="lieu-1").commune_id == "51454"
    assert Site.objects.get(source_id="lieu-2").commune_id == communes[1].code
    assert "introuvable parmi celles du code postal" in rejected(report)["lieu-3"]


def test_malformed_rows_and_blank_lines(tmp_path):
    path = write_v1(tmp_path / "holes.csv", [{}, {}])
    lines = path.read_text(encoding="utf-8").splitlines()
    path.write_text("\n".join([*lines, "", '"lieu-9","123"', ""]) + "\n", encoding="utf-8")
    report = import_file(path)
    assert report.created == 2 and "2 valeurs au lieu de 32" in rejected(report)["lieu-9"]


def test_empty_files(tmp_path):
    empty = tmp_path / "vide.csv"
    empty.write_bytes(b"")
    assert "vide" in import_file(empty).refused
    empty.write_bytes(b"\xef\xbb\xbf \n")
    assert "vide" in import_file(empty).refused
    header_only = write_v1(tmp_path / "entete.csv", [])
    report = import_file(header_only)
    assert report.readable and report.rows == 0


def test_a_crash_leaves_nothing_of_the_file(tmp_path, monkeypatch):
    path = write_v1(tmp_path / "crash.csv", [{}] * 5)
    calls = []
    real = Site.objects.bulk_create

    def failing(objs, *args, **kwargs):
        calls.append(len(objs))
        if len(calls) == 2:
            raise DatabaseError("disque plein")
        return real(objs, *args, **kwargs)

    monkeypatch.setattr(Site.objects, "bulk_create", failing)
    with pytest.raises(DatabaseError):
        import_file(path, batch_size=2)
    assert calls == [2, 2] and Site.objects.count() == 0
    assert not JournalEntry.objects.filter(action="places.import").exists()


def test_dry_run_saves_nothing(tmp_path):
    report = import_file(write_v1(tmp_path / "essai.csv", [{}, {"code_postal": "1"}]), dry_run=True)
    assert (report.created, len(report.rejected)) == (1, 1) and "Simulation" in report.as_text()
    assert Site.objects.count() == 0


def test_huge_file_is_fast_and_complete(tmp_path):
    fieldnames, base = example_row()
    communes = list(Commune.objects.filter(kind="actuelle", departement_id="51").values_list("code", flat=True)[:50])
    path = tmp_path / "national.csv"
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fieldnames)
        writer.writeheader()
        for i in range(20_000):
            row = {**base, "id": f"l-{i}", "code_insee": communes[i % len(communes)], "nom": f"Lieu {i}"}
            if i % 1000 == 7:
                row["code_postal"] = "ABCDE"
            if i % 1000 == 9:
                row["id"] = "l-0"
            if i % 100 == 3:
                row.update(code_insee="", code_postal="51100", commune="Reims")
            writer.writerow(row)
    started = time.monotonic()
    report = import_file(path)
    elapsed = time.monotonic() - started
    print(f"\n20 000 rows imported in {elapsed:.1f} s")  # noqa: T201 — shown with -s
    assert elapsed < 60
    assert (report.rows, report.created, len(report.rejected)) == (20_000, 19_960, 40)
    assert Site.objects.filter(status="listed").count() == 19_960
    started = time.monotonic()
    again = import_file(path)
    print(f"re-run (unchanged) in {time.monotonic() - started:.1f} s")  # noqa: T201
    assert (again.created, again.updated, again.unchanged) == (0, 0, 19_960)


# --- JSON of the national map and hubs -------------------------------------------------------------------------------


def _flat_record(**overrides) -> dict:
    _, base = example_row()
    record = {k: v for k, v in base.items() if v}
    record.update(latitude=49.25, longitude=4.03, services=record["services"].split("|"), id="f-1", source="Hub")
    record.update(overrides)
    return record


def test_json_flat_array(tmp_path):
    records = [_flat_record(), _flat_record(id="f-2", code_postal=1000, code_insee="01053", commune="Bourg-en-Bresse")]
    records.append("pas un objet")
    path = tmp_path / "hub.json"
    path.write_text(json.dumps(records, ensure_ascii=False), encoding="utf-8")
    report = import_file(path)
    assert report.created == 2 and report.unit == "enregistrement" and "tableau plat" in report.format
    assert [(i.line, i.reason) for i in report.rejected] == [(3, "cet enregistrement n’est pas un objet JSON")]
    site = Site.objects.get(source_id="f-2")
    assert (site.postal_code, site.commune_id, site.latitude) == ("01000", "01053", 49.25)
    assert site.services == ["outils_du_quotidien", "insertion_professionnelle", "loisirs_creations"]
    assert import_file(path).unchanged == 2


def test_json_of_the_national_map_api(tmp_path):
    record = {
        "id": "carto-1",
        "nom": "France Services de Reims",
        "pivot": "21510045400010",
        "adresse": {
            "commune": "Reims",
            "nom_voie": "Rue de Leclercq",
            "code_insee": "51454",
            "repetition": "bis",
            "code_postal": "51100",
            "numero_voie": "12",
        },
        "latitude": 49.25,
        "longitude": 4.03,
        "date_maj": "2025-01-15",
        "source": "dataspace",
        "services": ["Aide aux démarches administratives"],
        "modalites_acces": ["Se présenter", "Téléphoner"],
        "frais_a_charge": ["Gratuit"],
        "mediateurs": [{"prenom": "Camille", "nom": "Durand", "email": "camille@exemple.fr"}],
    }
    path = tmp_path / "carto.json"
    path.write_text(json.dumps([record], ensure_ascii=False, indent=2), encoding="utf-8")
    report = import_file(path)
    assert report.created == 1, report.as_text()
    assert "API des lieux" in report.format
    site = Site.objects.get()
    assert (site.address, site.commune_id, site.access_modes) == (
        "12bis Rue de Leclercq",
        "51454",
        ["se_presenter", "telephoner"],
    )
    assert "mediateurs" not in site.standard_row and "Durand" not in json.dumps(site.standard_row)
    assert site.standard_row["frais_a_charge"] == "Gratuit"


def test_json_of_the_lieu_mediation_numerique_model(tmp_path):
    record = {
        "id": "m-1",
        "pivot": "43493312300029",
        "nom": "Anonymal",
        "adresse": {"voie": "12 BIS RUE DE LECLERCQ", "code_postal": "51100", "commune": "Reims"},
        "localisation": {"latitude": 49.25, "longitude": 4.03},
        "contact": {
            "telephone": "+33180059880",
            "courriels": ["a@exemple.fr", "b@exemple.fr"],
            "site_web": ["https://a.fr"],
        },
        "presentation": {"resume": "Court", "detail": "Long"},
        "typologies": ["TIERS_LIEUX", "ASSO"],
        "date_maj": "2024-04-02T00:00:00.000Z",
        "services": ["Loisirs et créations numériques"],
        "source": "Hubik",
    }
    path = tmp_path / "cartographie-nationale.lieux-inclusion-numerique.json"
    path.write_text(json.dumps([record]), encoding="utf-8")
    report = import_file(path)
    assert report.created == 1 and "LieuMediationNumerique" in report.format, report.as_text()
    site = Site.objects.get()
    assert (site.address, site.commune_id, site.email, site.website) == (
        "12 BIS RUE DE LECLERCQ", "51454", "a@exemple.fr", "https://a.fr",
    )  # fmt: skip
    assert (site.summary, site.description, site.typologie, str(site.updated_on)) == (
        "Court", "Long", "TIERS_LIEUX|ASSO", "2024-04-02",
    )  # fmt: skip


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ('[{"id": "a", }]', "JSON invalide ligne 2"),
        ('[{"id": "a"}\n{"id": "b"}]', "JSON invalide ligne 3"),
        ('{"id": "a"}', "un tableau d’objets"),
        ('[{"id": "a"}] [', "contenu après la fin du tableau"),
        ('[{"id": "a"}', "JSON invalide"),
    ],
)
def test_invalid_json_is_refused_whole(tmp_path, content, expected):
    path = tmp_path / "bad.json"
    valid = json.dumps(_flat_record(id="ok"), ensure_ascii=False)
    path.write_text(content.replace("[", f"[{valid},\n", 1) if content.startswith("[") else content, "utf-8")
    report = import_file(path)
    assert expected in report.refused
    assert Site.objects.count() == 0


def test_json_streaming_across_chunks(tmp_path, monkeypatch):
    monkeypatch.setattr(standard, "READ_CHUNK", 97)
    records = [_flat_record(id=f"s-{i}", presentation_detail="é" * (i * 13)) for i in range(30)]
    path = tmp_path / "big.json"
    path.write_text(json.dumps(records, ensure_ascii=False, indent=1), encoding="utf-8")
    report = import_file(path)
    assert report.created == 30, report.as_text()


# --- Export --------------------------------------------------------------------------------------------------------


def _qualified_sites():
    """One site qualified through the services, one created directly; plus sites that must not be exported."""
    operator = OrganisationFactory(operator=True)
    org = place_signup(
        name="Médiathèque Jean Falala",
        siret="21510045400010",
        applicant=ApplicantData(email="admin@lieu.fr", password="un-mot-de-passe-solide"),
        sites=[
            SiteData(
                name="Médiathèque Jean Falala",
                address="2 rue des Fuseliers",
                postal_code="51100",
                insee_code="51454",
                services={"outils_du_quotidien": 1, "demarches_administratives": 2},
                latitude=49.25419,
                longitude=4.03176,
                opening_hours="Tu-Sa 10:00-19:00",
                publics=["seniors"],
                supports=["surdite"],
                phone="03 26 35 30 00",
                summary="Ateliers numériques.",
            )
        ],
        bank=BankData(holder_name="Ville de Reims", iban="FR7630006000011234567890189", bic="AGRIFRPP"),
    )
    first = site_decide(
        site=Site.objects.get(organisation=org), decision="qualify", reason="", actor=None, organisation=operator
    )
    asso = OrganisationFactory(place=True, rna="W512000123")
    second = Site.objects.create(
        organisation=asso, status="qualified", name="Asso", address="1 rue A", postal_code="51100",
        commune_id="51454", commune_name="Reims", services=["acces_internet_materiel"], access_modes=["telephoner"],
        source_id="asso-1", standard_row={
            "frais_a_charge": "Payant",
            "formations_labels": "Étapes numériques (La Poste)|ORDI 3.0",
            "itinerance": "Fixe",
        },
    )  # fmt: skip
    Site.objects.create(name="Référencé", address="x", postal_code="51100", commune_name="Reims", source_id="l")
    Site.objects.create(
        organisation=asso, status="pending", name="En attente", address="x", postal_code="51100", commune_name="Reims",
        source_id="p",
    )  # fmt: skip
    no_id = OrganisationFactory(place=True)
    Site.objects.create(
        organisation=no_id, status="qualified", name="Sans SIRET", address="x", postal_code="51100",
        commune_name="Reims", source_id="n",
    )  # fmt: skip
    return first, second


def test_export_csv_validates_against_the_shipped_v101_schema(tmp_path):
    first, second = _qualified_sites()
    path = tmp_path / "export.csv"
    with path.open("w", encoding="utf-8", newline="") as f:
        assert export_csv(open_data_sites(), f) == 2
    report = validate(path, json.loads((SCHEMAS / standard.SCHEMA_FILES["1.0.1"]).read_text(encoding="utf-8")))
    assert report.valid, report.flatten(["rowNumber", "fieldName", "note"])
    with path.open(encoding="utf-8", newline="") as f:
        rows = {r["id"]: r for r in csv.DictReader(f)}
    assert list(rows) == [f"pass-numerique-{first.pk}", f"pass-numerique-{second.pk}"]
    one, two = rows.values()
    assert (one["pivot"], one["source"], one["frais_a_charge"]) == (
        "21510045400010",
        EXPORT_SOURCE,
        "Gratuit sous condition",
    )
    assert one["services"] == "Aide aux démarches administratives|Maîtrise des outils numériques du quotidien"
    assert (one["telephone"], one["publics_specifiquement_adresses"], one["code_insee"]) == (
        "+33326353000",
        "Seniors",
        "51454",
    )
    assert (two["pivot"], two["frais_a_charge"], two["formations_labels"]) == (
        "W512000123",
        "Gratuit sous condition|Payant",
        "ORDI 3.0",
    )
    assert (two["modalites_acces"], two["itinerance"]) == ("Téléphoner", "Fixe")


def test_export_json_and_reimport_of_our_own_export(tmp_path):
    first, second = _qualified_sites()
    records = json.loads(export_json(open_data_sites()))
    assert [r["id"] for r in records] == [f"pass-numerique-{first.pk}", f"pass-numerique-{second.pk}"]
    assert records[0]["latitude"] == 49.25419 and "complement_adresse" not in records[0]
    assert len(list(export_rows(Site.objects.filter(status="listed")))) == 0
    path = tmp_path / "nous.json"
    path.write_text(json.dumps(records, ensure_ascii=False), encoding="utf-8")
    report = import_file(path)
    assert (report.created, len(report.skipped)) == (0, 2)  # our own data coming back from the national map


# --- Open data URLs --------------------------------------------------------------------------------------------------


def test_open_data_urls_publish_only_qualified_sites_with_cors(client):
    first, second = _qualified_sites()
    response = client.get("/donnees/lieux.json")
    assert response.status_code == 200 and response["Content-Type"].startswith("application/json")
    assert response["Access-Control-Allow-Origin"] == "*" and "max-age" in response["Cache-Control"]
    assert [r["id"] for r in response.json()] == [f"pass-numerique-{first.pk}", f"pass-numerique-{second.pk}"]
    assert "admin@lieu.fr" not in response.content.decode()
    again = client.get("/donnees/lieux.json", headers={"if-none-match": response["ETag"]})
    assert again.status_code == 304
    csv_response = client.get("/donnees/lieux.csv")
    assert csv_response.status_code == 200 and csv_response["Access-Control-Allow-Origin"] == "*"
    lines = csv_response.content.decode().splitlines()
    assert lines[0].startswith("id,pivot,nom,") and len(lines) == 3
    assert client.post("/donnees/lieux.json").status_code == 405


def test_open_data_when_nothing_is_qualified(client):
    assert client.get("/donnees/lieux.json").json() == []
    assert client.get("/donnees/lieux.csv").content.decode().count("\n") == 1


# --- The command --------------------------------------------------------------------------------------------------


def test_command_import_exit_codes_and_report(tmp_path, capsys):
    good = write_v1(tmp_path / "hub.csv", [{}, {"code_postal": "5110"}])
    call_command("places", "import", str(good))
    out = capsys.readouterr().out
    assert "lieux créés : 1" in out and "rejetés : 1" in out and "ligne 3 (id « lieu-2 »)" in out
    call_command("places", "import", str(good), "--dry-run", "--source", "autre")
    assert "Simulation" in capsys.readouterr().out
    broken = tmp_path / "latin1.csv"
    broken.write_bytes("id,nom\nx,Médiathèque\n".encode("latin-1"))
    with pytest.raises(CommandError) as exc:
        call_command("places", "import", str(broken))
    assert exc.value.returncode == 1 and "UTF-8" in capsys.readouterr().err
    with pytest.raises(CommandError) as exc:
        call_command("places", "import", str(tmp_path / "absent.csv"))
    assert exc.value.returncode == 1
    assert Site.objects.count() == 1


def test_command_export_csv_and_json(tmp_path, capsys):
    _qualified_sites()
    call_command("places", "export", str(tmp_path / "lieux.csv"))
    assert "2 lieu(x)" in capsys.readouterr().out
    call_command("places", "export", str(tmp_path / "lieux.json"))
    assert len(json.loads((tmp_path / "lieux.json").read_text(encoding="utf-8"))) == 2
