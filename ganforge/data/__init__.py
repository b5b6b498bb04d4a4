"""Training data: image folders, MNIST, the procedural `shapes` images and 2-D toy mixtures, and their conditions."""
from .conditions import Conditions, build_conditions
from .dataset import Dataset, datasets
from .load import load_dataset
from .mnist import read_idx
from .sampler import BatchSampler
from .shapes import read_attributes
from .toy2d import mode_coverage

__all__ = ["Conditions", "Dataset", "datasets", "build_conditions", "load_dataset", "BatchSampler", "read_idx",
           "read_attributes", "mode_coverage"]
