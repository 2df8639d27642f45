"""Train a supernet on your own images laid out as ``split/class/image`` (folder or .zip).

Without ``--data`` the script first writes such a folder from the embedded digits dataset
(PNG files), so it runs anywhere; point ``--data`` at your own folder or zip, e.g. the MNIST
zip in ``../shared/data/images/mnist_png.zip``. The supernet is then BN-recalibrated and its
smallest, a middle and its largest subnet are scored on the ``test`` split.

Run: ``python examples/custom_dataset.py [--data PATH] [--limit 2000] [--epochs 1]``
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

import nas
from nas.data import load_digits, load_image_folder
from nas.evaluation import reference_archs


def write_digits_folder(root: Path) -> Path:
    """Write the digits dataset as ``root/{train,test}/<class>/<n>.png`` (80/20 split)."""
    data = load_digits()
    order = np.random.default_rng(0).permutation(len(data))
    for rank, index in enumerate(order):
        image, label = data.batch(np.array([index]))
        pixels = (image[0, 0].numpy() * 255).clip(0, 255).astype(np.uint8)
        split = "test" if rank < len(order) // 5 else "train"
        folder = root / split / str(int(label[0]))
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels).save(folder / f"{index}.png")
    return root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="folder or .zip with train/ and test/ splits")
    parser.add_argument("--space", default="tiny")
    parser.add_argument("--limit", type=int, default=2000, help="images per split at most")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--out", default="runs/custom-dataset")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        source = Path(args.data) if args.data else write_digits_folder(Path(tmp) / "digits")
        train = load_image_folder(source, "train", limit=args.limit, seed=0)
        test = load_image_folder(source, "test", limit=args.limit, seed=0)
    print(f"train: {train}\ntest: {test}")

    supernet = nas.create_supernet(args.space, num_classes=train.num_classes)
    config = nas.TrainConfig(schedule="sandwich", epochs=args.epochs, batch_size=64)
    nas.train_supernet(supernet, train, test, config, args.out)

    named = reference_archs(supernet.space)
    rows = nas.evaluate(supernet, list(named.values()), test, bn_data=train, n_bn_batches=10)
    for name, row in zip(named, rows):
        print(f"{name:>9}: top-1 {row['accuracy']:.2f}%  loss {row['loss']:.3f}")


if __name__ == "__main__":
    main()
