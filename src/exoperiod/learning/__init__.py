"""The learning side: the data, training and evaluation behind the search's model.

The flow::

    simulate, instruments, catalog (http) -> inject -> datasets, curves -> train -> vetting -> evaluate
                                                                          presets, demo

``simulate`` makes Kepler-like stars and ``instruments`` adds K2's, TESS's and stitched
Kepler quarters' signatures to them; ``catalog`` reads the KOI table and lists of
planet-free stars (``http`` downloads them politely); ``inject`` puts batman transits into
light curves; ``datasets`` builds the seed's positive, negative and synthetic samples and
``curves`` whole light curves of any length; ``train`` fits the scorer on their cached
fold features; ``evaluate`` measures it. ``presets`` reproduces the shipped model with one
command and ``demo`` is the offline first run (``exoperiod run``).

The learning side uses the search side (the model it trains is the one that searches);
the search side never imports it.
"""
