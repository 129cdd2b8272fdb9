"""Circular-orbit transit geometry, shared by the injection of planets and the vetting of candidates.

Place in the flow: base module: the learning side injects planets with it
(:mod:`exoperiod.learning.inject`), the search side vets candidates with it
(:mod:`exoperiod.search.refine`); it imports neither.
"""

from __future__ import annotations

import numpy as np

from .constants import G_CGS, HOURS_PER_DAY, SECONDS_PER_DAY

#: Largest planet-to-star radius ratio of a planet: ~0.3 is a Jupiter transiting an
#: M dwarf of 0.35 R_sun; bigger bodies are stars (eclipsing binaries).
RP_RS_MAX = 0.3
#: Lowest mean density of a planet host the vetting accepts, g cm^-3: 0.05 of the Sun's
#: (1.41 g cm^-3), a subgiant of ~2.7 R_sun and 1 M_sun. With RP_RS_MAX, of the 2,746
#: confirmed KOI planets (KOI table of ../shared/data) one transits for longer than
#: :func:`longest_transit_hours` allows: Kepler-56 b, a red giant's, by 3 %; Kepler-91 b,
#: another giant's, reaches 0.94 of it.
MIN_HOST_DENSITY_GCC = 0.05 * 1.41


def a_over_rstar(period_days: float, density_gcc: float) -> float:
    """Scaled semi-major axis from Kepler's third law.

    ``a/R* = (G rho* P^2 / (3 pi))^(1/3)``, neglecting the planet's mass.

    Parameters
    ----------
    period_days : float
        Orbital period, days.
    density_gcc : float
        Mean stellar density, g cm^-3.

    Returns
    -------
    float
        Semi-major axis in stellar radii (about 215 for the Earth and the Sun).
    """
    period_s = period_days * SECONDS_PER_DAY
    return float((G_CGS * density_gcc * period_s**2 / (3.0 * np.pi)) ** (1.0 / 3.0))


def inclination_rad(impact: float, a_rs: float) -> float:
    """Orbital inclination of impact parameter ``impact`` at ``a_rs`` stellar radii."""
    if a_rs <= 1.0 or impact >= a_rs:
        raise ValueError(f"no orbit with a/R* = {a_rs:.3g} and impact parameter {impact:.3g}")
    return float(np.arccos(impact / a_rs))


def t14_hours(period_days: float, a_rs: float, impact: float, rp_rs: float) -> float:
    """Total transit duration T14 (first to fourth contact) of a circular orbit.

    ``T14 = P/pi * arcsin( sqrt((1 + k)^2 - b^2) / (a/R* sin i) )`` (Seager &
    Mallen-Ornelas 2003; Winn 2010, eq. 14 with e = 0); 0 when the planet misses the
    stellar disc (b >= 1 + k), P/2 when the orbit grazes the star all the way round
    (a/R* below 1 + k: a bound, not an orbit; ``impact`` at most ``a_rs``).
    """
    inc = np.arccos(impact / a_rs)
    chord_sq = (1.0 + rp_rs) ** 2 - impact**2
    if chord_sq <= 0.0:
        return 0.0
    arg = min(1.0, np.sqrt(chord_sq) / (a_rs * np.sin(inc)))
    return float(period_days / np.pi * np.arcsin(arg) * HOURS_PER_DAY)


def longest_transit_hours(period_days: float, density_gcc: float = MIN_HOST_DENSITY_GCC,
                          rp_rs: float = RP_RS_MAX) -> float:
    """The longest first-to-last-contact duration T14 a planet at ``period_days`` can have.

    A central transit (b = 0) of the largest planet (``rp_rs``) across the least dense
    host (``density_gcc``). A periodic dip that lasts longer is not a planet's transit:
    at 1.7 d, 8.2 h (a small planet's central transit of the Sun lasts 2.2 h); the dips
    of spotted stars that the box search picks up can last a quarter of their period.
    """
    return t14_hours(period_days, a_over_rstar(period_days, density_gcc), 0.0, rp_rs)
