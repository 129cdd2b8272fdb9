"""The ``exoperiod`` command line: a thin typer + rich layer over the library.

Place in the flow: the interface over both sides; it only translates flags, the library
validates.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from .errors import ExoperiodError, one_line

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Periods of transiting exoplanets from Kepler, K2 and TESS light curves.")
# soft_wrap: a line printed to a log or a pipe (80 columns) is not broken in two.
console = Console(stderr=True, soft_wrap=True)
log = logging.getLogger("exoperiod")


def _version(value: bool) -> None:
    if value:
        from ._version import __version__

        typer.echo(f"exoperiod {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    verbose: int = typer.Option(0, "--verbose", "-v", count=True, help="More log messages (-vv: debug)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Errors only: no progress bars, notes or summaries."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print the version and exit."),
) -> None:
    """Periods of transiting exoplanets from Kepler, K2 and TESS light curves."""
    from rich.logging import RichHandler

    # exoperiod's own logger only: lightkurve and astropy keep their own handlers and levels.
    log.setLevel(logging.ERROR if quiet else (logging.WARNING, logging.INFO, logging.DEBUG)[min(verbose, 2)])
    log.handlers = [RichHandler(console=console, show_time=False, show_path=False, markup=False)]
    log.propagate = False


#: What a command reports as one line: the problems a user can fix (``ConnectionError``,
#: an unreachable archive, is an ``OSError``). Anything else is a bug: it keeps its traceback.
USER_ERRORS = (ExoperiodError, OSError)


def _fail(err: BaseException | str) -> None:
    typer.echo(f"{typer.style('error:', fg='red')} {one_line(err)}", err=True)
    raise typer.Exit(2)


def _progress() -> Progress:
    # -q: errors only, so no bars either.
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("{task.fields[info]}"), TimeElapsedColumn(), TimeRemainingColumn(),
                    console=console, transient=False,
                    # A log or a pipe gets the outcome, not a redrawn bar (nor, on failure, a
                    # bar above the one error line); -q silences them too.
                    disable=not console.is_terminal or log.getEffectiveLevel() > logging.WARNING)


def _config(path: Optional[Path]):
    from .config import load_config

    return load_config(path)


ConfigOpt = typer.Option(None, "--config", "-c", help="JSON config file (default: the packaged config.json).")


def _stage_bar(bar: Progress):
    """A progress callback ``(stage, done, total)`` drawing one bar per stage."""
    tasks: dict[str, int] = {}

    def report(stage: str, done: int, total: int) -> None:
        if stage not in tasks:
            tasks[stage] = bar.add_task(stage, total=total, info="")
        bar.update(tasks[stage], completed=done, total=total)

    return report


@app.command("build-dataset")
def build_dataset(
    config: Optional[Path] = ConfigOpt,
    source: str = typer.Option("simulated", help="mast | local | simulated"),
    only: str = typer.Option("positive,negative,synthetic", help="Comma-separated datasets to build."),
    workers: int = typer.Option(1, min=1, help="Worker processes."),
    local_dir: Optional[Path] = typer.Option(None, help="Folder of light-curve files for --source local."),
    scheduler: Optional[str] = typer.Option(None, help="Make the samples on a running Dask cluster "
                                                       "(tcp://host:8786) instead of local processes."),
) -> None:
    """Build the positive / negative / synthetic datasets (resumable)."""
    from contextlib import nullcontext

    from .learning.datasets import build_datasets
    from .search.batch import dask_executor

    try:
        cfg = _config(config)
        kinds = tuple(k.strip() for k in only.split(",") if k.strip())
        kwargs = {"local_dir": local_dir} if local_dir else {}
        with dask_executor(scheduler=scheduler) if scheduler else nullcontext((None, workers)) as (pool, slots), \
                _progress() as bar:
            summary = build_datasets(cfg, source=source, only=kinds, workers=slots, pool=pool,
                                     progress=_stage_bar(bar), **kwargs)
    except USER_ERRORS as err:
        _fail(err)
    console.print(summary.table())


@app.command("pack-dataset")
def pack_dataset(
    out: Path = typer.Option(..., help="Folder of the Parquet shard store (re-running the command resumes it)."),
    data: Optional[Path] = typer.Option(None, help="Dataset root (default: the config's output_root)."),
    rows_per_shard: Optional[int] = typer.Option(None, min=1, help="Samples per shard (default 256)."),
    config: Optional[Path] = ConfigOpt,
) -> None:
    """Pack the dataset folders into Parquet shards that `train --data` reads (resumable)."""
    from .learning.datasets.shards import pack_dataset as pack

    try:
        cfg = _config(config)
        kwargs = {"rows_per_shard": rows_per_shard} if rows_per_shard is not None else {}
        with _progress() as bar:
            summary = pack(data or Path(cfg.output_root), cfg, out, progress=_stage_bar(bar), **kwargs)
    except USER_ERRORS as err:
        _fail(err)
    counts = ", ".join(f"{n} {split}" for split, n in summary.samples.items())
    console.print(f"{counts} samples in {summary.shards} shards ({summary.written} written) -> {summary.store}",
                  highlight=False)


@app.command()
def train(
    config: Optional[Path] = ConfigOpt,
    data: Optional[Path] = typer.Option(None, help="Dataset root or its pack-dataset store "
                                                   "(default: the config's output_root)."),
    out: Path = typer.Option(Path("runs/latest"), help="Run folder for checkpoints and metrics."),
    preset: Optional[str] = typer.Option(None, help="'default': build the simulated population and train "
                                                     "the shipped model's recipe."),
    resume: bool = typer.Option(False, help="Continue from <out>/last.pt."),
    epochs: Optional[int] = typer.Option(None, min=1),
    samples_per_epoch: Optional[int] = typer.Option(None, min=1),
    rank_weight: Optional[float] = typer.Option(None, min=0.0, help="Weight of the ranking term beside the "
                                                "per-bin loss (default 0; the preset's 0.03)."),
) -> None:
    """Train a period model on built datasets."""
    from .learning import train as training

    try:
        cfg = _config(config)
        settings = training.TrainSettings()
        with _progress() as bar:
            if preset == "default":
                from .learning.presets import prepare_default

                cfg, data, settings = prepare_default(cfg, progress=_stage_bar(bar))
            elif preset is not None:
                raise training.TrainError(f"unknown preset {preset!r} (known: default)")
            updates = {k: v for k, v in {"epochs": epochs, "samples_per_epoch": samples_per_epoch,
                                         "rank_weight": rank_weight}.items() if v is not None}
            settings = settings.model_copy(update=updates)
            epoch_task = bar.add_task("epochs", total=settings.epochs, info="")
            batch_task = bar.add_task("epoch 1", total=1, info="")

            def report(stage: str, done: int, total: int, metrics: dict) -> None:
                if stage == "train":
                    bar.update(batch_task, completed=done, total=total, description=f"epoch {metrics['epoch']}",
                               info=f"loss {metrics['loss']:.4f}")
                else:
                    bar.update(epoch_task, completed=done,
                               info=f"val top-1 {metrics['val_top1']:.3f} top-3 {metrics['val_top3']:.3f}")

            command = " ".join(["exoperiod", *sys.argv[1:]])
            model = training.train(cfg, data or Path(cfg.output_root), out, settings, resume=resume,
                                   progress=report, card_extra={"command": command})
            if preset == "default" and os.environ.get("RANK", "0") == "0":
                from .learning.vetting import add_vetter
                from .paths import shared_data_dir

                model = add_vetter(out / "model.pt", out / "model.pt", shared=shared_data_dir(), workers=2,
                                   progress=_stage_bar(bar))
    except USER_ERRORS as err:
        _fail(err)
    if os.environ.get("RANK", "0") != "0":  # under torchrun, rank 0 reports
        return
    m = model.card.get("metrics", {})
    console.print(f"best epoch {model.card.get('epoch')}: validation top-1 {m.get('val_top1', float('nan')):.3f}, "
                  f"top-3 {m.get('val_top3', float('nan')):.3f} -> {out / 'model.pt'}")


@app.command("fit-vetter")
def fit_vetter(
    model: Path = typer.Option(..., help="Trained model file whose candidates the vetter learns to read."),
    out: Path = typer.Option(..., help="Model file to write: the same model with its vetter."),
    curves: int = typer.Option(1000, min=1, help="Light curves drawn like the training set's, other seeds."),
    binaries: int = typer.Option(250, min=0, help="More light curves, each with an eclipsing binary added."),
    workers: int = typer.Option(2, min=1),
) -> None:
    """Fit the candidates' vetter of a trained model (resumable: candidates are kept beside OUT)."""
    from .learning.vetting import add_vetter
    from .paths import shared_data_dir

    try:
        with _progress() as bar:
            vetted = add_vetter(model, out, curves, shared=shared_data_dir(), workers=workers,
                                progress=_stage_bar(bar), binaries=binaries)
    except USER_ERRORS as err:
        _fail(err)
    card = vetted.card["vetter"]
    console.print(f"vetter fitted on {card['candidates']} candidates ({card['planets']} planets) of "
                  f"{card['light_curves'] + card['with_binaries']} light curves -> {out}")


