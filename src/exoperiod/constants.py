"""Physical and mission constants shared by the search and the learning side, with units and sources.

Place in the flow: base module: used by the search side and the learning side, imports
neither.

Tuning constants (thresholds, grid sizes, margins) stay beside the code they tune, each
with its ``#:`` reason; this module holds the numbers nature and the missions fixed.
"""

# Time units.
MINUTES_PER_DAY = 1440.0  # [min / d]
HOURS_PER_DAY = 24.0  # [h / d]
SECONDS_PER_DAY = 86400.0  # [s / d]
DAYS_PER_YEAR = 365.25  # Julian year [d]

# Missions.
#: Kepler long cadence [min]: 270 co-added 6.54-s frames (Kepler Instrument Handbook,
#: KSCI-19033, sec. 2.1; Jenkins et al. 2010, ApJ 713, L120).
KEPLER_LONG_CADENCE_MINUTES = 29.4244
#: Kepler quarter, the unit of the Kepler archive [d] (~93 d of which ~84-90 d observed).
KEPLER_QUARTER_DAYS = 93.0
#: TESS orbit [d]: a sector is two orbits, with a downlink gap between them
#: (Ricker et al. 2015, JATIS 1, 014003).
TESS_ORBIT_DAYS = 13.7

# The Sun (IAU 2015 Resolution B3 nominal values; CODATA 2018 for G).
G_CGS = 6.67430e-8  # gravitational constant [cm^3 / g / s^2]
M_SUN_G = 1.98847e33  # solar mass [g] (GM_sun / G)
R_SUN_CM = 6.957e10  # nominal solar radius [cm]
LOGG_SUN_CGS = 4.438  # solar surface gravity log10(g / [cm / s^2]) = log10(G M_sun / R_sun^2)
#: Central-transit duration of a Sun-like star at a period of one year [h]: 13 h for the
#: Earth (Seager & Mallen-Ornelas 2003, eq. 19 with b = 0); it scales as P^(1/3).
SUN_T14_HOURS_AT_1YR = 13.0
#: Quadratic limb-darkening coefficients (u1, u2) of a Sun-like star (Teff 5750 K,
#: log g 4.5, [Fe/H] 0) in the Kepler band: Claret et al. (2013, A&A 552, A16), the grid
#: learning.inject tabulates. The transit shape the refinement fits to measure T14.
KEPLER_SOLAR_LIMB_DARKENING = (0.49, 0.18)
