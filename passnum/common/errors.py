"""One error type for every refused business rule: a stable machine code and a French message."""


class DomainError(Exception):
    code = "domain_error"
    status = 400

    def __init__(self, message: str, *, code: str | None = None, field: str | None = None, **context):
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        self.field = field
        self.context = context

    def __str__(self) -> str:
        return self.message


class PermissionRefused(DomainError):
    code = "permission_denied"
    status = 403


class NotFound(DomainError):
    code = "not_found"
    status = 404


class InvalidTransition(DomainError):
    code = "invalid_transition"
    status = 409
