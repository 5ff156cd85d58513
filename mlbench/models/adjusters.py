"""Built-in post-hoc adjusters: fitted on one backbone's validation outputs, applied to its outputs after
training, before the ensembles combine them and thresholds are tuned.

An adjuster plugin registers ``factory(val_probs, val_targets, label_counts, n_samples, head, **options)``:
``val_probs`` is the validation split's (n_val, L) sigmoid probabilities, ``val_targets`` its (n_val, L)
0/1 labels, ``label_counts`` the training positives per label, ``n_samples`` the training images and
``head`` the backbone's :class:`HeadStats` (None when it has no linear head). The returned object has
``apply(probs) -> probs`` ((n, L) in [0, 1] to the same shape; pure and deterministic) and
``fitted() -> dict`` (JSON, written to the run's manifest).

Built-ins, each working on logits z = log(p) - log(1 - p):

- ``none``: the identity.
- ``temperature``: temperature scaling (Guo et al., "On Calibration of Modern Neural Networks",
  ICML 2017) for sigmoid outputs, p' = sigmoid(z / T), T fitted by minimising the validation
  negative log-likelihood; one T for all labels, or one per label (``per_label``).
- ``logit-adjust``: post-hoc logit adjustment (Menon et al., "Long-tail learning via logit
  adjustment", ICLR 2021) for sigmoid outputs, z' = z - tau * log(pi_j / (1 - pi_j)) with pi_j the
  label's training prior.
- ``tau-norm``: tau-normalisation (Kang et al., "Decoupling Representation and Classifier for
  Long-Tailed Recognition", ICLR 2020): the head's weight rows rescaled as w_j / ||w_j||^tau.

This module imports no torch at import time (building the registry stays torch-free); the
functions that read a network import it themselves.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from mlbench import hookimpl
from mlbench.foundations.options import OptionError, check_number, shown

# Probabilities are clipped before taking logits, so a saturated 0 or 1 stays finite.
PROB_CLIP = 1e-7
# Temperatures the fit may choose (searched over log T): wide enough for any sane network.
TEMPERATURE_BOUNDS = (0.05, 20.0)


def to_logits(probs: Any) -> np.ndarray:
    """log(p) - log1p(-p) in float64, p clipped to [1e-7, 1 - 1e-7]."""
    p = np.clip(np.asarray(probs, dtype=np.float64), PROB_CLIP, 1.0 - PROB_CLIP)
    return np.log(p) - np.log1p(-p)


def to_probs(logits: Any) -> np.ndarray:
    """The sigmoid in float64, computed from exp(-|z|) so that no large logit overflows."""
    z = np.asarray(logits, dtype=np.float64)
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def mean_bce(logits: np.ndarray, targets: np.ndarray) -> float:
    """Mean binary cross-entropy of logits against 0/1 targets: the negative log-likelihood."""
    return float(np.mean(np.logaddexp(0.0, logits) - targets * logits))


# -- the classification head ------------------------------------------------------------------------
# eq=False: the fields are arrays, whose == is elementwise (a generated __eq__ would raise).
@dataclass(frozen=True, eq=False)
class HeadStats:
    """What tau-norm needs of a classification head: each label's weight-row L2 norm, and its bias."""

    weight_norm: np.ndarray
    bias: np.ndarray

    def __post_init__(self) -> None:
        norms = np.asarray(self.weight_norm, dtype=np.float64)
        bias = np.asarray(self.bias, dtype=np.float64)
        if norms.ndim != 1 or norms.shape != bias.shape:
            raise ValueError(f"HeadStats: weight_norm and bias must be 1-D of one length, got shapes "
                             f"{norms.shape} and {bias.shape}")
        if not (np.isfinite(norms).all() and np.isfinite(bias).all()) or (norms < 0).any():
            raise ValueError("HeadStats: weight_norm must be finite and >= 0, bias finite")
        object.__setattr__(self, "weight_norm", norms)
        object.__setattr__(self, "bias", bias)


