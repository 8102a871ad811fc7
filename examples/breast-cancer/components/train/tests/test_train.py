from sklearn.datasets import load_breast_cancer

from train import fit


def test_fit_learns_the_data():
    data = load_breast_cancer()
    model = fit(data.data.tolist(), data.target.tolist(), 1.0)
    assert model.score(data.data, data.target) > 0.95
