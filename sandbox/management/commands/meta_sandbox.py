"""``manage.py meta_sandbox``: run the Meta sandbox (a stand-in Graph API that sends signed webhooks) in the
foreground until Ctrl-C. Point the app at it with ``META_GRAPH_API_URL=<printed base URL>`` and give both
the same app secret and access token. Examples::

    manage.py meta_sandbox --app-secret s3cret --access-token tok
    manage.py meta_sandbox --customers 5 --customer-interval 4      # a living inbox for `make run`

The command never touches the database (no system checks, no models): it plays an outside party.
"""

import signal

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from sandbox import DEMO_DISPLAY_PHONE_NUMBER, DEMO_PHONE_NUMBER_ID, DEMO_WABA_ID, MetaSandbox, SandboxConfig


class Command(BaseCommand):
    help = "Run the Meta sandbox: a local Graph API (send, media, templates) that sends signed webhooks to the app."
    requires_system_checks = ()  # no checks: they could reach for the database
    requires_migrations_checks = False

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1", help="Interface to listen on (default: %(default)s).")
        parser.add_argument("--port", type=int, default=8787, help="Port; 0 = any free port (default: %(default)s).")
        parser.add_argument(
            "--public-url", default=None, help="Base URL to put in media download links (default: http://HOST:PORT)."
        )
        parser.add_argument(
            "--webhook-url",
            default=f"http://127.0.0.1:{settings.PORT}/api/webhook",
            help="The app's webhook endpoint (default: %(default)s, from PORT).",
        )
        parser.add_argument(
            "--app-secret", default=settings.META_APP_SECRET, help="Signs the webhooks (default: META_APP_SECRET)."
        )
        parser.add_argument(
            "--access-token",
            default=settings.META_ACCESS_TOKEN,
            help="The bearer token the Graph API accepts (default: META_ACCESS_TOKEN).",
        )
        parser.add_argument(
            "--phone-number-id",
            action="append",
            default=None,
            help="A business number the sandbox knows; repeatable (default: META_PHONE_NUMBER_ID or the demo "
            f"number {DEMO_PHONE_NUMBER_ID}). Other numeric ids are accepted on first use.",
        )
        parser.add_argument(
            "--display-phone-number",
            action="append",
            default=None,
            help="Its display number, one per --phone-number-id, in the same order (default: "
            f"META_DISPLAY_PHONE_NUMBER or {DEMO_DISPLAY_PHONE_NUMBER}).",
        )
        parser.add_argument(
            "--waba-id",
            default=settings.META_BUSINESS_ACCOUNT_ID or DEMO_WABA_ID,
            help="WhatsApp Business Account id in webhook envelopes (default: META_BUSINESS_ACCOUNT_ID or demo).",
        )
        parser.add_argument(
            "--status-delay", type=float, default=0.5, help="Seconds between sent, delivered, read (default: 0.5)."
        )
        parser.add_argument(
            "--rate-limit-mps", type=int, default=80, help="Sends per second per number before 130429 (default: 80)."
        )
        parser.add_argument(
            "--pair-limit",
            type=int,
            default=0,
            help="Sends per 6 s to one customer before 131056; 0 = off (default: 0).",
        )
        parser.add_argument(
            "--assume-window-open",
            action="store_true",
            help="Treat every customer's 24-hour window as open, also for conversations that did not come "
            "through the sandbox (e.g. seed_demo's). Default: only customers who wrote through the sandbox.",
        )
        parser.add_argument("--customers", type=int, default=0, help="Simulated customers writing in (default: 0).")
        parser.add_argument(
            "--customer-interval",
            type=float,
            default=5.0,
            help="Seconds between simulated customer messages (default: %(default)s).",
        )
        parser.add_argument("--seed", type=int, default=None, help="Make the simulated customers reproducible.")

    def handle(self, *args, **options):
        if not options["app_secret"]:
            raise CommandError("no app secret: pass --app-secret or set META_APP_SECRET (the app checks the HMAC)")
        if not options["access_token"]:
            raise CommandError("no access token: pass --access-token or set META_ACCESS_TOKEN (the app sends it)")
        if not options["webhook_url"].startswith(("http://", "https://")):
            raise CommandError(f"--webhook-url must be an http(s) URL (got {options['webhook_url']!r})")
        for name in ("status_delay", "customer_interval"):
            if options[name] < 0 or (name == "customer_interval" and options[name] == 0):
                raise CommandError(f"--{name.replace('_', '-')} must be positive (got {options[name]:g})")
        if options["customers"] < 0:
            raise CommandError("--customers must not be negative")
        numbers = self._numbers(options["phone_number_id"], options["display_phone_number"])

        config = SandboxConfig(
            app_secret=options["app_secret"],
            access_token=options["access_token"],
            webhook_url=options["webhook_url"],
            waba_id=options["waba_id"],
            numbers=numbers,
            status_delay=options["status_delay"],
            rate_limit_mps=options["rate_limit_mps"],
            pair_limit=options["pair_limit"],
            assume_window_open=options["assume_window_open"],
        )
        try:
            sandbox = MetaSandbox(
                config,
                host=options["host"],
                port=options["port"],
                public_url=options["public_url"],
                customers=options["customers"],
                customer_interval=options["customer_interval"],
                seed=options["seed"],
            )
        except OSError as exc:
            raise CommandError(f"cannot listen on {options['host']}:{options['port']}: {exc}") from exc

        # SIGTERM (stop by PID, docker stop) ends the server the same way as Ctrl-C.
        signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
        self.stdout.write(f"Meta sandbox on {sandbox.base_url} (Graph API: {sandbox.base_url}/v23.0/)")
        self.stdout.write(f"  webhooks -> {config.webhook_url}")
        self.stdout.write(f"  numbers: {', '.join(f'{k} ({v})' for k, v in numbers.items())}; WABA {config.waba_id}")
        if options["customers"]:
            self.stdout.write(
                f"  {options['customers']} simulated customer(s), one message every {options['customer_interval']:g}s"
            )
        self.stdout.write(f"  control API: {sandbox.base_url}/_sandbox/config (Ctrl-C to stop)")
        self.stdout.flush()
        try:
            sandbox.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            sandbox.close()
        self.stdout.write("Meta sandbox stopped.")

    @staticmethod
    def _numbers(ids: list[str] | None, displays: list[str] | None) -> dict[str, str]:
        ids = ids or [settings.META_PHONE_NUMBER_ID or DEMO_PHONE_NUMBER_ID]
        displays = displays or (
            [settings.META_DISPLAY_PHONE_NUMBER or DEMO_DISPLAY_PHONE_NUMBER] if len(ids) == 1 else []
        )
        if len(displays) != len(ids):
            raise CommandError("give one --display-phone-number per --phone-number-id")
        for value in (*ids, *displays):
            if not value.isdigit():
                raise CommandError(f"phone number ids and display numbers are digits only (got {value!r})")
        return dict(zip(ids, displays, strict=True))


def _raise_keyboard_interrupt(signum, frame):
    raise KeyboardInterrupt
