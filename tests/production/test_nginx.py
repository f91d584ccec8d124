"""config/deploy/nginx.conf in front of the real processes: nginx (a self-signed certificate, free ports) →
``config/bin/web`` (gunicorn) for HTTP and ``config/bin/ws`` (Daphne with the psycopg pool) for ``/ws/``, production
settings, a Redis of the test's own. Needs Debian's nginx (config/bin/test-setup installs it). Everything started
here is stopped here, by PID."""

import shutil
import socket
import ssl
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from django.conf import settings
from django.contrib.auth.hashers import make_password

from sandbox.simulation import envelope, signed_request
from tests.e2e.conftest import BIN, RedisServer, free_port, stop_process, wait_for
from tests.factories import UserFactory
from tests.production.conftest import APP_SECRET, HOST, NGINX, manage, production_env, render_nginx, start_process
from webhooks.models import WebhookEvent

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.django_db(transaction=True),
    # The certificate is self-signed for the test.
    pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning"),
]


@dataclass
class Edge:
    https_port: int
    http_port: int

    def url(self, path: str) -> str:
        return f"https://127.0.0.1:{self.https_port}{path}"


@pytest.fixture(scope="module")
def edge(django_db_setup) -> Iterator[Edge]:
    db = settings.DATABASES["default"]
    database_url = f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    work = Path(tempfile.mkdtemp(prefix="production-nginx-"))
    redis = RedisServer(port=free_port(), workdir=str(work))
    redis.start()
    web_port, ws_port, http_port, https_port = free_port(), free_port(), free_port(), free_port()
    static_root = work / "static"
    env = production_env(
        DATABASE_URL=database_url,
        REDIS_URL=redis.url,
        PYTHON=str(BIN / "python"),
        DJANGO_STATIC_ROOT=str(static_root),
        WEB_BIND=f"127.0.0.1:{web_port}",
        WEB_WORKERS="2",
        WS_BIND_HOST="127.0.0.1",
        WS_PORT=str(ws_port),
        # As docker-compose.yml: nginx is the one proxy. Failed sign-ins only count: the others here succeed.
        META_APP_SECRET=APP_SECRET,
        API_THROTTLE_AUTH="5/min",
        TRUSTED_PROXY_COUNT="1",
    )
    collected = manage("collectstatic", "--noinput", env=env)
    assert collected.returncode == 0, collected.stderr
    main = render_nginx(
        work,
        web_upstream=f"127.0.0.1:{web_port}",
        ws_upstream=f"127.0.0.1:{ws_port}",
        http_port=http_port,
        https_port=https_port,
        static_root=static_root,
    )
    processes = []
    try:
        for name in ("web", "ws"):
            processes.append(start_process(name, env=env, log=work / f"{name}.log"))
        processes.append(
            subprocess.Popen(
                [NGINX, "-p", str(work), "-c", str(main), "-g", "daemon off;"],
                stdout=open(work / "nginx.log", "ab"),  # noqa: SIM115 - the child owns it
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )
        for port in (web_port, ws_port):
            wait_for(
                lambda port=port: requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1).ok,
                timeout=30,
                what=f"port {port}",
            )
        edge = Edge(https_port=https_port, http_port=http_port)
        wait_for(
            lambda: requests.get(edge.url("/healthz"), headers={"Host": HOST}, verify=False, timeout=1).ok,
            timeout=15,
            what="nginx",
        )
        yield edge
    finally:
        for process in reversed(processes):
            stop_process(process)
        redis.stop()
        shutil.rmtree(work, ignore_errors=True)


def test_http_redirects_to_https(edge):
    response = requests.get(
        f"http://127.0.0.1:{edge.http_port}/inbox/", headers={"Host": HOST}, allow_redirects=False, timeout=5
    )
    assert response.status_code == 301
    assert response.headers["Location"] == f"https://{HOST}/inbox/"


def test_signed_webhook_through_nginx_reaches_gunicorn(edge):
    body, headers = signed_request(envelope(waba_id="1", changes=[]), app_secret=APP_SECRET)
    response = requests.post(
        edge.url("/api/webhook"), data=body, headers={**headers, "Host": HOST}, verify=False, timeout=10
    )
    # 200, not the 301 to HTTPS: Django saw nginx's X-Forwarded-Proto.
    assert response.status_code == 200, response.text
    assert len(response.headers["X-Request-ID"]) == 32  # nginx's $request_id, passed to Django and echoed
    assert WebhookEvent.objects.filter(pk=response.json()["event_id"]).exists()


