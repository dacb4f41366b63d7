"""The API object (django-ninja), mounted at /api/v1/ by config/urls.py: OpenAPI at /api/v1/openapi.json, docs at
/api/v1/docs. Every error, whatever raised it, leaves as an RFC 9457 problem document (problems.py): refused business
rules, invalid or unreadable bodies, missing keys, unknown addresses, wrong methods, even unexpected failures.

The API needs no session, CSRF token or cookie: it authenticates each request by its bearer key. In production
config/wsgi.py sends /api/ to a WSGI handler with a short middleware list (settings.API_MIDDLEWARE)."""

import functools
import logging

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import IntegrityError, OperationalError
from django.http import Http404, JsonResponse
from django.urls import URLPattern, path, re_path, reverse
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError
from ninja.errors import ValidationError as NinjaValidationError
from ninja.parser import Parser

from passnum.api.problems import CONTENT_TYPE, domain_problem, problem
from passnum.api.views import public, router
from passnum.common.errors import DomainError

logger = logging.getLogger("passnum.api")

DESCRIPTION = """API du pass numérique pour les logiciels des lieux de médiation numérique (vérifier et encaisser
des chèques, annuler un encaissement, lister les encaissements) et des prescripteurs (remettre un carnet, suggérer
des lieux).

**Authentification** : `Authorization: Bearer <clé>`. Les administrateurs d’une structure créent ses clés sur la
page « Clés d’API » ; une clé agit pour sa structure seulement.

**Erreurs** : toujours `application/problem+json` (RFC 9457) avec un `code` stable ; liste des codes sur
`/api/v1/problemes`. Montants en centimes d’euro, dates et heures en ISO 8601 (UTC)."""

STATUS_TEXT = {
    200: "Succès (ou requête rejouée avec la même clé d’idempotence).",
    201: "Créé.",
    400: "Corps de requête illisible (JSON invalide).",
    401: "Clé d’API absente, inconnue ou révoquée.",
    403: "Interdit : type d’organisation, lieu non qualifié, suspendu ou hors territoire.",
    404: "Introuvable : code, lieu, carnet ou encaissement inconnu, ou d’une autre structure.",
    409: "Conflit avec l’état du chèque, du carnet ou de l’encaissement.",
    413: "Requête trop volumineuse.",
    422: "Requête invalide ou refusée par une règle (voir `code`).",
    429: "Trop de codes erronés : réessayez après `Retry-After` secondes.",
}

WWW_AUTHENTICATE = 'Bearer realm="pass-numerique"'

# Readable French for the usual pydantic error types; others keep pydantic's English message.
_MESSAGES = {
    "missing": "Champ obligatoire.",
    "string_type": "Texte attendu.",
    "string_too_long": "Texte trop long : {max_length} caractères au plus.",
    "string_too_short": "Texte trop court : {min_length} caractères au moins.",
    "int_type": "Nombre entier attendu.",
    "int_parsing": "Nombre entier attendu.",
    "int_parsing_size": "Nombre trop grand.",
    "int_from_float": "Nombre entier attendu (sans décimales).",
    "greater_than_equal": "Valeur trop petite : au moins {ge}.",
    "less_than_equal": "Valeur trop grande : au plus {le}.",
    "bool_type": "Booléen attendu (true ou false).",
    "bool_parsing": "Booléen attendu (true ou false).",
    "list_type": "Liste attendue.",
    "too_long": "Liste trop longue : {max_length} éléments au plus.",
    "model_type": "Objet JSON attendu.",
    "model_attributes_type": "Objet JSON attendu.",
    "dict_type": "Objet JSON attendu.",
    "extra_forbidden": "Champ inconnu.",
}


def _field_errors(errors: list[dict]) -> list[dict]:
    out = []
    for error in errors:
        loc = [str(part) for part in error.get("loc", ())]
        source = loc[0] if loc else ""
        # body errors are located under the operation's parameter name ("payload"): not the client's business
        rest = loc[2:] if source == "body" else loc[1:]
        kind = error.get("type", "")
        template = _MESSAGES.get(kind)
        try:
            message = template.format(**(error.get("ctx") or {})) if template else error.get("msg", "")
        except (KeyError, IndexError):
            message = error.get("msg", "")
        out.append({"in": source, "field": ".".join(rest), "message": message, "type": kind})
    return out


class PassnumAPI(NinjaAPI):
    def get_openapi_schema(self, *, path_prefix=None, path_params=None):
        """Errors documented as application/problem+json; response descriptions in French."""
        schema = super().get_openapi_schema(path_prefix=path_prefix, path_params=path_params)
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                for status, response in operation.get("responses", {}).items():
                    response["description"] = STATUS_TEXT.get(int(status), response.get("description", ""))
                    content = response.get("content", {})
                    if int(status) >= 400 and "application/json" in content:
                        response["content"] = {CONTENT_TYPE: content["application/json"]}
        return schema

    def _get_urls(self):
        """ninja's URLs, each answering a wrong method with a problem (not an HTML 405), then an index at the root
        and a problem 404 for any other address under /api/v1/."""
        urls = [
            URLPattern(p.pattern, _problem_on_405(p.callback), p.default_args, p.name)
            for p in super()._get_urls()
            if p.name != "api-root"
        ]
        return [
            *urls,
            path("", functools.partial(api_root, api=self), name="api-root"),
            re_path(r"^", api_not_found),
        ]


