"""Help text in the plain style of Click-based tools, without Typer's internal names.

Typer prints a string `show_default` as `[default: (8)]`, the type of every parameter as
`<int>` or `<path>`, and a required argument as `{FILE}`. These classes keep Typer's parsing
and change only what help shows: `[default: 8]`, the metavar alone, `FILE`; the root command's
help ends with the exit codes as a list.
"""

from __future__ import annotations

from typing import Any

import typer.core

from ..errors import EXIT_CODE_MEANINGS

_Context = Any  # Typer's vendored click.Context; its module is private
# Options whose name and metavar are wider than this get their help on the next line, so the
# help column stays wide enough for the default DSN (51 characters) at 80 columns.
OPTION_COLUMN_MAX = 22


class _Option(typer.core.TyperOption):
    def _get_default_string(self, *, ctx: _Context, show_default_is_str: bool,
                            default_value: Any) -> str:
        if show_default_is_str:
            return str(self.show_default)
        return super()._get_default_string(
            ctx=ctx, show_default_is_str=show_default_is_str, default_value=default_value
        )


class _Argument(typer.core.TyperArgument):
    def _get_default_string(self, *, ctx: _Context, show_default_is_str: bool,
                            default_value: Any) -> str:
        if show_default_is_str:
            return str(self.show_default)
        return super()._get_default_string(
            ctx=ctx, show_default_is_str=show_default_is_str, default_value=default_value
        )

    def display_type_rich(self, ctx: _Context) -> str | None:
        return "" if self.metavar is not None else super().display_type_rich(ctx)

    def _usage_display_name(self) -> str:
        name = self.display_name_raw
        return name if self.required else f"[{name}]"


def _plain_params(params: list[Any]) -> None:
    for param in params:
        if type(param) is typer.core.TyperOption:
            param.__class__ = _Option
        elif type(param) is typer.core.TyperArgument:
            param.__class__ = _Argument


def _format_params(params: list[Any], ctx: _Context, formatter: Any) -> None:
    arguments: list[tuple[str, str]] = []
    options: list[tuple[str, str]] = []
    for param in params:
        record = param.get_help_record(ctx)
        if record is not None:
            (arguments if param.param_type_name == "argument" else options).append(record)
    for title, rows in (("Arguments", arguments), ("Options", options)):
        if rows:
            with formatter.section(title):
                formatter.write_dl(rows, col_max=OPTION_COLUMN_MAX)


class DatasyncCommand(typer.core.TyperCommand):
    """A command whose help reads like other command line tools'."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _plain_params(self.params)

    def format_options(self, ctx: _Context, formatter: Any) -> None:
        _format_params(self.get_params(ctx), ctx, formatter)


class DatasyncGroup(typer.core.TyperGroup):
    """The root command: plain help, ending with what each exit status means."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _plain_params(self.params)

    def format_options(self, ctx: _Context, formatter: Any) -> None:
        _format_params(self.get_params(ctx), ctx, formatter)
        self.format_commands(ctx, formatter)

    def format_epilog(self, ctx: _Context, formatter: Any) -> None:
        with formatter.section("Exit codes"):
            formatter.write_dl(
                [(str(int(code)), meaning) for code, meaning in EXIT_CODE_MEANINGS.items()]
            )
