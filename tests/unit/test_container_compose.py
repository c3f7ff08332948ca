"""The compose files and .env.example: schema-valid, wired together, and in step with the CLI.

The Compose Specification schema is vendored in tests/unit/data (see the README there), so the
check runs offline. Compose validates after interpolation, so the tests interpolate first, with
the same ${NAME:-default} rules, for an empty environment and for one with every value set.
"""

from __future__ import annotations

import http.server
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema  # type: ignore[import-untyped]
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = Path(__file__).resolve().parent / "data" / "compose-spec.json"
REHEARSAL = ROOT / "docker-compose.yml"
LIVE = ROOT / "docker-compose.live.yml"
ENV_EXAMPLE = ROOT / ".env.example"
COMPOSE_FILES = [REHEARSAL, LIVE]

# The operator contract's environment settings (shared cli-contract.md).
CONTRACT_ENV = {
    "DATABASE_URL", "API_BASE_URL", "TARGET_API_KEY", "STREAM_TOKEN", "INGEST_WORKERS",
    "INGEST_PAGE_SIZE", "LOG_FORMAT",
}


# --- interpolation -----------------------------------------------------------------------------


class MissingVariable(Exception):
    """A ${NAME:?message} whose variable is unset; Compose refuses the file with the message."""


_REFERENCE = re.compile(
    r"\$(?:(?P<escaped>\$)|\{(?P<braced>[^}]*)\}|(?P<named>[A-Za-z_][A-Za-z0-9_]*))"
)
_BRACED = re.compile(r"(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>.*))?", re.S)


def interpolate_text(text: str, env: dict[str, str], seen: set[str]) -> str:
    """Compose's variable substitution for one string (without nesting, which we do not use)."""

    def one(match: re.Match[str]) -> str:
        if match.group("escaped"):
            return "$"
        if match.group("named"):
            seen.add(match.group("named"))
            return env.get(match.group("named"), "")
        braced = _BRACED.fullmatch(match.group("braced"))
        assert braced, f"unsupported substitution {match.group(0)!r}"
        name, op, arg = braced.group("name"), braced.group("op"), braced.group("arg") or ""
        assert "$" not in arg, f"nested substitution in {match.group(0)!r}"
        seen.add(name)
        value = env.get(name)
        # With a colon, an empty value counts as unset; without one, only absence does.
        is_set = bool(value) if op and op.startswith(":") else value is not None
        if op is None:
            return value or ""
        if op.endswith("-"):
            return value if is_set and value is not None else arg
        if op.endswith("?"):
            if not is_set or value is None:
                raise MissingVariable(f"{name}: {arg}")
            return value
        return arg if is_set else ""  # "+" and ":+"

    return _REFERENCE.sub(one, text)


def interpolate(node: Any, env: dict[str, str], seen: set[str]) -> Any:
    if isinstance(node, str):
        return interpolate_text(node, env, seen)
    if isinstance(node, list):
        return [interpolate(item, env, seen) for item in node]
    if isinstance(node, dict):
        return {key: interpolate(value, env, seen) for key, value in node.items()}
    return node


def load(path: Path, env: dict[str, str]) -> dict[str, Any]:
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(raw, dict)
    result = interpolate(raw, env, set())
    assert isinstance(result, dict)
    return result


def referenced_variables(path: Path) -> set[str]:
    seen: set[str] = set()
    interpolate(yaml.safe_load(path.read_text(encoding="utf-8")), FULL_ENV, seen)
    return seen


# Every value a user might set, all different from the defaults.
FULL_ENV = {
    "POSTGRES_USER": "ops", "POSTGRES_PASSWORD": "pw-1", "POSTGRES_DB": "events",
    "DATASYNC_TAG": "test", "API_BASE_URL": "https://api.example.test/api/v1",
    "TARGET_API_KEY": "key-1", "STREAM_TOKEN": "tok-1", "INGEST_WORKERS": "4",
    "INGEST_PAGE_SIZE": "1000", "LOG_FORMAT": "text", "MOCK_EVENTS": "1000", "MOCK_SEED": "7",
    "MOCK_API_KEY": "key-1", "MOCK_RATE_LIMIT": "20", "MOCK_LATENCY_MS": "5", "MOCK_P5XX": "0.1",
}
LIVE_MINIMUM = {"API_BASE_URL": "https://api.example.test/api/v1", "TARGET_API_KEY": "key-1"}

