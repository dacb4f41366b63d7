"""Open data on activity (issue 8, point 3): exact aggregates on a hand-built world, the statistical secret, no
personal data in any file, the files valid against their Table Schemas, the `opendata export` command, the public
page and its downloads."""

import csv
import datetime as dt
import io
import json
from pathlib import Path

import frictionless
import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from passnum.common.standard import Service
from passnum.steering import opendata as od
from passnum.vouchers.handout import Person, booklet_give
from passnum.vouchers.models import Beneficiary, Booklet, Receipt, Redemption, Voucher
from passnum.vouchers.redemption import Desk, receipt_undo, redeem, redeem_locked_voucher
from passnum.vouchers.services import booklet_allocate, booklet_hand_out, booklets_issue, vouchers_cancel
from tests.desk.scenario import make_site
from tests.factories import OrganisationFactory, ProgramFactory, member_of

pytestmark = pytest.mark.django_db

UTC = dt.UTC
JAN = dt.datetime(2026, 1, 15, 10, 0, tzinfo=UTC)
FEB = dt.datetime(2026, 2, 10, 10, 0, tzinfo=UTC)
# 31 January 23:30 UTC is 1 February 00:30 in Paris: a February redemption.
PARIS_FEBRUARY_FIRST = dt.datetime(2026, 1, 31, 23, 30, tzinfo=UTC)
FIRST_NAME = "Zoéline"
BIRTH_YEAR = 1937
ROOT = Path(__file__).resolve().parents[2]


class World:
    """Program « Pass numérique Marne » (10 vouchers of 10 € per booklet):

    - hand-outs: 11 booklets in January by a distributor in Reims (one voucher of the last cancelled before, so
      109 vouchers), 1 more in February; 10 in January by one in Épernay; 1 in January by one with no commune;
    - uses at a site in Reims in January: 12 single-voucher sessions (booklets 1–11, booklet 1 twice) and one
      two-voucher session (booklet 2), so 14 vouchers, 13 sessions, 11 people; one more session undone;
    - one use at that site at 00:30 on 1 February, Paris time (booklet 3);
    - uses in January by a place in Épernay without a site (its organisation's commune): 10 vouchers, 10 people;
    - uses in January at a site in Paris 1er (counted in Paris, 75056): 11 vouchers of booklets 1–11.

    A second program has 1 booklet handed out in Reims in January."""

    def __init__(self):
        self.funder = OrganisationFactory(funder=True, name="Département de la Marne")
        self.program = ProgramFactory(owner=self.funder, name="Pass numérique Marne", slug="pass-marne")
        self.other = ProgramFactory(owner=self.funder, name="Autre dispositif", slug="autre-dispositif")
        self.reims = OrganisationFactory(distributor=True, name="CCAS de Reims", insee_code="51454")
        self.epernay = OrganisationFactory(distributor=True, name="CCAS d’Épernay", insee_code="51230")
        self.nowhere = OrganisationFactory(distributor=True, name="Association sans adresse", insee_code="")
        self.place = OrganisationFactory(place=True, name="Médiathèque Jean Falala", insee_code="51454")
        self.site = make_site(self.place, name="Médiathèque Jean Falala", commune="51454")
        self.paris_place = OrganisationFactory(place=True, name="Tiers-lieu du Louvre", insee_code="75056")
        self.paris_site = make_site(self.paris_place, name="Tiers-lieu du Louvre", commune="75101")
        self.epernay_place = OrganisationFactory(place=True, name="EPN d’Épernay", insee_code="51230")
        self.place_user = member_of(self.place, admin=False)

        self.reims_jan = [self._booklet(self.reims, JAN, person=True) for _ in range(10)]
        last = self._booklet(self.reims, None)
        vouchers_cancel(vouchers=[last.vouchers.order_by("position").last()], reason="Perdu avant la remise")
        self.reims_jan.append(self._give(last, JAN, person=True))
        self.reims_feb = self._booklet(self.reims, FEB, person=True)
        self.epernay_jan = [self._booklet(self.epernay, JAN) for _ in range(10)]
        self.nowhere_jan = self._booklet(self.nowhere, JAN)
        self.other_booklet = self._booklet(self.reims, JAN, program=self.other)

        desk = Desk(place=self.place, user=self.place_user)
        for booklet in self.reims_jan:
            self._use(booklet, desk, self.site, JAN)
        self._use(self.reims_jan[0], desk, self.site, JAN)
        receipt = redeem(
            raw_code=self._next(self.reims_jan[1]).code,
            desk=desk,
            service=Service.EVERYDAY_TOOLS,
            count=2,
            site_id=self.site.pk,
        )
        self._date(receipt, JAN)
        undone = redeem_locked_voucher(
            voucher=self._next(self.reims_jan[4]), desk=desk, service=Service.EVERYDAY_TOOLS, site=self.site
        )
        receipt_undo(receipt=undone, reason="Erreur de saisie", desk=desk)
        self._date(undone, JAN)
        self._use(self.reims_jan[2], desk, self.site, PARIS_FEBRUARY_FIRST)
        for booklet in self.epernay_jan:
            self._use(booklet, Desk(place=self.epernay_place), None, JAN)
        for booklet in self.reims_jan:
            self._use(booklet, Desk(place=self.paris_place), self.paris_site, JAN)

    def _booklet(self, distributor, when, *, person=False, program=None):
        booklet = booklets_issue(program=program or self.program, count=1)[0]
        booklet_allocate(booklet=booklet, distributor=distributor)
        return self._give(booklet, when, person=person) if when else booklet

    def _give(self, booklet, when, *, person=False):
        booklet = Booklet.objects.get(pk=booklet.pk)
        if person:
            booklet_give(
                booklet=booklet,
                distributor=booklet.distributor,
                person=Person(first_name=FIRST_NAME, consent_first_name=True, birth_year=BIRTH_YEAR),
            )
        else:
            booklet_hand_out(booklet=booklet, organisation=booklet.distributor)
        Booklet.objects.filter(pk=booklet.pk).update(handed_out_at=when)
        return Booklet.objects.get(pk=booklet.pk)

    @staticmethod
    def _next(booklet) -> Voucher:
        return booklet.vouchers.filter(status="distributed").order_by("position").first()

    def _use(self, booklet, desk, site, when) -> Receipt:
        receipt = redeem_locked_voucher(
            voucher=self._next(booklet), desk=desk, service=Service.EVERYDAY_TOOLS, site=site
        )
        self._date(receipt, when)
        return receipt

    @staticmethod
    def _date(receipt, when):
        Receipt.objects.filter(pk=receipt.pk).update(redeemed_at=when)
        Redemption.objects.filter(receipt=receipt).update(redeemed_at=when)


