#!/usr/bin/env python3
"""Container test: build the image and run the rehearsal of docker-compose.yml for real.

`make container-test` runs this. With Docker (engine and Compose v2) it builds on the official
bases; with podman and podman-compose it builds stand-in bases from Debian's packages first
(tests/containers/standin/). Then, against the unmodified docker-compose.yml:

  image     --version, non-root user, entrypoint and command, no compiler, no pip cache, size
  stack     postgres and mock-api up and healthy
  ingest    ingestion up; stopped with SIGTERM once a checkpoint is saved (exit 143, checkpoint
            kept); started again: resumes, last line `ingestion complete`, exit 0
  verify    the verify service exits 0
  commands  `run IMAGE status`, `run IMAGE verify`, `run IMAGE mock-api` as documented

Only the standard library; the host needs Python 3.9 or later. docs/containers.md describes
what it covers and how podman-compose's gaps are covered. Settings (environment):

  CONTAINER_ENGINE        docker or podman (default: docker when its engine answers, else podman)
  CONTAINER_TEST_BASES    official or standin (default: official with docker, standin with podman)
  PODMAN_COMPOSE          podman-compose to use (default: .venv-containers/bin/podman-compose,
                          then the one on PATH)
  CONTAINER_TEST_KEEP=1   leave the stack running at the end (`down -v` removes it)
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
WORK = ROOT / ".container-test"
LOG = WORK / "run.log"

PROJECT = "datasync-container-test"  # not the compose file's own name: a real rehearsal stays
TAG = "container-test"
IMAGE = f"datasync:{TAG}"
NETWORK = f"{PROJECT}_default"
EVENTS = 50_000
# Rehearsal pacing: long enough to stop the job mid-way, short enough to finish in seconds.
PACING = {"MOCK_LATENCY_MS": "400", "INGEST_PAGE_SIZE": "1000", "INGEST_WORKERS": "2"}
# Variables docker-compose.yml reads; taken out of the environment so that neither the shell
# nor a developer's .env can point the rehearsal elsewhere.
COMPOSE_VARS = (
    "POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB", "API_BASE_URL", "TARGET_API_KEY",
    "STREAM_TOKEN", "INGEST_WORKERS", "INGEST_PAGE_SIZE", "LOG_FORMAT", "DATASYNC_TAG",
    "MOCK_EVENTS", "MOCK_SEED", "MOCK_API_KEY", "MOCK_RATE_LIMIT", "MOCK_LATENCY_MS", "MOCK_P5XX",
    "COMPOSE_FILE", "COMPOSE_PROJECT_NAME", "COMPOSE_PROFILES",
)
DSN = "postgresql://postgres:postgres@postgres:5432/ingestion"  # the compose file's default
API = "http://mock-api:8080/api/v1"
MAX_RUNTIME_GROWTH_MB = 80  # what the runtime stage may add to its base (about 45 MB expected)
# podman 4.3 without systemd and syslog says so on every container start; not a failure.
NOISE = ("unable to get systemd connection", "failed to connect to syslog")


class Failed(Exception):
    """A check failed; the message says which and why."""


class Result:
    def __init__(self) -> None:
        self.passed = 0
        self.failed = 0
        self.timings: dict[str, float] = {}
        self.facts: dict[str, str] = {}


def say(msg: str) -> None:
    print(msg, flush=True)
    log_write(f"## {msg}\n")


def log_write(text: str) -> None:
    with LOG.open("a", encoding="utf-8") as fh:
        fh.write(text)


def run(cmd: list[str], *, env: dict[str, str] | None = None, timeout: float = 600,
        check: bool = True, quiet_log: bool = False,
        merge: bool = False) -> subprocess.CompletedProcess[str]:
    """Run a command, log it with its output, raise Failed on a non-zero exit when check.

    merge: stderr into stdout, in the order written (for container logs).
    """
    started = time.monotonic()
    try:
        proc = subprocess.run(cmd, env=env, cwd=ROOT, stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT if merge else subprocess.PIPE,
                              text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        log_write(f"$ {shlex.join(cmd)}\n(timed out after {timeout:.0f} s)\n")
        raise Failed(f"`{shlex.join(cmd)}` did not finish within {timeout:.0f} s") from exc
    took = time.monotonic() - started
    log_write(f"$ {shlex.join(cmd)}  # exit {proc.returncode}, {took:.1f} s\n")
    output = proc.stdout + (proc.stderr or "")
    if not quiet_log:
        log_write(output)
    if check and proc.returncode != 0:
        lines = [ln for ln in output.strip().splitlines() if not any(n in ln for n in NOISE)]
        tail = "\n".join(lines[-15:])
        raise Failed(f"`{shlex.join(cmd)}` exited {proc.returncode}:\n{tail}")
    return proc


class Engine:
    """docker + docker compose, or podman + podman-compose."""

    def __init__(self, name: str, compose: list[str], env: dict[str, str]) -> None:
        self.name = name
        self.compose_cmd = compose
        self.env = env
        self.bases = ""
        self.overrides: list[str] = []

    def __call__(self, *args: str, **kw: Any) -> subprocess.CompletedProcess[str]:
        return run([self.name, *args], env=self.env, **kw)

    def compose(self, *args: str, **kw: Any) -> subprocess.CompletedProcess[str]:
        files: list[str] = ["-f", "docker-compose.yml"]
        for override in self.overrides:
            files += ["-f", override]
        empty_env = str(WORK / "empty.env")
        return run([*self.compose_cmd, "-p", PROJECT, "--env-file", empty_env, *files, *args],
                   env=self.env, **kw)

    def container(self, service: str) -> str:
        """The id of the service's container in the test project."""
        out = self("ps", "-a", "-q", "--filter", f"label=com.docker.compose.project={PROJECT}",
                   "--filter", f"label=com.docker.compose.service={service}").stdout.split()
        if len(out) != 1:
            raise Failed(f"expected one container for service {service}, found {len(out)}")
        return out[0]

    def state(self, container: str) -> tuple[str, int]:
        out = self("inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", container).stdout
        status, code = out.split()
        return status, int(code)

    def wait_exit(self, container: str, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status, code = self.state(container)
            if status in ("exited", "stopped", "dead"):
                return code
            time.sleep(1)
        raise Failed(f"container {container[:12]} still running after {timeout:.0f} s")

    def logs(self, container: str) -> list[str]:
        return self("logs", container, quiet_log=True, merge=True).stdout.splitlines()

    def image_size(self, image: str) -> int:
        return int(self("image", "inspect", "-f", "{{.Size}}", image).stdout.strip())


def detect_engine() -> Engine:
    env = {k: v for k, v in os.environ.items() if k not in COMPOSE_VARS}
    env.update(DATASYNC_TAG=TAG, MOCK_EVENTS=str(EVENTS), **PACING)
    wanted = os.environ.get("CONTAINER_ENGINE", "")
    docker_ok = False
    if wanted in ("", "docker") and shutil.which("docker"):
        info = run(["docker", "info"], env=env, check=False, timeout=30, quiet_log=True)
        compose = run(["docker", "compose", "version"], env=env, check=False, timeout=30)
        docker_ok = info.returncode == 0 and compose.returncode == 0
        if wanted == "docker" and not docker_ok:
            raise Failed("CONTAINER_ENGINE=docker, but `docker info` or `docker compose version` "
                         "fails: is the engine running and Compose v2 installed?")
    if docker_ok:
        return Engine("docker", ["docker", "compose"], env)
    if not shutil.which("podman"):
        raise Failed("neither a Docker engine (`docker info` fails or docker is missing) nor "
                     "podman is available; see docs/containers.md, \"Container test\"")
    # Debian's podman needs runc and explicit ulimits on machines like CI's; the file sets
    # them for every podman process this test starts, and leaves the system's files alone.
    env["CONTAINERS_CONF"] = str(HERE / "containers.conf")
    candidates = [os.environ.get("PODMAN_COMPOSE", ""),
                  str(ROOT / ".venv-containers" / "bin" / "podman-compose"),
                  shutil.which("podman-compose") or ""]
    podman_compose = next((c for c in candidates if c and os.access(c, os.X_OK)), "")
    if not podman_compose:
        raise Failed("podman is here but podman-compose is not: `make container-test` "
                     "installs it into .venv-containers")
    return Engine("podman", [podman_compose], env)


# --- build ------------------------------------------------------------------------------------

def build(engine: Engine, res: Result) -> None:
    bases = os.environ.get("CONTAINER_TEST_BASES") or (
        "official" if engine.name == "docker" else "standin")
    if bases not in ("official", "standin"):
        raise Failed(f"CONTAINER_TEST_BASES must be official or standin, not {bases!r}")
    engine.bases = bases
    build_args: list[str] = []
    if bases == "standin":
        started = time.monotonic()
        say("bases: stand-ins from Debian's packages (built once, then cached)")
        proc = run(["bash", str(HERE / "standin" / "build.sh"), engine.name], env=engine.env,
                   timeout=1200)
        python_base, postgres_base = proc.stdout.split()
        res.timings["stand-in bases"] = time.monotonic() - started
        res.facts["python base"] = python_base
        res.facts["postgres base"] = postgres_base
        engine.env["DATASYNC_STANDIN_PYTHON"] = python_base
        engine.env["DATASYNC_STANDIN_POSTGRES"] = postgres_base
        engine.overrides.append("tests/containers/compose.standin.yml")
        build_args = ["--build-arg", f"PYTHON_IMAGE={python_base}"]
        res.facts["base cache"] = "hit" if "cached:" in proc.stderr else "built now"
    else:
        say("bases: the Dockerfile's own (python:3.11-slim-trixie) and postgres:16")

    say(f"build: {IMAGE} from ./Dockerfile")
    started = time.monotonic()
    if engine.name == "podman":
        previous = engine("image", "inspect", "-f", "{{.Id}}", IMAGE, check=False).stdout.strip()
        # --format docker keeps HEALTHCHECK NONE (the OCI format has no such field); chroot
        # isolation and the host's network are what work on machines like CI's. --layers=false
        # keeps no intermediate images, so repeated runs do not pile them up.
        cmd = ["build", "--format", "docker", "--isolation", "chroot", "--network", "host",
               "--layers=false", *build_args, *pip_mounts(), "-t", IMAGE, "."]
        engine(*cmd, timeout=1200)
        current = engine("image", "inspect", "-f", "{{.Id}}", IMAGE).stdout.strip()
        if previous and previous != current:
            engine("rmi", previous, check=False)  # the previous run's image, now untagged
    elif bases == "standin":
        engine("build", *build_args, "-t", IMAGE, ".", timeout=1200)
    else:
        engine.compose("build", timeout=1200)
    res.timings["image build"] = time.monotonic() - started


def pip_mounts() -> list[str]:
    """Read-only mounts that let pip inside a podman build reach the index the host's pip uses.

    A machine whose HTTPS goes through an inspecting proxy trusts that proxy's CA only in its
    own bundle; a package index configured for the host (PIP_INDEX_URL, pip.conf) likewise.
    """
    mounts: list[str] = []
    bundle = Path("/etc/ssl/certs/ca-certificates.crt")
    if bundle.is_file():
        mounts += ["-v", f"{bundle}:{bundle}:ro"]
    index = os.environ.get("PIP_INDEX_URL", "")
    extra = os.environ.get("PIP_EXTRA_INDEX_URL", "")
    if index.startswith("http") or extra.startswith("http"):
        conf = WORK / "pip.conf"
        lines = ["[global]"]
        if index.startswith("http"):
            lines.append(f"index-url = {index}")
        urls = [u for u in extra.split() if u.startswith("http")]
        if urls:
            lines.append(f"extra-index-url = {' '.join(urls)}")
        conf.write_text("\n".join(lines) + "\n", encoding="utf-8")
        mounts += ["-v", f"{conf}:/etc/pip.conf:ro"]
    return mounts


# --- checks -----------------------------------------------------------------------------------

def check(res: Result, name: str, fn: Any) -> Any:
    try:
        value = fn()
    except Failed as exc:
        res.failed += 1
        say(f"FAIL {name}: {exc}")
        raise
    res.passed += 1
    say(f"ok   {name}" + (f": {value}" if isinstance(value, str) and value else ""))
    return value


def image_checks(engine: Engine, res: Result) -> None:
    def version() -> str:
        out = engine("run", "--rm", IMAGE, "--version").stdout.strip()
        if not out.startswith("datasync "):
            raise Failed(f"--version printed {out!r}")
        return out

    def config() -> str:
        raw = engine("image", "inspect", IMAGE).stdout
        image = json.loads(raw)[0]
        cfg = image["Config"]
        # Docker keeps the healthcheck in Config, podman beside it.
        health = cfg.get("Healthcheck") or image.get("Healthcheck") or {}
        env = dict(e.split("=", 1) for e in cfg.get("Env") or [])
        problems = []
        if cfg.get("User") != "10001:10001":
            problems.append(f"USER is {cfg.get('User')!r}")
        if cfg.get("Entrypoint") != ["datasync"] or cfg.get("Cmd") != ["ingest"]:
            problems.append(f"ENTRYPOINT/CMD are {cfg.get('Entrypoint')} {cfg.get('Cmd')}")
        if health.get("Test") != ["NONE"]:
            problems.append(f"healthcheck is {health or None}, not NONE")
        if env.get("LOG_FORMAT") != "json" or env.get("PYTHONUNBUFFERED") != "1":
            problems.append("LOG_FORMAT=json and PYTHONUNBUFFERED=1 missing from ENV")
        if problems:
            raise Failed("; ".join(problems))
        return ("USER 10001:10001, ENTRYPOINT [datasync], CMD [ingest], HEALTHCHECK NONE, "
                "LOG_FORMAT=json")

    def non_root() -> str:
        out = engine("run", "--rm", "--entrypoint", "id", IMAGE).stdout.strip()
        if not out.startswith("uid=10001(datasync)"):
            raise Failed(f"runs as {out!r}")
        return out

    def clean() -> str:
        script = (
            "found=''\n"
            "for tool in gcc cc c++ g++ clang make; do\n"
            "  command -v $tool >/dev/null 2>&1 && found=\"$found $tool\"\n"
            "done\n"
            "for path in /wheels /src /root/.cache/pip /home/datasync/.cache; do\n"
            "  [ -e $path ] && found=\"$found $path\"\n"
            "done\n"
            "whl=$(find / -xdev -name 'datasync_cli-*' -path '*.whl' 2>/dev/null | head -n 1)\n"
            "[ -n \"$whl\" ] && found=\"$found $whl\"\n"
            "echo \"$found\"\n"
        )
        out = engine("run", "--rm", "--user", "0", "--entrypoint", "sh", IMAGE, "-c",
                     script).stdout.strip()
        if out:
            raise Failed(f"the runtime stage holds {out}")
        return "no compiler, make, wheels, sources or pip cache"

    def size() -> str:
        total = engine.image_size(IMAGE)
        base_ref = engine.env.get("DATASYNC_STANDIN_PYTHON", "python:3.11-slim-trixie")
        if engine("image", "inspect", base_ref, check=False).returncode != 0:
            # BuildKit keeps the bases it pulls in its own cache, not among the images.
            engine("pull", "-q", base_ref, timeout=600)
        base = engine.image_size(base_ref)
        growth = (total - base) / 1e6
        res.facts["image size"] = f"{total / 1e6:.0f} MB ({growth:.0f} MB over its base)"
        if growth > MAX_RUNTIME_GROWTH_MB:
            raise Failed(f"the runtime stage adds {growth:.0f} MB to its base, more than "
                         f"{MAX_RUNTIME_GROWTH_MB} MB: a build tool or cache slipped in?")
        return res.facts["image size"]

    def help_works() -> str:
        out = engine("run", "--rm", IMAGE, "status", "--help").stdout
        if "status" not in out.lower():
            raise Failed("`status --help` printed no usage")
        return ""

    check(res, "image: --version", version)
    check(res, "image: config", config)
    check(res, "image: non-root", non_root)
    check(res, "image: clean runtime stage", clean)
    check(res, "image: size", size)
    check(res, "image: `status --help`", help_works)


def wait_ready(engine: Engine, services: list[str], timeout: float) -> None:
    """postgres and mock-api healthy, by their own healthchecks from docker-compose.yml."""
    if engine.name == "docker":
        engine.compose("up", "-d", "--wait", *services, timeout=timeout)
        return
    # podman 4.3 runs healthchecks from systemd timers only, and podman-compose does not wait
    # for `condition: service_healthy`: run each container's own healthcheck until it passes.
    engine.compose("up", "-d", *services, timeout=120)
    deadline = time.monotonic() + timeout
    pending = {s: engine.container(s) for s in services}
    while pending:
        for service, cid in list(pending.items()):
            if engine("healthcheck", "run", cid, check=False, timeout=30).returncode == 0:
                del pending[service]
        if pending:
            if time.monotonic() > deadline:
                raise Failed(f"not healthy within {timeout:.0f} s: {', '.join(pending)}")
            time.sleep(2)


def status_json(engine: Engine, *, container: str | None = None) -> dict[str, Any]:
    """`datasync status --json` in the running job's container, or a one-off one."""
    if container:
        proc = engine("exec", container, "datasync", "status", "--json", check=False, timeout=60)
    else:
        proc = engine.compose("run", "--rm", "--no-deps", "-T", "ingestion", "status", "--json",
                              check=False, timeout=120)
    if proc.returncode != 0:
        raise Failed(f"status --json exited {proc.returncode}: {proc.stderr.strip()[-300:]}")
    start = proc.stdout.find("{")
    data: dict[str, Any] = json.loads(proc.stdout[start:])
    return data


def json_lines(lines: list[str]) -> list[dict[str, Any]]:
    out = []
    for line in lines:
        line = line.strip()
        if line.startswith("{"):
            with contextlib.suppress(ValueError):
                out.append(json.loads(line))
    return out


def rehearsal(engine: Engine, res: Result) -> None:
    started = time.monotonic()
    say(f"rehearsal: docker-compose.yml as project {PROJECT}, MOCK_EVENTS={EVENTS}, "
        + ", ".join(f"{k}={v}" for k, v in PACING.items()))
    engine.compose("down", "-v", "--remove-orphans", timeout=180, check=False)

    def stack() -> str:
        t0 = time.monotonic()
        wait_ready(engine, ["postgres", "mock-api"], timeout=180)
        res.timings["postgres + mock-api healthy"] = time.monotonic() - t0
        return ""

    check(res, "stack: postgres and mock-api healthy", stack)

    ingestion_started = time.monotonic()
    progress: dict[str, Any] = {}

    def first_checkpoint() -> str:
        engine.compose("up", "-d", "--no-deps", "ingestion", timeout=120)
        cid = engine.container("ingestion")
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            status, code = engine.state(cid)
            if status != "running":
                raise Failed(f"ingestion ended ({status}, exit {code}) before it could be "
                             "stopped mid-run; raise MOCK_LATENCY_MS in tests/containers/run.py")
            try:
                data = status_json(engine, container=cid)
            except (Failed, ValueError):
                data = {}
            saved = sum(c.get("events", 0) for c in data.get("checkpoints", []))
            if saved > 0:
                progress["saved"] = saved
                return f"{saved:,} events checkpointed"
            time.sleep(1)
        raise Failed("no checkpoint saved within 120 s")

    check(res, "ingest: job running, first checkpoint", first_checkpoint)

    def sigterm() -> str:
        cid = engine.container("ingestion")
        t0 = time.monotonic()
        engine.compose("stop", "ingestion", timeout=120)  # SIGTERM, then stop_grace_period
        took = time.monotonic() - t0
        status, code = engine.state(cid)
        if code != 143:
            raise Failed(f"exit status {code} after `stop` ({status}, {took:.1f} s), not 143")
        return f"exit 143 after {took:.1f} s"

    check(res, "ingest: `stop` (SIGTERM) exits 143", sigterm)

    def checkpoint_kept() -> str:
        data = status_json(engine)
        saved = sum(c.get("events", 0) for c in data.get("checkpoints", []))
        last = (data.get("last_run") or {}).get("status")
        ingested = data.get("ingested", 0)
        if saved <= 0:
            raise Failed(f"no checkpoint after the stop: {data.get('checkpoints')}")
        if not 0 < ingested < EVENTS:
            raise Failed(f"{ingested} rows stored after the stop: not a mid-run stop")
        if last != "interrupted":
            raise Failed(f"last run status {last!r}, expected 'interrupted'")
        progress["before_restart"] = ingested
        return f"{ingested:,} rows, checkpoints at {saved:,} events, last run interrupted"

    check(res, "ingest: checkpoint saved", checkpoint_kept)

    def resume() -> str:
        cid = engine.container("ingestion")
        if engine.name == "docker":
            # Compose itself: it starts the stopped job and then, when it exits 0, verify
            # (`service_completed_successfully`).
            engine.compose("up", "-d", timeout=600)
        else:
            engine.compose("up", "-d", "--no-deps", "ingestion", timeout=120)
        code = engine.wait_exit(cid, timeout=600)
        lines = engine.logs(cid)
        records = json_lines(lines)
        if code != 0:
            raise Failed(f"ingestion exited {code}; last lines:\n" + "\n".join(lines[-10:]))
        if not records or records[-1].get("message") != "ingestion complete":
            raise Failed(f"last JSON line is {records[-1] if records else None!r}")
        summaries = [r for r in records if r.get("event") == "summary"]
        last = summaries[-1] if summaries else {}
        fetched = last.get("fetched", EVENTS)
        if fetched >= EVENTS:
            raise Failed(f"the second run fetched {fetched:,} events: it did not resume")
        res.timings["ingestion (both runs, with the stop)"] = time.monotonic() - ingestion_started
        return (f"resumed from {progress['before_restart']:,} rows, fetched {fetched:,} more; "
                "last line `ingestion complete`, exit 0")

    check(res, "ingest: restarted, resumes and completes", resume)

    def verify() -> str:
        if engine.name == "docker":
            cid = engine.container("verify")
        else:
            # podman-compose cannot start a service that depends on another one's completion
            # ("depends on container ... not found in input list"); the job has exited 0 above.
            engine.compose("up", "-d", "--no-deps", "verify", timeout=120)
            cid = engine.container("verify")
        code = engine.wait_exit(cid, timeout=300)
        lines = engine.logs(cid)
        if code != 0:
            raise Failed(f"verify exited {code}: " + " | ".join(lines[-5:]))
        return lines[-1] if lines else ""

    check(res, "verify service exits 0", verify)
    res.timings["rehearsal"] = time.monotonic() - started


def documented_commands(engine: Engine, res: Result) -> None:
    """`docker run IMAGE status|verify|mock-api` as docs/containers.md shows them."""
    net = ["--network", NETWORK]

    def status() -> str:
        out = engine("run", "--rm", "--init", *net, "-e", f"DATABASE_URL={DSN}", IMAGE,
                     "status").stdout
        if f"{EVENTS:,} of {EVENTS:,}" not in out or f"{EVENTS:,} ingested" not in out:
            raise Failed(f"status printed {out.strip()[:300]!r}")
        return ""

    def verify() -> str:
        out = engine("run", "--rm", "--init", *net, "-e", f"DATABASE_URL={DSN}",
                     "-e", f"API_BASE_URL={API}", "-e", "TARGET_API_KEY=rehearsal-key", IMAGE,
                     "verify").stdout
        if not out.startswith("ok"):
            raise Failed(f"verify printed {out.strip()[:300]!r}")
        return out.strip()

    def mock_api() -> str:
        name = f"{PROJECT}-mock-check"
        engine("rm", "-f", name, check=False)
        engine("run", "-d", "--init", "--name", name, *net, IMAGE, "mock-api", "--host",
               "0.0.0.0", "--port", "8080", "--events", "1234")
        try:
            probe = (
                "import json, time, urllib.request\n"
                "req = urllib.request.Request("
                f"'http://{name}:8080/api/v1/events?limit=5', headers={{'X-API-Key': 'k'}})\n"
                "for _ in range(60):\n"
                "    try:\n"
                "        body = json.load(urllib.request.urlopen(req, timeout=5)); break\n"
                "    except OSError:\n"
                "        time.sleep(0.5)\n"
                "print(len(body['data']), body['meta']['total'])\n"
            )
            out = engine("run", "--rm", *net, "--entrypoint", "python", IMAGE, "-c",
                         probe).stdout.split()
            if out != ["5", "1234"]:
                raise Failed(f"GET /api/v1/events?limit=5 gave {out}, expected 5 of 1234")
        finally:
            engine("stop", "-t", "5", name, check=False)
            engine("rm", "-f", name, check=False)
        return "serves /api/v1/events (5 of 1,234)"

    check(res, "`run IMAGE status`", status)
    check(res, "`run IMAGE verify`", verify)
    check(res, "`run IMAGE mock-api`", mock_api)


def dump_logs(engine: Engine) -> None:
    for service in ("postgres", "mock-api", "ingestion", "verify"):
        try:
            lines = engine.logs(engine.container(service))
        except Failed:
            continue
        print(f"--- last lines of {service} ---")
        print("\n".join(line[:400] for line in lines[-12:]))


def main() -> int:
    WORK.mkdir(exist_ok=True)
    LOG.write_text("", encoding="utf-8")
    (WORK / "empty.env").write_text("", encoding="utf-8")
    res = Result()
    t0 = time.monotonic()
    engine: Engine | None = None
    try:
        engine = detect_engine()
        compose_version = run([*engine.compose_cmd, "version"], env=engine.env,
                              check=False).stdout.strip().replace("\n", ", ")
        say(f"engine: {engine.name} ({compose_version})")
        build(engine, res)
        image_checks(engine, res)
        rehearsal(engine, res)
        documented_commands(engine, res)
    except Failed as exc:
        if res.failed == 0:  # failed outside a named check
            res.failed += 1
            say(f"FAIL {exc}")
        if engine is not None:
            dump_logs(engine)
        print(f"(full log: {LOG.relative_to(ROOT)})")
    finally:
        if engine is not None and os.environ.get("CONTAINER_TEST_KEEP") != "1":
            engine.compose("down", "-v", "--remove-orphans", timeout=180, check=False)
    res.timings["total"] = time.monotonic() - t0
    print("timings: " + ", ".join(f"{k} {v:.0f} s" for k, v in res.timings.items()))
    if res.facts:
        print("facts: " + "; ".join(f"{k}: {v}" for k, v in res.facts.items()))
    print(f"container-test: {res.passed} passed, {res.failed} failed")
    return 1 if res.failed else 0


if __name__ == "__main__":
    sys.exit(main())
