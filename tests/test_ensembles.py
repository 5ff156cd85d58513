"""The paper's ensembles on hand-made probabilities with hand-computed answers."""

import numpy as np
import pytest

from mlbench.models.ensembles import CombineThenPredict, LabelwiseVote, ModeOfLabelSets

# 3 models x 2 samples x 3 labels
PROBS = np.array([
    [[0.9, 0.2, 0.6], [0.1, 0.8, 0.4]],
    [[0.7, 0.6, 0.3], [0.2, 0.9, 0.7]],
    [[0.2, 0.7, 0.1], [0.3, 0.1, 0.8]],
])


def test_ctp_is_mean_then_threshold():
    scores, decisions = CombineThenPredict().combine(PROBS)
    np.testing.assert_allclose(scores, [[0.6, 0.5, 1.0 / 3], [0.2, 0.6, 19 / 30]])
    np.testing.assert_array_equal(decisions, [[1, 1, 0], [0, 1, 1]])  # 0.5 counts as positive


def test_ptc_labelwise_majority():
    # decisions per model: sample 0: [1,0,1],[1,1,0],[0,1,0] ; sample 1: [0,1,0],[0,1,1],[0,0,1]
    scores, decisions = LabelwiseVote().combine(PROBS)
    np.testing.assert_array_equal(decisions, [[1, 1, 0], [0, 1, 1]])
    np.testing.assert_array_equal(scores, decisions)


def test_ptc_labelwise_tie_is_negative_with_even_models():
    probs = np.array([[[0.9]], [[0.1]]])
    assert LabelwiseVote().combine(probs)[1][0, 0] == 0


def test_ptc_mode_most_frequent_set():
    probs = np.array([
        [[0.9, 0.1]],  # {0}
        [[0.8, 0.2]],  # {0}
        [[0.1, 0.9]],  # {1}
    ])
    scores, decisions = ModeOfLabelSets().combine(probs)
    np.testing.assert_array_equal(decisions, [[1, 0]])


def test_ptc_mode_tie_goes_to_earliest_model():
    # all three sets differ: each has support 1 -> model 0's set wins
    scores, decisions = ModeOfLabelSets().combine(PROBS)
    np.testing.assert_array_equal(decisions, [[1, 0, 1], [0, 1, 0]])
    # reordering the models changes the winner deterministically
    _, reordered = ModeOfLabelSets().combine(PROBS[[2, 1, 0]])
    np.testing.assert_array_equal(reordered, [[0, 1, 0], [0, 0, 1]])


@pytest.mark.parametrize("ensemble", [CombineThenPredict(), LabelwiseVote(), ModeOfLabelSets()])
def test_bad_input_is_rejected(ensemble):
    with pytest.raises(ValueError, match="models, samples, labels"):
        ensemble.combine(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="probabilities"):
        ensemble.combine(np.full((2, 1, 1), 1.5))
