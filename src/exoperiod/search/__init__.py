"""The search side: from a light-curve file to period probabilities, candidates and plots.

The flow, one module per job::

    readers -> inputs -> preprocess -> fold -> model -> refine (ephemeris, offgrid)
            -> predict -> views, plots, results -> outputs, batch

``readers`` reads one file of any supported format; ``inputs`` turns whatever a user
holds (a path, a lightkurve object, arrays) into one light curve; ``preprocess`` cleans,
detrends and puts it on a regular time axis; ``fold`` is the coherent box search over
every cadence; ``model`` reads the fold with a learned scorer into per-bin
probabilities; ``refine`` verifies a bin with BLS (``ephemeris`` for transit times,
``offgrid`` for periods outside the grid); ``predict`` runs the whole chain; ``views``,
``plots`` and ``results`` present a prediction; ``outputs`` and ``batch`` run archives.

Modules here import only the base modules of :mod:`exoperiod` (config, grid, constants,
errors, files, plotting, checkpoint, paths) and each other, never the learning side.
"""
