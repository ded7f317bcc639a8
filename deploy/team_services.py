"""Start a whole team instance on one machine: Postgres, Redis, an MLflow server, the Dagster webserver and daemon,
and celery workers, each from its own package, with the configuration in deploy/.

This is what the service test and the scale-out benchmark run, and what a developer can run to try the team
setup on a laptop (`python -m deploy.team_services up`). On real hosts each service is started by its own unit
(systemd, a container, the Helm chart): docs/team-instance.md lists the same commands.

Every process starts in its own session with default signal handlers (a process here may inherit SIGTERM and
SIGINT as ignored), and `stop()` ends each process tree with SIGTERM, then SIGKILL after a short wait, so a
failed test never leaves a server behind.
"""

from __future__ import annotations

import glob
import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

DEPLOY_DIR = Path(__file__).resolve().parent
REPO_ROOT = DEPLOY_DIR.parent
BIN = Path(sys.executable).parent
STEP_QUEUE = "dagster"  # dagster-celery's default queue
LAUNCH_BACKFILL = """
mutation($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message }
  }
}"""


def postgres_bindir() -> Path | None:
    """Folder holding initdb/postgres (Debian keeps them out of PATH), or None when Postgres is not installed."""
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(candidates[-1]).parent if candidates else None


def missing_binaries() -> list[str]:
    """What this machine lacks to start the team services (empty when everything is there)."""
    missing = [] if postgres_bindir() else ["postgres (apt-get install postgresql)"]
    if not shutil.which("redis-server"):
        missing.append("redis-server (apt-get install redis-server)")
    for tool in ("mlflow", "dagster-webserver", "dagster-daemon", "dagster-celery"):
        if not (BIN / tool).exists():
            missing.append(f"{tool} (pip install -e '.[team]')")
    return missing


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _child_setup(uid: int | None, gid: int | None):
    def setup() -> None:
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT):
            signal.signal(sig, signal.SIG_DFL)
        if gid is not None:
            os.setgroups([])  # drop root's supplementary groups too
            os.setgid(gid)
        if uid is not None:
            os.setuid(uid)
    return setup