@pytest.fixture
def activity_world():
    return World()


def _figures(row):
    return tuple(row[name] for name in od.FIGURES) + (row[od.SECRET_COLUMN],)


ALL_SECRET = (None,) * 6 + ("|".join(od.FIGURES),)


# --- Aggregates ---------------------------------------------------------------------------------------------------


def test_communes_exact(activity_world):
    rows = od.published_rows(od.COMMUNES)
    got = {(r["mois"], r["dispositif"], r["code_commune"]): r for r in rows}
    assert set(got) == {
        ("2026-01", "pass-marne", "51454"),
        ("2026-01", "pass-marne", "51230"),
        ("2026-01", "pass-marne", "75056"),
        ("2026-01", "pass-marne", ""),
        ("2026-02", "pass-marne", "51454"),
        ("2026-01", "autre-dispositif", "51454"),
    }
    reims = got["2026-01", "pass-marne", "51454"]
    assert (reims["nom_commune"], reims["code_departement"], reims["nom_departement"]) == ("Reims", "51", "Marne")
    assert reims["nom_dispositif"] == "Pass numérique Marne"
    assert _figures(reims) == (11, 109, 14, 14_000, 13, 11, "")
    # 10 of everything in Épernay: all suppressed, the value with the vouchers it reveals.
    assert _figures(got["2026-01", "pass-marne", "51230"]) == ALL_SECRET
    # Paris 1er counts in Paris; no hand-out there (0 is published).
    paris = got["2026-01", "pass-marne", "75056"]
    assert (paris["nom_commune"], paris["code_departement"], paris["nom_departement"]) == ("Paris", "75", "Paris")
    assert _figures(paris) == (0, 0, 11, 11_000, 11, 11, "")
    # The distributor without a commune: an unlocated line, 1 booklet (suppressed) and its 10 vouchers with it.
    unknown = got["2026-01", "pass-marne", ""]
    assert [unknown[c] for c in od.GEO_COLUMNS[od.COMMUNES]] == ["", "", "", ""]
    assert _figures(unknown) == (None, None, 0, 0, 0, 0, "carnets_remis|cheques_remis")
    # February in Paris time: 1 booklet handed out, 1 voucher used at 00:30 on the 1st.
    assert _figures(got["2026-02", "pass-marne", "51454"]) == ALL_SECRET
    assert _figures(got["2026-01", "autre-dispositif", "51454"]) == (
        None,
        None,
        0,
        0,
        0,
        0,
        "carnets_remis|cheques_remis",
    )
    # Sorted by month, program, code, the unlocated line last.
    assert [(r["mois"], r["dispositif"], r["code_commune"]) for r in rows] == [
        ("2026-01", "autre-dispositif", "51454"),
        ("2026-01", "pass-marne", "51230"),
        ("2026-01", "pass-marne", "51454"),
        ("2026-01", "pass-marne", "75056"),
        ("2026-01", "pass-marne", ""),
        ("2026-02", "pass-marne", "51454"),
    ]


