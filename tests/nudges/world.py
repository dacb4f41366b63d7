"""Shared builders for the nudge tests: the desk scenario (a 60/40 program in the Marne, the CCAS de Reims, a
qualified place in Reims) plus digital passes handed out with or without consent to reminders, and stock that
sleeps at a distributor."""

import datetime as dt

from django.utils import timezone

from passnum.vouchers import digital
from passnum.vouchers.handout import Person, booklet_give
from passnum.vouchers.models import Booklet, DigitalPass
from passnum.vouchers.services import booklet_allocate, booklets_issue

PHONE, PHONE_E164 = "06 12 34 56 78", "+33612345678"
EMAIL = "camille.martin@exemple.fr"


def give_pass(sc, *, consent=True, phone=PHONE, email=EMAIL, site=True, distributor=None, actor=None) -> DigitalPass:
    """A new booklet handed to a person (oriented to sc.site unless site=False), then sent as a digital pass."""
    distributor = distributor or sc.distributor
    booklet = booklets_issue(program=sc.program, count=1)[0]
    booklet_allocate(booklet=booklet, distributor=distributor)
    booklet_give(
        booklet=booklet,
        distributor=distributor,
        person=Person(consent_reminders=consent),
        oriented_site_id=sc.site.pk if site else None,
        actor=actor,
    )
    return digital.digital_pass_send(booklet=booklet, phone=phone, email=email, actor=actor, organisation=distributor)


def days_later(n: int) -> dt.date:
    return timezone.localdate() + dt.timedelta(days=n)


def allocated_days_ago(booklets, days: int) -> None:
    """Pretend the booklets were allocated `days` days ago (the sleeping threshold counts from there)."""
    Booklet.objects.filter(pk__in=[b.pk for b in booklets]).update(
        allocated_at=timezone.now() - dt.timedelta(days=days)
    )


def stock(sc, count: int, *, distributor=None, days_ago: int = 90) -> list[Booklet]:
    """`count` booklets allocated to the distributor (sc.distributor by default) `days_ago` days ago."""
    booklets = list(booklets_issue(program=sc.program, count=count))
    for booklet in booklets:
        booklet_allocate(booklet=booklet, distributor=distributor or sc.distributor)
    allocated_days_ago(booklets, days_ago)
    return list(Booklet.objects.filter(pk__in=[b.pk for b in booklets]).order_by("number"))