@dataclass
class TeamServices:
    """The running services of one local team instance; build it with `start_team_services`."""

    root: Path
    env: dict[str, str]
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    @property
    def pg_url(self) -> str:
        e = self.env
        return (f"postgresql://{e['DAGSTER_PG_USERNAME']}:{e['DAGSTER_PG_PASSWORD']}@{e['DAGSTER_PG_HOST']}:"
                f"{e['DAGSTER_PG_PORT']}/{e['DAGSTER_PG_DB']}")

    @property
    def webserver_url(self) -> str:
        return f"http://127.0.0.1:{self.env['OPENSENTIMENT_WEBSERVER_PORT']}"

    def sql(self, query: str, *params) -> list[tuple]:
        """Rows of a query against Dagster's Postgres database (runs, run_tags, event_logs)."""
        import psycopg2

        with psycopg2.connect(self.pg_url) as conn, conn.cursor() as cur:
            cur.execute(query, params)
            return cur.fetchall()

    def graphql(self, query: str, variables: dict) -> dict:
        """POST a query to the webserver's GraphQL API, as the UI does."""
        request = urllib.request.Request(f"{self.webserver_url}/graphql", method="POST",
                                         data=json.dumps({"query": query, "variables": variables}).encode(),
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=60) as response:
            return json.load(response)

    def launch_backfill(self, asset: str, partitions: list[str], tags: dict[str, str]) -> str:
        """Backfill `asset` over `partitions` (the UI's "Materialize selected"); returns the backfill id."""
        reply = self.graphql(LAUNCH_BACKFILL, {"params": {
            "partitionNames": partitions, "assetSelection": [{"path": [asset]}],
            "tags": [{"key": k, "value": v} for k, v in tags.items()]}})
        result = reply["data"]["launchPartitionBackfill"]
        if result["__typename"] != "LaunchBackfillSuccess":
            raise RuntimeError(f"backfill of {asset} not launched: {reply}")
        return result["backfillId"]

    def spawn(self, name: str, cmd: list[str], user: str | None = None) -> subprocess.Popen:
        uid = gid = None
        if user is not None and os.geteuid() == 0:  # Postgres refuses to run as root
            entry = pwd.getpwnam(user)
            uid, gid = entry.pw_uid, entry.pw_gid
        with open(self.root / "logs" / f"{name}.log", "ab") as log:  # the child keeps its own handle
            proc = subprocess.Popen(cmd, env=self.env, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, start_new_session=True,
                                    preexec_fn=_child_setup(uid, gid))
        self.processes[name] = proc
        return proc

    def log_tail(self, name: str, lines: int = 40) -> str:
        path = self.root / "logs" / f"{name}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""

    def wait_until(self, name: str, ready, timeout: float = 120.0) -> None:
        """Poll `ready()` until true; fail with the service's log when it exits or times out."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            proc = self.processes.get(name)
            if proc is not None and proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {proc.returncode}:\n{self.log_tail(name)}")
            try:
                if ready():
                    return
            except Exception:  # not up yet: connection refused, HTTP 503, ...
                pass
            time.sleep(0.5)
        raise TimeoutError(f"{name} not ready after {timeout:.0f} s:\n{self.log_tail(name)}")

    def stop(self, name: str, grace: float = 5.0) -> None:
        """SIGTERM the service's whole process tree, then SIGKILL what is left after `grace` seconds."""
        import psutil

        proc = self.processes.pop(name, None)
        if proc is None:
            return
        try:
            tree = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
        except psutil.NoSuchProcess:
            tree = []
        for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
            for p in tree:
                try:
                    os.killpg(p.pid, sig) if p.pid == proc.pid else p.send_signal(sig)
                except (ProcessLookupError, psutil.NoSuchProcess, PermissionError):
                    pass
            tree = _wait_gone(proc, tree, wait)
            if not tree:
                break
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:  # stuck in the kernel after SIGKILL: nothing more we can do
            pass

    def stop_all(self) -> None:
        """Stop every service, workers first and Postgres last; one failing stop does not spare the others."""
        errors = []
        for name in reversed(list(self.processes)):
            try:
                self.stop(name)
            except Exception as err:  # keep stopping the rest, report at the end
                errors.append(f"{name}: {err!r}")
        if errors:
            raise RuntimeError("could not stop cleanly: " + "; ".join(errors))


def _wait_gone(proc: subprocess.Popen, tree: list, timeout: float) -> list:
    """The processes of `tree` still running after up to `timeout` s. A zombie counts as gone: grandchildren are
    reparented to PID 1, which in a container may never reap them."""
    import psutil

    deadline = time.monotonic() + timeout
    while True:
        proc.poll()  # reap our own child
        alive = []
        for p in tree:
            try:
                if p.status() != psutil.STATUS_ZOMBIE:
                    alive.append(p)
            except psutil.NoSuchProcess:
                pass
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.1)


