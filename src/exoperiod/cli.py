"""The ``exoperiod`` command line: a thin typer + rich layer over the library."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Periods of transiting exoplanets from Kepler, K2 and TESS light curves.")
console = Console(stderr=True)

# Errors a user can cause: shown as one line, never as a traceback.
def _user_errors() -> tuple[type[Exception], ...]:
    from .config import ConfigError
    from .model import ModelLoadError
    from .preprocess import PreprocessError
    from .readers import LightCurveReadError
    from .train import TrainError

    return ConfigError, ModelLoadError, PreprocessError, LightCurveReadError, TrainError, FileNotFoundError


def _fail(err: Exception) -> None:
    console.print(f"[red]error:[/red] {err}", highlight=False)
    raise typer.Exit(2)


def _progress() -> Progress:
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("{task.fields[info]}"), TimeElapsedColumn(), TimeRemainingColumn(),
                    console=console, transient=False)


def _config(path: Optional[Path]):
    from .config import load_config

    return load_config(path)


ConfigOpt = typer.Option(None, "--config", "-c", help="JSON config file (default: the packaged config.json).")


@app.command("build-dataset")
def build_dataset(
    config: Optional[Path] = ConfigOpt,
    source: str = typer.Option("simulated", help="mast | local | simulated"),
    only: str = typer.Option("positive,negative,synthetic", help="Comma-separated datasets to build."),
    workers: int = typer.Option(1, min=1, help="Worker processes."),
    local_dir: Optional[Path] = typer.Option(None, help="Folder of light-curve files for --source local."),
) -> None:
    """Build the positive / negative / synthetic datasets (resumable)."""
    from .datasets import build_datasets

    try:
        cfg = _config(config)
        kinds = tuple(k.strip() for k in only.split(",") if k.strip())
        with _progress() as bar:
            tasks: dict[str, int] = {}

            def report(kind: str, done: int, total: int) -> None:
                if kind not in tasks:
                    tasks[kind] = bar.add_task(kind, total=total, info="")
                bar.update(tasks[kind], completed=done, total=total)

            kwargs = {"local_dir": local_dir} if local_dir else {}
            summary = build_datasets(cfg, source=source, only=kinds, workers=workers, progress=report, **kwargs)
    except _user_errors() as err:
        _fail(err)
    console.print(summary.table() if hasattr(summary, "table") else summary)


@app.command()
def train(
    config: Optional[Path] = ConfigOpt,
    data: Optional[Path] = typer.Option(None, help="Dataset root (default: the config's output_root)."),
    out: Path = typer.Option(Path("runs/latest"), help="Run folder for checkpoints and metrics."),
    preset: Optional[str] = typer.Option(None, help="'default': the recipe of the shipped model."),
    resume: bool = typer.Option(False, help="Continue from <out>/last.pt."),
    epochs: Optional[int] = typer.Option(None, min=1),
    samples_per_epoch: Optional[int] = typer.Option(None, min=1),
) -> None:
    """Train a period model on built datasets."""
    from . import train as training

    try:
        cfg = _config(config)
        settings = training.TrainSettings()
        if preset == "default":
            from .presets import prepare_default

            cfg, data, settings = prepare_default(cfg, console)
        elif preset is not None:
            raise training.TrainError(f"unknown preset {preset!r} (known: default)")
        updates = {k: v for k, v in {"epochs": epochs, "samples_per_epoch": samples_per_epoch}.items() if v}
        settings = settings.model_copy(update=updates)
        data = data or Path(cfg.output_root)
        with _progress() as bar:
            task = bar.add_task("epoch 1", total=settings.epochs, info="")
            batches = bar.add_task("batches", total=1, info="")

            def report(stage: str, done: int, total: int, metrics: dict) -> None:
                if stage == "train":
                    bar.update(batches, completed=done, total=total, info=f"loss {metrics['loss']:.4f}")
                    bar.update(task, description=f"epoch {metrics['epoch']}")
                else:
                    bar.update(task, completed=done,
                               info=f"val top-1 {metrics['val_top1']:.3f} top-3 {metrics['val_top3']:.3f}")

            model = training.train(cfg, data, out, settings, resume=resume, progress=report)
    except _user_errors() as err:
        _fail(err)
    m = model.card.get("metrics", {})
    console.print(f"best epoch {model.card.get('epoch')}: validation top-1 {m.get('val_top1', float('nan')):.3f}, "
                  f"top-3 {m.get('val_top3', float('nan')):.3f} -> {out / 'model.pt'}")


def main() -> None:  # pragma: no cover - console entry for `python -m exoperiod`
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
