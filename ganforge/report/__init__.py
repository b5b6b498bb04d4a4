"""Pictures a person looks at: sample grids and loss curves."""
from .curves import plot_losses
from .grids import image_grid, save_grid, save_points

__all__ = ["image_grid", "save_grid", "save_points", "plot_losses"]
