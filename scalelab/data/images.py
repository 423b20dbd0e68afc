"""Real photographs for image super-resolution, from the images scikit-image ships offline.

Two fields, both read from files installed with scikit-image (``skimage/data``; no
download at run time):

- ``photos``: natural photographs. Whole images are assigned to splits, so no pixel
  of a validation or test image is seen in training — train: astronaut, camera,
  coins, moon, brick, grass, gravel, hubble_deep_field, immunohistochemistry; val:
  chelsea, coffee; test: rocket and the left view of stereo_motorcycle. Sample ``i`` is a
  ``size × size`` crop of an image of its split, both drawn from its own seed. Grey
  levels are the luminance Y = 0.2125 R + 0.7154 G + 0.0721 B
  (``skimage.color.rgb2gray``, ITU-R BT.709); ``options.color: true`` keeps R, G, B
  as three channels (grey images repeated).
- ``faces``: the 100 face crops of the LFW subset scikit-image ships (25 × 25 pixels;
  Huang et al. 2012, "Learning to align from scratch"), split 70/15/15 by face, for
  face super-resolution as in PULSE (Menon et al. 2020) at a small size.

Values are in [0, 1]; ``options.transform`` (``zscore`` by default, from the training
images' per-channel mean and standard deviation, or ``none``) applies, and metrics are
computed back in [0, 1].
"""

from __future__ import annotations

import functools

import numpy as np

from scalelab._errors import ScalelabError, SpecError
from scalelab.data.options import SPLITS, DataOptions, parse_options

PHOTOS = {
    "train": ("astronaut", "camera", "coins", "moon", "brick", "grass", "gravel",
              "hubble_deep_field", "immunohistochemistry"),
    "val": ("chelsea", "coffee"),
    "test": ("rocket", "stereo_motorcycle"),
}
FACES = 100  # the first 100 images of skimage.data.lfw_subset() are faces
FACE_FRACTIONS = (0.7, 0.15, 0.15)


def _skimage_data():
    try:
        from skimage import data
    except ImportError:
        raise ScalelabError("the photos and faces fields read the images of scikit-image, which "
                            "is not installed; install it with `pip install scikit-image`.") from None
    return data


@functools.lru_cache(maxsize=32)
def _photo(name: str, color: bool) -> np.ndarray:
    """One photograph as ``(C, H, W)`` float64 in [0, 1]."""
    data = _skimage_data()
    image = data.stereo_motorcycle()[0] if name == "stereo_motorcycle" else getattr(data, name)()
    image = np.asarray(image, dtype=np.float64) / 255.0
    if image.ndim == 3:
        image = image[..., :3]
        if not color:
            image = image @ np.array([0.2125, 0.7154, 0.0721])
    if image.ndim == 2:
        image = np.repeat(image[None], 3, axis=0) if color else image[None]
    else:
        image = np.moveaxis(image, -1, 0)
    return image


@functools.lru_cache(maxsize=1)
def _faces() -> np.ndarray:
    return np.asarray(_skimage_data().lfw_subset()[:FACES], dtype=np.float64)


def split_images(field: str, color: bool = False) -> dict:
    """The images of each split: ``{split: [(C, H, W) arrays]}``."""
    if field == "photos":
        return {split: [_photo(name, color) for name in names] for split, names in PHOTOS.items()}
    faces = _faces()
    bounds = np.round(np.cumsum((0.0, *FACE_FRACTIONS)) * len(faces)).astype(int)
    return {split: [faces[j][None] for j in range(bounds[i], bounds[i + 1])]
            for i, split in enumerate(SPLITS)}


def check_image_options(field: str, opts: DataOptions, field_size: int | None) -> None:
    """``field_size`` must fit the smallest image of every split; only ``zscore``/``none``."""
    if not isinstance(opts.transform, str) or opts.transform == "log1p":
        raise ScalelabError(f"the {field} field takes options.transform zscore or none, got "
                            f"{opts.transform!r}.")
    if field_size is None:
        return
    smallest = min(min(image.shape[-2:]) for images in split_images(field, opts.color).values()
                   for image in images)
    if field_size > smallest:
        raise ScalelabError(f"field_size {field_size} is larger than the smallest {field} image "
                            f"({smallest} pixels a side); choose field_size <= {smallest}.")


def check_images(field: str, options: dict | None, source: str = "the spec",
                 field_size: int | None = None, scale: int = 1) -> None:
    """The check the image fields' records name, run when a spec loads; one SpecError."""
    try:
        check_image_options(field, parse_options(options), field_size)
    except SpecError:
        raise
    except ScalelabError as err:
        raise SpecError(f"{source}: {err}") from None


class ImageSource:
    """Crops of real images; the same ``read``/``to_physical`` as :class:`GriddedSource`."""

    def __init__(self, field: str, options: dict | None = None):
        self.field = field
        self.opts = parse_options(options)
        check_image_options(field, self.opts, None)
        self.images_ = split_images(field, self.opts.color)
        self.transform_ = self.opts.transform
        train = self.images_["train"]
        channels = train[0].shape[0]
        if self.transform_ == "zscore":
            pixels = np.concatenate([im.reshape(channels, -1) for im in train], axis=1)
            self.mean_, self.std_ = pixels.mean(1), pixels.std(1)
            self.std_[self.std_ == 0] = 1.0
        else:
            self.mean_, self.std_ = np.zeros(channels), np.ones(channels)
        self.row_weights_ = None

    def to_physical(self, x):
        """Model space → pixel values in [0, 1] (numpy array or torch tensor ``(N, C, H, W)``)."""
        shape = (-1, 1, 1)
        mean, std = self.mean_.reshape(shape), self.std_.reshape(shape)
        if hasattr(x, "new_tensor"):
            mean, std = x.new_tensor(mean), x.new_tensor(std)
        return x * std + mean

    def read(self, split: str, n: int, size: int, scale: int = 1, seed: int = 0,
             start: int = 0):
        from scalelab.data.gridded import Patches, _mix

        if split not in SPLITS:
            raise ScalelabError(f"unknown split {split!r}; valid choices are {', '.join(SPLITS)}.")
        check_image_options(self.field, self.opts, size)
        images = self.images_[split]
        channels = images[0].shape[0]
        out = np.empty((n, channels, size, size), dtype=np.float32)
        stream = seed * 3 + SPLITS.index(split)
        mean, std = self.mean_[:, None, None], self.std_[:, None, None]
        for i in range(n):
            rng = np.random.default_rng(_mix(stream, start + i))
            image = images[int(rng.integers(len(images)))]
            y0 = int(rng.integers(image.shape[1] - size + 1))
            x0 = int(rng.integers(image.shape[2] - size + 1))
            out[i] = (image[:, y0:y0 + size, x0:x0 + size] - mean) / std
        return Patches(out)
