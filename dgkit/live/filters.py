"""The One-Euro filter: low-latency smoothing of landmark tracks (Casiez, Roussel and Vogel, CHI 2012).

A moving average trades jitter for lag: strong enough to calm a still face, it trails behind a turning head.
The One-Euro filter adapts its cut-off frequency to the speed of the signal::

    dx_hat  = lowpass(dx/dt, cutoff=d_cutoff)                 # smoothed speed, per value
    cutoff  = min_cutoff + beta * |dx_hat|                    # slow signal: low cut-off, fast: high
    x_hat   = lowpass(x, cutoff)                              # alpha = 1 / (1 + 1 / (2 pi cutoff dt))

so a still face is smoothed hard (``min_cutoff`` Hz) and a moving one follows with little lag (``beta``).
Each array element is filtered independently; timestamps are seconds (any origin, increasing).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import InputError

__all__ = ["OneEuroFilter", "OneEuroParams", "parse_smoothing"]


@dataclass(frozen=True)
class OneEuroParams:
    """Parameters of :class:`OneEuroFilter`.

    Attributes:
        min_cutoff: cut-off frequency (Hz) at rest; lower = less jitter on a still face, more lag when it
            starts to move. Landmarks in 256-crop pixels: 1.0 is a good start.
        beta: how fast the cut-off rises with speed (per px/s); higher = less lag on fast motion.
        d_cutoff: cut-off (Hz) of the speed estimate itself.
    """

    min_cutoff: float = 1.0
    beta: float = 0.05
    d_cutoff: float = 1.0

    def __post_init__(self) -> None:
        for name in ("min_cutoff", "beta", "d_cutoff"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise InputError(f"One-Euro {name} must be a finite number >= 0, got {value!r}")
        if self.min_cutoff <= 0 or self.d_cutoff <= 0:
            raise InputError("One-Euro min_cutoff and d_cutoff must be > 0 (Hz)")


def _alpha(cutoff: np.ndarray | float, dt: float) -> np.ndarray | float:
    tau = 1.0 / (2.0 * math.pi * cutoff)
    return 1.0 / (1.0 + tau / dt)


class OneEuroFilter:
    """Smooth a stream of equally shaped arrays (e.g. ``(68,2)`` landmarks) given their timestamps.

    Example::

        f = OneEuroFilter(OneEuroParams(min_cutoff=1.0, beta=0.05))
        for t, lm in stream:              # t seconds, lm (68,2) crop px
            smooth = f(lm, t)             # same shape, float64
    """

    def __init__(self, params: OneEuroParams | None = None):
        self.params = params or OneEuroParams()
        self.reset()

    def reset(self) -> None:
        """Forget the past: the next sample passes through unchanged."""
        self._x: np.ndarray | None = None
        self._dx: np.ndarray | None = None
        self._t: float | None = None

    def __call__(self, x: np.ndarray, t: float) -> np.ndarray:
        """Filter one sample ``x`` taken at time ``t`` (seconds); returns a new float64 array of its shape."""
        x = np.asarray(x, dtype=np.float64)
        if self._x is None or self._x.shape != x.shape:
            self._x, self._dx, self._t = x.copy(), np.zeros_like(x), float(t)
            return x.copy()
        dt = float(t) - self._t
        if dt <= 0:  # same or older timestamp: nothing new to learn, keep the estimate
            return self._x.copy()
        p = self.params
        dx = (x - self._x) / dt
        self._dx = self._dx + _alpha(p.d_cutoff, dt) * (dx - self._dx)
        cutoff = p.min_cutoff + p.beta * np.abs(self._dx)
        self._x = self._x + _alpha(cutoff, dt) * (x - self._x)
        self._t = float(t)
        return self._x.copy()


def parse_smoothing(text: str | OneEuroParams | None) -> OneEuroParams | None:
    """The ``--smoothing`` option: ``"none"``, ``"one-euro"`` (defaults) or ``"one-euro:MIN_CUTOFF,BETA"``.

    Returns the parameters, or None for no smoothing.
    """
    if text is None or isinstance(text, OneEuroParams):
        return text
    value = str(text).strip().lower()
    if value in ("none", "off", "0"):
        return None
    name, _, args = value.partition(":")
    if name not in ("one-euro", "oneeuro", "1euro"):
        raise InputError(f"unknown smoothing {text!r}: use 'none', 'one-euro' or 'one-euro:MIN_CUTOFF,BETA' "
                         "(e.g. one-euro:1.0,0.05)")
    if not args:
        return OneEuroParams()
    try:
        numbers = [float(v) for v in args.split(",")]
    except ValueError:
        raise InputError(f"smoothing {text!r}: MIN_CUTOFF and BETA must be numbers, e.g. one-euro:1.0,0.05") from None
    if len(numbers) not in (1, 2, 3):
        raise InputError(f"smoothing {text!r}: give MIN_CUTOFF[,BETA[,D_CUTOFF]]")
    return OneEuroParams(*numbers)
