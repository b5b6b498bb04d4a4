"""Evaluation: pure metric functions on features, feature extractors, and `evaluate` gluing them.

    frechet_distance(mu1, sigma1, mu2, sigma2) -> float
    inception_score(probs, splits=10) -> (mean, std)
    kid(feats1, feats2, subsets=100, subset_size=1000) -> (mean, std)
    precision_recall(real_feats, fake_feats, k=3) -> (precision, recall)
    FeatureStats: streaming float64 mean/covariance of feature batches
    InceptionV3(weights_path=None): the TF-compatible FID Inception (pool3, logits without bias)
    evaluate(source, ref=None, metrics=("fid",), n=None, ...) -> dict of results (n: 2,000 on a CPU, 10,000 on a GPU)
"""
from .errors import MetricError, WeightsError
from .evaluate import evaluate, metric_registry
from .fid import frechet_distance
from .inception import InceptionV3
from .inception_score import inception_score
from .kid import kid
from .precision_recall import precision_recall
from .stats import FeatureStats

__all__ = ["frechet_distance", "inception_score", "kid", "precision_recall", "FeatureStats", "InceptionV3",
           "evaluate", "metric_registry", "MetricError", "WeightsError"]