def test_departements_exact(activity_world):
    got = {(r["mois"], r["dispositif"], r["code_departement"]): r for r in od.published_rows(od.DEPARTEMENTS)}
    assert set(got) == {
        ("2026-01", "pass-marne", "51"),
        ("2026-01", "pass-marne", "75"),
        ("2026-01", "pass-marne", ""),
        ("2026-02", "pass-marne", "51"),
        ("2026-01", "autre-dispositif", "51"),
    }
    marne = got["2026-01", "pass-marne", "51"]
    assert marne["nom_departement"] == "Marne"
    # Reims + Épernay: the département publishes totals its suppressed communes are part of.
    assert _figures(marne) == (21, 209, 24, 24_000, 23, 21, "")
    assert _figures(got["2026-01", "pass-marne", "75"]) == (0, 0, 11, 11_000, 11, 11, "")
    assert _figures(got["2026-02", "pass-marne", "51"]) == ALL_SECRET


def test_whole_period_counts_people_once(activity_world):
    """The page's table: over all months, a person is counted once per département (booklet 3 was used in
    January and February)."""
    got = {(r["dispositif"], r["code_departement"]): r for r in od.published_rows(od.DEPARTEMENTS, by_month=False)}
    assert got["pass-marne", "51"]["mois"] == ""
    assert _figures(got["pass-marne", "51"]) == (22, 219, 25, 25_000, 24, 21, "")


def test_raw_activity_before_the_secret(activity_world):
    raw = od.activity(od.COMMUNES)
    program = activity_world.program.pk
    assert raw[program, "51230", "2026-01"] == od.Figures(10, 100, 10, 10_000, 10, 10)
    assert raw[program, None, "2026-01"] == od.Figures(1, 10, 0, 0, 0, 0)


def test_undone_and_reverted_redemptions_do_not_count(activity_world, settings):
    settings.PASSNUM_UNDO_WINDOW_HOURS = 24 * 365 * 20  # the January receipt can still be undone in this test
    before = od.activity(od.COMMUNES)[activity_world.program.pk, "51454", "2026-01"]
    receipt = Receipt.objects.filter(place=activity_world.place, undone_at__isnull=True, count=2).get()
    receipt_undo(
        receipt=receipt, reason="Erreur", desk=Desk(place=activity_world.place, user=activity_world.place_user)
    )
    after = od.activity(od.COMMUNES)[activity_world.program.pk, "51454", "2026-01"]
    assert (after.cheques_utilises, after.valeur_utilisee_centimes, after.seances) == (
        before.cheques_utilises - 2,
        before.valeur_utilisee_centimes - 2_000,
        before.seances - 1,
    )
    assert after.personnes_touchees == before.personnes_touchees  # that person also used another voucher


def test_no_activity_no_rows():
    ProgramFactory()
    assert od.published_rows(od.COMMUNES) == []
    files = od.build_package()
    body = files[od.CSV_FILES[od.DEPARTEMENTS]].decode()
    assert body == ",".join(od.columns(od.DEPARTEMENTS)) + "\r\n"


