from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from evaluate import score


def test_score_reports_accuracy_and_auc():
    data = load_breast_cancer()
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    model.fit(data.data, data.target)
    metrics = score(model, data.data, data.target)
    assert set(metrics) == {"accuracy", "auc"}
    assert 0.9 < metrics["accuracy"] <= 1.0
    assert metrics["auc"] >= metrics["accuracy"] - 0.1
