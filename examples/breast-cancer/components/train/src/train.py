"""Fits a scaled logistic regression on a CSV whose last column is the label."""

import argparse
import csv
import os
import pickle

from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler


def read_csv(path):
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    features = [[float(x) for x in row[:-1]] for row in rows[1:]]
    labels = [int(row[-1]) for row in rows[1:]]
    return features, labels


def fit(features, labels, c):
    model = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=1000))
    model.fit(features, labels)
    return model


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--train", required=True)
    parser.add_argument("--c", type=float, default=1.0)
    parser.add_argument("--model", required=True)
    args = parser.parse_args()
    features, labels = read_csv(args.train)
    model = fit(features, labels, args.c)
    os.makedirs(os.path.dirname(args.model) or ".", exist_ok=True)
    with open(args.model, "wb") as f:
        pickle.dump(model, f)
    print(f"trained on {len(labels)} rows (C={args.c})")


if __name__ == "__main__":
    main()
