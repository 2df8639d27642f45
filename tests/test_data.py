"""Datasets without downloads: digits, image folders (dir and zip), arrays, torch datasets."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from nas.data import (
    TorchDatasetData,
    batches,
    eval_batches,
    from_arrays,
    load_data,
    load_digits,
    load_image_folder,
    resize,
    split,
    steps_per_epoch,
)

MNIST_ZIP = Path(__file__).resolve().parents[2] / "shared" / "data" / "images" / "mnist_png.zip"


def _write_folder(root: Path, *, rgb: bool) -> None:
    from PIL import Image

    rng = np.random.default_rng(0)
    for split_name, n in (("train", 4), ("test", 2)):
        for cls in ("cat", "dog", "emu"):
            folder = root / split_name / cls
            folder.mkdir(parents=True)
            for i in range(n):
                shape = (6, 6, 3) if rgb else (6, 6)
                Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8)).save(
                    folder / f"{i}.png"
                )


def test_digits_are_normalised_three_channel_batches() -> None:
    data = load_digits()
    assert len(data) == 1797 and data.num_classes == 10
    x, y = data.batch(np.arange(500))
    assert x.shape == (500, 3, 8, 8) and x.dtype == torch.float32 and y.dtype == torch.int64
    assert torch.equal(x[:, 0], x[:, 2])  # grey repeated
    assert abs(float(x.mean())) < 0.1 and 0.8 < float(x.std()) < 1.2


def test_image_folder_reads_directory_and_zip_identically(tmp_path: Path) -> None:
    _write_folder(tmp_path / "imgs", rgb=True)
    archive = tmp_path / "imgs.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for f in sorted((tmp_path / "imgs").rglob("*.png")):
            z.write(f, f.relative_to(tmp_path / "imgs").as_posix())
    from_dir = load_image_folder(tmp_path / "imgs", "train")
    from_zip = load_image_folder(archive, "train")
    assert from_dir.classes == ["cat", "dog", "emu"] and len(from_dir) == 12
    assert torch.equal(from_dir.images, from_zip.images)
    assert torch.equal(from_dir.labels, from_zip.labels)
    assert from_dir.images.shape == (12, 3, 6, 6)
    assert len(load_image_folder(archive, "test")) == 6


def test_image_folder_errors_name_the_problem(tmp_path: Path) -> None:
    _write_folder(tmp_path / "imgs", rgb=False)
    with pytest.raises(ValueError, match=r"no images under 'val'.*splits: \['test', 'train'\]"):
        load_image_folder(tmp_path / "imgs", "val")
    with pytest.raises(FileNotFoundError):
        load_image_folder(tmp_path / "missing", "train")
    assert load_image_folder(tmp_path / "imgs", "train").images.shape[1] == 1


@pytest.mark.skipif(not MNIST_ZIP.exists(), reason="shared MNIST zip not present")
def test_mnist_zip_is_read_in_place_with_a_seeded_subset() -> None:
    a = load_image_folder(MNIST_ZIP, "test", limit=60, seed=1)
    b = load_image_folder(MNIST_ZIP, "test", limit=60, seed=1)
    assert len(a) == 60 and a.num_classes == 10 and a.images.shape[1:] == (1, 28, 28)
    assert torch.equal(a.images, b.images)
    assert a.images.dtype == torch.uint8 and int(a.images.max()) > 200


@pytest.mark.parametrize(
    ("shape", "expected"),
    [((10, 5, 7), (10, 3, 5, 7)), ((10, 5, 7, 3), (10, 3, 5, 7)), ((10, 3, 5, 7), (10, 3, 5, 7))],
)
def test_from_arrays_accepts_common_layouts(shape: tuple[int, ...], expected: tuple) -> None:
    images = np.random.default_rng(0).integers(0, 255, shape, dtype=np.uint8)
    data = from_arrays(images, np.arange(10) % 4)
    assert data.num_classes == 4
    assert data.batch(np.arange(10))[0].shape == expected


def test_from_arrays_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="labels must be"):
        from_arrays(np.zeros((4, 5, 5)), np.zeros(3))
    with pytest.raises(ValueError, match="num_classes=2"):
        from_arrays(np.zeros((4, 5, 5)), np.array([0, 1, 2, 1]), num_classes=2)


def test_torch_dataset_wrapper() -> None:
    ds = torch.utils.data.TensorDataset(torch.rand(6, 1, 4, 4), torch.tensor([0, 1, 0, 1, 2, 2]))
    data = TorchDatasetData(ds, num_classes=3)
    x, y = data.batch(np.array([5, 0]))
    assert x.shape == (2, 3, 4, 4) and y.tolist() == [2, 0]
    assert torch.equal(x[0, 1], ds[5][0][0])


def test_split_is_deterministic_and_disjoint() -> None:
    data = load_data("digits", limit=300, seed=0)
    train, val = split(data, 0.25, seed=4)
    train2, val2 = split(data, 0.25, seed=4)
    assert np.array_equal(train.indices, train2.indices) and np.array_equal(
        val.indices, val2.indices
    )
    assert len(val) == 75 and len(train) == 225
    assert not set(train.indices) & set(val.indices)
    assert not np.array_equal(split(data, 0.25, seed=5)[1].indices, val.indices)
    with pytest.raises(ValueError, match="val_fraction"):
        split(data, 1.5, seed=0)


def test_batches_resume_and_shard_consistently() -> None:
    data = load_data("digits", limit=100, seed=0)
    full = [y for _, y in batches(data, 10, seed=1, epoch=2)]
    assert len(full) == steps_per_epoch(data, 10) == 10
    tail = [y for _, y in batches(data, 10, seed=1, epoch=2, start=6)]
    assert all(torch.equal(a, b) for a, b in zip(full[6:], tail)) and len(tail) == 4
    assert not torch.equal(full[0], next(iter(batches(data, 10, seed=1, epoch=3)))[1])
    rank0 = [y for _, y in batches(data, 5, seed=1, epoch=2, rank=0, world_size=2)]
    rank1 = [y for _, y in batches(data, 5, seed=1, epoch=2, rank=1, world_size=2)]
    assert all(torch.equal(torch.cat([a, b]), f) for a, b, f in zip(rank0, rank1, full))
    with pytest.raises(ValueError, match="batch_size=200"):
        steps_per_epoch(data, 200)


def test_eval_batches_cover_everything_once() -> None:
    data = load_data("digits", limit=23, seed=0)
    labels = torch.cat([y for _, y in eval_batches(data, 10)])
    assert torch.equal(labels, data.labels)
    assert len(list(eval_batches(data, 10, limit=2))) == 2


def test_resize_changes_resolution_only() -> None:
    x = torch.rand(2, 3, 8, 8)
    assert resize(x, 24).shape == (2, 3, 24, 24)
    assert resize(x, 8) is x and resize(x, None) is x
    assert torch.allclose(resize(torch.ones(1, 3, 8, 8), 16), torch.ones(1, 3, 16, 16))


def test_torch_dataset_of_pil_images() -> None:
    from PIL import Image

    pixels = np.random.default_rng(0).integers(0, 256, (2, 5, 5, 3), dtype=np.uint8)

    class PilDataset(torch.utils.data.Dataset):
        def __len__(self) -> int:
            return 2

        def __getitem__(self, i: int) -> tuple:
            return Image.fromarray(pixels[i]), i

    x, y = TorchDatasetData(PilDataset(), num_classes=2).batch(np.array([1]))
    assert x.shape == (1, 3, 5, 5) and y.tolist() == [1]
    assert torch.allclose(x[0, 2], torch.tensor(pixels[1, :, :, 2] / 255.0, dtype=torch.float32))
