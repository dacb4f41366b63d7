"""Stub: being written."""

from django.http import Http404


def desk(request, *args, **kwargs):
    raise Http404


def receipts(request, *args, **kwargs):
    raise Http404


def receipt_detail(request, *args, **kwargs):
    raise Http404


def receipt_undo_view(request, *args, **kwargs):
    raise Http404
