"""Data augmentation on the fly, per batch: on the CPU (vectorised NumPy), and on a GPU for the affine transforms.

    aug = Augmenter("shift=0.1,rotate=10,noise")   # or parse_spec(...) -> {"shift": 0.1, ...}
    xb_aug = aug(xb_uint8, rng)                    # (B, H, W) or (B, 1, H, W) uint8 -> same shape

Transforms and their strengths (the default when none is given):

    shift=F     translate by a whole number of pixels, at most round(F·size) each way (0.1)
    translate=P translate by a whole number of pixels, at most P each way (2); not with shift
    rotate=D    rotate by up to ±D degrees about the centre (10)
    scale=S     zoom by a factor in [1−S, 1+S], both axes alike (0.1)
    squeeze=Q   horizontal and vertical factors drawn independently in [1−Q, 1+Q] (0.1)
    noise=σ     add Gaussian noise of standard deviation σ·255, clipped to 0–255 (0.05)
    blur=σ      Gaussian blur with a standard deviation drawn in [0, σ] pixels (1.0)

shift, rotate, scale and squeeze are one affine warp per image (inverse mapping,
bilinear interpolation, zero outside): a pure integer shift moves pixels exactly.

``AugmentedBatchIterator`` is a drop-in BatchIterator that augments every batch
and, with ``mistakes=True``, adds augmented copies of the training images the
model got wrong (checked at the start of each epoch after the first) to that
epoch's batches — the batch count stays the same, the batches grow a little.
When the images are on a GPU and the spec is affine only (no blur, noise or mistakes), each
batch is gathered, warped and normalised there in one kernel, the same bits as on the host.
"""
from __future__ import annotations

import math

import numpy as np

from . import gpu_kernels
from .backend import array_module, as_numpy, to_device
from .data.loader import BatchIterator, normalize
from .gpu_kernels import warp_inverse
from .inference import predict_logits

DEFAULTS = {"shift": 0.1, "translate": 2.0, "rotate": 10.0, "scale": 0.1, "squeeze": 0.1, "noise": 0.05, "blur": 1.0}
_AFFINE = ("shift", "translate", "rotate", "scale", "squeeze")


def parse_spec(spec, option: str = "--augment") -> dict:
    """``"shift,rotate=15"`` (or a dict) -> ``{"shift": 0.1, "rotate": 15.0}``; errors name the option."""
    if spec is None or spec == "":
        return {}
    if isinstance(spec, dict):
        items = [(str(k), v) for k, v in spec.items()]
    else:
        items = []
        for part in str(spec).split(","):
            part = part.strip()
            if not part:
                continue
            name, _, val = part.partition("=")
            items.append((name.strip(), val.strip() if val else None))
    out = {}
    for name, val in items:
        if name not in DEFAULTS:
            raise ValueError(f"{option}: unknown transform {name!r}: choose from {', '.join(DEFAULTS)} "
                             f"(e.g. {option} shift=0.1,rotate=10)")
        if name in out:
            raise ValueError(f"{option}: {name!r} is given twice")
        try:
            v = DEFAULTS[name] if val is None else float(val)
        except ValueError:
            raise ValueError(f"{option}: strength of {name!r} must be a number, got {val!r}") from None
        if not (math.isfinite(v) and v >= 0):
            raise ValueError(f"{option}: strength of {name!r} must be ≥ 0, got {val!r}")
        if name in ("scale", "squeeze") and v >= 1:
            raise ValueError(f"{option}: {name} must be < 1 (a factor in [1−{name}, 1+{name}]), got {v}")
        if name == "translate" and v != int(v):
            raise ValueError(f"{option}: translate is a whole number of pixels, got {val!r}")
        out[name] = v
    if "shift" in out and "translate" in out:
        raise ValueError(f"{option}: give shift (a fraction of the size) or translate (pixels), not both")
    if not out:
        raise ValueError(f"{option} names no transform: choose from {', '.join(DEFAULTS)}")
    return out


