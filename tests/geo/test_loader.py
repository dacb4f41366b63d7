import hashlib
import re
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from passnum.geo.enums import CommuneKind
from passnum.geo.loader import DATA_FILE, load_geography, read_dataset
from passnum.geo.models import VINTAGE, Commune, Departement, Epci, PostalCode, Region

COM_CODES = {"975", "977", "978", "984", "986", "987", "988", "989"}  # collectivités d'outre-mer


@pytest.mark.django_db
def test_counts(geography):
    assert Region.objects.count() == 26
    assert Region.objects.exclude(code__in=COM_CODES).count() == 18
    assert Departement.objects.count() == 109
    assert Departement.objects.exclude(code__in=COM_CODES).count() == 101
    assert Epci.objects.count() == 1255
    assert Commune.objects.filter(kind=CommuneKind.ACTUELLE).count() == 34969
    assert Commune.objects.filter(kind=CommuneKind.ARRONDISSEMENT).count() == 45
    assert Commune.objects.filter(kind=CommuneKind.ASSOCIEE).count() == 471
    # 2,105 communes déléguées, of which 584 share their code with their commune nouvelle.
    assert Commune.objects.filter(kind=CommuneKind.DELEGUEE).count() == 2105 - 584
    assert PostalCode.objects.count() == 35539


@pytest.mark.django_db
def test_attachments_are_consistent(geography):
    assert not Commune.objects.filter(kind=CommuneKind.ACTUELLE, parent__isnull=False).exists()
    assert not Commune.objects.exclude(kind=CommuneKind.ACTUELLE).filter(parent__isnull=True).exists()
    # Outside the COM, only 4 island communes belong to no EPCI.
    no_epci = Commune.objects.filter(kind=CommuneKind.ACTUELLE, epci__isnull=True)
    assert set(no_epci.exclude(departement__in=COM_CODES).values_list("code", flat=True)) == {
        "22016",
        "29083",
        "29155",
        "85113",
    }


@pytest.mark.django_db
def test_loader_is_idempotent(geography):
    first = load_geography()
    second = load_geography()
    assert first == second
    assert first["written"] == 0
    assert first["communes"] == 37006


@pytest.mark.django_db
def test_loader_repairs_drift(geography):
    Commune.objects.filter(code="60057").update(name="Beauvais-sur-Erreur", epci=None)
    PostalCode.objects.filter(code="60000", commune_id="60057").delete()
    PostalCode.objects.create(code="99999", commune_id="60057")

    result = load_geography()

    beauvais = Commune.objects.get(code="60057")
    assert (beauvais.name, beauvais.epci_id) == ("Beauvais", "200067999")
    assert set(beauvais.postal_codes.values_list("code", flat=True)) == {"60000"}
    assert result["written"] == 3
    assert load_geography()["written"] == 0


@pytest.mark.django_db
def test_loader_works_with_historical_models(geography):
    executor = MigrationExecutor(connection)
    state = executor.loader.project_state(("geo", "0002_load_geography"))
    assert load_geography(apps=state.apps)["written"] == 0


@pytest.mark.django_db
def test_loader_fills_empty_tables(geography):
    PostalCode.objects.all().delete()
    Commune.objects.exclude(parent=None).delete()
    Commune.objects.all().delete()
    Departement.objects.all().delete()
    Epci.objects.all().delete()
    Region.objects.all().delete()

    result = load_geography()

    assert result == {
        "regions": 26,
        "departements": 109,
        "epci": 1255,
        "communes": 37006,
        "postal_codes": 35539,
        "written": 26 + 109 + 1255 + 37006 + 35539,
    }
    assert Commune.objects.get(code="13201").parent_id == "13055"


def test_data_file_matches_its_provenance_note():
    data = read_dataset()
    assert data["vintage"] == VINTAGE
    note = (DATA_FILE.parent / "SOURCE.md").read_text(encoding="utf-8")
    assert "@etalab/decoupage-administratif" in note
    assert "c189ffd5b33fe40c2f19e1a923ce557f190622f39228745d3195d746dfe00c4a" in note
    produced = re.search(r"Fichier produit : sha256 `([0-9a-f]{64})`", note).group(1)
    assert produced == hashlib.sha256(DATA_FILE.read_bytes()).hexdigest()
    assert (DATA_FILE.parent / "LICENSE-code-MIT.txt").read_text().startswith("MIT License")


@pytest.mark.django_db
def test_command_load(geography):
    out = StringIO()
    call_command("geo", "load", stdout=out)
    text = out.getvalue()
    assert "COG 2026" in text
    assert "communes : 37\u202f006" in text
    assert "Déjà à jour" in text


@pytest.mark.django_db
def test_command_show(geography):
    out = StringIO()
    call_command("geo", "show", "13201", stdout=out)
    text = out.getvalue()
    assert "Marseille 1er Arrondissement (13201)" in text
    assert "Marseille (13055)" in text
    assert "Bouches-du-Rhône (13)" in text
    assert "Provence-Alpes-Côte d'Azur (93)" in text
    assert "Métropole d'Aix-Marseille-Provence (200054807)" in text


@pytest.mark.django_db
def test_command_show_unknown_code(geography):
    with pytest.raises(CommandError, match="99999"):
        call_command("geo", "show", "99999")
