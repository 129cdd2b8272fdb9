"""Transit geometry (exoperiod.orbits) against batman, the model the injections use."""

from __future__ import annotations

import batman
import numpy as np
import pandas as pd
import pytest

from exoperiod.orbits import MIN_HOST_DENSITY_GCC, RP_RS_MAX, a_over_rstar, longest_transit_hours


@pytest.mark.parametrize("period_days", [0.6, 1.7, 12.0, 40.0])
def test_the_longest_transit_starts_and_ends_where_batman_s_does(period_days):
    # The largest planet crossing the centre of the least dense host: batman's flux dips
    # just inside the duration and is 1 just outside it.
    t14_days = longest_transit_hours(period_days) / 24.0
    params = batman.TransitParams()
    params.t0, params.per, params.rp = 0.0, period_days, RP_RS_MAX
    params.a, params.inc, params.ecc, params.w = a_over_rstar(period_days, MIN_HOST_DENSITY_GCC), 90.0, 0.0, 90.0
    params.limb_dark, params.u = "quadratic", [0.4, 0.25]
    half = 0.5 * t14_days
    flux = batman.TransitModel(params, np.array([-1.001, -0.999, 0.999, 1.001]) * half).light_curve(params)
    assert flux[0] == flux[3] == 1.0 and flux[1] < 1.0 and flux[2] < 1.0


def test_a_denser_host_or_a_smaller_planet_transits_for_less_time():
    assert longest_transit_hours(5.0, density_gcc=1.41) < longest_transit_hours(5.0)
    assert longest_transit_hours(5.0, rp_rs=0.01) < longest_transit_hours(5.0)
    assert longest_transit_hours(10.0) > longest_transit_hours(5.0)


def test_every_confirmed_kepler_planet_but_a_red_giant_s_fits_the_longest_transit(shared_data):
    # The catalogue's T14 of the 2,746 confirmed KOI planets: only Kepler-56 b (a red
    # giant's, 14.5 h at 10.5 d) is longer, by 3 %; Kepler-91 b (another giant's) is at 0.94.
    koi = pd.read_csv(shared_data / "tables/koi_cumulative.csv", comment="#")
    confirmed = koi[(koi.koi_disposition == "CONFIRMED") & koi.koi_duration.notna()]
    ratio = confirmed.koi_duration / [longest_transit_hours(p) for p in confirmed.koi_period]
    assert len(confirmed) > 2000
    assert sorted(confirmed.kepler_name[ratio > 1]) == ["Kepler-56 b"]


def test_a_period_too_short_for_any_orbit_bounds_the_duration_by_half_of_it():
    # At 0.3 d the least dense host is larger than the orbit (a/R* < 1 + k): no planet
    # there, and the bound is half the period rather than an error in the vetting.
    assert a_over_rstar(0.3, MIN_HOST_DENSITY_GCC) < 1 + RP_RS_MAX
    assert longest_transit_hours(0.3) == pytest.approx(0.3 * 24 / 2)
