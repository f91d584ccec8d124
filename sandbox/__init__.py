"""The Meta sandbox: the project's one stand-in for the outside world.

A real HTTP server (``server.MetaSandbox``) speaking the subset of Meta's Graph API the app uses (send,
mark-as-read, media, templates) with Meta's validation, response and error shapes, which sends signed
webhooks back to the app: statuses for what the app sends, messages from customers it plays. Run it with
``manage.py meta_sandbox``; tests and demos steer it through its control API under ``/_sandbox/``.
It is independent of Django models and of the database.
"""

from .server import MetaSandbox
from .state import DEMO_DISPLAY_PHONE_NUMBER, DEMO_PHONE_NUMBER_ID, DEMO_WABA_ID, SandboxConfig

__all__ = ["DEMO_DISPLAY_PHONE_NUMBER", "DEMO_PHONE_NUMBER_ID", "DEMO_WABA_ID", "MetaSandbox", "SandboxConfig"]
