"""The container test's own files (tests/containers) stay in step with the real ones.

`make container-test` runs the real docker-compose.yml; on machines without a registry it adds
tests/containers/compose.standin.yml, which may swap base images and nothing else. These checks
run offline with the unit tests; the container test itself needs an engine.
"""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
HERE = ROOT / "tests" / "containers"
REHEARSAL = ROOT / "docker-compose.yml"
OVERRIDE = HERE / "compose.standin.yml"
SCHEMA = Path(__file__).resolve().parent / "data" / "compose-spec.json"

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_container_compose import interpolate, referenced_variables  # noqa: E402

STANDIN_ENV = {
    "DATASYNC_STANDIN_PYTHON": "localhost/datasync-standin-python:x",
    "DATASYNC_STANDIN_POSTGRES": "localhost/datasync-standin-postgres:x",
}


def harness() -> ModuleType:
    spec = importlib.util.spec_from_file_location("container_test_run", HERE / "run.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def yaml_file(path: Path) -> dict[str, Any]:
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(doc, dict)
    return doc


def merge(base: Any, override: Any) -> Any:
    """Compose's merge of an override file, for the mappings used here."""
    if isinstance(base, dict) and isinstance(override, dict):
        out = dict(base)
        for key, value in override.items():
            out[key] = merge(base[key], value) if key in base else value
        return out
    return override


def test_override_swaps_base_images_and_nothing_else() -> None:
    base, override = yaml_file(REHEARSAL), yaml_file(OVERRIDE)
    assert set(override) == {"services"}
    assert set(override["services"]) <= set(base["services"])
    for name, service in override["services"].items():
        if name == "postgres":
            assert set(service) == {"image"}
            assert "DATASYNC_STANDIN_POSTGRES" in service["image"]
        else:
            assert "build" in base["services"][name], f"{name} does not build the image"
            assert set(service) == {"build"}
            assert set(service["build"]) == {"args"}
            assert set(service["build"]["args"]) == {"PYTHON_IMAGE"}
            assert "DATASYNC_STANDIN_PYTHON" in service["build"]["args"]["PYTHON_IMAGE"]
    # The build argument is the Dockerfile's own, with the official base as its default.
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.11-slim", dockerfile, re.M)


def test_rehearsal_with_the_override_is_valid_compose() -> None:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    validator = jsonschema.Draft7Validator(schema)
    merged = merge(yaml_file(REHEARSAL), yaml_file(OVERRIDE))
    doc = interpolate(merged, STANDIN_ENV, set())
    errors = sorted(validator.iter_errors(doc), key=str)
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors)
    assert doc["services"]["postgres"]["image"] == STANDIN_ENV["DATASYNC_STANDIN_POSTGRES"]
    # Everything else is the real file's: the job's wiring is untouched.
    assert doc["services"]["ingestion"]["depends_on"] == yaml_file(REHEARSAL)["services"][
        "ingestion"
    ]["depends_on"]


def test_harness_keeps_the_shell_and_env_file_out_of_the_rehearsal() -> None:
    # Every variable docker-compose.yml reads is taken out of the harness's environment, so a
    # developer's API_BASE_URL or TARGET_API_KEY cannot send the test to a real service.
    stripped = set(harness().COMPOSE_VARS)
    missing = referenced_variables(REHEARSAL) - stripped
    assert not missing, f"run.py's COMPOSE_VARS lacks {sorted(missing)}"


def test_podman_settings_select_runc_and_explicit_ulimits() -> None:
    tomllib = pytest.importorskip("tomllib")
    conf = tomllib.loads((HERE / "containers.conf").read_text(encoding="utf-8"))
    assert conf["engine"]["runtime"] == "runc"
    ulimits = set(conf["containers"]["default_ulimits"])
    assert {"nofile=20000:20000", "nproc=1000:1000"} <= ulimits


def test_ci_runs_the_container_test_after_the_suite() -> None:
    lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text("utf-8").splitlines()]
    suite = lines.index("make test")
    prepare = lines.index("if bash tests/containers/prepare.sh; then")
    container_test = lines.index("make container-test")
    assert suite < prepare < container_test
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert re.search(r"^container-test:.*\n\t\$\(PYTHON\) tests/containers/run\.py$", makefile,
                     re.M)