def start_postgres(team: TeamServices) -> None:
    bindir = postgres_bindir()
    env = team.env
    data = Path(tempfile.mkdtemp(prefix="opensentiment-pg-"))  # outside pytest's 0700 tmp: Postgres' user reads it
    pwfile = data / "pw"
    pwfile.write_text(env["DAGSTER_PG_PASSWORD"])
    if os.geteuid() == 0:
        entry = pwd.getpwnam("postgres")
        for path in (data, pwfile):
            os.chown(path, entry.pw_uid, entry.pw_gid)
    team.env["OPENSENTIMENT_PG_DATA"] = str(data)
    user = "postgres"
    init = team.spawn("initdb", [str(bindir / "initdb"), "-D", str(data / "db"), "-U", env["DAGSTER_PG_USERNAME"],
                                 f"--pwfile={pwfile}", "--auth=scram-sha-256", "-E", "UTF8"], user=user)
    if init.wait(timeout=120) != 0:
        raise RuntimeError(f"initdb failed:\n{team.log_tail('initdb')}")
    team.processes.pop("initdb")
    team.spawn("postgres", [str(bindir / "postgres"), "-D", str(data / "db"), "-h", "127.0.0.1",
                            "-p", env["DAGSTER_PG_PORT"], "-k", str(data), "-c", "fsync=off"], user=user)

    def create_databases() -> bool:
        import psycopg2

        conn = psycopg2.connect(host="127.0.0.1", port=env["DAGSTER_PG_PORT"], user=env["DAGSTER_PG_USERNAME"],
                                password=env["DAGSTER_PG_PASSWORD"], dbname="postgres")
        conn.autocommit = True
        with conn.cursor() as cur:
            for db in (env["DAGSTER_PG_DB"], "mlflow"):
                cur.execute(f'CREATE DATABASE "{db}"')
        conn.close()
        return True

    team.wait_until("postgres", create_databases, timeout=60)


def start_redis(team: TeamServices, port: int) -> None:
    password = team.env["OPENSENTIMENT_REDIS_PASSWORD"]
    team.spawn("redis", ["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--save", "",
                         "--appendonly", "no", "--dir", str(team.root), "--requirepass", password])

    def ping() -> bool:
        import redis

        return redis.Redis(host="127.0.0.1", port=port, password=password).ping()

    team.wait_until("redis", ping, timeout=30)


def start_mlflow(team: TeamServices, port: int) -> None:
    """`mlflow server` with its runs in Postgres and artifacts served by itself (clients never see the disk)."""
    backend = team.pg_url.replace("postgresql://", "postgresql+psycopg2://").rsplit("/", 1)[0] + "/mlflow"
    team.spawn("mlflow", [str(BIN / "mlflow"), "server", "--backend-store-uri", backend, "--serve-artifacts",
                          "--artifacts-destination", str(team.root / "mlflow-artifacts"),
                          "--host", "127.0.0.1", "--port", str(port), "--workers", "1"])
    team.wait_until("mlflow", lambda: urllib.request.urlopen(f"http://127.0.0.1:{port}/health").status == 200,
                    timeout=180)


def start_dagster(team: TeamServices) -> None:
    workspace = str(DEPLOY_DIR / "workspace.yaml")
    team.spawn("webserver", [str(BIN / "dagster-webserver"), "-h", "127.0.0.1",
                             "-p", team.env["OPENSENTIMENT_WEBSERVER_PORT"], "-w", workspace])
    team.spawn("daemon", [str(BIN / "dagster-daemon"), "run", "-w", workspace])
    team.wait_until("webserver", lambda: urllib.request.urlopen(f"{team.webserver_url}/server_info").status == 200,
                    timeout=180)


def start_worker(team: TeamServices, name: str, queue: str, concurrency: int) -> None:
    """A celery worker (dagster-celery) taking step tasks from `queue`, `concurrency` at a time."""
    team.spawn(name, [str(BIN / "dagster-celery"), "worker", "start", "-A", "dagster_celery.app",
                      "-y", str(DEPLOY_DIR / "celery.yaml"), "-q", queue, "-n", name, "--",
                      f"--concurrency={concurrency}"])


def wait_for_workers(team: TeamServices, names: list[str], timeout: float = 120.0) -> None:
    app = celery_app(team.env)

    def all_up() -> bool:
        replies = app.control.ping(timeout=1.0) or []
        seen = {host.split("@")[0] for reply in replies for host in reply}
        return set(names) <= seen

    team.wait_until(names[0], all_up, timeout=timeout)


def celery_app(env: dict[str, str]):
    from dagster_celery.make_app import make_app

    return make_app({"broker": env["DAGSTER_CELERY_BROKER_URL"], "backend": env["DAGSTER_CELERY_BACKEND_URL"],
                     "include": [], "config_source": {}})


