"""The feed's pace once a throttle has shown itself: set at refusals, crept up while clean."""

from __future__ import annotations

from .feedrate import AcceptedRate

QUICK_BACKOFF = 0.6
SOON_S = 30.0  # a second refusal this soon after the first, with nothing measured: far too fast
STEADY_MAX_STEP = 1.05  # creeping, once measured: at most this much per round trip
CREEP_CAP = 1.06  # and at most this far over the measurement
CLEAN_LIFT = 1.03  # a clean pace lifts a measurement at most this much
CLOSING = 3.0  # the run's last round trips, counted in requests in flight
CLOSING_SHARE = 0.99  # of the measured rate, then


class Pace:
    """Requests per second for the feed, None until the first refusal.

    The first refusal sets the pace its request went at, no faster than Retry-After allows.
    From then on `AcceptedRate` measures what the service accepts between refusals, and each
    refusal sets the pace `over` that: a 429 takes no token, so a client slightly above the
    refill rate loses only the refused request's own slot, where one below it loses the
    difference for good. Refused twice in a row within two round trips of setting the pace
    from the measurement, the measurement no longer holds (the service lowered its rate): back
    off and measure afresh. While nothing is refused for as long as the measurement took, the
    pace creeps up once per round trip, in steps that double, to at most `CREEP_CAP` over the
    measurement (which is a few per cent off at worst); before anything is measured it does so
    from the first clean round trip, without a cap. Not thread-safe on its own.
    """

    def __init__(
        self,
        *,
        over: float,
        backoff: float,
        probe_increase: float,
        steady_increase: float,
        quiet_s: float,
        max_step: float,
        min_rate: float,
    ) -> None:
        self._over = over
        self._backoff = backoff
        self._steps = (probe_increase - 1.0, steady_increase - 1.0)
        self._quiet_s = quiet_s
        self._max_step = max_step
        self._min_rate = min_rate
        self.measure = AcceptedRate()
        self.rate: float | None = None
        self.run_left: float | None = None  # requests the whole run still needs, if known
        self._last_change = self._last_cut = self._last_throttled = float("-inf")
        self._clean_rounds = self._contradicted = 0
        self._held_back = False
        self._blind = False  # the pace was set before anything was measured
        self._cap_base, self._cap_raised = 0.0, float("-inf")  # see _creep_cap
        self._clean = 0.0  # a pace held without a refusal for a quiet stretch, since the last cut

    def current(self, round_trip: float) -> float:
        """The pace to send at now (the rate is set). In the run's last round trips it stays
        under the measured rate: a refusal there is not overlapped by other work and costs a
        whole round trip, where a pace a little low costs a fraction of a request."""
        assert self.rate is not None
        measured, left = self.measure.estimate, self.run_left
        if measured is None or left is None or left > CLOSING * self.rate * round_trip:
            return self.rate
        return min(self.rate, measured * CLOSING_SHARE)

    def held_back(self) -> None:
        """A reader waited for the pace: it, not the readers, sets how fast requests go."""
        self._held_back = True

    def refused(
        self, now: float, sent_at: float | None, retry_after: float, round_trip: float,
        first_pace: float,
    ) -> None:
        """A 429 (already told to `measure`) for a request sent at `sent_at`, which went at
        `first_pace` if no pace was set yet. A request sent before the last change went at a
        pace already set again; it can only show the pace is now too low."""
        stale = sent_at is not None and sent_at < self._last_cut
        measured = self.measure.estimate
        if self.rate is None:
            new = self._first(first_pace, retry_after)
        elif stale:
            if measured is None or self._target(measured) <= self.rate:
                return
            new = self._target(measured)  # the service accepts more than we send: catch up
        elif measured is not None and not self._contradicts(now, round_trip):
            # A pace that stayed clean for a quiet stretch was about right: a measurement a
            # little under it is a few per cent off, not a reason to send less.
            target = self._target(measured)
            new = max(target, min(self._clean, target * CLEAN_LIFT))
        else:
            # Refused again before anything was measured (or what was measured no longer
            # holds): far too fast if soon after the opening's refusal, else a little.
            soon = now - self._last_throttled < SOON_S and self._contradicted == 0
            new = self.rate * (QUICK_BACKOFF if soon and measured is None else self._backoff)
        self.rate = max(self._min_rate, new)
        self._blind = self.measure.estimate is None
        self._last_throttled = now
        self._cut(now)

    def measured(self, now: float) -> None:
        """A measurement completed after the pace was set without one: use it."""
        estimate = self.measure.estimate
        if self._blind and estimate is not None and self.rate is not None:
            self.rate = max(self._min_rate, self._target(estimate))
            self._blind = False
            self._cut(now)

    def slow_down(self, now: float, round_trip: float) -> bool:
        """Latency rose sharply: back off, at most once per round trip."""
        if self.rate is None or now - self._last_change < round_trip:
            return False
        self.rate = max(self._min_rate, self.rate * self._backoff)
        self._cut(now)
        return True

    def maybe_increase(self, now: float, round_trip: float) -> None:
        """Creep up, once per round trip, if readers were held back and nothing was refused."""
        if self.rate is None or now - self._last_change < max(round_trip, 1.0):
            return
        if self._held_back:
            probing = self.measure.estimate is None
            quiet = min(self.measure.span_s, self._quiet_s)
            if probing or now - self._last_throttled > quiet:
                if not probing and self._clean_rounds == 0:
                    self._clean = self.rate  # held since the last change, clean all along
                step = self._steps[0 if probing else 1] * 2.0**self._clean_rounds
                top = self._max_step if probing else STEADY_MAX_STEP
                self.rate = min(self.rate * min(1.0 + step, top), self._creep_cap(now, quiet))
                self._clean_rounds += 1
        self._changed(now)

    def _target(self, measured: float) -> float:
        """A little over the measured rate: a measurement of a few dozen requests between
        refusals is a few per cent off either way, and under the rate loses the difference."""
        return measured * self._over

    def _creep_cap(self, now: float, quiet: float) -> float:
        """How far creeping may go: `CREEP_CAP` over the measurement (a measurement a few per
        cent off is found by then), or over the pace held clean at that cap for another quiet
        stretch (a measurement further off)."""
        assert self.rate is not None
        estimate = self.measure.estimate
        if estimate is None:
            return float("inf")
        if now - self._cap_raised > quiet:
            self._cap_base, self._cap_raised = max(self._cap_base, self.rate), now
        return max(self.rate, CREEP_CAP * max(estimate, self._cap_base))

    def _first(self, pace: float, retry_after: float) -> float:
        """The pace the refused request went at, no faster than Retry-After allows: a bucket
        that refuses says how long until it earns the next request, at most one interval of
        its rate (whole seconds are rounded up)."""
        pace = pace if pace > 0 else 1.0 / retry_after
        shortest = retry_after - 1.0 if float(retry_after).is_integer() else retry_after
        return min(pace, 1.0 / shortest) if shortest > 0 else pace

    def _contradicts(self, now: float, round_trip: float) -> bool:
        """Whether a refusal this soon after the pace was set from the measurement says the
        measurement is wrong (the second time in a row); if so, it is forgotten."""
        if now - self._last_cut >= 2.0 * round_trip:
            self._contradicted = 0
            return False
        self._contradicted += 1
        if self._contradicted < 2:
            return False
        self.measure.restart()
        return True

    def _cut(self, now: float) -> None:
        self._last_cut = self._cap_raised = now
        self._cap_base = self._clean = 0.0
        self._clean_rounds = 0
        self._changed(now)

    def _changed(self, now: float) -> None:
        self._last_change = now
        self._held_back = False
