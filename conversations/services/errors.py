"""The exceptions the inbox services raise to their callers (views, API, tasks)."""


class SendRefused(Exception):
    """The message cannot be queued; ``code`` is stable for API clients, the text is for people."""

    def __init__(self, code: str, detail: str):
        super().__init__(detail)
        self.code = code
        self.detail = detail


class RetryLater(Exception):
    """A transient Graph API failure: the task retries with backoff."""
