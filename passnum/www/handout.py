"""Stub: being written."""

from django.http import Http404


def hand_out(request, *args, **kwargs):
    raise Http404


def hand_out_person(request, *args, **kwargs):
    raise Http404


def hand_out_done(request, *args, **kwargs):
    raise Http404