def head_stats(linear: Any) -> HeadStats:
    """The per-label weight-row norms and biases of a ``torch.nn.Linear`` (zero biases when it has none)."""
    import torch

    if not isinstance(linear, torch.nn.Linear):
        raise TypeError(f"head_stats: expected a torch.nn.Linear, got {type(linear).__name__}")
    with torch.no_grad():
        weight = linear.weight.detach().to("cpu", torch.float64)
        norms = torch.linalg.vector_norm(weight, dim=1).numpy()
        bias = (np.zeros(linear.out_features) if linear.bias is None
                else linear.bias.detach().to("cpu", torch.float64).numpy())
    return HeadStats(weight_norm=norms, bias=bias)


def find_head(model: Any, num_labels: int) -> Any:
    """The last ``torch.nn.Linear`` in ``model`` (registration order) with ``num_labels`` outputs: its
    classification head. ValueError, naming the linear layers found, when there is none."""
    import torch

    heads = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    matching = [m for m in heads if m.out_features == num_labels]
    if matching:
        return matching[-1]
    found = (f"its linear layers have {', '.join(str(m.out_features) for m in heads)} outputs" if heads
             else "it has no linear layer")
    raise ValueError(f"{type(model).__name__} has no torch.nn.Linear with {num_labels} outputs (one per label); "
                     f"{found}")


# -- checking the inputs ----------------------------------------------------------------------------
def probability_matrix(values: Any, who: str, name: str, n_labels: int | None = None) -> np.ndarray:
    """``values`` as a float64 (n, L) matrix of probabilities in [0, 1], else one ValueError naming it."""
    try:
        p = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{who}: {name} must be an (images, labels) matrix of probabilities") from None
    if p.ndim != 2 or p.shape[1] == 0:
        raise ValueError(f"{who}: {name} must be a 2-D (images, labels) matrix, got shape {p.shape}")
    if n_labels is not None and p.shape[1] != n_labels:
        raise ValueError(f"{who}: {name} has {p.shape[1]} labels, the adjuster was fitted on {n_labels}")
    if not ((p >= 0) & (p <= 1)).all():  # NaN fails both comparisons
        raise ValueError(f"{who}: {name} must hold probabilities in [0, 1]")
    return p


@dataclass(frozen=True, eq=False)
class FitData:
    """The checked factory inputs every adjuster receives."""

    val_probs: np.ndarray
    val_targets: np.ndarray
    label_counts: np.ndarray
    n_samples: int

    @property
    def n_labels(self) -> int:
        return self.val_probs.shape[1]


