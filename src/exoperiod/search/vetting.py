"""The vetter: a candidate's probability from the scorer and the candidate's own transits.

Place in the flow (search side): readers -> inputs -> preprocess -> fold -> model ->
refine (ephemeris, offgrid) -> **vetting** -> predict -> views, plots, results -> outputs, batch.

The scorer reads the periodogram only: box SNRs per period bin. A spot's residual
modulation folds into a box as well as a transit does, and off the training
distribution the scorer's probability drifts both ways (held-out noise family: p 0.4-0.8
right 36-61 % of the time; held-out real stars: 77-88 %). What a vetter of Kepler's
Robovetter kind reads is in the refined candidate: whether a sinusoid explains the fold
better than a box, whether odd and even transits agree, whether a secondary dip or a
half-period box is there, whether one transit makes the whole signal, how red the noise
is at the transit's duration, how the duration compares with the longest a planet can
have. :class:`~exoperiod.search.model.Vetter`, a small network over these and the
scorer's own log-odds, gives the candidate's probability: that a planet is at this
period. It is fitted on the candidates of light curves drawn like the training set's but
never trained on, some with an eclipsing binary, against whether each was a planet
(:func:`exoperiod.learning.vetting.add_vetter`).
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np
from scipy.special import logit

from ..orbits import longest_transit_hours
from .model import FEATURE_SNR_SCALE, Vetter
from .refine import in_transit

if TYPE_CHECKING:
    from .refine import Candidate, TransitSearch

#: Probabilities are clipped to this distance from 0 and 1 before the log-odds: a bin's
#: probability reaches 1 - 1e-7 and the vetter should not read float noise.
PROBABILITY_CLIP = 1e-4


def vetting_features(search: TransitSearch, candidate: Candidate, scorer_probability: float) -> np.ndarray | None:
    """The :data:`~exoperiod.search.model.VETTING_FEATURES` of one refined candidate, float32;
    None when no cadence lies in its transits (the fitted ephemeris can put a box found
    in sparse data into a gap): there is nothing to vet.

    Parameters
    ----------
    search : TransitSearch
        The detrended light curve the candidate was refined on.
    candidate : Candidate
        Its ephemeris and duration set the transits measured here.
    scorer_probability : float
        The scorer's probability of the candidate's peak (before vetting).
    """
    duration_days = candidate.duration_hours / 24.0
    if not in_transit(search.time_days, candidate.period_days, candidate.t0_btjd_or_bkjd, duration_days).any():
        return None
    stats = search.bls.compute_stats(candidate.period_days, duration_days, candidate.t0_btjd_or_bkjd)
    depth, depth_err = stats["depth"]
    (odd, odd_err), (even, even_err) = stats["depth_odd"], stats["depth_even"]
    secondary, secondary_err = stats["depth_phased"]
    half, _ = stats["depth_half"]
    box_gain = 0.5 * (depth / depth_err) ** 2 if depth_err > 0 else 0.0
    odd_even_err = float(np.hypot(odd_err, even_err))
    counted = np.asarray(stats["per_transit_count"]) > 0
    gains = np.asarray(stats["per_transit_log_likelihood"], float)[counted]
    p = float(np.clip(scorer_probability, PROBABILITY_CLIP, 1 - PROBABILITY_CLIP))
    row = [
        logit(p),
        np.arcsinh(candidate.snr / FEATURE_SNR_SCALE),
        np.clip(candidate.sde if candidate.sde is not None else 0.0, -5.0, 40.0),
        np.clip(stats["harmonic_delta_log_likelihood"] / box_gain, -1.5, 1.5) if box_gain > 0 else 0.0,
        np.log1p(abs(odd - even) / odd_even_err) if np.isfinite(odd_even_err) and odd_even_err > 0 else 0.0,
        np.arcsinh(secondary / secondary_err) if secondary_err > 0 else 0.0,
        np.clip(half / depth, -2.0, 2.0) if depth > 0 else 0.0,
        np.log(max(int(counted.sum()), 1)),
        float(gains.max() / gains.sum()) if len(gains) and gains.sum() > 0 else 1.0,
        np.log(search.red_noise_factor(duration_days)),
        np.log(max(candidate.duration_hours / longest_transit_hours(candidate.period_days), 1e-3)),
        float(candidate.better_period_days is not None),
    ]
    out = np.asarray(row, dtype=np.float32)
    return np.where(np.isfinite(out), out, 0.0).astype(np.float32)


def vet(vetter: Vetter | None, search: TransitSearch, candidate: Candidate) -> Candidate:
    """``candidate`` with the vetter's probability, the scorer's kept as ``scorer_probability``
    and what the vetter read as ``vetting_features`` (measured also without a vetter: the
    examples a vetter is fitted on are these, :mod:`exoperiod.learning.vetting`).

    A candidate too long for a planet (probability 0 by rule:
    :func:`~exoperiod.search.refine.candidate_from_fit`) or outside the grid is not vetted;
    without a vetter, and for a candidate with no cadence in its transits (a note says
    so), the probability stays the scorer's.
    """
    scorer = candidate.probability
    candidate = replace(candidate, scorer_probability=scorer)
    if candidate.longer_than_a_planet or not np.isfinite(scorer):
        return candidate
    features = vetting_features(search, candidate, scorer)
    if features is None:
        note = "no cadence in its fitted transits: not vetted, the probability is the scorer's"
        return replace(candidate, note="; ".join(filter(None, [candidate.note, note]))) if vetter else candidate
    candidate = replace(candidate, vetting_features=features)
    return replace(candidate, probability=float(vetter.probability(features))) if vetter else candidate
