"""The README's command list and settings table stay in step with the CLI itself."""

from __future__ import annotations

import ast
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


# --- the runbook (docs/operations.md) against the code --------------------------------------

DOCS = Path(__file__).resolve().parents[2] / "docs"
PACKAGE = Path(__file__).resolve().parents[2] / "datasync_cli"
RUNBOOK = (DOCS / "operations.md").read_text(encoding="utf-8")
# What joins two messages of the code on one line: the error funnel's prefix, verify's verdict.
PREFIXES = ("error: ", "MISMATCH: ", "ok: ", "in progress: ", "verify ok: ")
_PRINTF = re.compile(r"%[-#0 +]*\d*(?:\.\d+)?[sdfr]")


def _pieces(node: ast.AST) -> list[str | None] | None:
    """A string expression as literal pieces and holes (None), or None if it is not one."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.JoinedStr):
        return [v.value if isinstance(v, ast.Constant) else None for v in node.values]  # type: ignore[misc]
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _pieces(node.left), _pieces(node.right)
        if left is None and right is None:
            return None
        return (left or [None]) + (right or [None])
    return None


def _templates() -> list[re.Pattern[str]]:
    """Every message the package can print, as a pattern whose holes match any text. Short
    ones ("error: {message}") are left out: they would match anything."""
    found = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            pieces = _pieces(node)
            if pieces is None:
                continue
            literal = "".join(p for p in pieces if p)
            if sum(c.isalpha() for c in literal) < 10:
                continue
            parts = []
            for piece in pieces:
                if piece is None:
                    parts.append("(.+?)")
                else:
                    parts.append("(.+?)".join(re.escape(x) for x in _PRINTF.split(piece)))
            found.append(re.compile("".join(parts), re.S))
    return found


TEMPLATES = _templates()


def _from_code(text: str) -> bool:
    if any(t.fullmatch(text) for t in TEMPLATES):
        return True
    for prefix in PREFIXES:
        if text.startswith(prefix):
            return _from_code(text[len(prefix):])
    # "message (hint)", as DatasyncError prints itself: each part a message of its own.
    if text.endswith(")"):
        for split in (m.start() for m in re.finditer(r" \(", text)):
            message, hint = text[:split], text[split + 2 : -1]
            if any(t.fullmatch(message) for t in TEMPLATES) and _from_code(hint):
                return True
    return False


def _runbook_messages() -> list[str]:
    """Messages quoted in the "what the operator sees" column of the runbook's tables."""
    section = RUNBOOK.split("## What happens when", 1)[1].split("\n## ", 1)[0]
    quoted = []
    for row in re.findall(r"^\|(?!---)(.+)\|$", section, re.M):
        cells = [c.strip() for c in row.split(" | ")]
        if len(cells) < 3 or cells[0].startswith("scenario"):
            continue
        for text in re.findall(r"`([^`]+)`", cells[2]):
            if len(text.split()) >= 3 and not text.lstrip().startswith(("{", '"')):
                quoted.append(text)
    return quoted


def test_the_runbook_quotes_messages() -> None:
    assert len(_runbook_messages()) >= 15


@pytest.mark.parametrize("message", _runbook_messages())
def test_every_message_the_runbook_quotes_is_one_the_code_prints(message: str) -> None:
    assert _from_code(message), (
        f"docs/operations.md quotes a message no code prints (holes may stand for any "
        f"text, but the literal words must be the code's): {message!r}"
    )


JARGON = ("victim", "steal", "stolen", "donor")


def test_messages_use_plain_words() -> None:
    """What an operator reads names things as the docs do, not by the planner's inner names."""
    for template in TEMPLATES:
        words = set(re.findall(r"[a-z]+", template.pattern.lower()))
        assert not words & set(JARGON), template.pattern
