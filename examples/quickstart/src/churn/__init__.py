"""A tiny churn model: logistic regression written with the standard library only."""