ENVIRONMENTS = {
    (REHEARSAL, "empty"): {},
    (REHEARSAL, "full"): FULL_ENV,
    (LIVE, "minimum"): LIVE_MINIMUM,
    (LIVE, "full"): FULL_ENV,
}


def test_interpolation_follows_compose_rules() -> None:
    seen: set[str] = set()
    env = {"SET": "x", "EMPTY": ""}
    assert interpolate_text("${SET:-d} ${EMPTY:-d} ${EMPTY-d} ${UNSET-d} $$x $SET", env, seen) == (
        "x d  d $x x"
    )
    assert interpolate_text("${SET:+alt}|${EMPTY:+alt}|${EMPTY+alt}", env, seen) == "alt||alt"
    with pytest.raises(MissingVariable, match="say why"):
        interpolate_text("${EMPTY:?say why}", env, seen)
    assert seen == {"SET", "EMPTY", "UNSET"}


# --- schema ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def validator() -> jsonschema.protocols.Validator:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    assert "draft-07" in schema["$schema"], "the vendored schema changed its JSON Schema draft"
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


@pytest.mark.parametrize(("path", "label"), list(ENVIRONMENTS), ids=lambda v: getattr(v, "name", v))
def test_compose_file_is_valid_against_the_compose_specification(
    validator: jsonschema.protocols.Validator, path: Path, label: str
) -> None:
    errors = sorted(validator.iter_errors(load(path, ENVIRONMENTS[(path, label)])), key=str)
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors)


@pytest.mark.parametrize(
    "mutation",
    [
        lambda doc: doc["services"]["ingestion"].update(restart_policy="always"),
        lambda doc: doc["services"]["ingestion"]["depends_on"]["postgres"].update(
            condition="healthy"
        ),
        lambda doc: doc["services"]["postgres"]["healthcheck"].update(test=42),
    ],
    ids=["unknown-key", "bad-condition", "bad-healthcheck"],
)
def test_schema_rejects_a_broken_file(
    validator: jsonschema.protocols.Validator, mutation: Any
) -> None:
    # Guards the test above against a schema that accepts anything.
    doc = load(REHEARSAL, {})
    mutation(doc)
    assert list(validator.iter_errors(doc))


def test_vendored_schema_keeps_its_license_and_notice() -> None:
    data = SCHEMA.parent
    assert "Apache License" in (data / "compose-spec.LICENSE").read_text(encoding="utf-8")
    assert "Compose Specification" in (data / "compose-spec.NOTICE").read_text(encoding="utf-8")


# --- what the rehearsal needs ------------------------------------------------------------------


def command_of(service: dict[str, Any]) -> list[str]:
    command = service["command"]
    assert isinstance(command, list), "use the list form of command:"
    return [str(word) for word in command]


def flag(command: list[str], name: str) -> str:
    return command[command.index(name) + 1]