# --- Statistical secret ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("figures", "published", "suppressed"),
    [
        (od.Figures(11, 110, 11, 11_000, 11, 11), (11, 110, 11, 11_000, 11, 11), []),
        (od.Figures(10, 100, 10, 10_000, 10, 10), (None,) * 6, list(od.FIGURES)),
        (od.Figures(1, 10, 0, 0, 0, 0), (None, None, 0, 0, 0, 0), ["carnets_remis", "cheques_remis"]),
        # Vouchers used shown, sessions and people few: only those go, the value stays.
        (od.Figures(0, 0, 30, 30_000, 10, 3), (0, 0, 30, 30_000, None, None), ["seances", "personnes_touchees"]),
        # 10 vouchers used but 11+ everything else: the value would reveal the 10.
        (
            od.Figures(12, 120, 10, 10_000, 0, 0),
            (12, 120, None, None, 0, 0),
            ["cheques_utilises", "valeur_utilisee_centimes"],
        ),
        # Vouchers handed out few on their own (booklets of 5 vouchers... 2 booklets).
        (od.Figures(12, 8, 0, 0, 0, 0), (12, None, 0, 0, 0, 0), ["cheques_remis"]),
    ],
)
def test_secret_rule(figures, published, suppressed):
    values, names = od.secret_applied(figures)
    assert tuple(values[name] for name in od.FIGURES) == published
    assert names == suppressed


# --- Files ----------------------------------------------------------------------------------------------------------


def _read_csv(body: bytes) -> list[dict]:
    return list(csv.DictReader(io.StringIO(body.decode("utf-8"))))


def test_no_personal_data_in_any_file(activity_world, tmp_path):
    od.export_to(tmp_path)
    texts = {name: (tmp_path / name).read_text(encoding="utf-8") for name in od.FILES}
    references = list(Beneficiary.objects.values_list("reference", flat=True))
    assert len(references) == 12
    for name, text in texts.items():
        assert FIRST_NAME not in text, name
        assert "@" not in text, name  # no e-mail address (staff or person)
        for reference in references:
            assert reference not in text, name
        for org in (
            activity_world.reims,
            activity_world.epernay,
            activity_world.place,
            activity_world.paris_place,
            activity_world.epernay_place,
        ):
            assert org.name not in text, name  # only territories, never who
    for level in od.LEVELS:
        body = texts[od.CSV_FILES[level]]
        assert str(BIRTH_YEAR) not in body
        assert list(_read_csv(body.encode())[0]) == od.columns(level)
        assert "beneficiaire" not in body and "reference" not in body


def test_files_validate_with_frictionless(activity_world, tmp_path):
    report = od.export_to(tmp_path)
    assert report.rows == {"activite-departements.csv": 5, "activite-communes.csv": 6}
    for level in od.LEVELS:
        schema = frictionless.Schema.from_descriptor(od.schema_descriptor(level))
        result = frictionless.Resource(path=od.CSV_FILES[level], basepath=str(tmp_path), schema=schema).validate()
        assert result.valid, result.flatten(["rowNumber", "fieldName", "type", "note"])
        assert [f.name for f in schema.fields] == od.columns(level)
    package = frictionless.Package(str(tmp_path / od.DATAPACKAGE))
    result = package.validate()
    assert result.valid, result.flatten(["rowNumber", "fieldName", "type", "note"])
    descriptor = json.loads((tmp_path / od.DATAPACKAGE).read_text(encoding="utf-8"))
    assert descriptor["licenses"][0]["title"] == "Licence Ouverte / Open Licence 2.0"
    assert descriptor["created"].startswith("20")


def test_schema_rejects_a_bad_row(tmp_path):
    """The schema is not decorative: a wrong month, a negative count or an unknown suppressed column fail."""
    header = od.columns(od.DEPARTEMENTS)
    bad = ["2026-13", "pass-x", "Pass X", "51", "Marne", "-1", "", "", "", "", "", "prenom"]
    (tmp_path / "bad.csv").write_text(",".join(header) + "\r\n" + ",".join(bad) + "\r\n", encoding="utf-8")
    schema = frictionless.Schema.from_descriptor(od.schema_descriptor(od.DEPARTEMENTS))
    result = frictionless.Resource(path="bad.csv", basepath=str(tmp_path), schema=schema).validate()
    assert {(e[0], e[1]) for e in result.flatten(["fieldName", "type"])} == {
        ("mois", "constraint-error"),
        ("carnets_remis", "constraint-error"),
        ("secret_statistique", "constraint-error"),
    }


def test_readme_documents_rule_licence_date_and_every_field(activity_world):
    when = dt.datetime(2026, 3, 2, 8, 5, tzinfo=UTC)
    text = od.build_package(when)[od.README].decode("utf-8")
    assert "2026-03-02 09:05 (heure de Paris)" in text
    assert "Licence Ouverte / Open Licence 2.0" in text
    assert "entre 1 et 10" in text and "secret secondaire" in text.lower()
    for level in od.LEVELS:
        for name in od.columns(level):
            assert f"`{name}`" in text
    assert "<!--" not in text


