"""Run several models over several seeds with one recipe, and collect tidy results.

The notebooks compare networks (plain-20 against plain-56, ResNet34 against its variants) by
training each with the same data and recipe. One run is an anecdote, so every model is trained
once per seed and the results come back as pandas DataFrames, ready for seaborn::

    result = run_experiment(
        {"plain20": lambda: models.plain20(num_classes=10), ...},
        train_loader, val_loader, seeds=(0, 1), epochs=10, lr=0.1,
    )
    result.curves     # one row per (model, seed, epoch): train_err, val_err, ... (percent)
    result.final      # one row per (model, seed): the last epoch's errors, parameters, time
    result.summary()  # one row per model: mean, std, min and max of the final errors

A seed fixes the weights' initialisation (the factory is called right after
``helpers.settings.seed_everything(seed)``) and everything ``fit`` draws (its ``seed=``).
The loaders fix their own batch order, so every model sees the same batches in the same order.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
from torch import nn

from helpers import settings
from helpers.train.fit import fit
from helpers.validate import check_int

__all__ = [
    "ExperimentResult",
    "describe_difference",
    "paired_difference",
    "run_experiment",
    "summarize",
]

ERROR_COLUMNS = ("train_err", "val_err")


@dataclass(frozen=True)
class ExperimentResult:
    """What :func:`run_experiment` measured.

    curves: one row per (model, seed, epoch) with ``train_err``, ``val_err`` (percent),
        ``train_loss``, ``val_loss``, ``lr``, ``time``.
    final: one row per (model, seed) with the last epoch's ``train_err``, ``val_err``,
        ``params`` and ``train_time`` (seconds, whole run), plus any ``extra`` columns.
    """

    curves: pd.DataFrame
    final: pd.DataFrame

    def summary(self, columns: Sequence[str] = ERROR_COLUMNS) -> pd.DataFrame:
        """Mean, std, min and max of ``columns`` over seeds, one row per model."""
        return summarize(self.final, columns)


def summarize(final: pd.DataFrame, columns: Sequence[str] = ERROR_COLUMNS) -> pd.DataFrame:
    """Aggregate a per-(model, seed) table: one row per model, in first-seen order.

    Columns come out flat, e.g. ``train_err mean``, ``train_err std``, ``train_err min``,
    ``train_err max``, plus ``seeds`` (how many runs each row summarises). ``std`` is the
    sample standard deviation (NaN with a single seed).
    """
    missing = [c for c in ("model", *columns) if c not in final.columns]
    if missing:
        raise ValueError(f"final has no column(s) {missing}; it has {list(final.columns)}")
    order = list(dict.fromkeys(final["model"]))
    grouped = final.groupby("model", sort=False)[list(columns)]
    table = grouped.agg(["mean", "std", "min", "max"])
    table.columns = [f"{col} {stat}" for col, stat in table.columns]
    table.insert(0, "seeds", grouped.size())
    return table.loc[order]


def paired_difference(
    final: pd.DataFrame, model: str, reference: str, column: str = "train_err"
) -> pd.DataFrame:
    """``model`` against ``reference`` seed by seed: one row per seed both were run with.

    final: one row per (model, seed), as :attr:`ExperimentResult.final`.
    Returns columns ``seed``, ``model`` and ``reference`` (their ``column`` values) and
    ``difference`` (model minus reference), in seed order. Runs of the same seed are paired
    because they share the seed (and, in :func:`run_experiment`, the batches).
    """
    for name in (model, reference):
        if name not in set(final["model"]):
            raise ValueError(f"no runs of {name!r}; final has {sorted(set(final['model']))}")
    if column not in final.columns:
        raise ValueError(f"final has no column {column!r}; it has {list(final.columns)}")
    a = final[final["model"] == model].set_index("seed")[column]
    b = final[final["model"] == reference].set_index("seed")[column]
    seeds = sorted(set(a.index) & set(b.index))
    if not seeds:
        raise ValueError(f"{model!r} and {reference!r} share no seed")
    return pd.DataFrame(
        {
            "seed": seeds,
            "model": a.loc[seeds].to_numpy(),
            "reference": b.loc[seeds].to_numpy(),
            "difference": (a.loc[seeds] - b.loc[seeds]).to_numpy(),
        }
    )


def describe_difference(
    final: pd.DataFrame,
    model: str,
    reference: str,
    column: str = "train_err",
    what: str = "training error",
    verdict: tuple[str, str] | None = None,
) -> str:
    """Sentences, printed from the numbers, comparing ``model`` with ``reference`` (in %).

    Gives both values for every seed, the difference per seed and its mean (the effect) and
    each model's seed-to-seed range (the spread; "n/a" with one run), so that a reader can
    judge the effect against the noise. ``verdict=(higher, not_higher)``, e.g.
    ``("trains worse than", "trains at least as well as")``, adds a line counting the seeds in
    which ``model``'s value is higher than ``reference``'s, and in which it is not.
    """
    pairs = paired_difference(final, model, reference, column)
    per_seed = ", ".join(
        f"seed {r.seed}: {r.model:.1f} vs {r.reference:.1f} %" for r in pairs.itertuples()
    )
    diffs = ", ".join(f"{d:+.1f}" for d in pairs["difference"])
    runs = final.groupby("model")[column]
    spread = (runs.max() - runs.min()).map("{:.1f}".format).where(runs.size() > 1, "n/a (one run)")
    lines = [
        f"{what}, {model} vs {reference}: {per_seed}",
        f"  effect ({model} minus {reference}): {pairs['difference'].mean():+.1f} points "
        f"(per seed {diffs}); spread between seeds: {model} {spread[model]}, "
        f"{reference} {spread[reference]} points",
    ]
    if verdict is not None:
        n, higher = len(pairs), int((pairs["difference"] > 0).sum())
        lines.append(
            f"  {model} {verdict[0]} {reference} in {higher} of {n} seed(s), "
            f"{verdict[1]} it in {n - higher} of {n}"
        )
    return "\n".join(lines)


def _check_factories(factories: Any) -> dict[str, Callable[[], nn.Module]]:
    if not isinstance(factories, Mapping) or not factories:
        raise ValueError(
            "factories must be a non-empty dict {name: function that builds a model}, "
            f"got {type(factories).__name__}"
        )
    for name, factory in factories.items():
        if not isinstance(name, str) or not callable(factory):
            raise TypeError(
                f"factories must map str names to callables, got {name!r}: {type(factory).__name__}"
            )
    return dict(factories)


def _check_seeds(seeds: Any) -> list[int]:
    if isinstance(seeds, (str, bytes)) or not isinstance(seeds, Iterable):
        raise TypeError(f"seeds must be a sequence of ints such as (0, 1), got {seeds!r}")
    seeds = [check_int("each seed", s, 0) for s in seeds]
    if not seeds:
        raise ValueError("seeds must hold at least one seed")
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be distinct, got {seeds}")
    return seeds


def _curve(history: Any, name: str, seed: int) -> pd.DataFrame:
    df = history.to_dataframe()
    return pd.DataFrame(
        {
            "model": name,
            "seed": seed,
            "epoch": df["epoch"],
            "train_err": 100.0 * (1.0 - df["train_acc"]),
            "val_err": 100.0 * (1.0 - df["val_acc"]),
            "train_loss": df["train_loss"],
            "val_loss": df["val_loss"],
            "lr": df["lr"],
            "time": df["time"],
        }
    )


def run_experiment(
    factories: Mapping[str, Callable[[], nn.Module]],
    train_loader: Iterable,
    val_loader: Iterable | None = None,
    *,
    seeds: Sequence[int] = (0,),
    extra: Callable[[nn.Module], Mapping[str, Any]] | None = None,
    progress: bool = False,
    **fit_kwargs: Any,
) -> ExperimentResult:
    """Train every model of ``factories`` once per seed with ``helpers.train.fit``.

    factories: ``{name: f}`` where ``f()`` builds a fresh model (called once per seed, after
        seeding, so the seed decides the initial weights).
    train_loader, val_loader: passed to ``fit`` unchanged (batches x: (B, C, H, W), y: (B,)).
    seeds: the seeds to run, e.g. ``(0, 1)``; results keep this order.
    extra: optional ``f(trained_model) -> {column: value}`` for more per-run columns in
        ``final`` (e.g. test accuracy from ``helpers.train.evaluate``).
    progress: tqdm bars inside ``fit``.
    fit_kwargs: the recipe, passed to ``fit`` (``epochs=`` is required; ``seed=`` is not
        allowed, it comes from ``seeds``).
    """
    factories = _check_factories(factories)
    seeds = _check_seeds(seeds)
    if "epochs" not in fit_kwargs:
        raise TypeError("run_experiment needs epochs= (passed to helpers.train.fit)")
    if "seed" in fit_kwargs:
        raise TypeError("pass seeds=(...) to run_experiment, not seed=")
    curves, finals = [], []
    for name, factory in factories.items():
        for seed in seeds:
            settings.seed_everything(seed)
            model = factory()
            if not isinstance(model, nn.Module):
                raise TypeError(f"factory {name!r} returned {type(model).__name__}, not a model")
            start = time.perf_counter()
            history = fit(
                model, train_loader, val_loader, seed=seed, progress=progress, **fit_kwargs
            )
            curve = _curve(history, name, seed)
            curves.append(curve)
            finals.append(
                {
                    "model": name,
                    "seed": seed,
                    "train_err": curve["train_err"].iloc[-1],
                    "val_err": curve["val_err"].iloc[-1],
                    "params": sum(p.numel() for p in model.parameters()),
                    "train_time": time.perf_counter() - start,
                    **(dict(extra(model)) if extra is not None else {}),
                }
            )
    return ExperimentResult(curves=pd.concat(curves, ignore_index=True), final=pd.DataFrame(finals))
