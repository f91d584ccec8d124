"""``config/bin/test-setup`` (what ``make test`` runs before the suite), run as a real process with a PATH made
for each test: the machine's own tools, less the ones a test takes away, and recording stand-ins for the
commands that would change the machine (apt-get; and the service starters where a test needs its services
stopped, which the suite's own PostgreSQL and Redis must never be). Run as root, as the suite is; the runs as
a user of no privileges go through setpriv."""

import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "config" / "bin" / "test-setup"
# What the script itself runs besides the tools it checks for.
SHELL_TOOLS = ["bash", "awk", "find", "sort", "tail", "sleep", "mkdir"]
# The command each Debian package the script may install provides.
TOOLS = {
    "postgresql-client": ["pg_isready"],
    "postgresql": ["pg_ctlcluster", "pg_lsclusters"],
    "redis-server": ["redis-server", "redis-cli"],
    "redis-sentinel": ["redis-sentinel"],
    "chromium": ["chromium"],
    "nginx-light": ["nginx"],
    "wrk": ["wrk"],
    "valgrind": ["valgrind"],
    "pgbouncer": ["pgbouncer"],
}
NOBODY = 65534


def real_path(tool: str) -> str:
    found = shutil.which(tool) or shutil.which(tool, path="/usr/sbin:/sbin")  # nginx and pgbouncer are in sbin
    assert found, f"{tool} is not on this machine"
    return found


class Toolbox:
    """A directory that is the whole PATH of one run: links to the machine's tools, stand-ins that record."""

    def __init__(self, path: Path):
        self.bin = path / "bin"
        self.calls = path / "calls"
        self.state = path / "state"
        for directory in (self.bin, self.calls, self.state):
            directory.mkdir()
        # The stand-ins record and keep state when the script runs as nobody too.
        self.calls.chmod(0o777)
        self.state.chmod(0o777)
        for tool in SHELL_TOOLS + [tool for tools in TOOLS.values() for tool in tools]:
            self.link(tool)

    def link(self, tool: str) -> None:
        (self.bin / tool).symlink_to(real_path(tool))

    def remove(self, *tools: str) -> None:
        for tool in tools:
            (self.bin / tool).unlink()

    def stand_in(self, tool: str, body: str) -> None:
        """Replace ``tool`` by a bash script that appends its arguments to calls/<tool>, then runs ``body``."""
        (self.bin / tool).unlink(missing_ok=True)
        script = self.bin / tool
        script.write_text(f'#!/bin/bash\nprintf "%s\\n" "$*" >>{self.calls / tool}\nstate={self.state}\n{body}\n')
        script.chmod(0o755)

    def recorded(self, tool: str) -> list[str]:
        log = self.calls / tool
        return log.read_text().splitlines() if log.exists() else []

    def run(self, *, user: int | None = None, **env: str) -> subprocess.CompletedProcess:
        command = [str(SCRIPT)]
        if user is not None:
            command = [
                shutil.which("setpriv") or "setpriv",
                f"--reuid={user}",
                f"--regid={user}",
                "--clear-groups",
                *command,
            ]
        return subprocess.run(
            command,
            env={"PATH": str(self.bin), "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/test", **env},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )


@pytest.fixture
def toolbox() -> Iterator[Toolbox]:
    # Not pytest's tmp_path: its parent is private to root, and one test runs the script as nobody.
    path = Path(tempfile.mkdtemp(prefix="test-setup-"))
    path.chmod(0o755)
    try:
        yield Toolbox(path)
    finally:
        shutil.rmtree(path)


def apt_get_that_installs(toolbox: Toolbox) -> None:
    """An apt-get stand-in whose ``install`` puts the packages' tools (the machine's own) on the PATH."""
    ln = real_path("ln")
    links = "\n".join(
        f"    {package}) " + "; ".join(f"{ln} -sf {real_path(tool)} {toolbox.bin / tool}" for tool in tools) + " ;;"
        for package, tools in TOOLS.items()
    )
    toolbox.stand_in(
        "apt-get",
        f"""echo "DEBIAN_FRONTEND=$DEBIAN_FRONTEND" >>{toolbox.calls / "apt-get-env"}
[[ $1 == install ]] || exit 0
for package in "$@"; do
  case $package in
{links}
  esac
done""",
    )


def test_everything_there_and_running_does_nothing(toolbox):
    for tool in ("apt-get", "pg_ctlcluster", "redis-server"):
        toolbox.stand_in(tool, "exit 1")

    started = time.monotonic()
    result = toolbox.run()

    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    assert [toolbox.recorded(tool) for tool in ("apt-get", "pg_ctlcluster", "redis-server")] == [[], [], []]
    assert time.monotonic() - started < 5


