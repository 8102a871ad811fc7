"""Feature preparation for the churn model."""

import math
import random


def synthetic_customers(n, seed=7):
    """Customers as (tenure_months, monthly_charge, support_calls) with a churn label.

    Short tenure, high charges and many support calls make churn likely, with noise.
    """
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        tenure = rng.randint(1, 72)
        charge = rng.uniform(20, 120)
        calls = rng.randint(0, 8)
        score = -0.06 * tenure + 0.03 * charge + 0.5 * calls - 2.0 + rng.gauss(0, 0.8)
        rows.append(((tenure, charge, calls), 1 if score > 0 else 0))
    return rows


def standardize(rows):
    """Scales every feature to zero mean and unit variance; returns the rows and the scaling."""
    columns = list(zip(*(features for features, _ in rows)))
    means = [sum(c) / len(c) for c in columns]
    stds = [math.sqrt(sum((x - m) ** 2 for x in c) / len(c)) or 1.0 for c, m in zip(columns, means)]
    scaled = [
        (tuple((x - m) / s for x, m, s in zip(features, means, stds)), label)
        for features, label in rows
    ]
    return scaled, {"means": means, "stds": stds}
