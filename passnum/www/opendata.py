"""Open data, no login: the qualified places in the national standard, for the national map to harvest.

No personal data: the standard's fields only (a site's name, address, public contact details, services), never a
person's name. CORS is open so that any map or hub can fetch them from a browser."""

import hashlib
import io

from django.http import HttpResponse
from django.utils.cache import get_conditional_response
from django.views.decorators.http import require_safe

from passnum.places.standard import export_csv, export_json, open_data_sites

MAX_AGE = 3600  # seconds: qualification changes are not urgent for a map


def _open_data(request, body: bytes, content_type: str, filename: str, disposition: str) -> HttpResponse:
    etag = f'"{hashlib.sha256(body).hexdigest()[:32]}"'
    response = HttpResponse(body, content_type=content_type)
    response["ETag"] = etag
    response["Content-Disposition"] = f'{disposition}; filename="{filename}"'
    response = get_conditional_response(request, etag=etag, response=response)
    response["Cache-Control"] = f"public, max-age={MAX_AGE}"
    response["Access-Control-Allow-Origin"] = "*"
    return response


@require_safe
def places_json(request):
    """Anyone. A JSON array of qualified sites with the standard's (v1.0.1) field names, as the national map's own
    JSON: empty fields left out, coordinates as numbers."""
    body = export_json(open_data_sites()).encode()
    return _open_data(request, body, "application/json; charset=utf-8", "lieux-pass-numerique.json", "inline")


@require_safe
def places_csv(request):
    """Anyone. The v1.0.1 CSV of qualified sites (UTF-8, comma, `|` inside multi-valued fields)."""
    out = io.StringIO()
    export_csv(open_data_sites(), out)
    body = out.getvalue().encode()
    return _open_data(request, body, "text/csv; charset=utf-8", "lieux-pass-numerique.csv", "attachment")
