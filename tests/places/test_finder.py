"""The finder's selectors: which qualified sites, in which order, with how many queries."""

import itertools
import math

import pytest

from passnum.accounts.enums import OrganisationKind
from passnum.accounts.models import Organisation
from passnum.places import finder
from passnum.places.enums import QualificationStatus
from passnum.places.finder import (
    KM_PER_DEGREE,
    Proximity,
    communes_for_query,
    communes_matching,
    finder_search,
    site_public_get,
)
from passnum.places.models import Site, SiteService

pytestmark = pytest.mark.django_db

REIMS, TINQUEUX, EPERNAY, FISMES = "51454", "51573", "51230", "51250"  # Tinqueux and Fismes: CU du Grand Reims
LAON, CHARLEVILLE = "02408", "08105"
PARIS, PARIS_1, PARIS_15 = "75056", "75101", "75115"
_numbers = itertools.count(1)


@pytest.fixture
def place_org():
    return Organisation.objects.create(name="Réseau de lieux", slug="reseau-lieux", kind=OrganisationKind.PLACE)


@pytest.fixture
def make_site(place_org):
    def make(
        name=None,
        commune=REIMS,
        *,
        lat=None,
        lon=None,
        status=QualificationStatus.QUALIFIED,
        services=None,
        publics=(),
        supports=(),
        postal_code="51100",
    ):
        services = services if services is not None else {"outils_du_quotidien": 1}
        n = next(_numbers)
        site = Site.objects.create(
            organisation=None if status == QualificationStatus.LISTED else place_org,
            name=name or f"Lieu {n}",
            address=f"{n} rue de la Paix",
            postal_code=postal_code,
            commune_id=commune,
            commune_name="Commune",
            latitude=lat,
            longitude=lon,
            services=list(services),
            publics=list(publics),
            supports=list(supports),
            source_id=f"test-{n}",
            status=status,
        )
        SiteService.objects.bulk_create(
            [SiteService(site=site, service=code, vouchers_per_session=v) for code, v in services.items()]
        )
        return site

    return make


def names(result):
    return [s.name for s in result.sites]


# --- what is found -------------------------------------------------------------------------------------------


def test_only_qualified_sites_are_found(make_site):
    make_site("Qualifié")
    for status in ("listed", "pending", "suspended", "refused"):
        make_site(f"Statut {status}", status=status)
    assert names(finder_search(commune_code=REIMS)) == ["Qualifié"]
    assert names(finder_search()) == ["Qualifié"]


def test_service_filter_uses_the_catalogue_any_of(make_site):
    make_site("Démarches", services={"demarches_administratives": 2})
    make_site("Outils", services={"outils_du_quotidien": 1})
    make_site("Les deux", services={"demarches_administratives": 1, "outils_du_quotidien": 1})
    assert sorted(names(finder_search(commune_code=REIMS, services=["demarches_administratives"]))) == [
        "Démarches",
        "Les deux",
    ]
    both = finder_search(commune_code=REIMS, services=["demarches_administratives", "outils_du_quotidien"])
    assert sorted(names(both)) == ["Démarches", "Les deux", "Outils"]
    assert names(finder_search(commune_code=REIMS, services=["materiel_prix_solidaire"])) == []


def test_public_filter_includes_places_open_to_all(make_site):
    make_site("Seniors", publics=["seniors"])
    make_site("Jeunes", publics=["jeunes"])
    make_site("Tous publics", publics=["tous_publics"])
    make_site("Sans précision", publics=[])
    found = sorted(names(finder_search(commune_code=REIMS, publics=["seniors"])))
    assert found == ["Sans précision", "Seniors", "Tous publics"]
    found = sorted(names(finder_search(commune_code=REIMS, publics=["seniors", "jeunes"])))
    assert found == ["Jeunes", "Sans précision", "Seniors", "Tous publics"]


def test_support_filter_needs_every_support_and_matches_codes_exactly(make_site):
    make_site("Surdité et moteur", supports=["surdite", "handicaps_moteurs"])
    make_site("Surdité", supports=["surdite"])
    make_site("Autres langues", supports=["langues_autres"])
    assert sorted(names(finder_search(commune_code=REIMS, supports=["surdite"]))) == ["Surdité", "Surdité et moteur"]
    assert names(finder_search(commune_code=REIMS, supports=["surdite", "handicaps_moteurs"])) == ["Surdité et moteur"]
    assert names(finder_search(commune_code=REIMS, supports=["langues_anglais"])) == []


def test_territory_restricts_the_sites(make_site):
    make_site("À Reims")
    make_site("À Épernay", EPERNAY)
    make_site("À Laon", LAON)
    assert sorted(names(finder_search(territory=[("departement", "51")]))) == ["À Reims", "À Épernay"]
    assert names(finder_search(territory=[("commune", EPERNAY)])) == ["À Épernay"]
    assert names(finder_search(commune_code=REIMS, territory=[("commune", EPERNAY)])) == ["À Épernay"]
    assert names(finder_search(territory=[])) == []


