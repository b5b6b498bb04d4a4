"""The pure metric functions against independent references: scipy sqrtm, numpy loops, hand tables."""
import importlib
import math

import numpy as np
import pytest
import scipy.linalg
import torch

from ganforge.metrics import FeatureStats, MetricError, frechet_distance, inception_score, kid, precision_recall


def stats_of(features):
    return features.mean(axis=0), np.cov(features, rowvar=False)


def fid_with_sqrtm(mu1, sigma1, mu2, sigma2):
    """pytorch-fid's formula: scipy sqrtm of Σ1Σ2, ε·I retry when not finite, real part."""
    covmean = scipy.linalg.sqrtm(sigma1 @ sigma2)
    if not np.isfinite(covmean).all():
        offset = np.eye(len(sigma1)) * 1e-6
        covmean = scipy.linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    diff = mu1 - mu2
    return diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean.real)


# --- Fréchet distance ----------------------------------------------------------------------------


def test_fid_matches_sqrtm_on_well_conditioned_covariances():
    rng = np.random.default_rng(0)
    mix = np.eye(64) + rng.normal(size=(64, 64)) / 32
    a = rng.normal(size=(3000, 64)) @ mix + 0.3
    b = rng.normal(size=(3000, 64)) @ (mix + 0.05 * rng.normal(size=(64, 64)))
    args = (*stats_of(a), *stats_of(b))
    assert np.linalg.cond(args[1]) < 100
    expected = fid_with_sqrtm(*args)
    assert frechet_distance(*args) == pytest.approx(expected, rel=1e-6)


def test_fid_matches_sqrtm_on_rank_deficient_covariances():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(40, 96)), rng.normal(size=(50, 96)) * 1.3 + 0.2  # fewer samples than dimensions
    args = (*stats_of(a), *stats_of(b))
    assert np.linalg.matrix_rank(args[1]) == 39
    value = frechet_distance(*args)
    assert isinstance(value, float) and value > 0
    assert value == pytest.approx(fid_with_sqrtm(*args), rel=1e-4)


def test_fid_of_diagonal_gaussians_has_the_closed_form():
    mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
    var1, var2 = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 0.25])
    expected = ((mu1 - mu2) ** 2).sum() + ((np.sqrt(var1) - np.sqrt(var2)) ** 2).sum()  # 5 + 1 + 1 + 6.25
    assert frechet_distance(mu1, np.diag(var1), mu2, np.diag(var2)) == pytest.approx(expected, rel=1e-12)
    assert expected == 13.25


def test_fid_is_zero_for_identical_statistics_and_never_negative_or_complex():
    rng = np.random.default_rng(2)
    mu, sigma = stats_of(rng.normal(size=(30, 50)))  # singular: sqrtm gives complex noise here
    assert frechet_distance(mu, sigma, mu, sigma) == 0.0
    nearly = sigma + 1e-13 * np.eye(50)
    value = frechet_distance(mu, sigma, mu, nearly)
    assert isinstance(value, float) and 0.0 <= value < 1e-6


def test_fid_rejects_mismatched_statistics():
    with pytest.raises(MetricError):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(4), np.eye(4))


# --- streaming statistics -------------------------------------------------------------------------


def test_streaming_statistics_match_numpy_on_uneven_batches_with_a_large_offset():
    rng = np.random.default_rng(3)
    features = (rng.normal(size=(1000, 12)) @ rng.normal(size=(12, 12)) + 1e4).astype(np.float32)
    stats = FeatureStats()
    for start, stop in [(0, 1), (1, 8), (8, 500), (500, 997), (997, 1000)]:
        stats.update(torch.from_numpy(features[start:stop]))
    reference = features.astype(np.float64)
    assert stats.n == 1000
    np.testing.assert_allclose(stats.mean, reference.mean(axis=0), rtol=1e-14)
    np.testing.assert_allclose(stats.cov, np.cov(reference, rowvar=False), rtol=1e-9, atol=1e-9)


def test_streaming_statistics_need_two_rows_for_a_covariance():
    stats = FeatureStats()
    stats.update(np.ones((1, 3)))
    assert stats.mean.tolist() == [1, 1, 1]
    with pytest.raises(MetricError):
        stats.cov


# --- KID ---------------------------------------------------------------------------------------------


def mmd2_by_loops(x, y):
    """Unbiased MMD² written out term by term, kernel (x·y/d + 1)³."""
    m, d = len(x), x.shape[1]
    k = lambda a, b: (sum(a[i] * b[i] for i in range(d)) / d + 1) ** 3  # noqa: E731
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / (m * m)
    return xx + yy - 2 * xy


def test_kid_matches_a_direct_loop_reference_on_all_rows():
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(12, 5)), rng.normal(size=(12, 5)) + 0.5
    mean, std = kid(x, y, subsets=7, subset_size=12)  # every subset is all rows, reordered
    assert mean == pytest.approx(mmd2_by_loops(x, y), rel=1e-12)
    assert std == pytest.approx(0.0, abs=1e-12)


