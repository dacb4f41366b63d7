"""Open data, no login: the qualified places in the national standard, for the national map to harvest."""

from django.http import HttpResponse


def places_json(request):
    """Anyone."""
    return HttpResponse("[]", content_type="application/json")


def places_csv(request):
    """Anyone."""
    return HttpResponse("", content_type="text/csv; charset=utf-8")