def test_as_root_what_is_missing_is_installed_in_one_apt_run(toolbox):
    toolbox.remove("wrk", "valgrind", "redis-server", "redis-cli")
    apt_get_that_installs(toolbox)

    result = toolbox.run()

    assert result.returncode == 0, result.stderr
    assert toolbox.recorded("apt-get") == [
        "update -q",
        "install -y -q --no-install-recommends redis-server wrk valgrind",
    ]
    assert set(toolbox.recorded("apt-get-env")) == {"DEBIAN_FRONTEND=noninteractive"}


def test_without_apt_get_the_missing_package_and_its_install_command_are_one_line(toolbox):
    toolbox.remove("wrk")

    started = time.monotonic()
    result = toolbox.run()

    assert result.returncode == 1
    assert result.stderr == "make test: missing wrk; install with: apt-get install -y --no-install-recommends wrk\n"
    assert result.stdout == ""
    assert time.monotonic() - started < 2


def test_not_root_the_command_is_given_and_apt_get_is_not_run(toolbox):
    toolbox.remove("chromium", "pg_ctlcluster")
    apt_get_that_installs(toolbox)

    result = toolbox.run(user=NOBODY)

    assert result.returncode == 1
    assert result.stderr == (
        "make test: missing chromium postgresql; "
        "install with: sudo apt-get install -y --no-install-recommends chromium postgresql\n"
    )
    assert toolbox.recorded("apt-get") == []


def test_a_database_elsewhere_needs_no_local_server_and_none_is_started(toolbox):
    toolbox.remove("pg_ctlcluster", "pg_lsclusters")
    # 127.1 is this machine's PostgreSQL under a name the script cannot take for the local one.
    answering = toolbox.run(DATABASE_URL="postgres://postgres@127.1:5432/test")
    assert (answering.returncode, answering.stderr) == (0, "")

    silent = toolbox.run(DATABASE_URL="postgres://postgres:secret@127.0.0.2:5439/test")
    assert silent.returncode == 1
    assert silent.stderr == "make test: the PostgreSQL of DATABASE_URL (127.0.0.2:5439) does not answer\n"


def test_a_local_port_with_no_cluster_says_how_to_create_one(toolbox):
    result = toolbox.run(DATABASE_URL="postgres://postgres@localhost:5439/test")

    assert result.returncode == 1
    assert "make test: no PostgreSQL cluster on port 5439; create one with: " in result.stderr
    assert "pg_createcluster --start --port 5439 " in result.stderr and result.stderr.endswith(" main\n")


def stopped_services(toolbox: Toolbox) -> None:
    """Stand-ins for a PostgreSQL 15 cluster on 5432 and a Redis on 6379, both stopped until started; the
    cluster answers only on the second poll after its start, as a real one takes a moment."""
    toolbox.stand_in("pg_lsclusters", 'echo "15 main 5432 down postgres /var/lib/postgresql/15/main log"')
    toolbox.stand_in("pg_ctlcluster", ': >"$state/postgres"')
    toolbox.stand_in(
        "pg_isready", '[[ -e "$state/postgres" ]] && { [[ -e "$state/polled" ]] || { : >"$state/polled"; exit 1; }; }'
    )
    toolbox.stand_in("redis-server", ': >"$state/redis"')
    toolbox.stand_in("redis-cli", '[[ -e "$state/redis" ]] && echo PONG')


def test_as_root_stopped_services_are_started_and_waited_for(toolbox):
    stopped_services(toolbox)

    result = toolbox.run()

    assert (result.returncode, result.stderr) == (0, "")
    assert toolbox.recorded("pg_ctlcluster") == ["--skip-systemctl-redirect 15 main start"]
    assert toolbox.recorded("redis-server") == [
        "--daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save  --appendonly no "
        "--dir /var/lib/redis --logfile /var/log/redis/ci.log"
    ]
    # Before the start, then polled until it answers.
    assert toolbox.recorded("pg_isready") == ["-q -h 127.0.0.1 -p 5432"] * 3
    assert toolbox.recorded("redis-cli")[-1] == "-h 127.0.0.1 -p 6379 ping"


def test_not_root_a_stopped_service_is_named_with_its_start_command(toolbox):
    stopped_services(toolbox)

    result = toolbox.run(user=NOBODY)

    assert result.returncode == 1
    assert result.stderr == (
        "make test: PostgreSQL is not running on port 5432; "
        "start it with: sudo pg_ctlcluster --skip-systemctl-redirect 15 main start\n"
    )
    assert toolbox.recorded("pg_ctlcluster") == []
