from preprocess import split


def test_split_sizes_and_stratification():
    header, train, test = split(0.25, 42)
    assert header[-1] == "label"
    assert len(train) + len(test) == 569
    assert abs(len(test) - 0.25 * 569) <= 1
    share = sum(r[-1] for r in test) / len(test)
    assert 0.55 < share < 0.70


def test_split_is_reproducible():
    assert split(0.2, 7)[2] == split(0.2, 7)[2]
