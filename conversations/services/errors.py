"""The exceptions the inbox services raise to their callers (views, API, tasks)."""


class SendRefused(Exception):
    """The message cannot be queued; ``code`` is stable for API clients, the text is for people."""

    def __init__(self, code: str, detail: str):
        super().__init__(detail)
        self.code = code
        self.detail = detail


class RetryLater(Exception):
    """A transient Graph API failure: the task retries with backoff."""


class WorkflowRefused(Exception):
    """A status or assignment change that cannot be made: ``code`` is stable for API clients, the text is for
    people, ``status`` the HTTP status it answers with (400 bad input, 403 not allowed, 409 someone was first)
    and ``field`` the request field at fault, if one is."""

    def __init__(self, code: str, detail: str, *, status: int = 400, field: str | None = None):
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.status = status
        self.field = field