def affine_warp(x: np.ndarray, m: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Warp images x (B, H, W) by dest = m @ (src − c) + c + t per image, bilinear, zero outside.

    m: (B, 2, 2) acting on (col, row) coordinates; t: (B, 2) translation (dx, dy) in pixels.
    Returns float32 (B, H, W).
    """
    return warp_inverse(x, np.linalg.inv(m.astype(np.float64)), t)


def gaussian_blur(x: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """Separable Gaussian blur of float images (B, H, W) with one σ per image (σ = 0: unchanged)."""
    b, h, w = x.shape
    r = max(1, int(math.ceil(2 * float(np.max(sigma, initial=0.0)))))
    k = np.arange(-r, r + 1, dtype=np.float64)
    s = np.maximum(np.asarray(sigma, np.float64), 1e-6)[:, None]
    wts = np.exp(-0.5 * (k[None] / s) ** 2)
    wts = (wts / wts.sum(axis=1, keepdims=True)).astype(np.float32)  # (B, 2r+1)
    p = np.pad(x, ((0, 0), (0, 0), (r, r)))
    y = sum(wts[:, i, None, None] * p[:, :, i:i + w] for i in range(2 * r + 1))
    p = np.pad(y, ((0, 0), (r, r), (0, 0)))
    return sum(wts[:, i, None, None] * p[:, i:i + h, :] for i in range(2 * r + 1))


class Augmenter:
    """Random transforms of uint8 image batches; see the module docstring for the spec."""

    def __init__(self, spec="shift,rotate"):
        self.ops = parse_spec(spec)

    def __repr__(self):
        return "Augmenter(" + ",".join(f"{k}={v:g}" for k, v in self.ops.items()) + ")"

    def affine(self, b: int, h: int, w: int, rng: np.random.Generator):
        """The affine part's random maps for a batch of ``b`` images h×w: (m (b, 2, 2), t (b, 2)), drawn
        from ``rng`` in the order ``__call__`` draws them; None when the spec has no affine transform."""
        ops = self.ops
        if not any(o in ops for o in _AFFINE):
            return None
        m = np.tile(np.eye(2), (b, 1, 1))
        t = np.zeros((b, 2))
        if "squeeze" in ops:
            q = ops["squeeze"]
            m = m * rng.uniform(1 - q, 1 + q, (b, 1, 2))  # scales the columns: x and y factors
        if "scale" in ops:
            s = ops["scale"]
            m = m * rng.uniform(1 - s, 1 + s, (b, 1, 1))
        if "rotate" in ops:
            a = np.deg2rad(rng.uniform(-ops["rotate"], ops["rotate"], b))
            c, s_ = np.cos(a), np.sin(a)
            rot = np.stack([np.stack([c, -s_], -1), np.stack([s_, c], -1)], -2)
            m = rot @ m
        if "shift" in ops:
            mx, my = int(round(ops["shift"] * w)), int(round(ops["shift"] * h))
            t[:, 0] = rng.integers(-mx, mx + 1, b)
            t[:, 1] = rng.integers(-my, my + 1, b)
        if "translate" in ops:
            p = int(ops["translate"])
            t[:, 0] = rng.integers(-p, p + 1, b)
            t[:, 1] = rng.integers(-p, p + 1, b)
        return m, t

    @property
    def affine_only(self) -> bool:
        """Whether every transform is affine (then the device can run it: AugmentedBatchIterator)."""
        return bool(self.ops) and all(o in _AFFINE for o in self.ops)

    def __call__(self, x, rng: np.random.Generator) -> np.ndarray:
        x = np.asarray(x)
        if x.dtype != np.uint8:
            raise TypeError(f"augmentation expects uint8 images, got {x.dtype}")
        shape = x.shape
        if x.ndim == 4:
            if shape[1] != 1:
                raise ValueError(f"augmentation handles one-channel images, got shape {shape}")
            x = x.reshape(shape[0], shape[2], shape[3])
        if x.ndim != 3:
            raise ValueError(f"augmentation expects (B, H, W) or (B, 1, H, W) images, got shape {shape}")
        b, h, w = x.shape
        if b == 0 or not self.ops:
            return x.reshape(shape).copy()
        ops = self.ops
        y = None
        affine = self.affine(b, h, w, rng)
        if affine is not None:
            y = affine_warp(x, *affine)
        if "blur" in ops:
            y = gaussian_blur(x.astype(np.float32) if y is None else y, rng.uniform(0, ops["blur"], b))
        if "noise" in ops:
            y = (x.astype(np.float32) if y is None else y) + rng.normal(0, ops["noise"] * 255, (b, h, w)).astype(np.float32)
        if y is None:
            return x.reshape(shape).copy()
        return np.clip(np.rint(y), 0, 255).astype(np.uint8).reshape(shape)


class AugmentedBatchIterator(BatchIterator):
    """A BatchIterator whose batches are augmented on the host before normalisation.

    ``augment``: a spec string/dict or None (no augmentation of the regular samples).
    ``mistakes``: at the start of each epoch after the first, find the training images
    ``model`` classifies wrongly and add augmented copies of them to this epoch,
    spread over its batches (augmented with ``augment``, or shift+rotate when None).
    Each batch's randomness comes from ``default_rng([seed, epoch, batch])``, so a
    resumed epoch repeats the same transforms.
    """

    def __init__(self, x, y, batch_size, augment=None, mistakes: bool = False, model=None, **kw):
        super().__init__(x, y, batch_size, **kw)
        self.augmenter = Augmenter(augment) if augment else None
        self.mistakes = bool(mistakes)
        if self.mistakes and model is None:
            raise ValueError("augmenting mistakes needs the model")
        self.model = model
        self.copy_augmenter = self.augmenter or Augmenter("shift,rotate")
        self.last_mistakes = 0

    def _mistake_indices(self) -> np.ndarray:
        xh = as_numpy(self.x)
        pred = as_numpy(predict_logits(self.model, xh, dtype=self.model.dtype).argmax(axis=1))
        wrong = np.flatnonzero(pred != as_numpy(self.y))
        self.last_mistakes = int(len(wrong))
        return wrong[: len(xh)]

    def _on_device(self) -> bool:
        """Whether the batches can be augmented where the images live (a GPU): affine transforms only,
        one-channel uint8 images already on the device, no mistakes to find."""
        x = self.x
        return (self.xp is not np and array_module(x) is self.xp and not self.mistakes
                and self.augmenter is not None and self.augmenter.affine_only and x.dtype == np.uint8
                and (x.ndim == 3 or (x.ndim == 4 and x.shape[1] == 1)))

    def _device_batches(self, step: int):
        """The batches of ``_batches``, the same images bit for bit, made on the device: the epoch's order
        and every image's inverse map and shift are drawn on the host as ``_batches`` draws them and
        uploaded once per epoch; each batch is then one kernel (gather, warp, round, normalise:
        gpu_kernels warp_norm) and one label gather — no transfer, no host round trip per step."""
        xp, n, b, nb = self.xp, len(self.x), self.batch_size, len(self)
        h, w = self.x.shape[-2:]
        perm = np.random.default_rng(self.seed + self.epoch).permutation(n) if self.shuffle else np.arange(n)
        affine = np.zeros((n, 6))
        for i in range(step, nb):
            lo, hi = i * b, min((i + 1) * b, n)
            m, t = self.augmenter.affine(hi - lo, h, w, np.random.default_rng([self.seed, self.epoch, i]))
            affine[lo:hi, :4] = np.linalg.inv(m.astype(np.float64)).reshape(-1, 4)
            affine[lo:hi, 4:] = t
        pdev, adev = to_device(perm, xp), to_device(affine, xp)
        dt = np.dtype(self.dtype)
        scale, shift = dt.type(1.0 / (255.0 * self.std)), dt.type(-self.mean / self.std)
        warp = gpu_kernels.kernel(xp, "warp_norm", dt)
        x = xp.ascontiguousarray(self.x)
        y_here = array_module(self.y) is xp
        for i in range(step, nb):
            lo, hi = i * b, min((i + 1) * b, n)
            xb = xp.empty((hi - lo, 1, h, w), dt)
            warp(x, pdev, adev, lo, h, w, scale, shift, xb)
            yb = self.y[pdev[lo:hi]] if y_here else to_device(as_numpy(self.y)[perm[lo:hi]], xp)
            yield xb, yb.astype(np.int64, copy=False)
        self.epoch += 1

    def _batches(self, step: int):
        if self._on_device():
            yield from self._device_batches(step)
            return
        n, b, nb = len(self.x), self.batch_size, len(self)
        perm = np.random.default_rng(self.seed + self.epoch).permutation(n) if self.shuffle else np.arange(n)
        extra = np.empty(0, np.int64)
        if self.mistakes and self.epoch > 0:
            extra = np.random.default_rng([self.seed, self.epoch]).permutation(self._mistake_indices())
        parts = np.array_split(extra, nb)
        ymod = array_module(self.y)
        for i in range(step, nb):
            rng = np.random.default_rng([self.seed, self.epoch, i])
            idx = perm[i * b:min((i + 1) * b, n)]
            xb = as_numpy(self.x[to_device(idx, array_module(self.x))])
            if self.augmenter is not None:
                xb = self.augmenter(xb, rng)
            if len(parts[i]):
                xe = self.copy_augmenter(as_numpy(self.x[to_device(parts[i], array_module(self.x))]), rng)
                xb = np.concatenate([xb, xe])
                idx = np.concatenate([idx, parts[i]])
            yb = self.y[to_device(idx, ymod)]
            yield (normalize(xb, self.xp, self.dtype, self.mean, self.std),
                   to_device(yb, self.xp).astype(np.int64, copy=False))
        self.epoch += 1


def maybe_wrap(batches: BatchIterator, config, model) -> BatchIterator:
    """``batches`` as an AugmentedBatchIterator when ``config.augment`` or
    ``config.augment_mistakes`` asks for it, else unchanged (the Trainer's hook)."""
    spec = getattr(config, "augment", None)
    mistakes = bool(getattr(config, "augment_mistakes", False))
    if not spec and not mistakes:
        return batches
    return AugmentedBatchIterator(batches.x, batches.y, batches.batch_size, augment=spec, mistakes=mistakes,
                                  model=model, shuffle=batches.shuffle, seed=batches.seed, xp=batches.xp,
                                  dtype=batches.dtype, drop_last=batches.drop_last, mean=batches.mean,
                                  std=batches.std, drop_single=batches.drop_single)
