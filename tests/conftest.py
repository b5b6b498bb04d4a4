"""Fixtures more than one test file uses."""
import pytest
import torch

from ganforge.metrics.classifier import ClassifierNet, save_classifier


@pytest.fixture(scope="module")
def classifier_file(tmp_path_factory):
    torch.manual_seed(0)
    model = ClassifierNet([str(d) for d in range(10)], channels=1, input_size=16, widths=(4, 8, 8), feature_dim=16)
    path = tmp_path_factory.mktemp("clf") / "tiny.safetensors"
    save_classifier(model.eval(), path)
    return path
