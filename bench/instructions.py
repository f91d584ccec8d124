"""What the bench's ``instructions`` phase runs under valgrind's callgrind: N requests handed to the WSGI
application in one process, as gunicorn would hand them over, minus the HTTP.

Instruction counts repeat between runs whatever else the machine is doing, where this VM's timings swing by a
third within an hour: they are the figure to compare two versions of the request path with. Only a window is
counted: after the warm-up calls the process asks callgrind for a dump (``callgrind_control --dump``), which
zeroes its counters, then asks for another right away (that window holds only what asking costs), makes the
counted calls and asks a third time. Start-up, imports, building the bodies and the exit stay outside, so one
process serves every path, each with its warm-up and its three dumps in the order given (a process starts in
about 20 s under callgrind: one start, not one per path).

    valgrind --tool=callgrind --callgrind-out-file=/tmp/cg/out \
        python -m bench.instructions --path /api/webhook --path /bench/noop --warm 100 --calls 400
        python -m bench.instructions --drain --warm 500   # a worker's rounds over what is pending
    # /tmp/cg/out.3 minus /tmp/cg/out.2: the first path's counted calls; out.6 minus out.5 the second's

Settings, database and Redis come from the environment the bench gives its servers.
"""

import argparse
import io
import os
import subprocess
import sys
import time
from functools import partial

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")


def signed_deliveries(*, count: int, secret: str, customers: int) -> list[tuple[bytes, str]]:
    """``count`` distinct single-message deliveries from seeded customers, each a new wamid, signed."""
    from bench.seed import signed_inbound

    run = time.time_ns()
    return [signed_inbound(wamid=f"wamid.CG{run}x{n}", customer=1 + n % customers, secret=secret) for n in range(count)]


def call(application, *, path: str, body: bytes, signature: str) -> str:
    """One POST through the WSGI application; its status line."""
    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": path,
        "SCRIPT_NAME": "",
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_HOST": "127.0.0.1",
        "HTTP_X_FORWARDED_PROTO": "https",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(body)),
        "HTTP_X_HUB_SIGNATURE_256": signature,
        "wsgi.input": io.BytesIO(body),
        "wsgi.url_scheme": "http",
        "wsgi.errors": sys.stderr,
    }
    statuses = []
    response = application(environ, lambda status, headers, exc_info=None: statuses.append(status))
    for _chunk in response:
        pass
    response.close()
    return statuses[0]


def callgrind_dump() -> None:
    """Ask the callgrind this process runs under for a dump now: the counts since the last one go to a file of
    their own and start again from zero. Returns once the file is written."""
    asking = subprocess.Popen(["callgrind_control", "--dump", str(os.getpid())], stdout=subprocess.DEVNULL)
    # Not a blocking wait: valgrind takes the request when this process runs, or through ptrace while it is blocked
    # in a system call, which a user other than root may not be allowed to use (kernel.yama.ptrace_scope).
    while asking.poll() is None:
        time.sleep(0.01)
    if asking.returncode:
        raise RuntimeError(f"callgrind_control --dump failed ({asking.returncode})")


def counted_window(warm_up, counted) -> None:
    """``warm_up()``, then three dumps around ``counted()``: the second holds what a dump costs, the third that
    and ``counted()``."""
    warm_up()
    callgrind_dump()
    callgrind_dump()
    counted()
    callgrind_dump()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--path", action="append", dest="paths", help="/api/webhook or /bench/noop; repeated: each in turn"
    )
    parser.add_argument(
        "--warm",
        type=int,
        default=100,
        help="calls (with --drain: events) before the counted window: first requests import and connect",
    )
    parser.add_argument("--calls", type=int, help="requests counted")
    parser.add_argument("--customers", type=int, default=1000, help="seeded customers the deliveries come from")
    parser.add_argument(
        "--drain",
        action="store_true",
        help="instead: process the pending events (the bench stored them) as a worker's drain does; "
        "the first --warm of them outside the window",
    )
    args = parser.parse_args(argv)
    if not args.drain and None in (args.paths, args.calls):
        parser.error("--path and --calls are required (or --drain)")

    if args.drain:
        import django

        django.setup()
        from django.conf import settings

        from webhooks.drain import process_pending_webhook_events

        def drain() -> None:
            while process_pending_webhook_events(limit=settings.WEBHOOK_DRAIN_BATCH):
                pass

        counted_window(lambda: process_pending_webhook_events(limit=args.warm), drain)
        return 0

    from django.conf import settings

    from config.wsgi import application  # sets Django up

    failed = []

    def serve(path: str, deliveries: list[tuple[bytes, str]]) -> None:
        for body, signature in deliveries:
            status = call(application, path=path, body=body, signature=signature)
            if not status.startswith("200"):
                failed.append(f"{path} answered {status}")

    count = args.warm + args.calls
    for path in args.paths:
        bodies = signed_deliveries(count=count, secret=settings.META_APP_SECRET, customers=args.customers)
        warm_up, counted = bodies[: args.warm], bodies[args.warm :]
        counted_window(partial(serve, path, warm_up), partial(serve, path, counted))
    if failed:
        print(f"{failed[0]} ({len(failed)} of {len(args.paths) * count} calls)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
