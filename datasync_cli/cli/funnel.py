"""The one error funnel: every command's errors become one line on stderr and an exit status.

`@command` wraps a command function: it adds `--debug` to its options, scrubs the command's
secrets from anything it prints, and maps exceptions to the exit codes in errors.ExitCode.
"""

from __future__ import annotations

import functools
import inspect
import traceback
from collections.abc import Callable
from typing import Annotated, Any, NoReturn

import typer

from ..errors import DatasyncError, ExitCode
from ..redact import Scrubber, secret_values

DebugOption = Annotated[
    bool, typer.Option("--debug", help="Show a traceback with any error.")
]


class State:
    """Process-wide flags set by the top-level callback (`datasync --debug COMMAND`)."""

    debug = False


def fail(message: str, code: int, scrub: Scrubber) -> NoReturn:
    """Print one line to stderr and exit with `code`."""
    typer.echo(scrub(f"error: {message}"), err=True)
    raise typer.Exit(code)


def command(fn: Callable[..., None]) -> Callable[..., None]:
    """Wrap a command function with `--debug` and the error funnel."""
    signature = inspect.signature(fn, eval_str=True)

    @functools.wraps(fn)
    def wrapper(*args: Any, debug: bool = False, **kwargs: Any) -> None:
        debug = debug or State.debug
        scrub = Scrubber(
            secret_values(
                kwargs.get("api_key"),
                kwargs.get("token"),
                urls=(kwargs.get("database_url"), kwargs.get("api_url")),
            )
        )
        try:
            fn(*args, **kwargs)
        except (typer.Exit, typer.Abort, typer.TyperException):
            raise  # Typer's own exits and usage errors print and exit by themselves
        except DatasyncError as exc:
            if debug:
                traceback.print_exc()
            fail(str(exc), exc.exit_code, scrub)
        except KeyboardInterrupt:
            fail("interrupted", ExitCode.SIGINT, scrub)
        except Exception as exc:  # the funnel of last resort: never a bare traceback
            if debug:
                traceback.print_exc()
            hint = "" if debug else " (rerun with --debug for a traceback)"
            fail(f"unexpected {type(exc).__name__}: {exc}{hint}", ExitCode.FAILED, scrub)

    debug_param = inspect.Parameter(
        "debug", inspect.Parameter.KEYWORD_ONLY, default=False, annotation=DebugOption
    )
    params = [p for p in signature.parameters.values() if p.name != "debug"]
    wrapper.__signature__ = signature.replace(parameters=[*params, debug_param])  # type: ignore[attr-defined]
    wrapper.__annotations__ = {
        **{p.name: p.annotation for p in params},
        "debug": DebugOption,
        "return": None,
    }
    return wrapper
