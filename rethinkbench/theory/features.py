"""Fixed (untrained) feature maps for the kernel claims of Zhang et al. 2017, §5.

* `gabor_features`: a Gabor-wavelet filter bank, the preprocessing with which the paper's MNIST
  kernel error drops from 1.2% to 0.6% while the RKHS norm of the interpolant grows (~220 -> ~390).
  The paper does not give its bank; this one is fixed in advance, not tuned on the claim: Morlet
  wavelets (Gabor with the DC removed) at wavelengths 4 and 8 pixels, envelope sigma = wavelength/2,
  8 orientations; features are the modulus of each response and the image itself, each 2x2
  average-pooled (28x28 -> 14x14): (1 + 2*8) * 196 = 3,332 numbers per MNIST digit.
* `random_conv_gram`: random convolutional features (Coates & Ng style: random Gaussian 6x6 filters,
  ReLU, sum-pooled over the four image quadrants), the CIFAR-10 baseline of §5 (32,000 filters,
  17% error; 15% with l2 regularization). The features themselves are never stored: their Gram
  matrices are accumulated in float64, one block of filters at a time.
* `median_sq_distance`: the bandwidth reference, so that gamma means the same on every input
  representation (see `matched_gamma`).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from rethinkbench.base.errors import UsageError
from rethinkbench.theory.linalg import chunk_rows

GABOR_WAVELENGTHS = (4.0, 8.0)
GABOR_ORIENTATIONS = 8
GABOR_POOL = 2


def gabor_bank(wavelengths=GABOR_WAVELENGTHS, orientations: int = GABOR_ORIENTATIONS,
               dtype=torch.complex64) -> torch.Tensor:
    """Morlet filters psi(u) = g_sigma(u) (exp(i xi.u) - beta), sum |g| = 1, sum psi = 0.

    Returns (len(wavelengths) * orientations, S, S) complex, S odd, S = 2 ceil(3 sigma_max) + 1.
    """
    if not wavelengths or min(wavelengths) <= 0 or orientations < 1:
        raise UsageError(f"need positive wavelengths and >= 1 orientation, got {wavelengths!r}, "
                         f"{orientations!r}")
    half = int(math.ceil(3 * max(wavelengths) / 2))
    u = torch.arange(-half, half + 1, dtype=torch.float64)
    vv, uu = torch.meshgrid(u, u, indexing="ij")
    filters = []
    for lam in wavelengths:
        sigma = lam / 2
        g = torch.exp(-(uu**2 + vv**2) / (2 * sigma**2))
        g = g / g.sum()
        for j in range(orientations):
            theta = math.pi * j / orientations
            phase = (2 * math.pi / lam) * (uu * math.cos(theta) + vv * math.sin(theta))
            wave = torch.exp(1j * phase)
            beta = (g * wave).sum() / g.sum()
            filters.append(g * (wave - beta))
    return torch.stack(filters).to(dtype)


def gabor_features(images: torch.Tensor, *, wavelengths=GABOR_WAVELENGTHS,
                   orientations: int = GABOR_ORIENTATIONS, pool: int = GABOR_POOL,
                   device=None) -> torch.Tensor:
    """(N, C, H, W) images -> (N, C * (1 + F) * (H/pool) * (W/pool)) float32 features:
    [image, |image * psi_f| for each filter], each average-pooled by `pool`. Linear convolution by
    FFT ('same' output, zero boundary), in chunks of images sized to the device's memory."""
    if images.ndim != 4:
        raise UsageError(f"images must be (N, C, H, W), got shape {tuple(images.shape)}")
    device = torch.device(device) if device is not None else images.device
    n, c, h, w = images.shape
    bank = gabor_bank(wavelengths, orientations).to(device)
    nf, s = bank.shape[0], bank.shape[-1]
    off = s // 2
    # Circular convolution of size h + off leaves the 'same' window [off, off + h) of the linear
    # convolution free of wrap-around (the full linear result is h + s - 1 = h + 2 off long).
    ph, pw = h + off, w + off
    bank_hat = torch.fft.fft2(bank, s=(ph, pw))                   # (F, ph, pw)
    per_image = c * nf * ph * pw * 8 * 3                          # complex64 spectrum + product + out
    rows = chunk_rows(per_image, device, total=n)
    out = []
    for xc in images.split(rows):
        x = xc.to(device=device, dtype=torch.float32)
        xhat = torch.fft.fft2(x, s=(ph, pw))                      # (B, C, ph, pw)
        resp = torch.fft.ifft2(xhat[:, :, None] * bank_hat[None, None], s=(ph, pw))
        mod = resp[..., off:off + h, off:off + w].abs()           # (B, C, F, h, w)
        maps = torch.cat([x[:, :, None], mod], dim=2).flatten(1, 2)   # (B, C*(1+F), h, w)
        out.append(F.avg_pool2d(maps, pool).flatten(1))
    return torch.cat(out)