def test_docs_copy_is_the_readme():
    """docs/opendata.md is the README of the package, without an extraction's date: regenerate it with
    `python -c "from passnum.steering.opendata import render_readme; print(render_readme(), end='')"`."""
    assert (ROOT / "docs" / "opendata.md").read_text(encoding="utf-8") == od.render_readme()


# --- Command --------------------------------------------------------------------------------------------------------


def test_command_writes_the_package(activity_world, tmp_path):
    out = tmp_path / "nouveau" / "dossier"
    (tmp_path / "nouveau").mkdir()
    stdout = io.StringIO()
    call_command("opendata", "export", "--out", str(out), stdout=stdout)
    assert sorted(p.name for p in out.iterdir()) == sorted(od.FILES)
    assert "activite-communes.csv" in stdout.getvalue() and "6 ligne(s)" in stdout.getvalue()
    rows = _read_csv((out / "activite-communes.csv").read_bytes())
    assert len(rows) == 6
    # A second run replaces the package and leaves other files alone.
    (out / "autre.txt").write_text("à garder", encoding="utf-8")
    call_command("opendata", "export", "--out", str(out), stdout=io.StringIO())
    assert (out / "autre.txt").read_text(encoding="utf-8") == "à garder"
    assert not [p for p in out.iterdir() if p.name.startswith(".")]


def test_command_refuses_a_missing_out():
    with pytest.raises(CommandError, match=r"--out DOSSIER.*\[opendata_out_missing\]"):
        call_command("opendata", "export")


def test_command_refuses_a_file_as_out(tmp_path):
    target = tmp_path / "fichier.csv"
    target.write_text("ne pas écraser", encoding="utf-8")
    with pytest.raises(CommandError, match=r"n’est pas un dossier.*\[opendata_out_not_directory\]"):
        call_command("opendata", "export", "--out", str(target))
    assert target.read_text(encoding="utf-8") == "ne pas écraser"


