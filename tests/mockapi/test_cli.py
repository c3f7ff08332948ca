"""`datasync mock-api`: every knob is a documented flag with an environment variable."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from dataclasses import fields

import requests
import typer
from typer.testing import CliRunner

from datasync_cli.cli import mock_api
from datasync_cli.mockapi import MockConfig

_APP_SCRIPT = (
    "import typer\n"
    "from datasync_cli.cli import mock_api\n"
    "app = typer.Typer()\n"
    "@app.callback()\n"
    "def root() -> None: pass\n"
    "app.command('mock-api')(mock_api.mock_api)\n"
    "app()\n"
)


def _app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def root() -> None:
        pass

    app.command("mock-api")(mock_api.mock_api)
    return app


def _flag(name: str) -> str:
    return "--p5xx" if name == "p5xx" else "--" + name.replace("_", "-")


def test_every_knob_has_a_flag_help_and_env_var() -> None:
    result = CliRunner().invoke(_app(), ["mock-api", "--help"], env={"COLUMNS": "200"},
                                terminal_width=200)
    assert result.exit_code == 0
    text = re.sub(r"\x1b\[[0-9;]*m", "", result.output)
    for field in fields(MockConfig):
        assert _flag(field.name) in text, field.name
        assert "MOCK_" + field.name.upper() in text, field.name


def test_invalid_knob_is_a_usage_error() -> None:
    result = CliRunner().invoke(_app(), ["mock-api", "--early-end", "1.5"])
    assert result.exit_code == 2
    assert "early_end" in result.output


def test_serves_until_sigterm() -> None:
    env = {**os.environ, "MOCK_EVENTS": "500", "MOCK_PORT": "0", "MOCK_API_KEY": "cli-secret"}
    proc = subprocess.Popen([sys.executable, "-c", _APP_SCRIPT, "mock-api"], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        url = re.search(r"http://\S+/api/v1", line)
        assert url, line
        assert "cli-secret" not in line
        r = requests.get(url.group(0) + "/events", headers={"X-API-Key": "cli-secret"}, timeout=5)
        assert r.status_code == 200 and r.json()["meta"]["total"] == 500
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
