"""Built-in training schedules: what is trained, on what order of images, with which loss, and for how long.

A schedule plugin registers ``factory(label_counts, n_samples, max_epochs, **options)``: the
training split's positives per label, its image count and the recipe's epoch budget. The returned
object has ``stages() -> Sequence[Stage]``: the stages training goes through, in order. Each stage
starts from the weights the previous one ended with (its best epoch by validation loss when it stops
early, else its last epoch), keeps its own early stopping, and may

- train the whole network (``trains="all"``), only the classification head with the body frozen
  (``"head"``), or only a learnt per-label scale of the frozen network's logits (``"head-scale"``);
- re-initialise the head first (``reset_head``);
- draw images with another sampler (``sampler``, ``sampler_options``);
- add loss options (``loss_options``, merged over the recipe's: e.g. ``label_weights``).

The epoch counter runs on across stages (epoch seeds, checkpoints and histories see one sequence),
so a killed run resumes inside any stage. The head is the network's last ``nn.Linear`` with one
output per label (:func:`mlbench.models.adjusters.find_head`).

Built-ins:

- ``standard``: one stage, the recipe's training (the paper's).
- ``drw``: deferred re-weighting (Cao et al., "Learning Imbalanced Datasets with Label-Distribution-Aware
  Margin Loss", NeurIPS 2019): ``defer_epochs`` epochs (default 60% of the budget) with the
  recipe's loss as it is, then the rest of the budget with per-label ``label_weights``, by default
  the class-balanced weights of Cui et al. (CVPR 2019) with ``beta`` (0.9999). The loss must take
  a ``label_weights`` option (every built-in loss does).
- ``crt``: classifier re-training (Kang et al., "Decoupling Representation and Classifier for
  Long-Tailed Recognition", ICLR 2020): after the recipe's training, the body frozen, the head
  re-initialised and trained for ``epochs`` (default 10) with class-aware sampling.
- ``balanced-mixup``: Galdran et al., "Balanced-MixUp for Highly Imbalanced Medical Image
  Classification" (MICCAI 2021): every batch of the recipe's sampler is mixed with a batch of
  class-aware sampling, x = lam * x_instance + (1 - lam) * x_class (targets alike), lam ~
  Beta(``alpha``, 1) per step (default 0.2). A mixing remedy is a schedule because it changes what
  each training step sees, with a second sampler, over a stated span of epochs — not the loss.
- ``lws``: learnable weight scaling (Kang et al. 2020): after the recipe's training, everything
  frozen and a per-label scale of the logits learnt for ``epochs`` with class-aware sampling; the
  scale is folded into the head's weights, so the checkpoint is a plain model of the backbone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from mlbench import hookimpl
from mlbench.foundations.options import OptionError, check_number

TRAINS = ("all", "head", "head-scale")


@dataclass(frozen=True)
class Stage:
    """One stage of training (see the module docstring)."""

    name: str
    epochs: int  # at most this many epochs
    early_stopping: bool = True  # stop after the recipe's patience without improvement; end on the best epoch
    trains: str = "all"
    reset_head: bool = False
    sampler: str | None = None  # None: the recipe's sampler
    sampler_options: Mapping[str, Any] = field(default_factory=dict)
    loss_options: Mapping[str, Any] = field(default_factory=dict)  # over the recipe's loss options
    # Mixing (Balanced-MixUp): each batch becomes lam * batch + (1 - lam) * a batch of this sampler,
    # images and targets alike, lam ~ Beta(mix_alpha, 1) per step.
    mix_sampler: str | None = None
    mix_sampler_options: Mapping[str, Any] = field(default_factory=dict)
    mix_alpha: float = 0.2

    def describe(self) -> dict[str, Any]:
        """The stage as the manifest records it (JSON)."""
        return {"name": self.name, "epochs": self.epochs, "early_stopping": self.early_stopping,
                "trains": self.trains, "reset_head": self.reset_head, "sampler": self.sampler,
                "sampler_options": dict(self.sampler_options),
                "loss_options": sorted(self.loss_options),  # names only: weights are long vectors
                **({"mix_sampler": self.mix_sampler, "mix_sampler_options": dict(self.mix_sampler_options),
                    "mix_alpha": self.mix_alpha} if self.mix_sampler else {})}


def _epochs(value: Any, option: str, who: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise OptionError(f"{who}: {option} must be an integer >= 1, got {value!r}")
    return value


class Stages:
    """A fixed list of stages (what every built-in schedule returns)."""

    def __init__(self, stages: Sequence[Stage]) -> None:
        self._stages = tuple(stages)

    def stages(self) -> tuple[Stage, ...]:
        return self._stages


def standard(label_counts: Sequence[int], n_samples: int, max_epochs: int) -> Stages:
    return Stages([Stage("main", max_epochs)])


def drw(label_counts: Sequence[int], n_samples: int, max_epochs: int, defer_epochs: int | None = None,
        beta: float = 0.9999, label_weights: Sequence[float] | None = None) -> Stages:
    if max_epochs < 2:
        raise OptionError(f"drw: needs an epoch budget (--epochs) of at least 2, one before the switch and one after, got "
                          f"{max_epochs}")
    defer = int(round(0.6 * max_epochs)) if defer_epochs is None else _epochs(defer_epochs, "defer_epochs", "drw")
    defer = min(max(defer, 1), max_epochs - 1) if defer_epochs is None else defer
    if defer >= max_epochs:
        raise OptionError(f"drw: defer_epochs must be below the epoch budget {max_epochs}, got {defer}")
    check_number(beta, "drw", "beta", low=0.0, high=1.0, low_open=True, high_open=True)
    if label_weights is None:
        from mlbench.models.losses import effective_number_weights

        weights = list(effective_number_weights(label_counts, beta))
    else:
        weights = [float(w) for w in label_weights]
    # The first stage runs its epochs out: the switch happens exactly at epoch ``defer``.
    return Stages([Stage("main", defer, early_stopping=False),
                   Stage("drw", max_epochs - defer, loss_options={"label_weights": weights})])


def crt(label_counts: Sequence[int], n_samples: int, max_epochs: int, epochs: int = 10,
        sampler: str = "class-aware", reset_head: bool = True) -> Stages:
    if not isinstance(reset_head, bool):
        raise OptionError(f"crt: reset_head must be true or false, got {reset_head!r}")
    return Stages([Stage("main", max_epochs),
                   Stage("crt", _epochs(epochs, "epochs", "crt"), trains="head", reset_head=reset_head,
                         sampler=sampler)])


def lws(label_counts: Sequence[int], n_samples: int, max_epochs: int, epochs: int = 10,
        sampler: str = "class-aware") -> Stages:
    return Stages([Stage("main", max_epochs),
                   Stage("lws", _epochs(epochs, "epochs", "lws"), trains="head-scale", sampler=sampler)])


def balanced_mixup(label_counts: Sequence[int], n_samples: int, max_epochs: int, alpha: float = 0.2,
                   sampler: str = "class-aware") -> Stages:
    check_number(alpha, "balanced-mixup", "alpha", low=0.0, low_open=True)
    return Stages([Stage("main", max_epochs, mix_sampler=sampler, mix_alpha=float(alpha))])


@hookimpl
def register_schedules(register):
    register("standard", standard, summary="One stage: the recipe's training (paper)")
    register("drw", drw, summary="Deferred re-weighting (Cao et al. 2019): label_weights from epoch defer_epochs "
                                 "(60% of max_epochs); options defer_epochs, beta (0.9999), label_weights")
    register("crt", crt, summary="Classifier re-training (Kang et al. 2020): frozen body, head re-initialised and "
                                 "trained with class-aware sampling; options epochs (10), sampler, reset_head")
    register("lws", lws, summary="Learnable weight scaling (Kang et al. 2020): a per-label logit scale learnt on "
                                 "the frozen network; options epochs (10), sampler",
             excludes=("tau-norm",), excludes_why="both rebalance the classifier's per-label weight norms")
    register("balanced-mixup", balanced_mixup,
             summary="Balanced-MixUp (Galdran et al. 2021): each batch mixed with a class-aware one, "
                     "lam ~ Beta(alpha, 1) on the uniform batch; options alpha (0.2), sampler")
