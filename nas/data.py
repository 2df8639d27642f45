"""Image classification data without downloads, batched and resized per architecture.

Sources: the embedded default (scikit-learn's 8x8 ``digits``), image folders laid out as
``split/class/image`` (a directory or a ``.zip`` read in place), numpy arrays, and any torch
``Dataset`` of ``(image, label)`` pairs. Every source becomes an :class:`ImageData`: a length,
``num_classes`` and ``batch(indices)`` returning float ``(N, 3, H, W)`` images and int64
labels. Batches are drawn in a deterministic order from ``(seed, epoch)`` in the training
process itself (no DataLoader workers to fork), and resized to each architecture's resolution
with :func:`resize`.

Example:
    >>> data = load_data("digits")
    >>> train, val = split(data, val_fraction=0.2, seed=0)
    >>> for x, y in batches(train, 32, seed=0, epoch=0):
    ...     x = resize(x, 24)
"""

from __future__ import annotations

import importlib.util
import io
import logging
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch
import torch.nn.functional as F

from nas.errors import ConfigError, MissingFileError

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")


@runtime_checkable
class ImageData(Protocol):
    """A labelled image set the trainer can batch."""

    num_classes: int

    def __len__(self) -> int:
        """Number of images."""
        ...

    def batch(self, indices: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """Float images ``(N, 3, H, W)`` (normalised) and int64 labels ``(N,)``."""
        ...


class TensorData:
    """Images held in memory as one tensor (uint8 or float), normalised per batch.

    Args:
        images: ``(N, C, H, W)`` with ``C`` in {1, 3}; uint8 is scaled to [0, 1].
        labels: ``(N,)`` integer class indices.
        num_classes: number of classes (default: ``labels.max() + 1``).
        classes: class names, if known.
    """

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        *,
        num_classes: int | None = None,
        classes: Sequence[str] | None = None,
    ) -> None:
        if images.ndim != 4 or images.shape[1] not in (1, 3):
            raise ConfigError(
                f"images must be (N, C, H, W) with C in 1 or 3, got {tuple(images.shape)}"
            )
        if labels.ndim != 1 or len(labels) != len(images):
            raise ConfigError(
                f"labels must be (N,) with N={len(images)} like images, got {tuple(labels.shape)}"
            )
        if len(images) == 0:
            raise ConfigError("the image set is empty")
        labels = labels.to(torch.int64)
        if int(labels.min()) < 0:
            raise ConfigError("labels must be non-negative class indices")
        n_classes = int(labels.max()) + 1 if num_classes is None else num_classes
        if int(labels.max()) >= n_classes:
            raise ConfigError(f"num_classes={n_classes} but a label is {int(labels.max())}")
        self.images = images
        self.labels = labels
        self.num_classes = n_classes
        self.classes = list(classes) if classes is not None else [str(i) for i in range(n_classes)]
        sample = _to_float(images[: min(len(images), 2048)])
        self.mean = sample.mean(dim=(0, 2, 3))
        self.std = sample.std(dim=(0, 2, 3)).clamp_min(1e-3)

    def __len__(self) -> int:
        return len(self.images)

    def __repr__(self) -> str:
        n, c, h, w = self.images.shape
        return f"TensorData({n} images, {c}x{h}x{w}, {self.num_classes} classes)"

    def batch(self, indices: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        idx = torch.as_tensor(np.asarray(indices, dtype=np.int64))
        x = (_to_float(self.images[idx]) - self.mean[:, None, None]) / self.std[:, None, None]
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        return x.contiguous(), self.labels[idx]


class SubsetData:
    """The images of ``base`` at ``indices`` (a train or validation split)."""

    def __init__(self, base: ImageData, indices: np.ndarray) -> None:
        self.base = base
        self.indices = np.asarray(indices, dtype=np.int64)
        self.num_classes = base.num_classes

    def __len__(self) -> int:
        return len(self.indices)

    def __repr__(self) -> str:
        return f"SubsetData({len(self)} of {self.base!r})"

    def batch(self, indices: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        return self.base.batch(self.indices[np.asarray(indices, dtype=np.int64)])


class TorchDatasetData:
    """Any torch ``Dataset`` whose items are ``(image, label)``: CHW tensors, HWC arrays or PIL.

    Items are fetched one by one in this process (no worker processes). Images are used as
    given (normalise them in the dataset's transform); single-channel ones are repeated to 3.
    """

    def __init__(self, dataset: Any, num_classes: int) -> None:
        if not hasattr(dataset, "__getitem__") or not hasattr(dataset, "__len__"):
            raise ConfigError("dataset must support len() and indexing (a map-style torch Dataset)")
        if not isinstance(num_classes, int) or num_classes < 1:
            raise ConfigError(f"num_classes must be a positive int, got {num_classes!r}")
        self.dataset = dataset
        self.num_classes = num_classes

    def __len__(self) -> int:
        return len(self.dataset)

    def batch(self, indices: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        images, labels = [], []
        for i in np.asarray(indices, dtype=np.int64):
            image, label = self.dataset[int(i)]
            if not torch.is_tensor(image):  # a PIL image or an array: HWC
                array = np.asarray(image)
                if array.ndim == 3 and array.shape[-1] in (1, 3):
                    array = array.transpose(2, 0, 1)
                image = torch.from_numpy(np.ascontiguousarray(array))
            if image.ndim == 2:
                image = image[None]
            images.append(_to_float(image[None])[0])
            labels.append(int(label))
        x = torch.stack(images)
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        return x.contiguous(), torch.tensor(labels, dtype=torch.int64)


# ----------------------------------------------------------------------------- sources
def load_digits() -> TensorData:
    """scikit-learn's embedded digits: 1,797 grey 8x8 images of 10 classes.

    Read straight from the CSV scikit-learn ships (importing ``sklearn.datasets`` takes
    seconds); falls back to ``sklearn.datasets.load_digits`` if the file moved.
    """
    spec = importlib.util.find_spec("sklearn")
    csv = (
        Path(spec.origin).parent / "datasets" / "data" / "digits.csv.gz"
        if spec and spec.origin
        else None
    )
    if csv is not None and csv.is_file():
        table = np.loadtxt(csv, delimiter=",")
        pixels, target = table[:, :-1].reshape(-1, 8, 8), table[:, -1].astype(np.int64)
    else:
        from sklearn.datasets import load_digits as _sk_digits

        bunch = _sk_digits()
        pixels, target = bunch.images, bunch.target
    images = torch.tensor(pixels / 16.0, dtype=torch.float32)[:, None]
    return TensorData(images, torch.tensor(target), num_classes=10)


def from_arrays(
    images: np.ndarray, labels: np.ndarray, *, num_classes: int | None = None
) -> TensorData:
    """Images from numpy: ``(N, H, W)``, ``(N, H, W, C)`` or ``(N, C, H, W)`` with C in {1, 3}.

    uint8 arrays are scaled to [0, 1]; float arrays are used as they are.
    """
    array = np.asarray(images)
    if array.ndim == 3:
        array = array[:, None]
    elif array.ndim == 4 and array.shape[-1] in (1, 3) and array.shape[1] not in (1, 3):
        array = array.transpose(0, 3, 1, 2)
    elif array.ndim != 4:
        raise ConfigError(f"images must be (N,H,W), (N,H,W,C) or (N,C,H,W), got {array.shape}")
    tensor = torch.from_numpy(np.ascontiguousarray(array))
    if tensor.dtype != torch.uint8:
        tensor = tensor.to(torch.float32)
    return TensorData(tensor, torch.as_tensor(np.asarray(labels)), num_classes=num_classes)


def load_image_folder(
    path: str | Path, split: str = "train", *, limit: int | None = None, seed: int = 0
) -> TensorData:
    """Images laid out as ``split/class/image`` in a directory or a ``.zip`` (read in place).

    Args:
        path: the folder or zip holding ``<split>/<class>/<image>``.
        split: the top-level folder to read (``train``, ``test``...).
        limit: keep a random subset of this many images (drawn with ``seed``).
        seed: seed of the subset.

    Example:
        >>> train = load_image_folder("../shared/data/images/mnist_png.zip", "train", limit=5000)
    """
    path = Path(path)
    if not path.exists():
        raise MissingFileError(f"{path}: no such file or directory")
    if path.is_file() and not zipfile.is_zipfile(path):
        raise ConfigError(f"{path}: not a directory or a .zip file")
    with _Reader(path) as reader:
        names = reader.images(split)
        if not names:
            raise ConfigError(
                f"{path}: no images under {split!r}/<class>/; splits: {reader.splits()}"
            )
        classes = sorted({name.split("/")[-2] for name in names})
        if limit is not None:
            if limit < 1:
                raise ConfigError(f"limit must be a positive int, got {limit}")
            keep = np.sort(np.random.default_rng(seed).permutation(len(names))[:limit])
            names = [names[i] for i in keep]
        log.info("decoding %d images of %s/%s", len(names), path, split)
        arrays = [reader.decode(name) for name in names]
    channels = 1 if all(a.ndim == 2 for a in arrays) else 3
    arrays = [a if a.ndim == 3 or channels == 1 else np.repeat(a[..., None], 3, -1) for a in arrays]
    shapes = {a.shape for a in arrays}
    if len(shapes) != 1:
        raise ConfigError(
            f"{path}/{split}: images differ in size {sorted(shapes)[:3]}; resize them first"
        )
    stacked = np.stack(arrays)
    stacked = stacked[:, None] if channels == 1 else stacked.transpose(0, 3, 1, 2)
    index = {c: i for i, c in enumerate(classes)}
    labels = torch.tensor([index[name.split("/")[-2]] for name in names])
    return TensorData(torch.from_numpy(np.ascontiguousarray(stacked)), labels, classes=classes)


def load_data(
    spec: str | Path, *, split: str = "train", limit: int | None = None, seed: int = 0
) -> TensorData:
    """``"digits"`` (embedded) or an image folder / zip path (see :func:`load_image_folder`)."""
    if str(spec) == "digits":
        data = load_digits()
        if limit is not None and limit < len(data):
            keep = np.sort(np.random.default_rng(seed).permutation(len(data))[:limit])
            return TensorData(data.images[keep], data.labels[keep], num_classes=10)
        return data
    return load_image_folder(spec, split, limit=limit, seed=seed)


class _Reader:
    """Lists and decodes images from a directory or a zip archive."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.zip = zipfile.ZipFile(path) if path.is_file() else None

    def __enter__(self) -> _Reader:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.zip is not None:
            self.zip.close()

    def _all(self) -> list[str]:
        if self.zip is not None:
            return [n for n in self.zip.namelist() if not n.endswith("/")]
        return [p.relative_to(self.path).as_posix() for p in self.path.rglob("*") if p.is_file()]

    def splits(self) -> list[str]:
        return sorted({n.split("/")[0] for n in self._all() if "/" in n})

    def images(self, split: str) -> list[str]:
        out = []
        for name in self._all():
            parts = name.split("/")
            # tolerate one wrapping folder (zip of "mnist_png/train/3/x.png")
            if len(parts) >= 3 and parts[-3] == split and name.lower().endswith(IMAGE_SUFFIXES):
                out.append(name)
        return sorted(out)

    def decode(self, name: str) -> np.ndarray:
        from PIL import Image

        raw = self.zip.read(name) if self.zip is not None else (self.path / name).read_bytes()
        with Image.open(io.BytesIO(raw)) as image:
            mode = "L" if image.mode in ("L", "1", "I;16", "I") else "RGB"
            return np.asarray(image.convert(mode), dtype=np.uint8)


# ----------------------------------------------------------------------------- batching
def split(data: ImageData, val_fraction: float, seed: int) -> tuple[SubsetData, SubsetData]:
    """A deterministic (by ``seed``) random train/validation split."""
    if not 0.0 < val_fraction < 1.0:
        raise ConfigError(f"val_fraction must be in (0, 1), got {val_fraction}")
    order = np.random.default_rng(seed).permutation(len(data))
    n_val = max(1, round(len(data) * val_fraction))
    if n_val >= len(data):
        raise ConfigError(f"val_fraction={val_fraction} leaves no training images of {len(data)}")
    return SubsetData(data, np.sort(order[n_val:])), SubsetData(data, np.sort(order[:n_val]))


def steps_per_epoch(data: ImageData, batch_size: int, world_size: int = 1) -> int:
    """Full batches per epoch when each of ``world_size`` ranks takes ``batch_size`` images."""
    steps = len(data) // (batch_size * world_size)
    if steps < 1:
        raise ConfigError(
            f"batch_size={batch_size} x {world_size} worker(s) exceeds the {len(data)} images"
        )
    return steps


def batches(
    data: ImageData,
    batch_size: int,
    *,
    seed: int,
    epoch: int,
    start: int = 0,
    rank: int = 0,
    world_size: int = 1,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Shuffled full batches of epoch ``epoch``, from batch ``start`` on (to resume).

    The order depends only on ``(seed, epoch)``, so every rank and every resumed run sees the
    same sequence; rank ``r`` takes slice ``r`` of each global batch of ``batch_size *
    world_size`` images.
    """
    n_steps = steps_per_epoch(data, batch_size, world_size)
    order = np.random.default_rng([seed, epoch]).permutation(len(data))
    global_batch = batch_size * world_size
    for step in range(start, n_steps):
        chunk = order[step * global_batch : (step + 1) * global_batch]
        yield data.batch(chunk[rank * batch_size : (rank + 1) * batch_size])


def eval_batches(
    data: ImageData, batch_size: int, *, limit: int | None = None
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Batches in index order (the last one may be short); at most ``limit`` batches."""
    n = len(data)
    n_batches = -(-n // batch_size)
    if limit is not None:
        n_batches = min(n_batches, limit)
    for b in range(n_batches):
        yield data.batch(np.arange(b * batch_size, min(n, (b + 1) * batch_size)))


def resize(images: torch.Tensor, resolution: int | None) -> torch.Tensor:
    """Bilinearly resize ``(N, C, H, W)`` images to ``resolution`` (``None``: unchanged)."""
    if resolution is None or images.shape[-1] == resolution == images.shape[-2]:
        return images
    return F.interpolate(
        images, size=(resolution, resolution), mode="bilinear", align_corners=False
    )


def _to_float(images: torch.Tensor) -> torch.Tensor:
    if images.dtype == torch.uint8:
        return images.to(torch.float32) / 255.0
    return images.to(torch.float32)
