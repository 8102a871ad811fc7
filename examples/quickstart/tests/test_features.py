from churn.features import standardize, synthetic_customers
from churn.train import accuracy, fit


def test_synthetic_data_is_reproducible():
    assert synthetic_customers(5, seed=1) == synthetic_customers(5, seed=1)


def test_both_classes_occur():
    labels = {label for _, label in synthetic_customers(200)}
    assert labels == {0, 1}


def test_standardize_centres_each_feature():
    rows, scaling = standardize(synthetic_customers(100))
    for column in zip(*(features for features, _ in rows)):
        assert abs(sum(column) / len(column)) < 1e-9
    assert len(scaling["means"]) == 3


def test_training_beats_chance():
    rows, _ = standardize(synthetic_customers(300))
    weights, bias = fit(rows[:240], epochs=100)
    assert accuracy(weights, bias, rows[240:]) > 0.6
