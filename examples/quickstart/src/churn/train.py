"""Trains the churn model by gradient descent and writes it as JSON."""

import argparse
import json
import math
import os

from churn.features import standardize, synthetic_customers


def sigmoid(z):
    return 1.0 / (1.0 + math.exp(-z))


def fit(rows, epochs=200, rate=0.5):
    weights = [0.0] * len(rows[0][0])
    bias = 0.0
    for _ in range(epochs):
        grad_w = [0.0] * len(weights)
        grad_b = 0.0
        for features, label in rows:
            error = sigmoid(sum(w * x for w, x in zip(weights, features)) + bias) - label
            grad_w = [g + error * x for g, x in zip(grad_w, features)]
            grad_b += error
        weights = [w - rate * g / len(rows) for w, g in zip(weights, grad_w)]
        bias -= rate * grad_b / len(rows)
    return weights, bias


def accuracy(weights, bias, rows):
    hits = sum(
        (sigmoid(sum(w * x for w, x in zip(weights, f)) + bias) >= 0.5) == bool(label)
        for f, label in rows
    )
    return hits / len(rows)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--commit", default="unknown")
    args = parser.parse_args()
    rows, scaling = standardize(synthetic_customers(600))
    train, test = rows[:480], rows[480:]
    weights, bias = fit(train)
    model = {
        "commit": args.commit,
        "weights": weights,
        "bias": bias,
        "scaling": scaling,
        "accuracy": accuracy(weights, bias, test),
    }
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(model, f, indent=2)
    print(f"trained on {len(train)} customers, test accuracy {model['accuracy']:.3f}")


if __name__ == "__main__":
    main()
