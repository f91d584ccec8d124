"""What the bench's ``instructions`` phase runs under valgrind's callgrind: N requests handed to the WSGI
application in one process, as gunicorn would hand them over, minus the HTTP.

Instruction counts repeat between runs whatever else the machine is doing, where this VM's timings swing by a
third within an hour: they are the figure to compare two versions of the request path with. The phase runs this
twice per path, with few and with more calls, and divides the difference: start-up, imports and the bodies (all
built in both runs) cancel out.

    valgrind --tool=callgrind --callgrind-out-file=/dev/null \\
        python -m webhooks.benchmarks.instructions --path /api/webhook --calls 400 --bodies 400
        python -m webhooks.benchmarks.instructions --drain   # a worker's rounds over what is pending

Settings, database and Redis come from the environment the bench gives its servers.
"""
import argparse
import io
import os
import sys
import time

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webhooks.benchmarks.settings")


def signed_deliveries(*, count: int, secret: str, customers: int) -> list[tuple[bytes, str]]:
    """``count`` distinct single-message deliveries from seeded customers, each a new wamid, signed."""
    from webhooks.benchmarks.seed import signed_inbound

    run = time.time_ns()
    return [signed_inbound(wamid=f"wamid.CG{run}x{n}", customer=1 + n % customers, secret=secret) for n in range(count)]


def call(application, *, path: str, body: bytes, signature: str) -> str:
    """One POST through the WSGI application; its status line."""
    environ = {
        "REQUEST_METHOD": "POST", "PATH_INFO": path, "SCRIPT_NAME": "", "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "8000", "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "127.0.0.1",
        "HTTP_HOST": "127.0.0.1", "HTTP_X_FORWARDED_PROTO": "https", "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(body)), "HTTP_X_HUB_SIGNATURE_256": signature,
        "wsgi.input": io.BytesIO(body), "wsgi.url_scheme": "http", "wsgi.errors": sys.stderr,
    }
    statuses = []
    response = application(environ, lambda status, headers, exc_info=None: statuses.append(status))
    for _chunk in response:
        pass
    response.close()
    return statuses[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--path", help="/api/webhook or /bench/noop")
    parser.add_argument("--calls", type=int, help="requests to hand to the application")
    parser.add_argument("--bodies", type=int, help="deliveries to build (>= calls; the same in both runs)")
    parser.add_argument("--customers", type=int, default=1000, help="seeded customers the deliveries come from")
    parser.add_argument("--drain", action="store_true",
                        help="instead: process the pending events (the bench stored them) as a worker's drain does")
    args = parser.parse_args(argv)
    if not args.drain and None in (args.path, args.calls, args.bodies):
        parser.error("--path, --calls and --bodies are required (or --drain)")

    if args.drain:
        import django

        django.setup()
        from django.conf import settings

        from webhooks.services import process_pending_webhook_events

        while process_pending_webhook_events(limit=settings.WEBHOOK_DRAIN_BATCH):
            pass
        return 0

    from django.conf import settings

    from config.wsgi import application  # sets Django up

    bodies = signed_deliveries(count=args.bodies, secret=settings.META_APP_SECRET, customers=args.customers)
    for body, signature in bodies[: args.calls]:
        status = call(application, path=args.path, body=body, signature=signature)
        if not status.startswith("200"):
            print(f"{args.path} answered {status}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
