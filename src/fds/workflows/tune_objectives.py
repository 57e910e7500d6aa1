"""What `fds tune` optimises: the held-out ELBO by default, the public block's utility for a
target and its measured leakage of a sensitive attribute (the privacy–utility front), or any
number `fds evaluate` reports.

Objective names, as `--objective` takes them:

    elbo                 held-out ELBO of the trained run (maximised; pruned per epoch on val_elbo)
    loss                 held-out loss (minimised; pruned per epoch on val_loss)
    utility:COLUMN       the public block's utility for COLUMN (accuracy or R², maximised)
    leakage[:ATTRIBUTE]  the best attacker's accuracy on ATTRIBUTE (default: the first sensitive
                         one) from the public block (minimised)
    NAME                 a number of `fds evaluate`'s summary (e.g. reconstruction_mse, mig,
                         quality_score, tc_gaussian), measured with `--fast` budgets

Utility and leakage come from `fds.workflows.leakage.measure_leakage` on the truthful attacker
budget, the estimator `fds evaluate` and `fds attack` use, so a point of the front reports what
`fds evaluate --utility-target COLUMN` would say of its run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fds.data.files import LoadedData
from fds.errors import ConfigError
from fds.estimator import FDS
from fds.privacy.leakage import TRUTHFUL, Budget

__all__ = ["Objective", "TrialFigures", "parse_objectives"]

# `fds evaluate` summary numbers that are better when larger; every other one is minimised.
_MAXIMISED = {
    "elbo",
    "iwae",
    "hoyer_sparsity",
    "mig",
    "dci_disentanglement",
    "sap",
    "factor_vae_score",
    "quality_score",
    "sample_precision",
    "sample_recall",
    "sample_density",
    "sample_coverage",
}


@dataclass(frozen=True)
class Objective:
    """One figure to optimise: its name as typed, the direction, and the metrics.jsonl key a
    trial reports at each epoch for pruning (None: this figure exists only after training)."""

    name: str
    direction: str
    epoch_key: str | None = None

    @property
    def kind(self) -> str:
        return self.name.partition(":")[0]

    @property
    def argument(self) -> str:
        return self.name.partition(":")[2]


def parse_objectives(
    names: list[str] | tuple[str, ...], sensitive: tuple[str, ...]
) -> list[Objective]:
    """`--objective` values → objectives; refuses repeats, a leakage without a sensitive
    attribute, and `utility:` without a column."""
    names = list(names) or ["elbo"]
    if len(set(names)) != len(names):
        raise ConfigError(f"--objective given twice: {', '.join(names)}")
    return [_parse(name, sensitive) for name in names]


def _parse(name: str, sensitive: tuple[str, ...]) -> Objective:
    kind, _, argument = name.partition(":")
    if kind == "elbo":
        return Objective(name, "maximize", "val_elbo")
    if kind == "loss":
        return Objective(name, "minimize", "val_loss")
    if kind == "utility":
        if not argument:
            raise ConfigError("--objective utility needs a target column: utility:COLUMN")
        return Objective(name, "maximize")
    if kind == "leakage":
        if not sensitive:
            raise ConfigError("--objective leakage needs a sensitive attribute: add --sensitive")
        if argument and argument not in sensitive:
            raise ConfigError(
                f"--objective {name}: {argument!r} is not among --sensitive {', '.join(sensitive)}"
            )
        return Objective(f"leakage:{argument or sensitive[0]}", "minimize")
    if argument:
        raise ConfigError(f"--objective {name}: only utility: and leakage: take an argument")
    maximise = name in _MAXIMISED or name.startswith(("tstr_", "trtr_", "utility_"))
    return Objective(name, "maximize" if maximise else "minimize")


class TrialFigures:
    """The objectives' values for one trained run; leakage attackers run once per trial, for
    every utility and leakage objective together."""

    def __init__(
        self,
        objectives: list[Objective],
        model: FDS,
        data: LoadedData,
        summary: dict[str, Any],
        seed: int,
        budget: Budget = TRUTHFUL,
    ) -> None:
        self.objectives, self.model, self.data = objectives, model, data
        self.summary, self.seed, self.budget = summary, seed, budget
        self._leakage: dict[str, Any] | None = None
        self._evaluation: dict[str, Any] | None = None

    def values(self) -> list[float]:
        return [self.value(objective) for objective in self.objectives]

    def value(self, objective: Objective) -> float:
        if objective.kind == "elbo":
            return float(self.summary["val_elbo"])
        if objective.kind == "loss":
            return float(self.summary["val_loss"])
        if objective.kind == "utility":
            return float(self.leakage()["utility"]["utility"])
        if objective.kind == "leakage":
            leakage = self.leakage()
            entry = leakage["attributes"][objective.argument]
            return float(entry[leakage["blocks"][0]]["best_accuracy"])
        return self._evaluated(objective.name)

    def leakage(self) -> dict[str, Any]:
        """measure_leakage of the run, with the utility target of a `utility:` objective."""
        if self._leakage is None:
            from fds.workflows.leakage import measure_leakage

            target = next((o.argument for o in self.objectives if o.kind == "utility"), None)
            names = [o.argument for o in self.objectives if o.kind == "leakage"] or None
            self._leakage = measure_leakage(
                self.model,
                self.data,
                names=names,
                target=target,
                seed=self.seed,
                budget=self.budget,
            )
        return self._leakage

    def _evaluated(self, name: str) -> float:
        from fds.workflows.evaluate import evaluate_run, headline

        if self._evaluation is None:
            self._evaluation = headline(
                evaluate_run(self.model, self.data, fast=True, seed=self.seed)
            )
        value = self._evaluation.get(name)
        if isinstance(value, bool) or not isinstance(value, int | float):
            numbers = sorted(
                k
                for k, v in self._evaluation.items()
                if isinstance(v, int | float) and not isinstance(v, bool)
            )
            raise ConfigError(
                f"--objective {name}: not a number of fds evaluate's summary for this run "
                f"(numbers: {', '.join(numbers)})"
            )
        return float(value)