def test_command_refuses_an_out_it_cannot_create(tmp_path):
    (tmp_path / "fichier").write_text("x", encoding="utf-8")
    with pytest.raises(
        CommandError,
        match=r"Impossible de créer le dossier .* : un élément du chemin n’est pas un dossier\. "
        r"\[opendata_out_not_writable\]",
    ):
        call_command("opendata", "export", "--out", str(tmp_path / "fichier" / "sous-dossier"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fichier"]


def test_command_needs_an_action():
    with pytest.raises(CommandError):
        call_command("opendata")


# --- Public page and downloads ----------------------------------------------------------------------------------


def test_page_anonymous(client, activity_world):
    """Anyone, without logging in: the explanation, the table by program and département, the links."""
    response = client.get(reverse("www:opendata_activity"))
    assert response.status_code == 200
    html = response.content.decode()
    assert "Données ouvertes sur l’activité" in html
    assert "<caption" in html and 'scope="col"' in html and 'scope="row"' in html
    assert "Pass numérique Marne : activité par département" in html
    assert "Marne (51)" in html and "Paris (75)" in html and "Non localisé" in html
    assert "219" in html and "250,00" in html  # vouchers handed out, value used in the Marne over the period
    assert "secret" in html
    for name in od.FILES:
        assert reverse("www:opendata_activity_file", args=[name]) in html
    assert reverse("www:opendata_places_csv") in html and reverse("www:opendata_places_json") in html
    assert "Licence Ouverte / Open Licence 2.0" in html


def test_page_shows_no_organisation_or_person(client, activity_world):
    """An outsider (a member of another organisation) sees the same public aggregates as anyone: no
    organisation's name, no person, nothing of their own."""
    outsider = member_of(OrganisationFactory(distributor=True, name="CCAS de Lyon", insee_code="69123"))
    client.force_login(outsider)
    html = client.get(reverse("www:opendata_activity")).content.decode()
    for org in (
        activity_world.reims,
        activity_world.epernay,
        activity_world.place,
        activity_world.paris_place,
        activity_world.funder,
    ):
        assert org.name not in html
    assert FIRST_NAME not in html
    for reference in Beneficiary.objects.values_list("reference", flat=True):
        assert reference not in html


def test_page_without_activity(client):
    response = client.get(reverse("www:opendata_activity"))
    assert response.status_code == 200
    assert "Aucune activité n’a encore été enregistrée." in response.content.decode()


@pytest.mark.parametrize("name", od.FILES)
def test_download_anonymous_etag_304(client, activity_world, name):
    url = reverse("www:opendata_activity_file", args=[name])
    response = client.get(url)
    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == "*"
    assert "max-age=3600" in response["Cache-Control"] and "public" in response["Cache-Control"]
    assert name in response["Content-Disposition"]
    etag = response["ETag"]
    again = client.get(url, HTTP_IF_NONE_MATCH=etag)
    assert again.status_code == 304
    assert again.content == b""


def test_download_content_types_and_bodies(client, activity_world):
    csv_response = client.get(reverse("www:opendata_activity_file", args=["activite-communes.csv"]))
    assert csv_response["Content-Type"] == "text/csv; charset=utf-8"
    assert csv_response["Content-Disposition"].startswith("attachment")
    assert len(_read_csv(csv_response.content)) == 6
    schema = client.get(reverse("www:opendata_activity_file", args=["activite-communes.schema.json"]))
    assert schema["Content-Type"] == "application/json; charset=utf-8"
    assert json.loads(schema.content)["fields"][0]["name"] == "mois"
    readme = client.get(reverse("www:opendata_activity_file", args=["LISEZMOI.md"]))
    assert readme["Content-Type"] == "text/markdown; charset=utf-8"
    assert "Secret statistique" in readme.content.decode()


def test_download_unknown_file_is_404(client):
    for name in ("inconnu.csv", "..%2Fsettings.py", "activite-communes.CSV"):
        response = client.get(f"/donnees-ouvertes/{name}")
        assert response.status_code == 404, name


def test_download_refuses_post(client):
    response = client.post(reverse("www:opendata_activity_file", args=["datapackage.json"]))
    assert response.status_code == 405
    assert client.post(reverse("www:opendata_activity")).status_code == 405


def test_files_cached_between_requests(client, activity_world, django_assert_max_num_queries):
    url = reverse("www:opendata_activity_file", args=["activite-departements.csv"])
    first = client.get(url)
    with django_assert_max_num_queries(3):  # session/auth at most: the package comes from the cache
        second = client.get(url)
    assert first["ETag"] == second["ETag"]


def test_one_extraction_reads_the_figures_once(activity_world, django_assert_max_num_queries):
    """The files and the page's table from one `Activity`: hand-outs, redemptions and sessions once, then the
    people for départements by month and over the period, plus names (programs, geography)."""
    source = od.Activity()
    with django_assert_max_num_queries(8):
        od.build_package(source=source)
        totals = od.published_rows(od.DEPARTEMENTS, by_month=False, source=source)
    assert {r["code_departement"] for r in totals if r["dispositif"] == "pass-marne"} == {"51", "75", ""}


def test_stale_extraction_served_while_another_request_refreshes(client, activity_world):
    from django.core.cache import cache
    from django.utils import timezone

    from passnum.www import opendata_activity as view

    url = reverse("www:opendata_activity_file", args=["activite-communes.csv"])
    fresh = client.get(url).content
    stale = dict(cache.get(view.CACHE_KEY))
    stale["extracted_at"] = timezone.now() - dt.timedelta(hours=2)
    stale["files"] = {**stale["files"], "activite-communes.csv": b"ancienne extraction\r\n"}
    cache.set(view.CACHE_KEY, stale, view.KEEP_SECONDS)
    cache.set(view.LOCK_KEY, True, view.LOCK_SECONDS)  # another request is computing
    assert client.get(url).content == b"ancienne extraction\r\n"
    cache.delete(view.LOCK_KEY)
    assert client.get(url).content == fresh  # this request refreshes
    assert cache.get(view.LOCK_KEY) is None
    assert timezone.now() - cache.get(view.CACHE_KEY)["extracted_at"] < dt.timedelta(minutes=1)


def test_command_refuses_when_a_file_name_is_taken_by_a_directory(tmp_path):
    (tmp_path / "LISEZMOI.md").mkdir()
    with pytest.raises(CommandError, match=r"LISEZMOI\.md existe et n’est pas un fichier.*\[opendata_out_name_taken\]"):
        call_command("opendata", "export", "--out", str(tmp_path))
    assert [p.name for p in tmp_path.iterdir()] == ["LISEZMOI.md"]
