"""A third-party schedule and post-hoc adjuster (docs/plugins.md, section 12)."""

import numpy as np

from mlbench import Stage, Stages, hookimpl, to_logits, to_probs


def late_class_aware(label_counts, n_samples, max_epochs, last_epochs: int = 1):
    """The recipe's training, then ``last_epochs`` more of the whole network drawn class-aware."""
    if not isinstance(last_epochs, int) or isinstance(last_epochs, bool) or last_epochs < 1:
        raise ValueError(f"late-class-aware: last_epochs must be an integer >= 1, got {last_epochs!r}")
    return Stages([Stage("main", max_epochs), Stage("late", last_epochs, sampler="class-aware")])


class PrevalenceMatch:
    """Shift each label's logits so the mean validation probability equals the validation prevalence."""

    def __init__(self, val_probs, val_targets, steps: int = 50):
        val_probs, val_targets = np.asarray(val_probs, float), np.asarray(val_targets, float)
        if val_probs.shape != val_targets.shape:
            raise ValueError(f"prevalence-match: probabilities {val_probs.shape} and targets {val_targets.shape} differ")
        z, target = to_logits(val_probs), np.clip(val_targets.mean(axis=0), 1e-3, 1 - 1e-3)
        self.shift = np.zeros(z.shape[1])
        for _ in range(steps):  # Newton steps on mean(sigmoid(z + b)) - prevalence, per label
            p = to_probs(z + self.shift)
            slope = np.maximum((p * (1 - p)).mean(axis=0), 1e-9)
            self.shift -= (p.mean(axis=0) - target) / slope

    def apply(self, probs):
        return to_probs(to_logits(np.asarray(probs, float)) + self.shift)

    def fitted(self):
        return {"shift": [round(float(b), 6) for b in self.shift]}


def prevalence_match(val_probs, val_targets, label_counts, n_samples, head, steps: int = 50):
    return PrevalenceMatch(val_probs, val_targets, steps)


@hookimpl
def register_schedules(register):
    register("late-class-aware", late_class_aware, summary="The recipe's training, then class-aware epochs")


@hookimpl
def register_adjusters(register):
    register("prevalence-match", prevalence_match, summary="Per-label logit shift matching validation prevalence")
