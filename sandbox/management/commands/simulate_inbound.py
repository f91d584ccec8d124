"""``manage.py simulate_inbound``: signed Meta webhook deliveries to a running server, for demos and load.

Each delivery is built with ``sandbox.simulation`` the way Meta builds it (one ``changes[]`` item per
message, ``--batch`` of them per envelope), serialised with ``to_wire`` and signed with the app secret, then
POSTed with ``requests``. ``--duplicates`` resends the identical bytes, as Meta does when it retries, so the
server's idempotency can be watched. Examples::

    manage.py simulate_inbound --count 20 --rate 2
    manage.py simulate_inbound --count 5000 --rate 0 --batch 10 --duplicates 1 --contacts 50
"""

import base64
import random
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

import requests
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from sandbox.simulation import (
    CUSTOMER_TEXTS,
    DEMO_DISPLAY_PHONE_NUMBER,
    DEMO_PHONE_NUMBER_ID,
    DEMO_WABA_ID,
    MESSAGE_TYPES,
    envelope,
    message_change,
    signed_request,
    simulated_customers,
)

# A 4xx means every following delivery would be refused the same way (wrong secret, wrong URL): stop.
FATAL_STATUS_RANGE = range(400, 500)
MAX_REPORTED_FAILURES = 5


@dataclass(frozen=True)
class SimulatedContact:
    wa_id: str
    name: str


@dataclass(frozen=True)
class Delivery:
    body: bytes
    headers: dict[str, str]
    message_count: int


