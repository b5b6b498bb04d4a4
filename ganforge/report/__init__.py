"""What a person looks at, rendered: sample grids, loss curves, and documents (one model in
`report.document`, rendered by `report.html` and `report.markdown`). Renders only: it imports no
training or study code, so anything above (trainer, studies) may use it. A study's report is built in
`ganforge.study.writeup`.
"""
from .curves import plot_losses
from .grids import image_grid, save_grid, save_points

__all__ = ["image_grid", "save_grid", "save_points", "plot_losses"]
