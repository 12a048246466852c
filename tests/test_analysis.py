"""Where the book compares nets that fit their training set at different speeds: converged, else at
matched training error, else at the end; each case worked by hand."""

import pytest

from alexnet_lib.analysis import comparison_epochs, is_flat, matched_readings


def test_nets_are_compared_converged_else_at_matched_training_error_else_at_the_end():
    # flat: over the last 5 epochs the loss fell by less than 2% of the value before them
    assert is_flat([3.0, 2.0, 1.00, 0.999, 0.998, 0.997, 0.996, 0.995])  # fell 0.5%
    assert not is_flat([3.0, 2.0, 1.00, 0.98, 0.96, 0.95, 0.94, 0.93])  # fell 7%
    assert not is_flat([1.0, 1.0, 1.0])  # too short to tell
    flat_loss = [2.0, 1.0] + [0.5] * 6
    errors = {"none": [[0.9, 0.6, 0.4, 0.2, 0.1, 0.1, 0.1, 0.1]], "dropout": [[0.9, 0.8, 0.6, 0.5, 0.4, 0.3, 0.3, 0.3]]}
    # both converged: at the end of each run
    ends, words, level = comparison_epochs(errors, {"none": [flat_loss], "dropout": [flat_loss]})
    assert ends == {"none": [8], "dropout": [8]} and words.startswith("after both nets converged") and level is None
    # not converged: the lowest level on the 5% grid both reached (30%): none at epoch 4, dropout at epoch 6
    falling = [2.0, 1.6, 1.3, 1.1, 0.9, 0.8, 0.7, 0.6]
    at, words, level = comparison_epochs(errors, {"none": [falling], "dropout": [flat_loss]})
    assert level == pytest.approx(0.30) and at == {"none": [4], "dropout": [6]} and "fell to 30%" in words
    # no level reached by every run after its first epoch: at the end, saying so
    stuck = {"none": [[0.5, 0.5, 0.5]], "dropout": [[0.9, 0.9, 0.9]]}
    at, words, level = comparison_epochs(stuck, {"none": [[1, 1, 1]], "dropout": [[2, 2, 2]]})
    assert at == {"none": [3], "dropout": [3]} and words.startswith("at the end of training") and level is None


class _Run:
    """A run as the chapters' trainers give it: one value per epoch in each column."""

    def __init__(self, **columns):
        self.columns = columns

    def column(self, key):
        return self.columns[key]


def test_matched_readings_read_every_run_at_its_own_epoch_of_the_matched_level():
    falling = [2.0, 1.6, 1.3, 1.1, 0.9, 0.8]  # not flat: the rule matches training error
    none = [_Run(train=[0.9, 0.6, 0.4, 0.2, 0.1, 0.1], test=[0.9, 0.7, 0.6, 0.5, 0.55, 0.6], loss=falling),
            _Run(train=[0.9, 0.7, 0.5, 0.3, 0.2, 0.1], test=[0.9, 0.8, 0.7, 0.6, 0.5, 0.5], loss=falling)]
    dropout = [_Run(train=[0.9, 0.8, 0.6, 0.5, 0.4, 0.3], test=[0.9, 0.8, 0.6, 0.5, 0.45, 0.4], loss=falling)]
    rows, words, level = matched_readings({"none": none, "dropout": dropout}, "train", "test", "loss")
    # the lowest 5% level every run reached is 30%: none's runs at epochs 4 and 4, dropout's at 6
    assert level == pytest.approx(0.30) and "fell to 30%" in words
    assert rows["none"] == {"epoch": [4, 4], "train": [0.2, 0.3], "test": [0.5, 0.6],
                            "gap": pytest.approx([0.3, 0.3])}
    assert rows["dropout"] == {"epoch": [6], "train": [0.3], "test": [0.4], "gap": pytest.approx([0.1])}
