"""WSGI entry point (gunicorn config.wsgi). Two Django handlers share one process: /api/… goes to a lean one
(settings.API_MIDDLEWARE: no sessions, CSRF, messages or users), every other path to the site's full stack."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.prod")
site_application = get_wsgi_application()  # sets Django up

from passnum.api.handler import ApiWSGIHandler, dispatcher  # noqa: E402 (needs Django set up)

api_application = ApiWSGIHandler()
application = dispatcher(site=site_application, api=api_application)
