"""What the operator is told as it happens: token changes and endpoint switches, each a line in
the display and a JSON line with an `event` field."""

from __future__ import annotations

from typing import Any

from ..display import Reporter, Snapshot, fmt_duration
from ..source import SourceHealth
from .metrics import EndpointSwitch


def token_event(reporter: Reporter, name: str, fields: dict[str, Any]) -> None:
    """A change of stream token, in words (source/token.py says what happened)."""
    if name == "token_obtained":
        message = f"stream token obtained; it expires in {fmt_duration(fields['expires_in_s'])}"
    elif name == "token_renewed":
        message = f"stream token renewed; the new one expires in " \
                  f"{fmt_duration(fields['expires_in_s'])}"
    elif fields.get("refused") == "request":
        code = fields.get("code") or "no code given"
        then = ("the current one is used until it expires" if fields.get("still_held")
                else "reading the standard endpoint")
        message = f"the service would not issue a stream token ({code}); {then}"
    else:
        code = fields.get("code") or "no code given"
        then = "asking for a new one" if fields.get("renewable") else "reading without it"
        message = f"the service refused the stream token ({code}); {then}"
    level = "warning" if name == "token_refused" else "info"
    reporter.log(message, level=level, event=name, **fields)


def endpoint_switch(
    reporter: Reporter, switch: EndpointSwitch, health: SourceHealth, snap: Snapshot,
    page_size: int,
) -> None:
    """Announce a switch with its reason and what to expect now."""
    if switch.target == "standard":
        reason = health.token_problem or "no stream token to use"
        per_s = (health.standard_requests_per_s or 0) * page_size
        pace = f"about {per_s * 60:,.0f} events/min" if per_s else "rate-limited"
    else:
        reason = "a stream token is available"
        pace = "the fast path"
    message = (
        f"switched from the {switch.source} to the {switch.target} endpoint ({reason}); "
        f"{switch.target} endpoint: {pace}, ETA {fmt_duration(snap.eta_s)}"
    )
    reporter.log(
        message,
        level="warning" if switch.target == "standard" else "info",
        event="endpoint_switch",
        **{"from": switch.source, "to": switch.target},
        reason=reason,
        at_s=round(switch.at_s, 1),
        eta_s=None if snap.eta_s is None else round(snap.eta_s),
    )