# --- where ---------------------------------------------------------------------------------------------------


def test_unknown_or_malformed_places_find_nothing(make_site):
    make_site()
    for kwargs in ({"commune_code": "99999"}, {"postal_code": "00000"}, {"postal_code": "5110"}, {"commune_code": "x"}):
        result = finder_search(**kwargs)
        assert result.location_unknown and result.sites == [] and result.communes == []


def test_postcode_with_several_communes_returns_them_all(make_site):
    make_site("Fismes", FISMES, postal_code="51170")
    make_site("Reims")
    result = finder_search(postal_code="51170")
    assert result.ambiguous and result.commune is None
    assert len(result.communes) == 28 and FISMES in {c.code for c in result.communes}
    assert [c.name for c in result.communes] == sorted(c.name for c in result.communes)
    assert [(s.name, s.proximity) for s in result.sites] == [("Fismes", Proximity.COMMUNE), ("Reims", Proximity.EPCI)]


def test_arrondissement_postcode_and_the_city_are_the_same_commune(make_site):
    make_site("Paris (commune)", PARIS, postal_code="75001")
    make_site("Paris 15e", PARIS_15, postal_code="75015")
    result = finder_search(postal_code="75001")
    assert [c.code for c in result.communes] == [PARIS_1]
    assert {s.proximity for s in result.sites} == {Proximity.COMMUNE}
    assert finder_search(commune_code=PARIS).sites[0].proximity == Proximity.COMMUNE


def test_administrative_ranking_without_coordinates(make_site):
    make_site("B département", EPERNAY)
    make_site("A intercommunalité", TINQUEUX)
    make_site("C commune")
    make_site("D commune")
    make_site("Ailleurs", CHARLEVILLE)
    result = finder_search(commune_code=REIMS)
    assert result.reference is None
    assert [(s.name, s.proximity, s.distance_km) for s in result.sites] == [
        ("C commune", Proximity.COMMUNE, None),
        ("D commune", Proximity.COMMUNE, None),
        ("A intercommunalité", Proximity.EPCI, None),
        ("B département", Proximity.DEPARTEMENT, None),
    ]


def test_distance_from_the_mean_position_of_the_communes_sites(make_site):
    make_site("Nord", lat=49.275, lon=4.03)
    make_site("Sud", lat=49.25, lon=4.03)
    make_site("Listé, pour la position", status="listed", lat=49.26, lon=4.06)
    make_site("Sans coordonnées")
    make_site("Tinqueux proche", TINQUEUX, lat=49.255, lon=3.99)
    make_site("Tinqueux loin", TINQUEUX, lat=49.10, lon=3.99)
    make_site("Épernay", EPERNAY, lat=49.04, lon=3.96)
    make_site("Laon, mais à 5 km", LAON, lat=49.30, lon=4.04)
    make_site("Charleville, à 70 km", CHARLEVILLE, lat=49.77, lon=4.72)
    result = finder_search(commune_code=REIMS)
    lat0, lon0 = result.reference
    assert lat0 == pytest.approx((49.275 + 49.25 + 49.26) / 3) and lon0 == pytest.approx(4.04)
    assert names(result) == [
        "Sud",
        "Nord",
        "Sans coordonnées",
        "Tinqueux proche",
        "Tinqueux loin",
        "Épernay",
        "Laon, mais à 5 km",
    ]
    by_name = {s.name: s for s in result.sites}
    expected = math.hypot(49.275 - lat0, (4.03 - lon0) * math.cos(math.radians(lat0))) * KM_PER_DEGREE
    assert by_name["Nord"].distance_km == pytest.approx(expected)
    assert 1.5 < expected < 1.8
    assert by_name["Sans coordonnées"].distance_km is None
    assert by_name["Laon, mais à 5 km"].proximity == Proximity.NEARBY
    assert by_name["Épernay"].distance_km == pytest.approx(25.5, abs=0.5)


def test_no_location_lists_by_name(make_site):
    make_site("Zèbre", lat=49.0, lon=4.0)
    make_site("Abeille", CHARLEVILLE)
    result = finder_search(services=["outils_du_quotidien"])
    assert names(result) == ["Abeille", "Zèbre"]
    assert {s.proximity for s in result.sites} == {Proximity.UNRANKED}
    assert not result.location_asked and result.communes == []


def test_limit_and_has_more(make_site):
    for i in range(5):
        make_site(f"Lieu {i}")
    result = finder_search(commune_code=REIMS, limit=3)
    assert len(result.sites) == 3 and result.has_more
    result = finder_search(commune_code=REIMS, limit=5)
    assert len(result.sites) == 5 and not result.has_more