def team_env(root: Path, **extra: str) -> dict[str, str]:
    """The environment every team process shares (docs/team-instance.md), with fresh ports and secrets."""
    pg_password, redis_password = secrets.token_hex(12), secrets.token_hex(12)
    redis_port, mlflow_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DAGSTER_", "MLFLOW_"))}
    env.update({
        "DAGSTER_HOME": str(root / "dagster_home"),
        "DAGSTER_DEPLOYMENT": "team",
        "DAGSTER_PG_USERNAME": "opensentiment", "DAGSTER_PG_PASSWORD": pg_password,
        "DAGSTER_PG_HOST": "127.0.0.1", "DAGSTER_PG_PORT": str(free_port()), "DAGSTER_PG_DB": "dagster",
        "DAGSTER_EVENT_BATCH_SIZE": "500",  # per-day events of a step in one Postgres write (docs/team-instance.md)
        "DAGSTER_CELERY_BROKER_URL": f"redis://:{redis_password}@127.0.0.1:{redis_port}/0",
        "DAGSTER_CELERY_BACKEND_URL": f"redis://:{redis_password}@127.0.0.1:{redis_port}/1",
        "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{mlflow_port}",
        "OPENSENTIMENT_HOME": str(root / "shared_home"),
        "OPENSENTIMENT_REDIS_PASSWORD": redis_password, "OPENSENTIMENT_REDIS_PORT": str(redis_port),
        "OPENSENTIMENT_MLFLOW_PORT": str(mlflow_port), "OPENSENTIMENT_WEBSERVER_PORT": str(free_port()),
        "PATH": os.pathsep.join([str(BIN), os.environ.get("PATH", "")]),  # dagster-celery runs `celery`
        "HF_HUB_OFFLINE": "1", "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1",
        # workers import this checkout's package even when the venv's editable install points elsewhere
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
    })
    env.update(extra)
    return env


@contextmanager
def start_team_services(root: Path, step_workers: int = 2, **extra_env: str) -> Iterator[TeamServices]:
    """Start every service under `root` (logs in root/logs) and stop them all on exit, even after an error."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "logs").mkdir(exist_ok=True)
    env = team_env(root, **extra_env)
    Path(env["DAGSTER_HOME"]).mkdir(exist_ok=True)
    shutil.copy(DEPLOY_DIR / "dagster.yaml", Path(env["DAGSTER_HOME"]) / "dagster.yaml")
    team = TeamServices(root=root, env=env)
    try:
        start_postgres(team)
        start_redis(team, int(env["OPENSENTIMENT_REDIS_PORT"]))
        start_mlflow(team, int(env["OPENSENTIMENT_MLFLOW_PORT"]))
        start_dagster(team)
        names = [f"steps{i + 1}" for i in range(step_workers)]
        for name in names:
            start_worker(team, name, STEP_QUEUE, concurrency=1)
        wait_for_workers(team, names)
        yield team
    finally:
        try:
            team.stop_all()
        finally:
            if env.get("OPENSENTIMENT_PG_DATA"):
                shutil.rmtree(env["OPENSENTIMENT_PG_DATA"], ignore_errors=True)


def main() -> int:
    """`python -m deploy.team_services up [--root DIR]`: run a local team instance until Ctrl-C."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("command", choices=["up"])
    parser.add_argument("--root", default=None, help="state folder (default: a new temporary folder)")
    parser.add_argument("--step-workers", type=int, default=2)
    args = parser.parse_args()
    root = Path(args.root or tempfile.mkdtemp(prefix="opensentiment-team-"))
    with start_team_services(root, step_workers=args.step_workers) as team:
        print(f"Dagster UI {team.webserver_url}  MLflow {team.env['MLFLOW_TRACKING_URI']}  logs {root / 'logs'}")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
