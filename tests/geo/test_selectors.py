import pytest

from passnum.geo.enums import CommuneKind, TerritoryLevel
from passnum.geo.loader import read_dataset
from passnum.geo.models import Commune
from passnum.geo.selectors import (
    commune_get,
    communes_for_postal_code,
    communes_in_territory,
    territory_contains,
    territory_filter,
    unknown_codes,
)

BEAUVAIS = "60057"
CA_BEAUVAISIS = "200067999"
MARSEILLE = "13055"
MARSEILLE_1ER = "13201"
AIX_MARSEILLE_METROPOLE = "200054807"


@pytest.mark.django_db
def test_commune_get(geography):
    beauvais = commune_get(code=BEAUVAIS)
    assert str(beauvais) == "Beauvais (60057)"
    assert beauvais.kind == CommuneKind.ACTUELLE
    assert (beauvais.departement_id, beauvais.region_id, beauvais.epci_id) == ("60", "32", CA_BEAUVAISIS)
    assert str(beauvais.departement) == "Oise (60)"
    assert str(beauvais.region) == "Hauts-de-France (32)"
    assert str(beauvais.epci) == "CA du Beauvaisis (200067999)"
    assert commune_get(code="99999") is None


@pytest.mark.django_db
def test_communes_for_postal_code(geography):
    names = list(communes_for_postal_code(code="60000").values_list("name", flat=True))
    assert "Beauvais" in names
    assert "Tillé" in names
    assert list(communes_for_postal_code(code="00000")) == []


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("items", "expected"),
    [
        ([("departement", "60")], True),
        ([("region", "32")], True),
        ([("epci", CA_BEAUVAISIS)], True),
        ([("commune", BEAUVAIS)], True),
        ([("departement", "80"), ("epci", CA_BEAUVAISIS)], True),
        ([("departement", "80")], False),
        ([("region", "11")], False),
        ([("epci", AIX_MARSEILLE_METROPOLE)], False),
        ([("commune", "60001")], False),
        ([], False),
    ],
)
def test_beauvais_in_territory(geography, items, expected):
    assert territory_contains(items=items, commune_code=BEAUVAIS) is expected


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("items", "expected"),
    [
        ([("commune", MARSEILLE)], True),
        ([("commune", MARSEILLE_1ER)], True),
        ([("departement", "13")], True),
        ([("region", "93")], True),
        ([("epci", AIX_MARSEILLE_METROPOLE)], True),
        ([("commune", "13202")], False),
        ([("departement", "83")], False),
    ],
)
def test_marseille_arrondissement_in_territory(geography, items, expected):
    assert territory_contains(items=items, commune_code=MARSEILLE_1ER) is expected


@pytest.mark.django_db
def test_arrondissement_is_not_the_whole_commune(geography):
    assert not territory_contains(items=[("commune", MARSEILLE_1ER)], commune_code=MARSEILLE)


@pytest.mark.django_db
def test_commune_associee_follows_its_parent(geography):
    # Cordieux (01120) is a commune associée of Montluel (01262).
    assert territory_contains(items=[("commune", "01262")], commune_code="01120")
    assert territory_contains(items=[("epci", "240100610")], commune_code="01120")
    assert not territory_contains(items=[("commune", "01120")], commune_code="01262")


@pytest.mark.django_db
def test_lyon_and_paris_arrondissements_are_in_their_metropole(geography):
    assert territory_contains(items=[("epci", "200046977")], commune_code="69381")
    assert territory_contains(items=[("epci", "200054781")], commune_code="75101")
    assert territory_contains(items=[("commune", "75056")], commune_code="75120")


@pytest.mark.django_db
def test_commune_without_epci(geography):
    assert commune_get(code="29083").epci is None  # Île-de-Sein
    assert territory_contains(items=[("departement", "29")], commune_code="29083")
    assert not territory_contains(items=[("epci", "242900314")], commune_code="29083")


@pytest.mark.django_db
def test_territory_contains_is_one_query(geography, django_assert_num_queries):
    items = [("commune", MARSEILLE), ("epci", CA_BEAUVAISIS), ("departement", "2A"), ("region", "11")]
    with django_assert_num_queries(1):
        assert territory_contains(items=items, commune_code=BEAUVAIS)
    with django_assert_num_queries(1):
        assert not territory_contains(items=items, commune_code="80021")


@pytest.mark.django_db
def test_communes_in_territory_matches_the_data_file(geography):
    expected = {row[0] for row in read_dataset()["communes"] if row[3] == "60" and row[2] == "actuelle"}
    found = communes_in_territory([(TerritoryLevel.DEPARTEMENT, "60")]).filter(kind=CommuneKind.ACTUELLE)
    assert set(found.values_list("code", flat=True)) == expected
    assert len(expected) == 680


@pytest.mark.django_db
def test_territory_filter_through_a_relation(geography):
    # The prefix lets another model filter on its commune in the same query.
    parents = Commune.objects.filter(territory_filter([("commune", MARSEILLE_1ER)], prefix="children__"))
    assert list(parents.values_list("code", flat=True)) == [MARSEILLE]


def test_territory_filter_rejects_unknown_level():
    with pytest.raises(ValueError):
        territory_filter([("canton", "6001")])


@pytest.mark.django_db
def test_unknown_codes(geography):
    assert unknown_codes(
        level=TerritoryLevel.COMMUNE,
        codes=["99999", BEAUVAIS, MARSEILLE_1ER, "01120", "ABCDE", "99999", "2A004"],
    ) == ["99999", "ABCDE"]
    assert unknown_codes(level="departement", codes=["60", "2A", "20", "976", "96"]) == ["20", "96"]
    assert unknown_codes(level=TerritoryLevel.REGION, codes=["32", "33"]) == ["33"]
    assert unknown_codes(level=TerritoryLevel.EPCI, codes=[CA_BEAUVAISIS, "216000562"]) == ["216000562"]
    assert unknown_codes(level=TerritoryLevel.COMMUNE, codes=[]) == []
