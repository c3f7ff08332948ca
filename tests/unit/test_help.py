"""`--help` reads like other command line tools' at 80 and 160 columns: defaults as
`[default: ...]`, choices listed, metavars instead of type tags, the exit codes listed."""

from __future__ import annotations

import re

import pytest
from typer.main import get_command
from typer.testing import CliRunner

from datasync_cli.cli.app import app
from datasync_cli.errors import EXIT_CODE_MEANINGS
from datasync_cli.redact import redact_url
from datasync_cli.settings import DEFAULTS

COMMANDS = sorted(get_command(app).commands)  # type: ignore[attr-defined]
WIDTHS = ("80", "160")


def help_text(*args: str, columns: str = "80") -> str:
    result = CliRunner().invoke(app, [*args, "--help"], env={"COLUMNS": columns})
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.mark.parametrize("columns", WIDTHS)
@pytest.mark.parametrize("command", ["", *COMMANDS])
def test_help_has_no_type_tags_braces_or_parenthesised_defaults(
    command: str, columns: str
) -> None:
    text = help_text(*([command] if command else []), columns=columns)
    assert not re.search(r"<(str|bool|int|float|path|text)[^>]*>", text), text
    assert "[default: (" not in text and "default: (" not in text, text
    assert "{" not in text, text
    wide = [line for line in text.splitlines() if len(line) > int(columns)]
    assert not wide, wide


@pytest.mark.parametrize("columns", WIDTHS)
def test_the_default_dsn_is_shown_whole(columns: str) -> None:
    text = help_text("ingest", columns=columns)
    flat = " ".join(text.split())
    assert f"default: {redact_url(DEFAULTS.database_url)}]" in flat, text
    assert any(redact_url(DEFAULTS.database_url) in line for line in text.splitlines()), (
        "the DSN is broken across lines"
    )


def test_defaults_and_choices() -> None:
    flat = " ".join(help_text("ingest").split())
    assert f"default: {DEFAULTS.workers}]" in flat
    assert f"default: {DEFAULTS.page_size}]" in flat
    assert "--log-format [text|json]" in flat
    assert "default: text on a terminal, else json]" in flat


def test_usage_line_names_the_argument_plainly() -> None:
    assert "Usage: datasync export-ids [OPTIONS] FILE\n" in help_text("export-ids")


def test_root_help_lists_every_exit_code_on_its_own_line() -> None:
    text = help_text()
    section = text.split("Exit codes:\n", 1)[1]
    for code, meaning in EXIT_CODE_MEANINGS.items():
        first_words = " ".join(meaning.split()[:3])
        assert re.search(rf"^  {int(code)}\s+{re.escape(first_words)}", section, re.M), section


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_takes_debug(command: str) -> None:
    """The error funnel's hint says "rerun with --debug": every command must accept it."""
    assert "--debug" in help_text(command)
