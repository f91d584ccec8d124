"""docker-compose.yml, config/deploy/nginx.conf and config/deploy/systemd/*.service: the deployment files agree with
the scripts the tests start (config/bin/web, config/bin/ws, config/bin/worker, config/bin/beat, config/bin/release).
Docker cannot run here, so the compose file is checked as data; nginx's own ``nginx -t`` checks the nginx config
where nginx is installed."""

import configparser
import os
import re
import subprocess

import pytest
import yaml

from tests.production.conftest import NGINX, ROOT, render_nginx

APP_SERVICES = {
    "release": "config/bin/release",
    "web": "config/bin/web",
    "ws": "config/bin/ws",
    "worker": "config/bin/worker",
    "beat": "config/bin/beat",
}


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_services_and_their_commands_are_the_tested_scripts(compose):
    services = compose["services"]
    assert set(services) == {"postgres", "redis", *APP_SERVICES, "nginx"}
    for name, script in APP_SERVICES.items():
        service = services[name]
        assert service["command"] == [script]
        assert os.access(ROOT / script, os.X_OK), script
        assert service["environment"]["DJANGO_SETTINGS_MODULE"] == "config.settings.production"
        assert service["restart"] == ("no" if name == "release" else "unless-stopped")
    assert services["ws"]["environment"]["DJANGO_DB_POOL"] == "1"
    assert "DJANGO_DB_POOL" not in services["web"]["environment"]
    for name in ("web", "ws", "worker", "beat"):
        assert services[name]["depends_on"]["release"] == {"condition": "service_completed_successfully"}
    for name in ("postgres", "redis", "nginx"):
        assert services[name]["restart"] == "unless-stopped"


def test_compose_health_checks_and_persistence(compose):
    services = compose["services"]
    assert services["web"]["healthcheck"]["test"] == ["CMD", "config/bin/healthcheck", "8000", "/readyz"]
    assert services["ws"]["healthcheck"]["test"] == ["CMD", "config/bin/healthcheck", "8001", "/healthz"]
    assert "inspect ping" in services["worker"]["healthcheck"]["test"][1]
    assert "--appendonly" in services["redis"]["command"] and "yes" in services["redis"]["command"]
    command = services["redis"]["command"]
    # Capped, never evicting: an evicted key would be a lost task.
    assert (
        command[command.index("--maxmemory") + 1] and command[command.index("--maxmemory-policy") + 1] == "noeviction"
    )
    assert "postgres-data:/var/lib/postgresql/data" in services["postgres"]["volumes"]
    assert "static:/app/staticfiles" in services["web"]["volumes"]
    assert "static:/srv/inbox/static:ro" in services["nginx"]["volumes"]
    assert "./config/deploy/nginx.conf:/etc/nginx/templates/default.conf.template:ro" in services["nginx"]["volumes"]


def test_compose_requires_the_secrets(compose):
    env = compose["services"]["web"]["environment"]
    for name in ("DJANGO_SECRET_KEY", "FRONTEND_URL", "META_APP_SECRET", "META_VERIFY_TOKEN"):
        assert re.fullmatch(rf"\$\{{{name}:\?[^}}]+\}}", env[name]), name


def test_systemd_units_run_the_scripts():
    units = sorted((ROOT / "config" / "deploy" / "systemd").glob("*.service"))
    assert [u.name for u in units] == [
        "inbox-beat.service",
        "inbox-web.service",
        "inbox-worker.service",
        "inbox-ws.service",
    ]
    for unit in units:
        parser = configparser.ConfigParser(strict=False, interpolation=None)
        parser.optionxform = str
        parser.read(unit)
        script = parser["Service"]["ExecStart"].removeprefix("/srv/whatsapp-inbox/")
        assert script == f"config/bin/{unit.stem.removeprefix('inbox-')}"
        assert (ROOT / script).exists()
        assert parser["Service"]["EnvironmentFile"] == "/etc/whatsapp-inbox/env"
        assert parser["Service"]["Restart"] == "always"


def test_nginx_config_is_valid(tmp_path):
    main = render_nginx(tmp_path, web_upstream="127.0.0.1:8000", ws_upstream="127.0.0.1:8001")
    result = subprocess.run(
        [NGINX, "-t", "-p", str(tmp_path), "-c", str(main)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "syntax is ok" in result.stderr


def test_nginx_config_routes_ws_to_daphne_and_the_rest_to_gunicorn():
    text = (ROOT / "config" / "deploy" / "nginx.conf").read_text()
    ws = re.search(r"location /ws/ \{(.*?)\n    \}", text, re.DOTALL).group(1)
    assert "proxy_pass http://inbox_ws;" in ws
    assert "proxy_set_header Upgrade $http_upgrade;" in ws
    assert "proxy_set_header Connection $connection_upgrade;" in ws
    assert re.search(r"location / \{\n        proxy_pass http://inbox_web;", text)
    assert "alias /srv/inbox/static/;" in text
    assert "proxy_set_header X-Forwarded-Proto $scheme;" in text