def median_sq_distance(x: torch.Tensor, *, max_points: int = 1000) -> float:
    """Median of ||x_i - x_j||^2 over pairs i < j of the first `max_points` rows (deterministic)."""
    x = x[:max_points].reshape(min(len(x), max_points), -1).to(torch.float64)
    d2 = torch.cdist(x, x).square()
    iu = torch.triu_indices(len(x), len(x), offset=1, device=x.device)
    return float(d2[iu[0], iu[1]].median())


def matched_gamma(gamma_ref: float, median_ref: float, median_new: float) -> float:
    """The gamma that puts a representation with median squared distance `median_new` at the same
    relative bandwidth as `gamma_ref` on one with `median_ref`: gamma * median is what the
    Gaussian kernel sees (and what a rescaling of the features would not change)."""
    return gamma_ref * median_ref / median_new


# ----------------------------------------------------------------------------- random conv features

def random_filters(num_filters: int, channels: int, size: int = 6, *,
                   generator: torch.Generator) -> torch.Tensor:
    """Random Gaussian filters, zero mean and unit norm each: (num_filters, channels, size, size)."""
    f = torch.randn(num_filters, channels, size, size, generator=generator, device=generator.device)
    f = f - f.mean(dim=(1, 2, 3), keepdim=True)
    return f / f.flatten(1).norm(dim=1)[:, None, None, None]


def random_conv_features(images: torch.Tensor, filters: torch.Tensor) -> torch.Tensor:
    """ReLU(conv(images, filters)) sum-pooled over the four quadrants: (N, 4 * num_filters)."""
    maps = torch.relu(F.conv2d(images, filters))                  # valid convolution
    return F.adaptive_avg_pool2d(maps, 2).flatten(1) * (maps.shape[-1] * maps.shape[-2] / 4)


def random_conv_gram(x_train: torch.Tensor, x_test: torch.Tensor, *, num_filters: int,
                     generator: torch.Generator, size: int = 6, block: int = 512,
                     device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """Gram matrices of random conv features, accumulated in float64 one filter block at a time:
    (Phi_train Phi_train^T, Phi_test Phi_train^T), each feature scaled by 1/sqrt(total features)."""
    device = torch.device(device) if device is not None else x_train.device
    n, m = len(x_train), len(x_test)
    k_train = torch.zeros(n, n, dtype=torch.float64, device=device)
    k_test = torch.zeros(m, n, dtype=torch.float64, device=device)
    scale = 1.0 / math.sqrt(4 * num_filters)
    c = x_train.shape[1]
    for start in range(0, num_filters, block):
        f = random_filters(min(block, num_filters - start), c, size, generator=generator).to(device)
        phis = []
        for x in (x_train, x_test):
            rows = chunk_rows(4 * f.shape[0] * x.shape[-1] * x.shape[-2] * 2, device, total=len(x))
            phis.append(torch.cat([random_conv_features(xc.to(device, torch.float32), f)
                                   for xc in x.split(rows)]).to(torch.float64) * scale)
        k_train.addmm_(phis[0], phis[0].T)
        k_test.addmm_(phis[1], phis[0].T)
    return k_train, k_test