def datasync_services(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Services that run the project's image."""
    return {
        name: service
        for name, service in doc["services"].items()
        if service.get("build", {}).get("context") == "."
    }


@pytest.mark.parametrize("env", [{}, FULL_ENV], ids=["defaults", "configured"])
def test_rehearsal_services_are_wired_together(env: dict[str, str]) -> None:
    doc = load(REHEARSAL, env)
    services = doc["services"]
    postgres, mock, ingestion = services["postgres"], services["mock-api"], services["ingestion"]

    assert postgres["image"] == "postgres:16"
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])
    volume, _, mount = postgres["volumes"][0].partition(":")
    assert volume in doc["volumes"] and mount == "/var/lib/postgresql/data"

    assert ingestion["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert ingestion["depends_on"]["mock-api"]["condition"] == "service_healthy"
    assert ingestion["restart"].startswith("on-failure")
    assert command_of(ingestion) == ["ingest"]
    environment = ingestion["environment"]
    assert {"DATABASE_URL", "API_BASE_URL", "TARGET_API_KEY", "STREAM_TOKEN"} <= set(environment)

    dsn = urlsplit(environment["DATABASE_URL"])
    assert dsn.hostname == "postgres" and dsn.port == 5432
    assert dsn.username == postgres["environment"]["POSTGRES_USER"]
    assert dsn.password == postgres["environment"]["POSTGRES_PASSWORD"]
    assert dsn.path == "/" + postgres["environment"]["POSTGRES_DB"]

    mock_command = command_of(mock)
    assert mock_command[0] == "mock-api" and flag(mock_command, "--host") == "0.0.0.0"
    assert "healthcheck" in mock


def test_rehearsal_defaults_point_at_the_mock_without_any_key() -> None:
    doc = load(REHEARSAL, {})
    services = doc["services"]
    environment = services["ingestion"]["environment"]
    api = urlsplit(environment["API_BASE_URL"])
    assert api.hostname == "mock-api"
    assert api.port == int(flag(command_of(services["mock-api"]), "--port"))
    assert api.path == "/api/v1"
    assert environment["TARGET_API_KEY"], "the simulator needs a non-empty key"
    assert services["mock-api"]["environment"]["MOCK_API_KEY"] == ""  # so it accepts that key


def test_rehearsal_ends_with_verify_after_a_successful_ingest() -> None:
    verify = load(REHEARSAL, {})["services"]["verify"]
    assert command_of(verify) == ["verify"]
    assert verify["depends_on"]["ingestion"]["condition"] == "service_completed_successfully"


def test_settings_pass_through_to_the_job() -> None:
    environment = load(REHEARSAL, FULL_ENV)["services"]["ingestion"]["environment"]
    for name in CONTRACT_ENV - {"DATABASE_URL"}:
        assert environment[name] == FULL_ENV[name], name


def test_live_file_needs_url_and_key_and_runs_no_simulator() -> None:
    for missing in LIVE_MINIMUM:
        env = {k: v for k, v in LIVE_MINIMUM.items() if k != missing}
        with pytest.raises(MissingVariable, match=missing):
            load(LIVE, env)
    doc = load(LIVE, LIVE_MINIMUM)
    assert "mock-api" not in doc["services"]
    ingestion = doc["services"]["ingestion"]
    assert ingestion["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    assert ingestion["environment"]["API_BASE_URL"] == LIVE_MINIMUM["API_BASE_URL"]


def test_live_and_rehearsal_share_the_database_and_job_setup() -> None:
    rehearsal, live = load(REHEARSAL, FULL_ENV), load(LIVE, FULL_ENV)
    assert rehearsal["services"]["postgres"] == live["services"]["postgres"]
    assert rehearsal["volumes"] == live["volumes"]
    assert rehearsal["name"] != live["name"], "live data must not land in the rehearsal volume"
    job_r, job_l = rehearsal["services"]["ingestion"], live["services"]["ingestion"]
    for key in ("build", "image", "init", "command", "environment", "restart"):
        assert job_r[key] == job_l[key], key


# --- the simulator's healthcheck ---------------------------------------------------------------


class _Answer(http.server.BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        self.send_response(self.status)
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def answering_server() -> Iterator[tuple[int, type[_Answer]]]:
    handler = type("Answer", (_Answer,), {})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], handler
    finally:
        server.shutdown()
        server.server_close()


def healthcheck_probe() -> tuple[str, int]:
    """The mock-api probe's Python source and the port it targets (checked against --port)."""
    mock = load(REHEARSAL, {})["services"]["mock-api"]
    test = mock["healthcheck"]["test"]
    assert test[:3] == ["CMD", "python", "-c"], "slim images have python, not curl"
    source = test[3]
    match = re.search(r"http://127\.0\.0\.1:(\d+)(/[^\"']*)", source)
    assert match, "the probe must target the simulator inside its own container"
    assert match.group(2) == "/api/v1"
    assert int(match.group(1)) == int(flag(command_of(mock), "--port"))
    return source, int(match.group(1))


def run_probe(port: int) -> int:
    source, own_port = healthcheck_probe()
    source = source.replace(f"127.0.0.1:{own_port}", f"127.0.0.1:{port}")
    return subprocess.run([sys.executable, "-c", source], timeout=30).returncode


@pytest.mark.parametrize("status", [200, 401, 404])
def test_probe_passes_when_the_simulator_answers(
    answering_server: tuple[int, type[_Answer]], status: int
) -> None:
    port, handler = answering_server
    handler.status = status
    assert run_probe(port) == 0


def test_probe_fails_when_nothing_listens() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    assert run_probe(port) == 1


# --- in step with the CLI ----------------------------------------------------------------------


def cli_envvars() -> dict[str, set[str]]:
    """Environment variables each datasync command reads, from the CLI's own definitions."""
    from typer.main import get_command

    from datasync_cli.cli.app import app

    group: Any = get_command(app)
    out: dict[str, set[str]] = {}
    for name, command in group.commands.items():
        names: set[str] = set()
        for param in command.params:
            envvar = param.envvar
            names.update([envvar] if isinstance(envvar, str) else envvar or [])
        out[name] = names
    return out


def test_every_variable_a_service_gets_is_read_by_its_command() -> None:
    envvars = cli_envvars()
    for path in COMPOSE_FILES:
        for name, service in datasync_services(load(path, FULL_ENV)).items():
            command = command_of(service)[0]
            unknown = set(service.get("environment", {})) - envvars[command]
            assert not unknown, f"{path.name}: {name} sets {unknown}, unread by {command}"


def test_job_receives_every_setting_of_the_contract() -> None:
    assert cli_envvars()["ingest"] >= CONTRACT_ENV, "the CLI no longer reads a contract setting"
    for path in COMPOSE_FILES:
        environment = load(path, FULL_ENV)["services"]["ingestion"]["environment"]
        assert set(environment) == CONTRACT_ENV, path.name


def installed_script(name: str) -> str:
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    found = shutil.which(name, path=path)
    assert found, f"console script {name!r} is not installed: pip install -e '.[dev]'"
    return found


def _service_commands() -> list[tuple[str, list[str]]]:
    out: list[tuple[str, list[str]]] = []
    for path in COMPOSE_FILES:
        env = LIVE_MINIMUM if path == LIVE else {}
        for name, service in datasync_services(load(path, env)).items():
            out.append((f"{path.name}:{name}", command_of(service)))
    return out


@pytest.mark.parametrize(("where", "command"), _service_commands(), ids=lambda v: str(v))
def test_service_command_line_parses(where: str, command: list[str], tmp_path: Path) -> None:
    # Click rejects unknown options before it prints help, so this checks every flag name.
    result = subprocess.run(
        [installed_script("datasync"), *command, "--help"],
        capture_output=True, text=True, timeout=60, cwd=tmp_path,
        env={"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), "LANG": "C.UTF-8"},
    )
    assert result.returncode == 0, f"{where}: {result.stderr}"
    assert "Usage:" in result.stdout


def test_empty_compose_values_count_as_unset(tmp_path: Path) -> None:
    # The compose files pass `${INGEST_WORKERS:-}` and friends; an empty value must mean "use the
    # default", not "parse the empty string". Without an API URL, ingest stops at configuration.
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), "LANG": "C.UTF-8"}
    env.update({name: "" for name in CONTRACT_ENV - {"DATABASE_URL"}})
    env["DATABASE_URL"] = "postgresql://postgres:pw-secret@postgres:5432/ingestion"
    result = subprocess.run(
        [installed_script("datasync"), "ingest"],
        capture_output=True, text=True, timeout=60, cwd=tmp_path, env=env, stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 2, result.stderr
    assert "API_BASE_URL" in result.stderr
    assert "Invalid value" not in result.stderr
    assert "pw-secret" not in result.stdout + result.stderr


# --- .env.example -------------------------------------------------------------------------------


def example_settings() -> dict[str, str]:
    """NAME -> value for every `NAME=value` line, commented out or not."""
    out: dict[str, str] = {}
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        match = re.fullmatch(r"#?\s*([A-Z][A-Z0-9_]*)=(.*)", line.strip())
        if match:
            out[match.group(1)] = match.group(2)
    return out


def test_env_example_lists_every_setting() -> None:
    listed = set(example_settings())
    assert listed >= CONTRACT_ENV
    for path in COMPOSE_FILES:
        assert referenced_variables(path) <= listed, path.name


def test_env_example_lists_nothing_unused() -> None:
    used = set().union(*(referenced_variables(p) for p in COMPOSE_FILES))
    used |= set().union(*cli_envvars().values())
    assert set(example_settings()) <= used


def test_env_example_changes_nothing_and_holds_no_secret() -> None:
    settings = example_settings()
    active = [
        line for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines()
        if re.match(r"[A-Z][A-Z0-9_]*=", line)
    ]
    assert active == [], "a copied .env.example must not change the rehearsal"
    for secret in ("TARGET_API_KEY", "STREAM_TOKEN", "MOCK_API_KEY"):
        assert settings[secret] == "", secret
