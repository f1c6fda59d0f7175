"""``payments fraud``: the learned fraud score's development tasks.

``train`` makes up a labelled data set (devtools/fraud_dataset.py, so it runs from a
checkout), fits the model with scikit-learn (a development dependency) and writes the JSON file
the service scores with, by default the packaged one: commit it with the code that reads it.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

fraud = typer.Typer(help="The learned fraud score.", no_args_is_help=True)

DEFAULT_ROWS = 60_000
DEFAULT_SEED = 12


@fraud.command("train")
def train(
    rows: Annotated[
        int, typer.Option(min=1_000, help="rows of the generated data set (a quarter held out)")
    ] = DEFAULT_ROWS,
    seed: Annotated[int, typer.Option(help="seed of the data set and of the split")] = (
        DEFAULT_SEED
    ),
    output: Annotated[
        Path | None,
        typer.Option(help="where to write the model (default: the packaged model file)"),
    ] = None,
) -> None:
    """Train the learned fraud score on generated payments; print its held-out ROC AUC."""
    from cli.main import _from_checkout

    _from_checkout("fraud train")
    try:
        import sklearn  # type: ignore[import-untyped]  # noqa: F401
    except ImportError:
        typer.echo("payments fraud train needs scikit-learn: make install", err=True)
        raise typer.Exit(2) from None
    from devtools.fraud_dataset import generate
    from payments.fraud.model import packaged_model_path
    from payments.fraud.training import train as fit
    from payments.fraud.training import write_model

    started = time.monotonic()
    with typer.progressbar(length=rows, label=f"generating {rows} payments") as bar:
        done = 0

        def advance(count: int) -> None:
            nonlocal done
            bar.update(count - done)
            done = count

        data = generate(rows, seed, progress=advance)
    typer.echo("training (scikit-learn)...")
    model, evaluation = fit(data, seed)
    path = output or packaged_model_path()
    write_model(model, path)
    typer.echo(
        f"{evaluation.version}: ROC AUC {evaluation.roc_auc:.4f} on {evaluation.n_test} held-out "
        f"rows (trained on {evaluation.n_train}; fraud rate {evaluation.fraud_rate:.2%}, "
        f"seed {seed}) in {time.monotonic() - started:.1f} s"
    )
    typer.echo(f"written: {path}")