@app.command()
def predict(
    paths: List[str] = typer.Argument(..., help="Light-curve files, folders, globs, or @FILE (one path a line)."),
    model: Optional[Path] = typer.Option(None, help="Model file (default: the shipped model)."),
    config: Optional[Path] = ConfigOpt,
    top_k: int = typer.Option(3, "--top-k", min=1, help="Period bins to refine per planet search."),
    max_planets: int = typer.Option(3, "--max-planets", min=1, help="Planets to search for, one after another."),
    json_out: Optional[str] = typer.Option(None, "--json", help="Write the predictions here (JSON list; - for stdout)."),
    csv_out: Optional[str] = typer.Option(None, "--csv", help="Write the candidates table here (CSV; - for stdout)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Parquet dataset folder of the predictions; "
                                                          "re-running the command resumes it."),
    plots: Optional[Path] = typer.Option(None, help="Folder for one PNG report per input."),
    views: Optional[Path] = typer.Option(None, help="Folder for the vetting views of each candidate "
                                                    "(one <file name>.<n>.npz per candidate)."),
    flux: Optional[str] = typer.Option(None, help="pdcsap | sap (SPOC files; default: the config's flux_column)."),
    tls: bool = typer.Option(False, help="Also refine with transitleastsquares (slow)."),
    period_min: Optional[float] = typer.Option(None, "--period-min", min=0, help="Report only periods from this, days."),
    period_max: Optional[float] = typer.Option(None, "--period-max", min=0, help="Report only periods up to this, days."),
    off_grid: bool = typer.Option(True, help="Also search periods outside the model grid with BLS."),
    time_column: Optional[str] = typer.Option(None, help="Time column of .csv/.tsv/.ecsv tables."),
    flux_column: Optional[str] = typer.Option(None, help="Flux column of .csv/.tsv/.ecsv tables."),
    flux_err_column: Optional[str] = typer.Option(None, help="Flux error column of .csv/.tsv/.ecsv tables."),
    time_system: Optional[str] = typer.Option(None, help="Time system of tables: bkjd | btjd | bjd | jd."),
    workers: int = typer.Option(1, min=1, help="Worker processes of a local Dask cluster (1: this process)."),
    scheduler: Optional[str] = typer.Option(None, help="Address of a running Dask scheduler (tcp://host:8786)."),
) -> None:
    """Periods of transiting planets in light curves, refined and verified."""
    from .search.batch import PredictOptions, predict_archive
    from .search.inputs import TableColumns
    from .search.results import write_csv

    if flux not in (None, "pdcsap", "sap"):
        _fail(ValueError(f"--flux must be pdcsap or sap, not {flux!r}"))
    if None not in (period_min, period_max) and period_min >= period_max:
        _fail(ValueError(f"--period-min ({period_min:g}) must be below --period-max ({period_max:g})"))
    try:
        cfg = _config(config)
        columns = TableColumns(time_column, flux_column, flux_err_column, time_system)
        log.info("model %s, grid %s", model or "shipped", cfg.grid().to_dict())
        with _progress() as bar:
            task = bar.add_task("predict", total=None, info="")

            def started(summary) -> None:
                if summary.dashboard:
                    console.print(f"Dask dashboard: {summary.dashboard}", highlight=False)

            def report(row: dict) -> None:
                bar.update(task, advance=1, info=Path(row["input"]).name)
                log.debug("%s: %.2f s", row["input"], (row.get("timing_seconds") or {}).get("wall", 0.0))
                if collect:
                    rows.append(row)
                _echo_prediction(row, to_stderr)

            options = PredictOptions(top_k=top_k, max_planets=max_planets, flux_column=flux or cfg.flux_column,
                                     use_tls=tls, plots_dir=None if plots is None else str(plots),
                                     views_dir=None if views is None else str(views), off_grid=off_grid,
                                     columns=columns, period_range_days=_period_range(period_min, period_max))
            # --json - and --csv print the batch at the end (the JSON file and Parquet stream
            # through their journals); the per-input lines go to stderr when stdout has data.
            collect, to_stderr = json_out == "-" or csv_out is not None, "-" in (json_out, csv_out)
            rows: list[dict] = []
            summary = predict_archive(paths, model, options, workers=workers, scheduler=scheduler, out=out,
                                      json_out=None if json_out == "-" else json_out, on_result=report,
                                      on_start=started, grid=cfg.grid())
        if json_out == "-":
            typer.echo(json.dumps([{k: v for k, v in r.items() if k != "index"} for r in rows], indent=2,
                                  allow_nan=False))
        if csv_out is not None:
            write_csv(rows, None if csv_out == "-" else Path(csv_out))
    except USER_ERRORS as err:
        _fail(err)
    if summary.skipped and not summary.predicted + summary.failed:
        console.print(f"all {summary.skipped} inputs were already done", highlight=False)
    elif not summary.predicted + summary.failed:
        _fail(FileNotFoundError(f"no light-curve files found in {' '.join(paths)}"))
    elif not summary.predicted:
        raise typer.Exit(1)


