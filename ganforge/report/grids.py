"""Sample grids and animations from uint8 image batches (PIL, and imageio-ffmpeg for .mp4: torchvision does not
import here)."""
from __future__ import annotations

import math
from pathlib import Path

import torch
from PIL import Image

from ..errors import ConfigError
from ..fileio import atomic_path, write_atomic


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """Generator output in [-1, 1] → uint8 on the CPU, rounded as StyleGAN2-ADA's metrics do."""
    return (images.detach().float() * 127.5 + 128).clamp(0, 255).to(torch.uint8).cpu()


def image_grid(images: torch.Tensor, nrow: int | None = None, padding: int = 2) -> Image.Image:
    """uint8 N×C×H×W (C = 1 or 3) → one PIL image, nrow images per row, separated by black lines."""
    n, c, h, w = images.shape
    nrow = nrow or math.ceil(math.sqrt(n))
    rows = math.ceil(n / nrow)
    canvas = torch.zeros(c, rows * (h + padding) + padding, nrow * (w + padding) + padding, dtype=torch.uint8)
    for i, img in enumerate(images):
        y = padding + (i // nrow) * (h + padding)
        x = padding + (i % nrow) * (w + padding)
        canvas[:, y:y + h, x:x + w] = img
    array = canvas.permute(1, 2, 0).numpy()
    return Image.fromarray(array[:, :, 0] if c == 1 else array, mode="L" if c == 1 else "RGB")


def save_grid(images: torch.Tensor, path: str | Path, nrow: int | None = None, padding: int = 2) -> None:
    """Written atomically (a reader, e.g. the web page, never sees half an image), in the format of the suffix."""
    grid = image_grid(images, nrow, padding)
    image_format = Image.registered_extensions().get(Path(path).suffix.lower())
    write_atomic(path, lambda f: grid.save(f, format=image_format))


def save_gif(frames: torch.Tensor, path: str | Path, fps: float = 25) -> None:
    """uint8 N×C×H×W frames as an animated GIF that loops forever, `fps` frames a second, written
    atomically. GIF stores 256 colours a frame (PIL picks them), and PIL stores a frame identical to the
    one before it once, for their combined time."""
    pictures = [image_grid(frame[None], nrow=1, padding=0) for frame in frames]
    duration = round(1000 / fps)  # ms; GIF keeps hundredths of a second
    write_atomic(path, lambda f: pictures[0].save(f, format="GIF", save_all=True, append_images=pictures[1:],
                                                  duration=duration, loop=0))


def save_mp4(frames: torch.Tensor, path: str | Path, fps: float = 25) -> None:
    """uint8 N×C×H×W frames (C = 1 or 3) as an H.264 mp4 (libx264, yuv420p: what browsers and players
    decode), `fps` frames a second, written atomically. yuv420p stores colour at half resolution, so it
    needs even sides: an odd-sized frame gets one black row or column at the bottom or right."""
    imageio_ffmpeg = require_imageio_ffmpeg()
    n, c, h, w = frames.shape
    frames = torch.nn.functional.pad(frames, (0, w % 2, 0, h % 2))
    pixels = frames.permute(0, 2, 3, 1).contiguous().numpy()
    with atomic_path(path) as tmp:
        # -f mp4: the temporary file's .tmp suffix names no container; crf 18 is x264's "visually lossless",
        # cheap at these sizes; macro_block_size=1 keeps imageio-ffmpeg from resizing to multiples of 16
        writer = imageio_ffmpeg.write_frames(str(tmp), (w + w % 2, h + h % 2), pix_fmt_in=_PIXEL_FORMATS[c],
                                             pix_fmt_out="yuv420p", fps=fps, codec="libx264", quality=None,
                                             macro_block_size=1, ffmpeg_log_level="error",
                                             output_params=["-crf", "18", "-f", "mp4"])
        writer.send(None)  # starts ffmpeg
        for picture in pixels:
            writer.send(picture)
        writer.close()


_PIXEL_FORMATS = {1: "gray", 3: "rgb24"}  # ffmpeg's names for uint8 H×W×C rows


def require_imageio_ffmpeg():
    """The imageio_ffmpeg module (which ships its own ffmpeg binary), or a one-line ConfigError saying how
    to install it."""
    try:
        import imageio_ffmpeg
    except ImportError:
        raise ConfigError("writing .mp4 needs imageio-ffmpeg: pip install 'ganforge[video]'") from None
    return imageio_ffmpeg


# A walk's writer by the suffix of its file, and the check of what that writer needs installed (run
# before any frame is drawn, so a missing package is said at once).
WALK_WRITERS = {".gif": (save_gif, lambda: None), ".mp4": (save_mp4, require_imageio_ffmpeg)}


def save_points(fake: torch.Tensor, path: str | Path, real: torch.Tensor | None = None,
                title: str = "") -> None:
    """Scatter plot of generated 2-D points over the real ones (the picture of a toy mixture run)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4, 4), dpi=100)
    if real is not None:
        ax.scatter(real[:, 0].cpu(), real[:, 1].cpu(), s=2, c="#bbbbbb", label="real")
    ax.scatter(fake[:, 0].cpu(), fake[:, 1].cpu(), s=2, c="#d62728", label="generated")
    ax.set_aspect("equal")
    ax.legend(loc="upper right", fontsize=7)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    write_atomic(path, lambda f: fig.savefig(f, format=Path(path).suffix[1:].lower() or "png"))
    plt.close(fig)