def test_kid_subsets_are_drawn_without_replacement_from_the_seed():
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(30, 4)), rng.normal(size=(25, 4)) * 1.5
    draw = np.random.RandomState(2020)
    values = []
    for _ in range(5):
        ix, iy = draw.choice(30, 10, replace=False), draw.choice(25, 10, replace=False)
        values.append(mmd2_by_loops(x[ix], y[iy]))
    mean, std = kid(x, y, subsets=5, subset_size=10)
    assert mean == pytest.approx(np.mean(values), rel=1e-12)
    assert std == pytest.approx(np.std(values), rel=1e-9)


def test_kid_is_near_zero_for_one_distribution_and_grows_with_a_shift():
    rng = np.random.default_rng(6)
    same = kid(rng.normal(size=(400, 16)), rng.normal(size=(400, 16)), subsets=20, subset_size=200)[0]
    shifted = kid(rng.normal(size=(400, 16)), rng.normal(size=(400, 16)) + 1, subsets=20, subset_size=200)[0]
    assert abs(same) < 0.02 < shifted


def test_kid_small_sets_shrink_the_subset_and_tiny_sets_fail():
    x = np.random.default_rng(7).normal(size=(6, 3))
    assert kid(x, x[::-1], subsets=3)[1] == pytest.approx(0, abs=1e-12)  # subset_size 1000 → 6 rows
    with pytest.raises(MetricError):
        kid(x[:1], x)


# --- Inception Score --------------------------------------------------------------------------------


def test_is_of_uniform_predictions_is_one():
    mean, std = inception_score(np.full((100, 7), 1 / 7))
    assert mean == pytest.approx(1.0, abs=1e-12) and std == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("classes", [2, 10, 1008])
def test_is_of_confident_predictions_spread_evenly_is_the_class_count(classes):
    probs = np.eye(classes)[np.arange(10 * classes) % classes]  # each split holds every class once
    mean, std = inception_score(probs, splits=10)
    assert mean == pytest.approx(classes, rel=1e-12) and std == pytest.approx(0.0, abs=1e-9)


def test_is_of_a_hand_made_table():
    probs = np.array([[1.0, 0.0], [0.5, 0.5]])  # p(y) = (0.75, 0.25)
    kl = [math.log(1 / 0.75), 0.5 * math.log(0.5 / 0.75) + 0.5 * math.log(0.5 / 0.25)]
    mean, std = inception_score(probs, splits=1)
    assert mean == pytest.approx(math.exp(sum(kl) / 2), rel=1e-12) and std == 0.0


def test_is_splits_and_shuffle_follow_torch_fidelity():
    probs = np.eye(4)[np.repeat(np.arange(4), 25)]  # sorted by class: each of 4 splits holds one class
    assert inception_score(probs, splits=4) == pytest.approx((1.0, 0.0))
    shuffled = probs[np.random.RandomState(2020).permutation(100)]
    expected = [np.exp(np.log(len(chunk) / chunk.sum(0)[chunk.argmax(1)]).mean())
                for chunk in np.split(shuffled, 4)]
    assert inception_score(probs, splits=4, shuffle_seed=2020) == pytest.approx((np.mean(expected), np.std(expected)))


# --- precision / recall -----------------------------------------------------------------------------


def pr_by_brute_force(real, fake, k):
    def radii(points):
        d = np.linalg.norm(points[:, None] - points[None], axis=2)
        return np.sort(d, axis=1)[:, k]  # column 0 is the point itself

    def share_inside(queries, centres, r):
        d = np.linalg.norm(queries[:, None] - centres[None], axis=2)
        return float((d <= r[None]).any(axis=1).mean())

    return share_inside(fake, real, radii(real)), share_inside(real, fake, radii(fake))


def test_pr_of_identical_sets_is_one_and_of_far_disjoint_sets_zero():
    points = np.random.default_rng(8).normal(size=(200, 8))
    assert precision_recall(points, points.copy()) == (1.0, 1.0)
    assert precision_recall(points, points + 100.0) == (0.0, 0.0)


def test_pr_uses_the_kth_neighbour_radius_inclusive():
    real = np.array([[0.0], [1.0], [3.0]])  # k=1 radii: 1, 1, 2
    fake = np.array([[-1.0], [1.9], [5.5]])  # -1 on the edge of 0's ball, 1.9 inside 1's, 5.5 outside
    precision, recall = precision_recall(real, fake, k=1)
    assert precision == pytest.approx(2 / 3)
    assert (precision, recall) == pytest.approx(pr_by_brute_force(real, fake, 1))


def test_pr_matches_brute_force_with_small_blocks(monkeypatch):
    rng = np.random.default_rng(9)
    real, fake = rng.normal(size=(150, 6)), rng.normal(size=(120, 6)) * 1.4 + 0.5
    monkeypatch.setattr(importlib.import_module("ganforge.metrics.precision_recall"), "BLOCK_ELEMENTS", 2000)  # many row blocks
    result = precision_recall(real, fake, k=3)
    assert result == pytest.approx(pr_by_brute_force(real, fake, 3))
    assert 0.2 < result[0] < 1 and 0.2 < result[1] < 1  # neither trivial
