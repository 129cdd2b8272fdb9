"""Start-up time of the command line: ``exoperiod --help`` and ``exoperiod predict one.fits``.

Each command runs ``--repeats`` times as a fresh process (as a user runs it); the table
gives the median wall time and the median CPU time (user + sys of the child: it does not
depend on what else the machine runs, the wall time does). A second table splits one
prediction in a fresh process into its stages: importing lightkurve, importing torch,
importing the rest of exoperiod, loading the model, the first prediction and a second
one (the cost of a light curve once everything is loaded), with and without the BLS
search outside the model grid.

Targets (issue 12): ``--help`` <= 1 s and ``predict one.fits`` <= 3 s of wall time.

Usage::

    PYTHONPATH=src python benchmarks/startup.py [--repeats 5] [--file PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from exoperiod.paths import shared_data_dir

RESULTS = Path(__file__).resolve().parent / "results" / "startup.md"
DEFAULT_FILE = "lightcurves/kepler/9002278/kplr009002278-2012179063303_llc.fits"
TARGETS_SECONDS = {"--help": 1.0, "predict": 3.0}

# Run in a fresh interpreter: the stages of one prediction, as JSON on stdout.
STAGES = """
import json, sys, time
marks = {}
clock = lambda: (time.perf_counter(), time.process_time())
def mark(name, start):
    now = clock()
    marks[name] = (now[0] - start[0], now[1] - start[1])
    return clock()
t = clock()
import lightkurve
t = mark("import lightkurve", t)
import torch
t = mark("import torch", t)
from exoperiod import PeriodModel, predict
import exoperiod.search.predict, exoperiod.search.plots
t = mark("import exoperiod (rest)", t)
model = PeriodModel.load()
t = mark("load the model", t)
predict(sys.argv[1], model)
t = mark("first prediction", t)
predict(sys.argv[1], model)
t = mark("second prediction", t)
predict(sys.argv[1], model, off_grid=False)
mark("second prediction without the off-grid BLS", t)
print(json.dumps(marks))
"""


def _timed(command: list[str], env: dict) -> tuple[float, float]:
    """Wall and CPU seconds (user + sys of the child) of one run."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--file", type=Path, default=None, help=f"light curve (default: ../shared/data/{DEFAULT_FILE})")
    args = parser.parse_args()
    path = args.file or (shared_data_dir() or Path("../shared/data")) / DEFAULT_FILE
    # One torch thread, as in the other benchmarks: the machine's two cores are shared.
    env = dict(os.environ, OMP_NUM_THREADS="1")
    exoperiod = [sys.executable, "-m", "exoperiod.cli"]
    commands = {"--help": [*exoperiod, "--help"], "predict": [*exoperiod, "-q", "predict", str(path)]}
    rows = []
    for name, command in commands.items():
        runs = [_timed(command, env) for _ in range(args.repeats)]
        wall, cpu = statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)
        rows.append(f"| `exoperiod {' '.join(command[3:]).replace(str(path), path.name)}` | {wall:.2f} | "
                    f"{cpu:.2f} | {TARGETS_SECONDS[name]:g} | {'yes' if wall <= TARGETS_SECONDS[name] else 'no'} |")
    stages = json.loads(subprocess.run([sys.executable, "-c", STAGES, str(path)], check=True, env=env,
                                       capture_output=True, text=True).stdout)
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    lines = [
        "# Start-up time of the command line",
        "",
        f"Measured {time.strftime('%Y-%m-%d %H:%M')} on {platform.machine()} / {os.cpu_count()} cores, "
        f"Python {platform.python_version()}; load average at the end {load} (other jobs share the machine, so "
        "wall times vary; CPU times do not).",
        f"Command: `PYTHONPATH=src python benchmarks/startup.py --repeats {args.repeats}`; light curve "
        f"`{path.name}` (Kepler-62, Q13, 4,251 cadences). Medians of {args.repeats} fresh processes.",
        "",
        "| command | wall s | CPU s | target wall s | met |",
        "|---|---|---|---|---|",
        *rows,
        "",
        "One prediction in a fresh process, by stage (one torch thread):",
        "",
        "| stage | wall s | CPU s |",
        "|---|---|---|",
        *[f"| {stage} | {wall:.2f} | {cpu:.2f} |" for stage, (wall, cpu) in stages.items()],
        "",
    ]
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
