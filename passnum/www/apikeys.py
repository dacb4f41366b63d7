"""Stub: being written."""

from django.http import Http404


def api_keys(request, *args, **kwargs):
    raise Http404


def api_key_revoke(request, *args, **kwargs):
    raise Http404
