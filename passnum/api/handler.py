"""A lean WSGI handler for the API, and the dispatcher config/wsgi.py builds with it.

The site's middleware (sessions, CSRF, locale, messages, users, the organisation switcher) costs a few hundred
microseconds and, for sessions, a query per request; the API uses none of it: it authenticates each request by its
bearer key. ApiWSGIHandler is Django's own WSGIHandler with settings.API_MIDDLEWARE instead of settings.MIDDLEWARE,
and the same URLconf; `dispatcher` sends /api/… to it and everything else to the site's handler."""

import threading

from django.conf import settings
from django.core.handlers.wsgi import WSGIHandler

_LOADING = threading.Lock()


class ApiWSGIHandler(WSGIHandler):
    """Django's WSGI handler with the API's short middleware list (settings.API_MIDDLEWARE)."""

    def load_middleware(self, is_async=False):
        # BaseHandler.load_middleware reads settings.MIDDLEWARE: give it the API's list for the time it takes
        # (once, when the handler is built), under a lock, and put the site's list back.
        self.middleware = list(settings.API_MIDDLEWARE)
        with _LOADING:
            site_middleware = settings.MIDDLEWARE
            settings.MIDDLEWARE = self.middleware
            try:
                super().load_middleware(is_async)
            finally:
                settings.MIDDLEWARE = site_middleware


def dispatcher(*, site, api, prefix: str = "/api/"):
    """A WSGI application sending PATH_INFO under `prefix` to `api`, everything else to `site`."""

    def application(environ, start_response):
        if environ.get("PATH_INFO", "").startswith(prefix):
            return api(environ, start_response)
        return site(environ, start_response)

    application.site = site
    application.api = api
    return application