class ObjectParser(Parser):
    """Bodies are JSON objects: anything else (a list, a string, junk) is refused as unreadable (400)."""

    def parse_body(self, request):
        data = super().parse_body(request)
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        return data


def _problem_on_405(view):
    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        limit = settings.API_MAX_BODY_BYTES
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > limit:
            return problem("payload_too_large", f"Le corps de la requête dépasse {limit // 1024} Ko.")
        response = view(request, *args, **kwargs)
        if response.status_code == 405 and not response.get("Content-Type", "").startswith(CONTENT_TYPE):
            allowed = response.get("Allow", "")
            return problem(
                "method_not_allowed",
                f"Cette adresse n’accepte pas la méthode {request.method} (méthodes admises : {allowed}).",
                headers={"Allow": allowed},
            )
        return response

    wrapper.csrf_exempt = True  # bearer keys, no cookie: nothing for CSRF to protect
    return wrapper


def api_root(request, api):
    return JsonResponse(
        {
            "title": api.title,
            "version": api.version,
            "openapi": reverse(f"{api.urls_namespace}:openapi-json"),
            "docs": reverse(f"{api.urls_namespace}:openapi-view"),
            "problems": reverse(f"{api.urls_namespace}:problem_types"),
        },
        json_dumps_params={"ensure_ascii": False},
    )


api_root.csrf_exempt = True


def api_not_found(request):
    return problem("not_found", "Cette adresse n’existe pas dans l’API (voir /api/v1/docs).")


api_not_found.csrf_exempt = True


api = PassnumAPI(
    title="Pass numérique",
    version="1",
    description=DESCRIPTION,
    urls_namespace="api-v1",
    openapi_url="/openapi.json",
    docs_url="/docs",
    parser=ObjectParser(),
)
api.add_router("", router)
api.add_router("", public)


@api.exception_handler(DomainError)
def on_domain_error(request, exc: DomainError):
    return domain_problem(exc)


@api.exception_handler(NinjaValidationError)
def on_validation_error(request, exc: NinjaValidationError):
    errors = _field_errors(exc.errors)
    if any(e["in"] == "body" and not e["field"] and e["type"] == "missing" for e in errors):
        detail = "Le corps de la requête doit être un objet JSON."
    else:
        detail = "Requête invalide : " + " ; ".join(f"{e['field'] or e['in']} : {e['message']}" for e in errors[:5])
    return problem("invalid_request", detail, errors=errors)


@api.exception_handler(AuthenticationError)
def on_unauthenticated(request, exc):
    if request.headers.get("Authorization"):
        detail = "Clé d’API inconnue ou révoquée."
        challenge = f'{WWW_AUTHENTICATE}, error="invalid_token"'
    else:
        detail = "Clé d’API absente : envoyez l’en-tête « Authorization: Bearer <clé> »."
        challenge = WWW_AUTHENTICATE
    return problem("unauthorized", detail, headers={"WWW-Authenticate": challenge})


@api.exception_handler(HttpError)
def on_http_error(request, exc: HttpError):
    if exc.status_code == 400:  # ninja: "Cannot parse request body"
        return problem("invalid_json", "Le corps de la requête n’est pas un objet JSON valide (UTF-8).")
    code = {401: "unauthorized", 403: "forbidden_kind", 404: "not_found", 405: "method_not_allowed"}.get(
        exc.status_code, "invalid_request"
    )
    return problem(code, str(exc), status=exc.status_code)


@api.exception_handler(Http404)
def on_not_found(request, exc):
    return problem("not_found", "Ressource introuvable.")


@api.exception_handler(RequestDataTooBig)
def on_too_big(request, exc):
    return problem("payload_too_large", "Le corps de la requête est trop volumineux.")


@api.exception_handler(IntegrityError)
def on_integrity_error(request, exc):
    logger.warning("API %s %s: conflit d’écriture (%s)", request.method, request.path, type(exc).__name__)
    return problem("conflict", "Une autre requête a modifié les mêmes données au même moment : réessayez.")


@api.exception_handler(OperationalError)
def on_operational_error(request, exc):
    logger.exception("API %s %s: base de données indisponible", request.method, request.path)
    return problem(
        "unavailable",
        "Le service est momentanément surchargé : réessayez dans un instant.",
        headers={"Retry-After": "1"},
    )


@api.exception_handler(Exception)
def on_unexpected(request, exc):
    logger.exception("API %s %s: erreur imprévue", request.method, request.path)
    return problem("internal_error", "Une erreur imprévue s’est produite ; elle a été enregistrée.")