def test_found_sites_carry_what_the_list_shows(make_site):
    make_site("Médiathèque", lat=49.26, lon=4.03, services={"usage_securise": 1}, supports=["surdite"])
    site = finder_search(commune_code=REIMS).sites[0]
    assert site.service_labels == ["Utilisation sécurisée du numérique"]
    assert site.support_labels == ["Surdité"]
    assert site.distance_text == "à moins d’un kilomètre"
    assert site.located and site.address and site.postal_code == "51100"


# --- compiled queries ----------------------------------------------------------------------------------------


def test_a_compiled_query_is_reused_with_new_parameters(make_site):
    make_site("Reims", lat=49.25, lon=4.03)
    make_site("Épernay", EPERNAY, lat=49.04, lon=3.96)
    make_site("Laon", LAON, lat=49.56, lon=3.62)
    finder._compiled.clear()
    assert names(finder_search(commune_code=REIMS))[:1] == ["Reims"]
    compiled = len(finder._compiled)
    assert names(finder_search(commune_code=EPERNAY))[:1] == ["Épernay"]
    assert names(finder_search(commune_code=LAON)) == ["Laon"]
    assert len(finder._compiled) == compiled  # same shapes: nothing compiled again
    assert names(finder_search(commune_code=LAON, supports=["surdite"])) == []


def test_compiled_sql_takes_parameters_not_values(make_site):
    make_site("Reims", lat=49.25, lon=4.03)
    finder._compiled.clear()
    finder_search(commune_code=REIMS, services=["outils_du_quotidien"])
    for compiled in finder._compiled.values():
        sql, _recipe = compiled
        assert REIMS not in sql and "49.25" not in sql and "\x1e" not in sql


# --- queries -------------------------------------------------------------------------------------------------


def test_query_counts(make_site, django_assert_num_queries):
    make_site("Reims", lat=49.25, lon=4.03)
    make_site("Fismes", FISMES, lat=49.30, lon=3.68)
    with django_assert_num_queries(3):  # commune, reference point, search
        assert finder_search(commune_code=REIMS, services=["outils_du_quotidien"], publics=["seniors"]).sites
    with django_assert_num_queries(3):
        assert finder_search(postal_code="51170").sites
    with django_assert_num_queries(1):
        assert finder_search().sites
    with django_assert_num_queries(1):
        finder_search(commune_code="99999")


def test_search_query_uses_bound_parameters_on_every_call(make_site, django_assert_num_queries):
    make_site("Reims", lat=49.25, lon=4.03)
    finder_search(commune_code=REIMS)
    with django_assert_num_queries(3) as ctx:
        finder_search(commune_code=EPERNAY)
    assert any(EPERNAY in str(q["sql"]) for q in ctx.captured_queries)  # the debug SQL shows the bound values


# --- a place -------------------------------------------------------------------------------------------------


def test_site_public_get_qualified_only(make_site, django_assert_num_queries):
    site = make_site("Qualifié", services={"usage_securise": 1, "demarches_administratives": 3})
    with django_assert_num_queries(2):
        found = site_public_get(pk=site.pk)
        assert {(s.service, s.vouchers_per_session) for s in found.catalogue.all()} == {
            ("usage_securise", 1),
            ("demarches_administratives", 3),
        }
    for status in ("listed", "pending", "suspended", "refused"):
        assert site_public_get(pk=make_site(status=status).pk) is None
    assert site_public_get(pk="abc") is None
    assert site_public_get(pk=10**9) is None


# --- communes by what people type ----------------------------------------------------------------------------


def test_communes_matching_ignores_case_accents_and_separators():
    assert [c.code for c in communes_matching(text="chalons en champagne")] == ["51108"]
    assert [c.code for c in communes_matching(text="ÉPERNAY")] == [EPERNAY]
    assert [c.code for c in communes_matching(text="St-Dizier")] == ["52448"]
    homonyms = communes_matching(text="Saint-Martin")
    assert len(homonyms) >= 4 and {c.name for c in homonyms} == {"Saint-Martin"}
    assert homonyms[0].label.startswith("Saint-Martin (")
    assert REIMS in [c.code for c in communes_matching(text="Reim")]
    assert communes_matching(text="x") == []
    assert communes_matching(text="Zzzzville") == []


def test_communes_for_query():
    assert [c.code for c in communes_for_query(text="51100")] == [REIMS]
    assert [c.code for c in communes_for_query(text="51 100")] == [REIMS]
    assert [c.code for c in communes_for_query(text="75001")] == [PARIS_1]
    assert [c.code for c in communes_for_query(text=REIMS)] == [REIMS]  # an INSEE code that is no postcode
    assert [c.code for c in communes_for_query(text="reims")] == [REIMS]
    assert communes_for_query(text="00000") == []