def _period_range(period_min: Optional[float], period_max: Optional[float]) -> Optional[tuple[float, float]]:
    if period_min is None and period_max is None:
        return None
    return period_min or 0.0, period_max if period_max is not None else float("inf")


def _echo_prediction(row: dict, to_stderr: bool = False) -> None:
    """One line per input (and its notes): the periods found, or the error. To stderr
    when stdout carries the JSON or CSV."""
    from .search.results import candidates_summary

    if row["error"]:
        typer.echo(typer.style(one_line(row["error"]), fg="red"), err=True)
        return
    if log.getEffectiveLevel() > logging.WARNING:
        return
    typer.echo(f"{row['input']}: {row['target'] or '-'}: {candidates_summary(row['candidates'])}", err=to_stderr)
    for note in row["notes"]:
        typer.echo(f"    note: {note}", err=to_stderr)


@app.command()
def evaluate(
    model: Optional[Path] = typer.Option(None, help="Model file (default: the shipped model)."),
    data: Path = typer.Option(..., help="Dataset root (the folder holding the dataset folders) or its "
                                        "pack-dataset store."),
    config: Optional[Path] = ConfigOpt,
    split: str = typer.Option("test", help="train | val | test"),
    out: Path = typer.Option(Path("evaluation"), help="Report folder."),
    refine: bool = typer.Option(False, help="Also measure recovery after BLS refinement (slower)."),
) -> None:
    """Recovery, aliases, calibration and false alarms of a model on a dataset split."""
    from .learning.evaluate import evaluate_model
    from .search.model import PeriodModel

    try:
        cfg = _config(config)
        loaded = PeriodModel.load(model, grid=cfg.grid())
        with _progress() as bar:
            result = evaluate_model(loaded, data, cfg, split=split, out_dir=out, progress=_stage_bar(bar),
                                    refine=refine)
    except USER_ERRORS as err:
        _fail(err)
    typer.echo(f"{result.n_samples} samples ({result.n_with_planet} with a planet): top-1 {result.top1:.3f}, "
               f"top-3 {result.top3:.3f}, alias rate {result.alias_rate:.3f} -> {out / 'report.md'}")


@app.command()
def run(
    out: Path = typer.Option(Path("report"), help="Report folder."),
    config: Optional[Path] = ConfigOpt,
    model: Optional[Path] = typer.Option(None, help="Model file (default: the shipped model)."),
    workers: int = typer.Option(2, min=1, help="Worker processes for the dataset build."),
    samples: int = typer.Option(2000, min=20, help="Simulated stars to build and evaluate on."),
) -> None:
    """The main job: simulated dataset, evaluation, example predictions, report folder."""
    from .learning.demo import run_main_job
    from .search.model import PeriodModel

    try:
        cfg = _config(config)
        loaded = PeriodModel.load(model, grid=cfg.grid())
        with _progress() as bar:
            summary = run_main_job(out, cfg, loaded, progress=_stage_bar(bar), workers=workers, samples=samples)
    except USER_ERRORS as err:
        _fail(err)
    typer.echo(summary.read_text())
    typer.echo(f"report: {summary}")


def main() -> None:  # pragma: no cover - console entry for `python -m exoperiod`
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
