"""The README's command list and settings table stay in step with the CLI itself."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.main import get_command
from typer.testing import CliRunner

from datasync_cli.cli.app import app

README = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
runner = CliRunner()


def _section(title: str) -> str:
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## )", README, re.S | re.M)
    assert match, f"README has no '## {title}' section"
    return match.group(1)


def _cli_commands() -> set[str]:
    group = get_command(app)
    return set(group.commands)  # type: ignore[attr-defined]


def test_every_command_is_in_the_readme_and_every_listed_command_exists() -> None:
    listed = set(re.findall(r"^\| `datasync ([a-z-]+)", _section("Commands"), re.M))
    assert listed == _cli_commands()


@pytest.mark.parametrize("command", sorted(_cli_commands()))
def test_each_command_has_help(command: str) -> None:
    result = runner.invoke(app, [command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output


def _settings_rows() -> list[tuple[str, str]]:
    rows = re.findall(r"^\| `(--[a-z-]+)` \| (`[A-Z_]+`)? ?\|", _section("Settings"), re.M)
    assert rows, "no rows found in the settings table"
    return [(flag, env.strip("`")) for flag, env in rows]


@pytest.mark.parametrize(("flag", "env"), _settings_rows())
def test_settings_table_flags_exist_on_ingest(flag: str, env: str) -> None:
    result = runner.invoke(app, ["ingest", "--help"], env={"COLUMNS": "200"})
    assert flag in result.output
    if env:
        assert env in result.output, f"{flag} does not say it reads {env}"


def test_flags_of_ingest_help_are_all_documented() -> None:
    result = runner.invoke(app, ["ingest", "--help"], env={"COLUMNS": "200"})
    flags = set(re.findall(r"(--[a-z][a-z-]+)", result.output)) - {"--help"}
    documented = {flag for flag, _ in _settings_rows()}
    assert flags <= documented, f"undocumented ingest flags: {sorted(flags - documented)}"


def test_exit_codes_table_lists_what_the_errors_use() -> None:
    from datasync_cli import errors

    codes = {
        cls.exit_code
        for cls in vars(errors).values()
        if isinstance(cls, type) and issubclass(cls, errors.DatasyncError)
    }
    table = _section("Exit codes")
    for code in codes | {0, 1, 130, 143}:
        assert re.search(rf"^\| {code} \|", table, re.M), f"exit code {code} is not documented"
