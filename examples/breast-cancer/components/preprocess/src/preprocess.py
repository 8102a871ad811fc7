"""Splits scikit-learn's breast cancer data set into train and test CSV files.

The data set ships with scikit-learn, so nothing is downloaded.
"""

import argparse
import csv
import os

from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split


def split(test_size, seed):
    """Returns (header, train_rows, test_rows); the label is the last column."""
    data = load_breast_cancer()
    header = [name.replace(" ", "_") for name in data.feature_names] + ["label"]
    rows = [list(features) + [int(label)] for features, label in zip(data.data, data.target)]
    train, test = train_test_split(
        rows, test_size=test_size, random_state=seed, stratify=[r[-1] for r in rows]
    )
    return header, train, test


def write_csv(path, header, rows):
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--test-size", type=float, default=0.25)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--train", required=True)
    parser.add_argument("--test", required=True)
    args = parser.parse_args()
    header, train, test = split(args.test_size, args.seed)
    write_csv(args.train, header, train)
    write_csv(args.test, header, test)
    print(f"train: {len(train)} rows, test: {len(test)} rows, {len(header) - 1} features")


if __name__ == "__main__":
    main()
