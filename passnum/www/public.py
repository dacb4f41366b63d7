"""Public pages, no login: the finder of places, a page per place, and "Mon pass"."""

from django.http import HttpResponse


def finder(request):
    """Anyone."""
    return HttpResponse("À venir", content_type="text/plain; charset=utf-8")


def place_detail(request, pk):
    """Anyone; qualified places only."""
    return HttpResponse("À venir", content_type="text/plain; charset=utf-8")


def my_pass(request):
    """Anyone holding a code; rate-limited."""
    return HttpResponse("À venir", content_type="text/plain; charset=utf-8")
