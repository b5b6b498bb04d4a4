"""Pictures a person looks at: sample grids and loss curves.

Studies live in `report.compare` (plan, train, evaluate, collect) and `report.html` (report.html and
report.md); import them from there: they use the trainer, which itself imports this package.
"""
from .curves import plot_losses
from .grids import image_grid, save_grid, save_points

__all__ = ["image_grid", "save_grid", "save_points", "plot_losses"]