def test_pages_carry_hsts_and_static_files_are_hashed_compressed_and_cached_for_a_year(edge):
    page = requests.get(edge.url("/login/"), headers={"Host": HOST}, verify=False, timeout=10)
    assert page.status_code == 200
    assert page.headers["Strict-Transport-Security"].startswith("max-age=31536000")
    css = next(part.split('"')[0] for part in page.text.split('href="') if part.startswith("/static/css/inbox."))
    response = requests.get(edge.url(css), headers={"Host": HOST, "Accept-Encoding": "gzip"}, verify=False, timeout=10)
    assert response.status_code == 200
    assert response.headers["Content-Encoding"] == "gzip"
    assert "immutable" in response.headers["Cache-Control"]


def test_pages_and_api_answers_are_compressed(edge):
    # The admin's sign-in page: over gzip_min_length (the inbox's own sign-in page is smaller than that).
    page = requests.get(
        edge.url("/admin/login/"), headers={"Host": HOST, "Accept-Encoding": "gzip"}, verify=False, timeout=10
    )
    assert page.status_code == 200 and page.headers["Content-Encoding"] == "gzip"
    assert "Accept-Encoding" in page.headers["Vary"]
    user = UserFactory(username="gzip-ops", is_superuser=True, is_staff=True)
    user.password = make_password("pw-for-tests", hasher="pbkdf2_sha256")
    user.save(update_fields=["password"])
    access = requests.post(
        edge.url("/api/auth/token/"),
        json={"username": "gzip-ops", "password": "pw-for-tests"},
        headers={"Host": HOST},
        verify=False,
        timeout=10,
    ).json()["access"]
    schema = requests.get(
        edge.url("/api/schema/?format=json"),
        headers={"Host": HOST, "Accept-Encoding": "gzip", "Authorization": f"Bearer {access}"},
        verify=False,
        timeout=10,
    )
    assert schema.status_code == 200 and schema.headers["Content-Encoding"] == "gzip"


def test_readiness_and_metrics_are_not_served_to_the_public(edge):
    for path in ("/readyz", "/metrics"):
        response = requests.get(edge.url(path), headers={"Host": HOST}, verify=False, timeout=10)
        assert response.status_code == 404, path
        assert "database" not in response.text
    assert requests.get(edge.url("/healthz"), headers={"Host": HOST}, verify=False, timeout=10).text == "ok"


def _websocket_handshake(edge: Edge, path: str) -> str:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with (
        socket.create_connection(("127.0.0.1", edge.https_port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname=HOST) as sock,
    ):
        sock.sendall(
            f"GET {path} HTTP/1.1\r\nHost: {HOST}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        return sock.recv(4096).decode(errors="replace")


class _FromAddress(requests.adapters.HTTPAdapter):
    """Connects from another loopback address (127.0.0.0/8 is all local): another client, as nginx sees it."""

    def __init__(self, address: str):
        self.address = address
        super().__init__()

    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, source_address=(self.address, 0), **kwargs)


def _client_at(address: str) -> requests.Session:
    session = requests.Session()
    session.mount("https://", _FromAddress(address))
    return session


def test_sign_in_limit_counts_the_address_nginx_saw_not_the_clients_x_forwarded_for(edge):
    def fail_sign_in(client: requests.Session, username: str, forwarded_for: str) -> int:
        return client.post(
            edge.url("/api/auth/token/"),
            json={"username": username, "password": "wrong"},
            headers={"Host": HOST, "X-Forwarded-For": forwarded_for},
            verify=False,
            timeout=10,
        ).status_code

    guesser = _client_at("127.0.0.2")
    codes = [fail_sign_in(guesser, f"guess{n}", f"203.0.113.{n}") for n in range(7)]
    assert codes == [401] * 5 + [429] * 2
    # Another client behind the same nginx keeps its own count.
    assert fail_sign_in(_client_at("127.0.0.3"), "guess-other", "203.0.113.2") == 401


def test_websocket_upgrade_through_nginx_reaches_daphne(edge):
    user = UserFactory(username="ws-ops", is_superuser=True)
    user.password = make_password("pw-for-tests", hasher="pbkdf2_sha256")
    user.save(update_fields=["password"])
    tokens = requests.post(
        edge.url("/api/auth/token/"),
        json={"username": "ws-ops", "password": "pw-for-tests"},
        headers={"Host": HOST},
        verify=False,
        timeout=10,
    ).json()
    answer = _websocket_handshake(edge, f"/ws/inbox/?token={tokens['access']}")
    assert answer.startswith("HTTP/1.1 101"), answer
    assert "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" in answer  # RFC 6455's accept value for the sample key
    # Without credentials Daphne refuses the socket (not nginx: it passed the upgrade along).
    assert _websocket_handshake(edge, "/ws/inbox/").startswith("HTTP/1.1 403")