def fit_data(who: str, val_probs: Any, val_targets: Any, label_counts: Any, n_samples: Any) -> FitData:
    """The contract's arrays checked against each other; one ValueError naming the first that is wrong."""
    probs = probability_matrix(val_probs, who, "val_probs")
    targets = np.asarray(val_targets)
    if targets.shape != probs.shape:
        raise ValueError(f"{who}: val_targets has shape {targets.shape}, val_probs {probs.shape}; they must agree")
    if not np.isin(targets, (0, 1)).all():
        raise ValueError(f"{who}: val_targets must hold only 0 and 1")
    if isinstance(n_samples, bool) or not isinstance(n_samples, (int, np.integer)) or n_samples < 1:
        raise ValueError(f"{who}: n_samples must be an integer >= 1, got {n_samples!r}")
    try:
        counts = np.asarray(label_counts, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{who}: label_counts must be numbers, one per label") from None
    if counts.shape != (probs.shape[1],):
        raise ValueError(f"{who}: label_counts has shape {counts.shape}, expected ({probs.shape[1]},): one per label")
    if not np.isfinite(counts).all() or (counts < 0).any() or (counts > n_samples).any():
        raise ValueError(f"{who}: label_counts must lie in [0, n_samples={int(n_samples)}]")
    return FitData(probs, targets.astype(np.float64), counts, int(n_samples))


def check_tau(tau: Any, who: str) -> float:
    return check_number(tau, who, "tau", 0.0)


# -- the adjusters ----------------------------------------------------------------------------------
class LogitAdjuster(ABC):
    """An adjuster that maps logits by its fitted rule: probabilities in, logits, rule, probabilities out."""

    who = "adjuster"

    def __init__(self, n_labels: int) -> None:
        self.n_labels = n_labels

    @abstractmethod
    def adjust_logits(self, logits: np.ndarray) -> np.ndarray:
        """(n, L) float64 logits -> the adjusted logits."""

    @abstractmethod
    def fitted(self) -> dict[str, Any]:
        """The JSON record of what was fitted."""

    def apply(self, probs: Any) -> np.ndarray:
        p = probability_matrix(probs, self.who, "probs", self.n_labels)
        return to_probs(self.adjust_logits(to_logits(p)))


class Identity:
    """``none``: the probabilities unchanged (no logit round trip, so not even clipped)."""

    def __init__(self, data: FitData) -> None:
        self.n_labels = data.n_labels

    def apply(self, probs: Any) -> np.ndarray:
        return probability_matrix(probs, "none", "probs", self.n_labels).copy()

    def fitted(self) -> dict[str, Any]:
        return {}


class TemperatureScaling(LogitAdjuster):
    """p' = sigmoid(z / T) (Guo et al. 2017), T shared by all labels or one per label."""

    who = "temperature"

    def __init__(self, data: FitData, per_label: bool, fixed: float | None) -> None:
        super().__init__(data.n_labels)
        self.per_label, self.fixed = per_label, fixed
        z, y = to_logits(data.val_probs), data.val_targets
        self.unfitted: list[int] = []
        if fixed is not None:
            temperatures = np.full(data.n_labels, fixed)
        elif per_label:
            temperatures = np.ones(data.n_labels)
            for j in range(data.n_labels):
                if 0 < y[:, j].sum() < len(y):
                    temperatures[j] = fit_temperature(z[:, j], y[:, j])
                else:  # one class only: the likelihood has no interior optimum worth trusting
                    self.unfitted.append(j)
        elif 0 < y.sum() < y.size:
            temperatures = np.full(data.n_labels, fit_temperature(z, y))
        else:
            temperatures = np.ones(data.n_labels)
            self.unfitted = list(range(data.n_labels))
        self.temperatures = temperatures
        empty = len(y) == 0
        self.nll_before = None if empty else mean_bce(z, y)
        self.nll_after = None if empty else mean_bce(z / temperatures, y)

    def adjust_logits(self, logits: np.ndarray) -> np.ndarray:
        return logits / self.temperatures

    def fitted(self) -> dict[str, Any]:
        shared = not self.per_label
        return {"temperature": float(self.temperatures[0]) if shared else [float(t) for t in self.temperatures],
                "per_label": self.per_label, "fixed": self.fixed is not None,
                "val_nll_before": self.nll_before, "val_nll_after": self.nll_after,
                "unfitted_labels": list(self.unfitted)}


def fit_temperature(logits: np.ndarray, targets: np.ndarray) -> float:
    """The T in :data:`TEMPERATURE_BOUNDS` minimising the mean BCE of ``logits / T``; 1 when the search
    finds nothing better (the fit never makes the validation likelihood worse)."""
    from scipy.optimize import minimize_scalar

    def nll(log_t: float) -> float:
        return mean_bce(logits * math.exp(-log_t), targets)

    low, high = TEMPERATURE_BOUNDS
    # The NLL is convex in 1/T, so unimodal in log T: the bounded search finds its minimum.
    best = minimize_scalar(nll, bounds=(math.log(low), math.log(high)), method="bounded",
                           options={"xatol": 1e-6})
    return math.exp(best.x) if best.fun < nll(0.0) else 1.0


class LogitAdjustment(LogitAdjuster):
    """z' = z - tau * log(pi_j / (1 - pi_j)) (Menon et al. 2021, post-hoc, for sigmoid outputs)."""

    who = "logit-adjust"

    def __init__(self, data: FitData, tau: float) -> None:
        super().__init__(data.n_labels)
        self.tau = tau
        # A label never (or always) seen in training gets half an image's prior, not an infinite shift.
        half = 0.5 / data.n_samples
        self.prior = np.clip(data.label_counts / data.n_samples, half, 1.0 - half)
        self.shift = -tau * (np.log(self.prior) - np.log1p(-self.prior))

    def adjust_logits(self, logits: np.ndarray) -> np.ndarray:
        return logits + self.shift

    def fitted(self) -> dict[str, Any]:
        return {"tau": self.tau, "prior": [float(p) for p in self.prior],
                "logit_shift": [float(s) for s in self.shift]}


class TauNormalisation(LogitAdjuster):
    """z'_j = (z_j - b_j) / ||w_j||^tau + b_j: Kang et al.'s w_j / ||w_j||^tau with the bias kept."""

    who = "tau-norm"

    def __init__(self, data: FitData, head: HeadStats, tau: float) -> None:
        super().__init__(data.n_labels)
        if len(head.weight_norm) != data.n_labels:
            raise ValueError(f"tau-norm: the head has {len(head.weight_norm)} outputs but val_probs has "
                             f"{data.n_labels} labels")
        if tau > 0 and (head.weight_norm == 0).any():
            raise ValueError(f"tau-norm: the head's weight rows for labels "
                             f"{np.flatnonzero(head.weight_norm == 0).tolist()} are zero and cannot be normalised")
        self.tau, self.head = tau, head
        self.scale = head.weight_norm ** -tau if tau > 0 else np.ones(data.n_labels)

    def adjust_logits(self, logits: np.ndarray) -> np.ndarray:
        return (logits - self.head.bias) * self.scale + self.head.bias

    def fitted(self) -> dict[str, Any]:
        return {"tau": self.tau, "weight_norm": [float(v) for v in self.head.weight_norm],
                "logit_scale": [float(v) for v in self.scale]}


# -- factories --------------------------------------------------------------------------------------
def none(*, val_probs: Any, val_targets: Any, label_counts: Sequence[float], n_samples: int,
         head: HeadStats | None = None) -> Identity:
    return Identity(fit_data("none", val_probs, val_targets, label_counts, n_samples))


def temperature_scaling(*, val_probs: Any, val_targets: Any, label_counts: Sequence[float], n_samples: int,
                        head: HeadStats | None = None, per_label: bool = False,
                        temperature: float | None = None) -> TemperatureScaling:
    if not isinstance(per_label, (bool, np.bool_)):
        raise OptionError(f"temperature: per_label must be true or false, got {shown(per_label)}")
    fixed = check_number(temperature, "temperature", "temperature", 0.0, low_open=True, none=True)
    if fixed is not None and per_label:
        raise OptionError("temperature: per_label fits a temperature per label; with a fixed temperature "
                          "leave it false")
    data = fit_data("temperature", val_probs, val_targets, label_counts, n_samples)
    if fixed is None and data.val_probs.shape[0] == 0:
        raise ValueError("temperature: no validation image to fit the temperature on")
    return TemperatureScaling(data, bool(per_label), fixed)


def logit_adjust(*, val_probs: Any, val_targets: Any, label_counts: Sequence[float], n_samples: int,
                 head: HeadStats | None = None, tau: float = 1.0) -> LogitAdjustment:
    tau = check_tau(tau, "logit-adjust")
    return LogitAdjustment(fit_data("logit-adjust", val_probs, val_targets, label_counts, n_samples), tau)


def tau_norm(*, val_probs: Any, val_targets: Any, label_counts: Sequence[float], n_samples: int,
             head: HeadStats | None = None, tau: float = 1.0) -> TauNormalisation:
    tau = check_tau(tau, "tau-norm")
    data = fit_data("tau-norm", val_probs, val_targets, label_counts, n_samples)
    if head is None:
        raise ValueError("tau-norm: needs the backbone's classification head (the final linear layer's weights); "
                         "this backbone has no linear layer with one output per label")
    if not isinstance(head, HeadStats):
        raise ValueError(f"tau-norm: head must be a HeadStats, got {type(head).__name__}")
    return TauNormalisation(data, head, tau)


@hookimpl
def register_adjusters(register):
    register("none", none, summary="No adjustment: the backbone's probabilities as trained")
    register("temperature", temperature_scaling,
             summary="Temperature scaling (Guo et al. 2017): p = sigmoid(z / T), T fitted on validation NLL; "
                     "options per_label (false), temperature (fixed T, null: fit)")
    register("logit-adjust", logit_adjust,
             summary="Post-hoc logit adjustment (Menon et al. 2021): z - tau * log-odds of the training prior; "
                     "option tau (1.0)")
    register("tau-norm", tau_norm,
             summary="tau-normalisation (Kang et al. 2020): head rows w_j / ||w_j||^tau, bias kept; option tau (1.0)",
             needs_head=True)