class Command(BaseCommand):
    help = "POST realistic, signed WhatsApp webhook deliveries to a running server (demos, load, idempotency)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--url",
            default=f"http://127.0.0.1:{settings.PORT}/api/webhook",
            help="Webhook endpoint (default: %(default)s, from PORT).",
        )
        parser.add_argument("--count", type=int, default=10, help="Messages to send (default: %(default)s).")
        parser.add_argument(
            "--rate",
            type=float,
            default=5.0,
            help="HTTP deliveries per second, resends included; 0 = as fast as possible (default: %(default)s).",
        )
        parser.add_argument(
            "--types",
            default=",".join(MESSAGE_TYPES),
            help="Comma-separated message types, used in turn (default: all of %(default)s).",
        )
        parser.add_argument(
            "--duplicates",
            type=int,
            default=0,
            help="Resend each delivery K extra times with identical bytes, as Meta retries (default: 0).",
        )
        parser.add_argument(
            "--contacts", type=int, default=3, help="Distinct simulated customers (default: %(default)s)."
        )
        parser.add_argument(
            "--batch",
            type=int,
            default=1,
            help="Messages per delivery, one changes[] item each, in one envelope (default: %(default)s).",
        )
        parser.add_argument(
            "--phone-number-id",
            default=settings.META_PHONE_NUMBER_ID or DEMO_PHONE_NUMBER_ID,
            help="Business number the messages are addressed to (default: META_PHONE_NUMBER_ID or the demo number).",
        )
        parser.add_argument(
            "--display-phone-number",
            default=settings.META_DISPLAY_PHONE_NUMBER or DEMO_DISPLAY_PHONE_NUMBER,
            help="Its display number (default: META_DISPLAY_PHONE_NUMBER or the demo number).",
        )
        parser.add_argument(
            "--app-secret", default=settings.META_APP_SECRET, help="Signing secret (default: META_APP_SECRET)."
        )
        parser.add_argument(
            "--seed",
            type=int,
            default=None,
            help="Make contacts, types, texts and wamids reproducible. A rerun with the same seed sends the "
            "same wamids, which the server deduplicates.",
        )
        parser.add_argument("--timeout", type=float, default=10.0, help="Seconds to wait per request (default: 10).")

    def handle(self, *args, **options):
        types = _parse_types(options["types"])
        _check_options(options)
        url = options["url"]

        rng = random.Random(options["seed"])
        contacts = _simulated_contacts(rng=rng, count=options["contacts"])
        deliveries = _deliveries(
            rng=rng,
            contacts=contacts,
            types=types,
            count=options["count"],
            batch=options["batch"],
            phone_number_id=options["phone_number_id"],
            display_phone_number=options["display_phone_number"],
            app_secret=options["app_secret"],
        )
        copies = 1 + options["duplicates"]
        delivery_total = -(-options["count"] // options["batch"])
        request_total = delivery_total * copies
        self.stdout.write(
            f"Sending {options['count']} message(s) in {delivery_total} delivery(ies), {request_total} request(s) "
            f"from {len(contacts)} contact(s) to {url} "
            f"(number {options['phone_number_id']}, rate {_rate_label(options['rate'])})"
        )

        statuses: Counter[str] = Counter()
        failures: list[str] = []
        sent = resent = messages = 0
        report_every = -(-request_total // 10)
        interval = 1 / options["rate"] if options["rate"] else 0.0
        started = time.monotonic()
        with requests.Session() as session:
            for delivery_index, delivery in enumerate(deliveries, start=1):
                for copy in range(copies):
                    # Pace against the start time, not the previous request, so slow responses don't drift the rate.
                    delay = started + sent * interval - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                    try:
                        response = session.post(
                            url, data=delivery.body, headers=delivery.headers, timeout=options["timeout"]
                        )
                    except requests.RequestException as exc:
                        statuses["error"] += 1
                        self._summary(sent=sent, resent=resent, messages=messages, statuses=statuses, started=started)
                        raise CommandError(f"request {sent + 1} to {url} failed: {type(exc).__name__}: {exc}") from exc
                    sent += 1
                    if copy:
                        resent += 1
                    else:
                        messages += delivery.message_count
                    statuses[str(response.status_code)] += 1
                    label = f"delivery {delivery_index}/{delivery_total}" + (f" (resend {copy})" if copy else "")
                    if response.status_code != 200:
                        failure = f"{label}: HTTP {response.status_code} {response.text[:200].strip()}"
                        failures.append(failure)
                        self.stderr.write(failure)
                    elif options["verbosity"] >= 2:
                        self.stdout.write(f"{label}: HTTP 200 {response.text[:100].strip()}")
                    if response.status_code in FATAL_STATUS_RANGE:
                        self._summary(sent=sent, resent=resent, messages=messages, statuses=statuses, started=started)
                        raise CommandError(
                            f"stopped after HTTP {response.status_code}: the server refuses these deliveries "
                            "(is --app-secret the server's META_APP_SECRET, and --url its webhook?)"
                        )
                    if options["verbosity"] == 1 and (sent % report_every == 0 or sent == request_total):
                        self.stdout.write(f"  {sent}/{request_total} requests sent")
        self._summary(sent=sent, resent=resent, messages=messages, statuses=statuses, started=started)
        if failures:
            shown = "\n  ".join(failures[:MAX_REPORTED_FAILURES])
            hidden = len(failures) - MAX_REPORTED_FAILURES
            more = f"\n  ... and {hidden} more" if hidden > 0 else ""
            raise CommandError(f"{len(failures)} of {sent} request(s) were not answered 200:\n  {shown}{more}")

    def _summary(self, *, sent: int, resent: int, messages: int, statuses: Counter, started: float) -> None:
        elapsed = time.monotonic() - started
        rate = sent / elapsed if elapsed > 0 else 0.0
        by_status = ", ".join(f"{status}: {n}" for status, n in sorted(statuses.items())) or "none"
        self.stdout.write(
            f"Sent {sent} request(s) ({sent - resent} deliveries of {messages} message(s), {resent} resends) "
            f"in {elapsed:.2f}s ({rate:.1f} req/s). HTTP status: {by_status}"
        )


def _check_options(options: dict) -> None:
    for name in ("count", "batch", "contacts"):
        if options[name] < 1:
            raise CommandError(f"--{name} must be at least 1 (got {options[name]})")
    if options["duplicates"] < 0:
        raise CommandError(f"--duplicates must not be negative (got {options['duplicates']})")
    if options["rate"] < 0:
        raise CommandError(f"--rate must not be negative (got {options['rate']:g})")
    if options["timeout"] <= 0:
        raise CommandError(f"--timeout must be positive (got {options['timeout']:g})")
    if not options["app_secret"]:
        raise CommandError("no app secret: set META_APP_SECRET or pass --app-secret (the server checks the HMAC)")
    if not options["url"].startswith(("http://", "https://")):
        raise CommandError(f"--url must be an http(s) URL (got {options['url']!r})")


def _parse_types(value: str) -> list[str]:
    types = list(dict.fromkeys(t.strip() for t in value.split(",") if t.strip()))
    if not types:
        raise CommandError("--types is empty")
    unknown = [t for t in types if t not in MESSAGE_TYPES]
    if unknown:
        raise CommandError(f"unknown message type(s): {', '.join(unknown)}; choose from {', '.join(MESSAGE_TYPES)}")
    return types


def _rate_label(rate: float) -> str:
    return f"{rate:g}/s" if rate else "unlimited"


def _simulated_contacts(*, rng: random.Random, count: int) -> list[SimulatedContact]:
    return [SimulatedContact(wa_id=wa_id, name=name) for wa_id, name in simulated_customers(count, rng=rng)]


def _wamid(rng: random.Random) -> str:
    # Same shape as sandbox.simulation.new_wamid, but drawn from the (seedable) generator.
    return "wamid." + base64.b64encode(rng.randbytes(24)).decode().rstrip("=")


def _deliveries(
    *,
    rng: random.Random,
    contacts: list[SimulatedContact],
    types: list[str],
    count: int,
    batch: int,
    phone_number_id: str,
    display_phone_number: str,
    app_secret: str,
) -> Iterator[Delivery]:
    """Signed envelopes of up to ``batch`` messages, built lazily so timestamps are those of sending."""
    for first in range(0, count, batch):
        changes = []
        for index in range(first, min(first + batch, count)):
            message_type = types[index % len(types)]
            contact = rng.choice(contacts)
            content = {"text": {"body": rng.choice(CUSTOMER_TEXTS)}} if message_type == "text" else None
            changes.append(
                message_change(
                    phone_number_id=phone_number_id,
                    display_phone_number=display_phone_number,
                    wa_id=contact.wa_id,
                    name=contact.name,
                    message_type=message_type,
                    wamid=_wamid(rng),
                    content=content,
                )
            )
        payload = envelope(waba_id=settings.META_BUSINESS_ACCOUNT_ID or DEMO_WABA_ID, changes=changes)
        body, headers = signed_request(payload, app_secret=app_secret)
        yield Delivery(body=body, headers=headers, message_count=len(changes))
