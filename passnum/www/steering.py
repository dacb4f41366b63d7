"""Steering pages (passnum/steering/): the funnel and its breakdowns for the organisation one acts for, with CSV and
XLSX exports of the same tables.

Who: members of any organisation (funder, distributor, place, operator); each sees only its own scope
(passnum.steering.funnel.Viewer). Filters come as query parameters (ids and codes, never personal data) and can only
narrow that scope: a value outside it gives 404, so nobody learns what exists elsewhere."""

import datetime as dt

from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.urls import path, reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.views.decorators.http import require_safe

from passnum.accounts.enums import OrganisationKind
from passnum.accounts.models import Organisation
from passnum.geo.models import Departement
from passnum.steering.funnel import Filters, Viewer, dashboard, visible_programs
from passnum.steering.tables import dashboard_tables, display, table_csv, tables_xlsx
from passnum.www.decorators import organisation_required

K = OrganisationKind
SCOPES = {
    K.FUNDER: "les dispositifs que vous financez (montants : votre part de chaque chèque)",
    K.DISTRIBUTOR: "les carnets confiés à votre structure",
    K.PLACE: "les chèques encaissés dans votre lieu",
    K.OPERATOR: "tous les dispositifs de la plateforme",
}


def _int(raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise Http404 from None


def _filters(request, viewer: Viewer) -> tuple[Filters, dict]:
    """The query's filters, checked; anything outside what the viewer may filter on is a 404."""
    get = request.GET
    chosen: dict = {}
    program_ids: tuple[int, ...] = ()
    if slug := get.get("dispositif", "").strip():
        program = visible_programs(viewer).filter(slug=slug).first()
        if program is None:
            raise Http404
        program_ids, chosen["dispositif"] = (program.pk,), program
    departement = get.get("departement", "").strip()
    if departement:
        if viewer.kind not in (K.FUNDER, K.OPERATOR):
            raise Http404
        chosen["departement"] = Departement.objects.filter(code=departement).first()
        if chosen["departement"] is None:
            raise Http404
    distributor_id = place_id = None
    if raw := get.get("prescripteur", "").strip():
        if viewer.kind not in (K.FUNDER, K.OPERATOR):
            raise Http404
        org = Organisation.objects.filter(pk=_int(raw), kind=K.DISTRIBUTOR).first()
        if org is None:
            raise Http404
        distributor_id, chosen["prescripteur"] = org.pk, org
    if raw := get.get("lieu", "").strip():
        if viewer.kind == K.PLACE:
            raise Http404
        org = Organisation.objects.filter(pk=_int(raw), kind=K.PLACE).first()
        if org is None:
            raise Http404
        place_id, chosen["lieu"] = org.pk, org
    filters = Filters(
        program_ids=program_ids, distributor_id=distributor_id, departement=departement, place_id=place_id
    )
    return filters, chosen


def _query(chosen: dict) -> dict:
    q = {}
    if "dispositif" in chosen:
        q["dispositif"] = chosen["dispositif"].slug
    if "departement" in chosen:
        q["departement"] = chosen["departement"].code
    for key in ("prescripteur", "lieu"):
        if key in chosen:
            q[key] = chosen[key].pk
    return q


def _heading(request, chosen: dict) -> list[str]:
    org = request.organisation
    lines = [f"Pass numérique — pilotage de {org.name}", f"Périmètre : {SCOPES.get(org.kind, '')}"]
    names = {
        "dispositif": "Dispositif",
        "departement": "Département",
        "prescripteur": "Prescripteur",
        "lieu": "Lieu",
    }
    for key, label in names.items():
        if key in chosen:
            lines.append(f"{label} : {chosen[key]}")
    lines.append(f"Extrait le {timezone.localtime():%d/%m/%Y à %H:%M}")
    return lines


def _dashboard(request):
    """The viewer's dashboard with the query's filters: (viewer, dashboard, chosen filters)."""
    viewer = Viewer.of(request.organisation)
    filters, chosen = _filters(request, viewer)
    return viewer, dashboard(viewer, filters, today=timezone.localdate()), chosen


@organisation_required()
@require_safe
def overview(request):
    """Members of any organisation: its funnel, breakdowns and exports, within its own scope."""
    viewer, d, chosen = _dashboard(request)
    tables = dashboard_tables(d)
    query = _query(chosen)
    for t in tables:
        if t.filter_param:
            t.links = [f"?{urlencode({**query, t.filter_param: k})}" if k else "" for k in t.keys[: len(t.shown_rows)]]
    options = {
        "programs": _options(
            visible_programs(viewer).order_by("name").values_list("slug", "name"), chosen, "dispositif"
        ),
        "departements": _options([(r.key, r.label) for r in d.by_departement if r.key], chosen, "departement"),
        "distributors": _options([(r.key, r.label) for r in d.by_distributor[:OPTIONS]], chosen, "prescripteur"),
        "places": _options([(r.key, r.label) for r in d.by_place[:OPTIONS]], chosen, "lieu"),
    }
    handed = d.step("handed_out")
    redeemed = d.step("redeemed")
    return render(
        request,
        "www/steering/overview.html",
        {
            "d": d,
            "tables": tables,
            "chosen": chosen,
            "query": query,
            "querystring": urlencode(query),
            "options": options,
            "scope": SCOPES.get(request.organisation.kind, ""),
            "can_filter_orgs": viewer.kind in (K.FUNDER, K.OPERATOR),
            "can_filter_places": viewer.kind != K.PLACE,
            "figures": _key_figures(d, handed, redeemed),
            "xlsx_url": reverse("www:steering_xlsx") + (f"?{urlencode(query)}" if query else ""),
            "nudge_links": _nudge_links(viewer),
        },
    )


OPTIONS = 100  # the most active distributors and places in the filter lists; every row of the tables links too


def _options(pairs, chosen: dict, key: str) -> list[tuple[str, str, bool]]:
    """(value, label, selected) for a filter's list, the chosen one always included."""
    current = _query(chosen).get(key)
    current = "" if current is None else str(current)
    options = [(str(value), label, str(value) == current) for value, label in pairs]
    if current and not any(selected for _, _, selected in options):
        options.insert(0, (current, str(chosen[key]), True))
    return options


def _key_figures(d, handed, redeemed) -> list[dict]:
    figures = [
        {
            "label": "Personnes aidées",
            "value": display(d.people_reached, "int"),
            "detail": f"sur {display(d.people_handed, 'int')} ayant reçu un carnet"
            if d.scope.viewer.kind != K.PLACE
            else "ayant utilisé au moins un chèque chez vous",
        },
        {
            "label": "Chèques encaissés",
            "value": display(redeemed.vouchers if redeemed else 0, "int"),
            "detail": display(redeemed.value_cents if redeemed else 0, "eur"),
        },
    ]
    if d.scope.viewer.kind != K.PLACE:
        figures.append(
            {
                "label": "Délai médian avant la première utilisation",
                "value": display(d.median_days, "days") if d.median_days is not None else "—",
                "detail": "entre la remise du carnet et le premier chèque encaissé",
            }
        )
        figures.append(
            {
                "label": "Carnets remis jamais utilisés",
                "value": display(d.unused_booklets, "int"),
                "detail": f"sur {display(handed.booklets or 0, 'int')} carnets remis" if handed else "",
            }
        )
    if d.scope.viewer.sees_upstream or d.scope.viewer.kind == K.DISTRIBUTOR:
        figures.append(
            {
                "label": "Chèques en stock chez les prescripteurs",
                "value": display(d.sleeping_vouchers, "int"),
                "detail": "confiés, pas encore remis à une personne",
            }
        )
    return figures


def _nudge_links(viewer: Viewer) -> list[dict]:
    """Where to act on what sleeps (passnum/nudges/)."""
    if viewer.kind == K.FUNDER:
        return [{"url": reverse("www:nudges_sleeping"), "label": "Voir le stock qui dort et le réaffecter"}]
    if viewer.kind == K.DISTRIBUTOR:
        return [{"url": reverse("www:nudges_unused"), "label": "Voir les carnets remis jamais utilisés"}]
    return []


def _filename(request, suffix: str) -> str:
    return f"pilotage-{request.organisation.slug}-{dt.date.today():%Y%m%d}.{suffix}"


@organisation_required()
@require_safe
def export_csv(request, table):
    """Members of any organisation: one table of its dashboard as CSV (same scope and filters as the page)."""
    _viewer, d, chosen = _dashboard(request)
    tables = {t.key: t for t in dashboard_tables(d)}
    if table not in tables:
        raise Http404
    body = table_csv(tables[table], heading=_heading(request, chosen) + [tables[table].title])
    response = HttpResponse(body, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{_filename(request, table + ".csv")}"'
    return response


@organisation_required()
@require_safe
def export_xlsx(request):
    """Members of any organisation: every table of its dashboard as one XLSX workbook, a sheet per table."""
    _viewer, d, chosen = _dashboard(request)
    tables = dashboard_tables(d)
    body = tables_xlsx(tables, heading=_heading(request, chosen))
    response = HttpResponse(body, content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    response["Content-Disposition"] = f'attachment; filename="{_filename(request, "xlsx")}"'
    return response


urlpatterns = [
    path("pilotage/", overview, name="steering"),
    path("pilotage/export.xlsx", export_xlsx, name="steering_xlsx"),
    path("pilotage/export/<slug:table>.csv", export_csv, name="steering_csv"),
]
