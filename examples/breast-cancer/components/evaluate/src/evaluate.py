"""Scores a pickled model on a CSV test split; writes the metrics as JSON and the accuracy alone."""

import argparse
import csv
import json
import os
import pickle

from sklearn.metrics import accuracy_score, roc_auc_score


def read_csv(path):
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    return [[float(x) for x in row[:-1]] for row in rows[1:]], [int(row[-1]) for row in rows[1:]]


def score(model, features, labels):
    predicted = model.predict(features)
    probabilities = model.predict_proba(features)[:, 1]
    return {
        "accuracy": round(float(accuracy_score(labels, predicted)), 4),
        "auc": round(float(roc_auc_score(labels, probabilities)), 4),
    }


def write(path, text):
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True)
    parser.add_argument("--test", required=True)
    parser.add_argument("--metrics", required=True)
    parser.add_argument("--accuracy", required=True)
    args = parser.parse_args()
    with open(args.model, "rb") as f:
        model = pickle.load(f)
    features, labels = read_csv(args.test)
    metrics = score(model, features, labels)
    write(args.metrics, json.dumps(metrics))
    write(args.accuracy, str(metrics["accuracy"]))
    print(json.dumps(metrics))


if __name__ == "__main__":
    main()
