"""Public pages, no login: the finder of places, a page per place, and "Mon pass".

Nothing here needs JavaScript: the finder is a GET form and a list; its map is a progressive enhancement drawn by
`static/www/finder-map.js` from a JSON script tag. "Mon pass" is a POST form (a code never goes in a URL), limited
per client address, and shows nothing about the person holding the pass."""

import datetime as dt
from dataclasses import dataclass

import opening_hours
from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db.models import Count, Q
from django.http import Http404
from django.shortcuts import render
from django.templatetags.static import static
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods

from passnum.common.dates import MONTHS, WEEKDAYS
from passnum.common.ratelimit import client_ip, hit
from passnum.common.standard import AccessMode, Public, Service, SpecificSupport
from passnum.places.finder import (
    POSTAL_CODE_RE,
    FinderResult,
    communes_for_query,
    finder_search,
    site_public_get,
)
from passnum.programs.models import ProgramTerritory
from passnum.vouchers import codes
from passnum.vouchers.enums import VoucherStatus
from passnum.vouchers.models import Voucher
from passnum.www.forms import PassnumForm

FINDER_LIMIT = 50
MY_PASS_PLACES_LIMIT = 20
MY_PASS_RATE = (10, 5 * 60)  # checks per client address, per window of seconds
DEFAULT_TILE_URL = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
DEFAULT_ATTRIBUTION = "© les contributeurs d’OpenStreetMap"


# --- forms ---------------------------------------------------------------------------------------------------


