"""Stub ``torchvision.transforms.functional``."""

from torchvision._stub import unavailable

crop = pad = resize = resized_crop = hflip = to_tensor = normalize = unavailable
