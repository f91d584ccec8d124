"""Helpers for running the app as production runs it: ``config.settings.production`` in a subprocess
with a realistic environment (no .env file, nothing inherited from the developer's META_/DJANGO_ variables)."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

# The test database's URL for the processes a test starts (the end-to-end tests' fixture).
from tests.e2e.conftest import e2e_database_url  # noqa: F401

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
# 50+ random characters, as check --deploy wants (security.W009).
SECRET_KEY = "Zt3mV9qLr8sK2pXw7yB4nHc6fJd1gQe5aUo0iTl-_RzMvNbYxWkPjS"
HOST = "inbox.example.com"
# 32 characters, as Meta's app secrets are (production refuses shorter).
APP_SECRET = "prod-app-secret-0123456789abcdef"


def production_env(**overrides: str | None) -> dict[str, str]:
    """The environment of a production process; an override of ``None`` removes that variable."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("META_", "DJANGO_", "DATABASE_", "REDIS_", "LOG_"))}
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings.production",
        DJANGO_READ_DOT_ENV_FILE="0",
        DJANGO_SECRET_KEY=SECRET_KEY,
        FRONTEND_URL=f"https://{HOST}",
        META_APP_SECRET=APP_SECRET,
        META_VERIFY_TOKEN="prod-verify-token",
        DATABASE_URL="postgres://postgres@127.0.0.1:5432/postgres",
        REDIS_URL="redis://127.0.0.1:6379/0",
        PYTHONUNBUFFERED="1",
    )
    for name, value in overrides.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def manage(*args: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "python"), "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def start_process(name: str, *, env: dict[str, str], log: Path) -> subprocess.Popen:
    """``config/bin/<name>``, a production process, in a session of its own, its output appended to ``log``."""
    with log.open("ab") as out:
        return subprocess.Popen(
            [str(ROOT / "config" / "bin" / name)],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def python(code: str, *, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "python"), "-c", code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


NGINX = shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if Path(p).exists()), None)


def render_nginx(
    tmp_path: Path,
    *,
    web_upstream: str,
    ws_upstream: str,
    http_port: int = 80,
    https_port: int = 443,
    static_root: Path | None = None,
) -> Path:
    """config/deploy/nginx.conf as the nginx image renders it, with a self-signed certificate for HOST, the given
    ports and upstreams (comma-separated: one ``server`` line each, as the README says for several hosts), and a
    main nginx.conf around it that runs from ``tmp_path``; returns the main file."""
    live = tmp_path / "live" / HOST
    live.mkdir(parents=True)
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            f"/CN={HOST}",
            "-keyout",
            str(live / "privkey.pem"),
            "-out",
            str(live / "fullchain.pem"),
        ],
        check=True,
        capture_output=True,
    )
    text = (ROOT / "config" / "deploy" / "nginx.conf").read_text()
    for var, upstreams in {"WEB_UPSTREAM": web_upstream, "WS_UPSTREAM": ws_upstream}.items():
        text = text.replace(f"server ${{{var}}};", "\n    ".join(f"server {u};" for u in upstreams.split(",")))
    for var, value in {"NGINX_SERVER_NAME": HOST, "WEB_UPSTREAM": web_upstream, "WS_UPSTREAM": ws_upstream}.items():
        text = text.replace("${" + var + "}", value)
    assert "${" not in text
    text = text.replace("/etc/letsencrypt/live/", f"{tmp_path}/live/")
    text = text.replace("    listen [::]:80;\n", "").replace("    listen [::]:443 ssl;\n", "")
    text = text.replace("listen 80;", f"listen 127.0.0.1:{http_port};").replace(
        "listen 443 ssl;", f"listen 127.0.0.1:{https_port} ssl;"
    )
    if static_root is not None:
        text = text.replace("alias /srv/inbox/static/;", f"alias {static_root}/;")
    version = subprocess.run([NGINX, "-v"], capture_output=True, text=True, check=False).stderr
    if tuple(map(int, re.search(r"nginx/(\d+)\.(\d+)\.(\d+)", version).groups())) < (1, 25, 1):
        # `http2 on;` is newer than Debian 12's nginx 1.22 (the compose image has 1.27).
        text = text.replace("    http2 on;\n", "").replace(f"{https_port} ssl;", f"{https_port} ssl http2;")
    (tmp_path / "inbox.conf").write_text(text)
    main = tmp_path / "nginx.conf"
    user = "user root;\n" if os.geteuid() == 0 else ""  # workers read the test's private temp directories
    main.write_text(
        f"{user}pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\nevents {{}}\n"
        f"http {{\n  include /etc/nginx/mime.types;\n  access_log off;\n  client_body_temp_path {tmp_path}/body;\n"
        f"  proxy_temp_path {tmp_path}/proxy;\n  include {tmp_path}/inbox.conf;\n}}\n"
    )
    return main