class FinderForm(PassnumForm):
    q = forms.CharField(
        label="Commune ou code postal",
        max_length=100,
        help_text="Par exemple : 51100 ou Reims.",
        error_messages={"required": "Indiquez une commune ou un code postal."},
        widget=forms.TextInput(attrs={"autocomplete": "address-level2"}),
    )
    commune = forms.ChoiceField(label="Votre commune", required=False, widget=forms.RadioSelect)
    services = forms.MultipleChoiceField(
        label="Services", choices=Service.choices, required=False, widget=forms.CheckboxSelectMultiple
    )
    publics = forms.MultipleChoiceField(
        label="Publics accueillis",
        help_text="Les lieux ouverts à tous sont toujours inclus.",
        choices=[(value, label) for value, label in Public.choices if value != Public.EVERYONE],
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    supports = forms.MultipleChoiceField(
        label="Accessibilité et accompagnement spécifique",
        help_text="Les lieux proposant tout ce que vous cochez.",
        choices=SpecificSupport.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )

    def __init__(self, *args, candidates=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["commune"].choices = [(c.code, c.label) for c in candidates]


class MyPassForm(PassnumForm):
    code = forms.CharField(
        label="Code d’un chèque",
        max_length=40,
        help_text="Les 13 caractères imprimés sur chaque chèque, de la forme XXXX-XXXX-XXXX-X. "
        "Tirets, espaces et majuscules facultatifs.",
        error_messages={"required": "Indiquez le code d’un chèque."},
        widget=forms.TextInput(attrs={"autocomplete": "off", "autocapitalize": "characters", "spellcheck": "false"}),
    )
    lieu = forms.CharField(
        label="Commune ou code postal",
        max_length=100,
        required=False,
        help_text="Pour voir d’abord les lieux les plus proches de chez vous.",
        widget=forms.TextInput(attrs={"autocomplete": "address-level2"}),
    )

    def clean_code(self):
        try:
            return codes.normalise(self.cleaned_data["code"])
        except codes.CodeChecksumError as exc:
            raise ValidationError(str(exc), code="checksum") from exc
        except codes.CodeFormatError as exc:
            raise ValidationError(str(exc), code="format") from exc


# --- the finder ----------------------------------------------------------------------------------------------


@dataclass
class Location:
    """What "Commune ou code postal" resolved to and how to search with it."""

    text: str = ""
    candidates: tuple = ()
    commune_code: str | None = None
    postal_code: str | None = None
    must_choose: bool = False  # several communes of that name: no search until one is chosen

    @property
    def searchable(self) -> bool:
        return bool(self.commune_code or self.postal_code)


def _locate(text: str, chosen: str = "") -> Location:
    text = " ".join(text.split())
    if not text:
        return Location()
    candidates = tuple(communes_for_query(text=text))
    location = Location(text=text, candidates=candidates)
    codes_ = {c.code for c in candidates}
    compact = text.replace(" ", "")
    if chosen in codes_:
        location.commune_code = chosen
    elif len(candidates) == 1:
        location.commune_code = candidates[0].code
    elif candidates and POSTAL_CODE_RE.match(compact) and len({c.departement_id for c in candidates}) == 1:
        location.postal_code = compact  # the communes of a postcode are neighbours: search them all, offer a choice
    elif candidates:
        location.must_choose = True
    return location


def _map_data(result: FinderResult) -> dict | None:
    places = [
        {
            "name": site.name,
            "lat": site.latitude,
            "lon": site.longitude,
            "url": reverse("www:place_detail", args=[site.id]),
            "address": f"{site.address}, {site.postal_code} {site.commune_name}",
        }
        for site in result.sites
        if site.located
    ]
    if not places:
        return None
    return {
        "tiles": {
            "url": getattr(settings, "PASSNUM_MAP_TILE_URL", DEFAULT_TILE_URL),
            "attribution": getattr(settings, "PASSNUM_MAP_ATTRIBUTION", DEFAULT_ATTRIBUTION),
        },
        "icons": {
            "icon": static("vendor/leaflet/images/marker-icon.png"),
            "icon2x": static("vendor/leaflet/images/marker-icon-2x.png"),
            "shadow": static("vendor/leaflet/images/marker-shadow.png"),
        },
        "labels": {"map": "Carte des lieux trouvés", "zoomIn": "Zoomer", "zoomOut": "Dézoomer", "close": "Fermer"},
        "places": places,
    }


def _where(result: FinderResult, location: Location) -> str:
    if result.commune is not None:
        return result.commune.label
    if location.postal_code:
        return location.postal_code
    return location.text


@require_GET
def finder(request):
    """Anyone."""
    params = request.GET
    bound = any(key in params for key in ("q", "services", "publics", "supports", "commune"))
    location = _locate(params.get("q", ""), params.get("commune", "")) if bound else Location()
    if bound and params.get("commune") and params.get("commune") not in {c.code for c in location.candidates}:
        params = params.copy()  # a commune chosen for another search: forget it
        params.pop("commune")
    form = FinderForm(params if bound else None, candidates=location.candidates)
    if len(location.candidates) > 1:
        form.fields["commune"].help_text = (
            "Choisissez-la, puis lancez la recherche."
            if location.must_choose
            else "Les lieux de toutes ces communes sont affichés : choisissez la vôtre pour les classer depuis elle."
        )
    result = None
    if bound and form.is_valid():
        if not location.candidates:
            form.add_error("q", f"Aucune commune ne correspond à « {location.text} ». Vérifiez l’orthographe ou "
                           "indiquez le code postal.")  # fmt: skip
        elif location.searchable:
            data = form.cleaned_data
            result = finder_search(
                commune_code=location.commune_code,
                postal_code=location.postal_code,
                services=data["services"],
                publics=data["publics"],
                supports=data["supports"],
                limit=FINDER_LIMIT,
            )
    filters_count = sum(len(params.getlist(name)) for name in ("services", "publics", "supports")) if bound else 0
    context = {
        "form": form,
        "filters_count": filters_count,
        "filters_open": any(form.errors.get(name) for name in ("services", "publics", "supports")),
        "location": location,
        "result": result,
        "where": _where(result, location) if result else "",
        "map_data": _map_data(result) if result else None,
        "limit": FINDER_LIMIT,
    }
    return render(request, "www/public/finder.html", context)


# --- a place -------------------------------------------------------------------------------------------------


def _hhmm(moment: dt.datetime, day: dt.date) -> str:
    if moment.date() > day:
        return "minuit"
    return f"{moment.hour}\u00a0h" + (f"\u00a0{moment.minute:02d}" if moment.minute else "")


def opening_week(value: str, *, start: dt.date) -> list[dict] | None:
    """The next seven days of an OpenStreetMap `opening_hours` value, in French: [{"day": "lundi 5 janvier",
    "slots": ["9 h – 12 h", …]}] (no slot: closed). None when the value cannot be read."""
    if not value:
        return None
    try:
        hours = opening_hours.OpeningHours(value)
        week = []
        for offset in range(7):
            day = start + dt.timedelta(days=offset)
            begin = dt.datetime.combine(day, dt.time.min)
            slots = []
            for number, (since, until, state, comment) in enumerate(
                hours.intervals(begin, begin + dt.timedelta(days=1))
            ):
                if number > 24:
                    break
                if state == opening_hours.State.CLOSED:
                    continue
                slot = f"{_hhmm(since, day)} – {_hhmm(until, day)}"
                if state != opening_hours.State.OPEN:
                    slot += " (à confirmer" + (f" : {comment}" if comment else "") + ")"
                elif comment:
                    slot += f" ({comment})"
                slots.append(slot)
            week.append({"day": f"{WEEKDAYS[day.weekday()]} {day.day} {MONTHS[day.month - 1]}", "slots": slots})
        return week
    except Exception:  # noqa: BLE001 — the parser raises its own types; the raw value is shown anyway
        return None


def _safe_url(url: str) -> str:
    return url if url.lower().startswith(("https://", "http://")) else ""


def _labels(enum, values) -> list[str]:
    return [enum(v).label for v in values if v in enum.values]


@require_GET
def place_detail(request, pk):
    """Anyone; qualified places only (any other is a 404)."""
    site = site_public_get(pk=pk)
    if site is None:
        raise Http404
    order = {code: i for i, code in enumerate(Service.values)}
    catalogue = sorted(site.catalogue.all(), key=lambda s: order.get(s.service, len(order)))
    phone = "".join(ch for ch in site.phone if ch.isdigit() or ch == "+")
    context = {
        "site": site,
        "catalogue": [
            {"label": Service(s.service).label if s.service in order else s.service, "vouchers": s.vouchers_per_session}
            for s in catalogue
        ],
        "week": opening_week(site.opening_hours, start=timezone.localdate()),
        "access_modes": _labels(AccessMode, site.access_modes),
        "publics": _labels(Public, site.publics),
        "supports": _labels(SpecificSupport, site.supports),
        "phone_href": f"tel:{phone}" if phone else "",
        "website": _safe_url(site.website),
        "booking_url": _safe_url(site.booking_url),
        "map_url": (
            f"https://www.openstreetmap.org/?mlat={site.latitude:.5f}&mlon={site.longitude:.5f}#map=17/"
            f"{site.latitude:.5f}/{site.longitude:.5f}"
            if site.latitude is not None and site.longitude is not None
            else ""
        ),
    }
    return render(request, "www/public/place_detail.html", context)


# --- "Mon pass" ----------------------------------------------------------------------------------------------


@dataclass
class PassSummary:
    """What "Mon pass" shows: the program, its dates, what is left. Nothing about the person."""

    program_name: str
    valid_from: dt.date
    valid_until: dt.date
    grace_until: dt.date
    grace_days: int
    period: str  # "upcoming", "valid", "grace", "over"
    handed_out: bool
    vouchers_left: int
    vouchers_total: int
    face_value_cents: int
    voucher_state: str
    services: list[str]
    code_end: str

    @property
    def value_left_cents(self) -> int:
        return self.vouchers_left * self.face_value_cents


_VOUCHER_STATE = {
    VoucherStatus.ISSUED: "pas encore utilisable : le carnet n’a pas été remis",
    VoucherStatus.DISTRIBUTED: "utilisable",
    VoucherStatus.REDEEMED: "déjà utilisé",
    VoucherStatus.CLAIMED: "déjà utilisé",
    VoucherStatus.PAID: "déjà utilisé",
    VoucherStatus.EXPIRED: "expiré",
    VoucherStatus.CANCELLED: "annulé",
}


def pass_summary(voucher: Voucher, *, today: dt.date) -> PassSummary:
    program, booklet = voucher.program, voucher.booklet
    counts = Voucher.objects.filter(booklet_id=booklet.id).aggregate(
        total=Count("id"), left=Count("id", filter=Q(status=VoucherStatus.DISTRIBUTED))
    )
    grace_until = program.valid_until + dt.timedelta(days=program.grace_days)
    if today < program.valid_from:
        period = "upcoming"
    elif today <= program.valid_until:
        period = "valid"
    elif today <= grace_until:
        period = "grace"
    else:
        period = "over"
    return PassSummary(
        program_name=program.name,
        valid_from=program.valid_from,
        valid_until=program.valid_until,
        grace_until=grace_until,
        grace_days=program.grace_days,
        period=period,
        handed_out=booklet.handed_out_at is not None,
        vouchers_left=counts["left"],
        vouchers_total=counts["total"],
        face_value_cents=voucher.face_value_cents,
        voucher_state=_VOUCHER_STATE.get(voucher.status, voucher.get_status_display()),
        services=_labels(Service, program.eligible_services),
        code_end=codes.display(voucher.code)[-6:],
    )


def _pass_places(voucher: Voucher, location: Location) -> FinderResult:
    """Qualified places of the program's territory offering at least one of its eligible services."""
    territory = list(ProgramTerritory.objects.filter(program_id=voucher.program_id).values_list("level", "code"))
    return finder_search(
        commune_code=location.commune_code,
        postal_code=location.postal_code,
        services=voucher.program.eligible_services,
        territory=territory,
        limit=MY_PASS_PLACES_LIMIT,
    )


def _render_my_pass(request, *, form, summary=None, places=None, location=None, message="", blocked=0, status=200):
    """Renders "Mon pass". The extension point for the wallet link (digital pass, a later issue): its view will
    turn the link's token into a voucher, then call `pass_summary(...)`, `_pass_places(...)` and this with an empty
    form. It must go through the same rate limit and show the same page, with nothing personal on it."""
    response = render(
        request,
        "www/public/my_pass.html",
        {
            "form": form,
            "summary": summary,
            "places": places,
            "location": location or Location(),
            "location_message": message,
            "blocked_minutes": -(-blocked // 60),
            "rate_limit": MY_PASS_RATE[0],
            "rate_window_minutes": MY_PASS_RATE[1] // 60,
        },
        status=status,
    )
    if blocked:
        response["Retry-After"] = str(blocked)
    return response


@never_cache
@require_http_methods(["GET", "POST"])
def my_pass(request):
    """Anyone holding a code; limited per client address (MY_PASS_RATE). The code comes by POST only."""
    if request.method != "POST":
        return _render_my_pass(request, form=MyPassForm())
    limit, window = MY_PASS_RATE
    verdict = hit("my_pass", client_ip(request), limit=limit, window=window)
    if not verdict.allowed:
        return _render_my_pass(request, form=MyPassForm(), blocked=verdict.retry_after, status=429)
    form = MyPassForm(request.POST)
    if not form.is_valid():
        return _render_my_pass(request, form=form)
    voucher = (
        Voucher.objects.select_related("program", "booklet")
        .only(
            "code",
            "status",
            "face_value_cents",
            "program_id",
            "booklet_id",
            "program__name",
            "program__valid_from",
            "program__valid_until",
            "program__grace_days",
            "program__eligible_services",
            "booklet__handed_out_at",
        )
        .filter(code=form.cleaned_data["code"])
        .first()
    )
    if voucher is None:
        form.add_error("code", "Code inconnu : vérifiez-le sur votre chèque, ou demandez à la structure qui vous a "
                       "remis le carnet.")  # fmt: skip
        return _render_my_pass(request, form=form)
    location = _locate(form.cleaned_data["lieu"])
    message = ""
    if location.text and not location.candidates:
        message = f"Aucune commune ne correspond à « {location.text} » : les lieux sont classés par nom."
    elif location.must_choose:
        message = "Plusieurs communes portent ce nom : indiquez plutôt le code postal. Les lieux sont classés par nom."
    return _render_my_pass(
        request,
        form=MyPassForm(initial={"lieu": location.text}),  # the code is not written back into the page
        summary=pass_summary(voucher, today=timezone.localdate()),
        places=_pass_places(voucher, location),
        location=location,
        message=message,
    )
