"""The fused element-wise kernels of the lean GPU step: CUDA C for CuPy, each with a NumPy twin.

Every kernel is a ``cupy.ElementwiseKernel`` (one launch, compiled by CuPy on first use) whose
operation is written in CUDA C below; its twin is the same computation in NumPy, run by the
CuPy stand-in (``fastcnn.testing.fake_cupy``, registered with ``register_twin``) so the GPU step
runs, is counted and is tested on any machine. ``kernel(xp, name)`` returns the kernel for an
array module (built once). ``T`` is the array dtype (float32, or float64 for gradient checks);
raw arrays are C-contiguous and indexed flat.

    im2col_t        x (N, C, H, W)            -> cols (C·kh·kw, N·oh·ow)   (zero padding by index test)
    col2im_t        cols (C·kh·kw, N·oh·ow)   -> dx (N, C, H, W)           (a gather, no atomics)
    conv_pool       z (F, N, oh, ow), b (F,)  -> y = maxpool(max(z + b, 0)) (N, F, qh, qw), arg
                    (arg = the window offset p·pkw + q of the first maximum, −1 where the max ≤ 0)
    pool_scatter    dy, arg (N, F, qh, qw)  -> dz (F, N, oh, ow): dy routed to arg (else 0)
    bias_act        y (N, F) += b, then max(y, 0) when relu (in place)
    relu_colsum     dz = dy · [y > 0]; db = Σ_n dz              (one thread per feature)
    bn_train        batch norm forward in training, per feature (running statistics updated)
    bn_backward     dβ = Σ dy, dγ = Σ dy·x̂, dx = γ/σ · (dy − dβ/m − x̂·dγ/m)
                    (BatchNorm1d: one thread per feature loops over the batch)
    bn_partial, bn_finalize, bn_apply       BatchNorm2d forward in three parallel steps: each
                    (channel, sample) slice's mean and M2, merged per channel (Chan et al.), then x̂, y
    bn_bpartial, bn_bfinal, bn_bapply       its backward: slice sums of dy, dy·x̂; dβ, dγ; dx
    xent_rows       softmax cross-entropy per row: loss_n, dlogits (÷N), argmax == label
    xent_mean       loss = Σ loss_n / N, correct = Σ [argmax == label]    (one thread)
    gather_norm     y = x[idx[start + n]] · a + b  (a uint8 batch gathered and normalised)
    warp_norm       gather_norm of the affinely warped image (augmentation on the device; see warp_inverse)
    adam, sgd, ema  the optimizers' and EMA's updates over a flat buffer (see fastcnn.optim, ema)
"""
from __future__ import annotations

import re

import numpy as np

_CTYPE = {"float32": "float", "float64": "double"}

#: Rounded multiply/add (no fused multiply-add), so a kernel can match NumPy's float results bit for bit.
PREAMBLE = r"""
__device__ float mul_rn(float a, float b) { return __fmul_rn(a, b); }
__device__ double mul_rn(double a, double b) { return __dmul_rn(a, b); }
__device__ float add_rn(float a, float b) { return __fadd_rn(a, b); }
__device__ double add_rn(double a, double b) { return __dadd_rn(a, b); }
"""

_GEOM = "int32 c, int32 h, int32 w, int32 kh, int32 kw, int32 sh, int32 sw, int32 ph, int32 pw, int32 oh, int32 ow, int32 n"


# --- twins (NumPy), argument order = the kernel's: inputs, then outputs --------------------------------
def _im2col_t(x, c, h, w, kh, kw, sh, sw, ph, pw, oh, ow, n, cols):
    xpad = np.pad(x.reshape(n, c, h, w), ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    out = cols.reshape(c, kh, kw, n, oh, ow)
    for p in range(kh):
        for q in range(kw):
            out[:, p, q] = xpad[:, :, p:p + sh * (oh - 1) + 1:sh, q:q + sw * (ow - 1) + 1:sw].transpose(1, 0, 2, 3)


def _col2im_t(cols, c, h, w, kh, kw, sh, sw, ph, pw, oh, ow, n, dx):
    src = cols.reshape(c, kh, kw, n, oh, ow)
    big = np.zeros((n, c, max(h + 2 * ph, sh * (oh - 1) + kh), max(w + 2 * pw, sw * (ow - 1) + kw)), dx.dtype)
    for p in range(kh):
        for q in range(kw):
            big[:, :, p:p + sh * (oh - 1) + 1:sh, q:q + sw * (ow - 1) + 1:sw] += src[:, p, q].transpose(1, 0, 2, 3)
    dx[...] = big[:, :, ph:ph + h, pw:pw + w]


def _conv_pool(z, b, f, n, oh, ow, pkh, pkw, psh, psw, qh, qw, y, arg):
    v = z.reshape(f, n, oh, ow) + b.reshape(f, 1, 1, 1)
    wins = np.stack([v[:, :, p:p + psh * (qh - 1) + 1:psh, q:q + psw * (qw - 1) + 1:psw]
                     for p in range(pkh) for q in range(pkw)])            # (pkh·pkw, F, N, qh, qw)
    nan = np.isnan(wins)
    k = np.where(nan.any(axis=0), nan.argmax(axis=0), wins.argmax(axis=0))  # the first max (a NaN wins)
    best = np.take_along_axis(wins, k[None], axis=0)[0]
    keep = (best > 0) | np.isnan(best)
    y[...] = np.where(keep, best, 0).transpose(1, 0, 2, 3)
    arg[...] = np.where(keep, k, -1).transpose(1, 0, 2, 3)


def _pool_scatter(dy, arg, f, n, oh, ow, pkh, pkw, psh, psw, qh, qw, dz):
    out = np.zeros((f, n, oh, ow), dz.dtype)
    g, a = dy.reshape(n, f, qh, qw).transpose(1, 0, 2, 3), arg.reshape(n, f, qh, qw).transpose(1, 0, 2, 3)
    for p in range(pkh):
        for q in range(pkw):
            out[:, :, p:p + psh * (qh - 1) + 1:psh, q:q + psw * (qw - 1) + 1:psw] += np.where(a == p * pkw + q, g, 0)
    dz[...] = out.reshape(dz.shape)


def _bias_act(b, f, relu, y):
    y += b.reshape(1, f)
    if relu:
        np.maximum(y, 0, out=y)


def _relu_colsum(dy, y, n, f, dz, db):
    g = dy.reshape(n, f) * (y.reshape(n, f) > 0)
    dz[...] = g.reshape(dz.shape)
    db[...] = g.sum(axis=0)


def _bn_train(x, gamma, beta, n, f, hw, eps, mom, unbias, xhat, y, inv_std, rmean, rvar):
    # over x's own shape (N, F) or (N, C, H, W): numpy's summation order, so the bits are the layer's
    axes, bs = (0,) + tuple(range(2, x.ndim)), (1, f) + (1,) * (x.ndim - 2)
    t = x.dtype.type
    mean = x.mean(axis=axes)
    var = x.var(axis=axes)
    rmean *= t(1 - mom)
    rmean += t(mom) * mean
    rvar *= t(1 - mom)
    rvar += t(unbias) * var
    inv_std[...] = 1 / np.sqrt(var + t(eps))
    xh = (x - mean.reshape(bs)) * inv_std.reshape(bs)
    xhat[...] = xh
    y[...] = xh * gamma.reshape(bs) + beta.reshape(bs)


def _bn_backward(dy, xhat, gamma, inv_std, n, f, hw, need_dx, dx, dgamma, dbeta):
    axes, bs = (0,) + tuple(range(2, dy.ndim)), (1, f) + (1,) * (dy.ndim - 2)
    dbeta[...] = dy.sum(axis=axes)
    dgamma[...] = (dy * xhat).sum(axis=axes)
    if need_dx:
        m = n * hw
        g = (gamma * inv_std).reshape(bs)
        dx[...] = g * (dy - (dbeta / m).reshape(bs) - xhat * (dgamma / m).reshape(bs))


def _bn_partial(x, n, f, hw, pmean, pm2):
    x3 = x.reshape(n, f, hw).transpose(1, 0, 2)                       # (F, N, HW)
    mu = x3.sum(axis=2) / x.dtype.type(hw)
    pmean[...] = mu
    pm2[...] = ((x3 - mu[..., None]) ** 2).sum(axis=2)


def _bn_finalize(pmean, pm2, n, hw, eps, mom, unbias, mean, inv_std, rmean, rvar):
    t = pmean.dtype.type
    mu = pmean.sum(axis=1) / t(n)
    var = (pm2 + t(hw) * (pmean - mu[:, None]) ** 2).sum(axis=1) / (t(n) * t(hw))
    mean[...] = mu
    rmean[...] = rmean * t(1 - mom) + t(mom) * mu
    rvar[...] = rvar * t(1 - mom) + t(unbias) * var
    inv_std[...] = 1 / np.sqrt(var + t(eps))


def _bn_apply(x, mean, inv_std, gamma, beta, f, hw, xhat, y):
    bs = (1, f, 1)
    xh = (x.reshape(-1, f, hw) - mean.reshape(bs)) * inv_std.reshape(bs)
    xhat[...] = xh.reshape(xhat.shape)
    y[...] = (xh * gamma.reshape(bs) + beta.reshape(bs)).reshape(y.shape)


def _bn_bpartial(dy, xhat, n, f, hw, ps, psx):
    g3, xh = dy.reshape(n, f, hw).transpose(1, 0, 2), xhat.reshape(n, f, hw).transpose(1, 0, 2)
    ps[...] = g3.sum(axis=2)
    psx[...] = (g3 * xh).sum(axis=2)


def _bn_bfinal(ps, psx, n, dgamma, dbeta):
    dbeta[...] = ps.sum(axis=1)
    dgamma[...] = psx.sum(axis=1)


def _bn_bapply(dy, xhat, gamma, inv_std, dgamma, dbeta, f, hw, m, dx):
    bs = (1, f, 1)
    g = (gamma * inv_std).reshape(bs)
    dx[...] = (g * (dy.reshape(-1, f, hw) - (dbeta / dy.dtype.type(m)).reshape(bs)
                    - xhat.reshape(-1, f, hw) * (dgamma / dy.dtype.type(m)).reshape(bs))).reshape(dx.shape)


def _xent_rows(z, labels, k, sm, oms, smk, invn, nanv, d, rowloss, correct):
    n = len(rowloss)
    z = z.reshape(n, k)
    zz = z - z.max(axis=1, keepdims=True)
    e = np.exp(zz)
    s = e.sum(axis=1, keepdims=True)
    logp = zz - np.log(s)
    bad = (labels < 0) | (labels >= k)
    lab = np.where(bad, 0, labels)
    rows = np.arange(n)
    nll = -logp[rows, lab]
    loss = nll if sm == 0 else oms * nll - smk * logp.sum(axis=1)
    g = e / s
    if sm:
        g -= smk
    g[rows, lab] -= oms
    g *= invn
    g[bad] = nanv
    d[...] = g.reshape(d.shape)
    rowloss[...] = np.where(bad, nanv, loss)
    correct[...] = (z.argmax(axis=1) == labels) & ~bad


def _xent_mean(rowloss, correct, n, loss, ncorrect):
    loss[...] = rowloss.sum() / rowloss.dtype.type(n)
    ncorrect[...] = correct.sum()


def _gather_norm(x, idx, start, hw, a, b, y):
    rows = idx[start:start + y.size // hw]
    out = y.reshape(len(rows), hw)
    np.multiply(x.reshape(-1, hw)[rows], a, out=out, dtype=y.dtype)
    out += b


def warp_inverse(x, inv, t):
    """Images x (B, H, W) warped with the inverse maps ``inv`` (B, 2, 2) and shifts ``t`` (B, 2), float64,
    bilinear, zero outside -> float32 (B, H, W): fastcnn.augment.affine_warp's arithmetic, shared
    with the warp_norm kernel's twin so that the device's augmentation is the host's, bit for bit."""
    b, h, w = x.shape
    cx, cy = (w - 1) / 2.0, (h - 1) / 2.0
    jj, ii = np.meshgrid(np.arange(w, dtype=np.float64), np.arange(h, dtype=np.float64))
    u = jj[None] - cx - t[:, 0, None, None]
    v = ii[None] - cy - t[:, 1, None, None]
    sx = inv[:, 0, 0, None, None] * u + inv[:, 0, 1, None, None] * v + cx
    sy = inv[:, 1, 0, None, None] * u + inv[:, 1, 1, None, None] * v + cy
    sx = np.round(sx, 9)  # so an exact integer shift stays exact
    sy = np.round(sy, 9)
    x0 = np.floor(sx).astype(np.int64)
    y0 = np.floor(sy).astype(np.int64)
    fx = (sx - x0).astype(np.float32)
    fy = (sy - y0).astype(np.float32)
    pad = np.zeros((b, h + 2, w + 2), np.float32)
    pad[:, 1:-1, 1:-1] = x
    # clip to the zero border: anything outside samples zeros
    bi = np.arange(b)[:, None, None]

    def at(yy, xx):
        inside = (yy >= -1) & (yy <= h) & (xx >= -1) & (xx <= w)
        return np.where(inside, pad[bi, np.clip(yy + 1, 0, h + 1), np.clip(xx + 1, 0, w + 1)], 0.0)

    out = (at(y0, x0) * (1 - fx) * (1 - fy) + at(y0, x0 + 1) * fx * (1 - fy)
           + at(y0 + 1, x0) * (1 - fx) * fy + at(y0 + 1, x0 + 1) * fx * fy)
    return out.astype(np.float32)


def _warp_norm(x, idx, affine, start, h, w, a, b, y):
    n = y.size // (h * w)
    rows = idx[start:start + n]
    p = affine[start:start + n]
    warped = warp_inverse(x.reshape(-1, h, w)[rows], p[:, :4].reshape(n, 2, 2), p[:, 4:6])
    u8 = np.clip(np.rint(warped), 0, 255).astype(np.uint8)
    _gather_norm(u8.reshape(n, h * w), np.arange(n, dtype=np.int64), 0, h * w, a, b, y)


def _adam(g, b1, omb1, b2, omb2, c1, c2, eps, wd, decay, mode, w, m, v):
    from .kernels.cpu.optim import adam_update

    adam_update(w.reshape(-1), g.reshape(-1), m.reshape(-1), v.reshape(-1),
                np.array([b1, omb1, b2, omb2, c1, c2, eps, wd, decay], w.dtype), int(mode))


def _sgd(g, lr, lrmom, mom, wd, mode, w, v):
    t = w.dtype.type
    if wd:
        g = w * t(wd) + g
    if mode == 0:
        w -= g * t(lr)
        return
    v *= t(mom)
    v += g
    if mode == 2:
        w -= g * t(lr)
        w -= v * t(lrmom)
    else:
        w -= v * t(lr)


def _ema(w, omd, s):
    s -= s.dtype.type(omd) * (s - w)


# --- the kernels: name -> (in_params, out_params, operation, twin) ------------------------------------
KERNELS = {
    "im2col_t": ("raw T x, " + _GEOM, "T cols", r"""
        const long long L = (long long)oh * ow, NL = (long long)n * L;
        const long long r = i / NL, rem = i - r * NL, b = rem / L, l = rem - b * L;
        const int oi = l / ow, oj = l - oi * ow, khw = kh * kw;
        const int ch = r / khw, pq = r - ch * khw, p = pq / kw, q = pq - p * kw;
        const int hh = oi * sh + p - ph, ww = oj * sw + q - pw;
        cols = (hh >= 0 && hh < h && ww >= 0 && ww < w) ? x[((b * c + ch) * h + hh) * (long long)w + ww] : (T)0;
        """, _im2col_t),
    "col2im_t": ("raw T cols, " + _GEOM, "T dx", r"""
        const int ww = i % w; long long t = i / w; const int hh = t % h; t /= h;
        const int ch = t % c; const long long b = t / c;
        const int hp = hh + ph, wp = ww + pw;
        const long long L = (long long)oh * ow, NL = (long long)n * L;
        T acc = 0;
        for (int p = hp % sh; p < kh && p <= hp; p += sh) {
            const int oi = (hp - p) / sh;
            if (oi >= oh) continue;
            for (int q = wp % sw; q < kw && q <= wp; q += sw) {
                const int oj = (wp - q) / sw;
                if (oj < ow) acc += cols[((long long)(ch * kh + p) * kw + q) * NL + b * L + oi * ow + oj];
            }
        }
        dx = acc;
        """, _col2im_t),
    "conv_pool": ("raw T z, raw T bias, int32 f, int32 n, int32 oh, int32 ow, int32 pkh, int32 pkw, "
                  "int32 psh, int32 psw, int32 qh, int32 qw", "T y, int32 arg", r"""
        const int pj = i % qw; long long t = i / qw; const int pi = t % qh; t /= qh;
        const int fc = t % f; const long long b = t / f;
        const T bb = bias[fc];
        const long long base = ((long long)fc * n + b) * oh;
        T best = 0; int bk = -1;
        for (int p = 0; p < pkh; p++) {
            const long long row = (base + pi * psh + p) * ow + pj * psw;
            for (int q = 0; q < pkw; q++) {
                const T v = z[row + q] + bb;
                if (bk < 0 || v > best || (v != v && best == best)) { best = v; bk = p * pkw + q; }
            }
        }
        const bool keep = best > (T)0 || best != best;
        y = keep ? best : (T)0;
        arg = keep ? bk : -1;
        """, _conv_pool),
    "pool_scatter": ("raw T dy, raw int32 arg, int32 f, int32 n, int32 oh, int32 ow, int32 pkh, int32 pkw, "
                     "int32 psh, int32 psw, int32 qh, int32 qw", "T dz", r"""
        const int ww = i % ow; long long t = i / ow; const int hh = t % oh; t /= oh;
        const long long b = t % n; const int fc = t / n;
        T acc = 0;
        for (int p = hh % psh; p < pkh && p <= hh; p += psh) {
            const int pi = (hh - p) / psh;
            if (pi >= qh) continue;
            for (int q = ww % psw; q < pkw && q <= ww; q += psw) {
                const int pj = (ww - q) / psw;
                if (pj >= qw) continue;
                const long long o = ((b * f + fc) * qh + pi) * qw + pj;
                if (arg[o] == p * pkw + q) acc += dy[o];
            }
        }
        dz = acc;
        """, _pool_scatter),
    "bias_act": ("raw T b, int32 f, int32 relu", "T y", r"""
        const T v = y + b[i % f];
        y = (relu && v <= (T)0) ? (T)0 : v;
        """, _bias_act),
    "relu_colsum": ("raw T dy, raw T y, int32 n, int32 f", "raw T dz, T db", r"""
        T acc = 0;
        for (int r = 0; r < n; r++) {
            const long long o = (long long)r * f + i;
            const T g = y[o] > (T)0 ? dy[o] : (T)0;
            dz[o] = g;
            acc += g;
        }
        db = acc;
        """, _relu_colsum),
    "bn_train": ("raw T x, raw T gamma, raw T beta, int32 n, int32 f, int32 hw, T eps, T mom, T unbias",
                 "raw T xhat, raw T y, T inv_std, T rmean, T rvar", r"""
        const long long m = (long long)n * hw;
        T s = 0;
        for (int r = 0; r < n; r++) for (int k = 0; k < hw; k++) s += x[((long long)r * f + i) * hw + k];
        const T mean = s / (T)m;
        T sq = 0;
        for (int r = 0; r < n; r++) for (int k = 0; k < hw; k++) {
            const T d = x[((long long)r * f + i) * hw + k] - mean; sq += d * d; }
        const T var = sq / (T)m;
        rmean = rmean * ((T)1 - mom) + mom * mean;
        rvar = rvar * ((T)1 - mom) + unbias * var;
        const T inv = (T)1 / sqrt(var + eps);
        inv_std = inv;
        const T g = gamma[i], be = beta[i];
        for (int r = 0; r < n; r++) for (int k = 0; k < hw; k++) {
            const long long o = ((long long)r * f + i) * hw + k;
            const T xh = (x[o] - mean) * inv; xhat[o] = xh; y[o] = xh * g + be; }
        """, _bn_train),
    "bn_backward": ("raw T dy, raw T xhat, raw T gamma, T inv_std, int32 n, int32 f, int32 hw, int32 need_dx",
                    "raw T dx, T dgamma, T dbeta", r"""
        const long long m = (long long)n * hw;
        T sb = 0, sg = 0;
        for (int r = 0; r < n; r++) for (int k = 0; k < hw; k++) {
            const long long o = ((long long)r * f + i) * hw + k; sb += dy[o]; sg += dy[o] * xhat[o]; }
        dbeta = sb;
        dgamma = sg;
        if (need_dx) {
            const T g = gamma[i] * inv_std, mb = sb / (T)m, mg = sg / (T)m;
            for (int r = 0; r < n; r++) for (int k = 0; k < hw; k++) {
                const long long o = ((long long)r * f + i) * hw + k; dx[o] = g * (dy[o] - mb - xhat[o] * mg); }
        }
        """, _bn_backward),
    "bn_partial": ("raw T x, int32 n, int32 f, int32 hw", "T pmean, T pm2", r"""
        const int c = i / n, r = i - (long long)c * n;
        const long long o = ((long long)r * f + c) * hw;
        T s = 0;
        for (int k = 0; k < hw; k++) s += x[o + k];
        const T mu = s / (T)hw;
        T q = 0;
        for (int k = 0; k < hw; k++) { const T d = x[o + k] - mu; q += d * d; }
        pmean = mu;
        pm2 = q;
        """, _bn_partial),
    "bn_finalize": ("raw T pmean, raw T pm2, int32 n, int32 hw, T eps, T mom, T unbias",
                    "T mean, T inv_std, T rmean, T rvar", r"""
        const long long o = i * (long long)n;
        T s = 0;
        for (int r = 0; r < n; r++) s += pmean[o + r];
        const T mu = s / (T)n;
        T q = 0;
        for (int r = 0; r < n; r++) { const T d = pmean[o + r] - mu; q += pm2[o + r] + (T)hw * d * d; }
        const T var = q / ((T)n * (T)hw);
        mean = mu;
        rmean = rmean * ((T)1 - mom) + mom * mu;
        rvar = rvar * ((T)1 - mom) + unbias * var;
        inv_std = (T)1 / sqrt(var + eps);
        """, _bn_finalize),
    "bn_apply": ("T x, raw T mean, raw T inv_std, raw T gamma, raw T beta, int32 f, int32 hw", "T xhat, T y", r"""
        const int c = (i / hw) % f;
        const T xh = (x - mean[c]) * inv_std[c];
        xhat = xh;
        y = xh * gamma[c] + beta[c];
        """, _bn_apply),
    "bn_bpartial": ("raw T dy, raw T xhat, int32 n, int32 f, int32 hw", "T ps, T psx", r"""
        const int c = i / n, r = i - (long long)c * n;
        const long long o = ((long long)r * f + c) * hw;
        T s = 0, sx = 0;
        for (int k = 0; k < hw; k++) { s += dy[o + k]; sx += dy[o + k] * xhat[o + k]; }
        ps = s;
        psx = sx;
        """, _bn_bpartial),
    "bn_bfinal": ("raw T ps, raw T psx, int32 n", "T dgamma, T dbeta", r"""
        const long long o = i * (long long)n;
        T s = 0, sx = 0;
        for (int r = 0; r < n; r++) { s += ps[o + r]; sx += psx[o + r]; }
        dbeta = s;
        dgamma = sx;
        """, _bn_bfinal),
    "bn_bapply": ("T dy, T xhat, raw T gamma, raw T inv_std, raw T dgamma, raw T dbeta, int32 f, int32 hw, int32 m",
                  "T dx", r"""
        const int c = (i / hw) % f;
        dx = gamma[c] * inv_std[c] * (dy - dbeta[c] / (T)m - xhat * (dgamma[c] / (T)m));
        """, _bn_bapply),
    "xent_rows": ("raw T z, raw int64 labels, int32 k, T sm, T oms, T smk, T invn, T nanv",
                  "raw T d, T rowloss, int32 correct", r"""
        const long long o = i * (long long)k;
        T mx = z[o]; int am = 0;
        for (int j = 1; j < k; j++) if (z[o + j] > mx) { mx = z[o + j]; am = j; }
        T s = 0;
        for (int j = 0; j < k; j++) s += exp(z[o + j] - mx);
        const T lse = log(s);
        const long long lab = labels[i];
        if (lab < 0 || lab >= k) {             // out of range: NaN, never a silently wrong value
            rowloss = nanv; correct = 0;
            for (int j = 0; j < k; j++) d[o + j] = nanv;
        } else {
            T slp = 0;
            for (int j = 0; j < k; j++) slp += (z[o + j] - mx) - lse;
            const T nll = -((z[o + lab] - mx) - lse);
            rowloss = sm == (T)0 ? nll : oms * nll - smk * slp;
            for (int j = 0; j < k; j++) {
                T g = exp(z[o + j] - mx) / s;
                if (sm != (T)0) g -= smk;
                if (j == lab) g -= oms;
                d[o + j] = g * invn;
            }
            correct = am == lab;
        }
        """, _xent_rows),
    "xent_mean": ("raw T rowloss, raw int32 correct, int32 n", "T loss, int64 ncorrect", r"""
        T s = 0; long long c = 0;
        for (int r = 0; r < n; r++) { s += rowloss[r]; c += correct[r]; }
        loss = s / (T)n;
        ncorrect = c;
        """, _xent_mean),
    "gather_norm": ("raw uint8 x, raw int64 idx, int64 start, int32 hw, T a, T b", "T y", r"""
        const long long r = i / hw, k = i - r * hw;
        y = add_rn(mul_rn((T)x[idx[start + r] * hw + k], a), b);
        """, _gather_norm),
    "warp_norm": ("raw uint8 x, raw int64 idx, raw float64 affine, int64 start, int32 h, int32 w, T a, T b", "T y", r"""
        const long long r = i / ((long long)h * w), k = i - r * h * w;
        const int ii = k / w, jj = k - ii * w;
        const double* p = &affine[(start + r) * 6];          // inverse map (2x2), then the shift
        const double cx = (w - 1) / 2.0, cy = (h - 1) / 2.0;
        const double u = (jj - cx) - p[4], v = (ii - cy) - p[5];
        double sx = __dadd_rn(__dadd_rn(__dmul_rn(p[0], u), __dmul_rn(p[1], v)), cx);
        double sy = __dadd_rn(__dadd_rn(__dmul_rn(p[2], u), __dmul_rn(p[3], v)), cy);
        sx = rint(sx * 1e9) / 1e9;                            // numpy.round(s, 9)
        sy = rint(sy * 1e9) / 1e9;
        const double fx0 = floor(sx), fy0 = floor(sy);
        const long long x0 = (long long)fx0, y0 = (long long)fy0;
        const float fx = (float)(sx - fx0), fy = (float)(sy - fy0);
        const unsigned char* img = &x[idx[start + r] * (long long)h * w];
        float s[4];
        for (int q = 0; q < 4; q++) {
            const long long yy = y0 + q / 2, xx = x0 + q % 2;
            s[q] = (yy >= 0 && yy < h && xx >= 0 && xx < w) ? (float)img[yy * w + xx] : 0.0f;
        }
        const float gx = 1.0f - fx, gy = 1.0f - fy;
        float o = __fmul_rn(__fmul_rn(s[0], gx), gy);
        o = __fadd_rn(o, __fmul_rn(__fmul_rn(s[1], fx), gy));
        o = __fadd_rn(o, __fmul_rn(__fmul_rn(s[2], gx), fy));
        o = __fadd_rn(o, __fmul_rn(__fmul_rn(s[3], fx), fy));
        o = fminf(fmaxf(rintf(o), 0.0f), 255.0f);
        y = add_rn(mul_rn((T)(unsigned char)o, a), b);
        """, _warp_norm),
    "adam": ("T g, T b1, T omb1, T b2, T omb2, T c1, T c2, T eps, T wd, T decay, int32 mode", "T w, T m, T v", r"""
        T gi = g;
        if (mode == 2) w = mul_rn(w, decay);
        else if (mode == 1) gi = add_rn(mul_rn(w, wd), gi);
        const T mi = add_rn(mul_rn(m, b1), mul_rn(gi, omb1));
        const T vi = add_rn(mul_rn(v, b2), mul_rn(mul_rn(gi, gi), omb2));
        m = mi;
        v = vi;
        w = w - mul_rn(mi / add_rn(mul_rn(sqrt(vi), c2), eps), c1);
        """, _adam),
    "sgd": ("T g, T lr, T lrmom, T mom, T wd, int32 mode", "T w, raw T v", r"""
        T gi = g;
        if (wd != (T)0) gi = add_rn(mul_rn(w, wd), gi);
        if (mode == 0) { w = w - mul_rn(gi, lr); }
        else {
            const T vi = add_rn(mul_rn(v[i], mom), gi);
            v[i] = vi;
            if (mode == 2) { w = w - mul_rn(gi, lr); w = w - mul_rn(vi, lrmom); }
            else { w = w - mul_rn(vi, lr); }
        }
        """, _sgd),
    "ema": ("T w, T omd", "T s", "s = s - mul_rn(omd, s - w);", _ema),
}

_built: dict = {}


def kernel(xp, name: str, dtype=None):
    """The ElementwiseKernel ``name`` for array module ``xp`` (CuPy or the stand-in), built once.

    ``dtype``: for a kernel whose ``T`` no input array fixes (gather_norm, warp_norm), the kernel
    specialised to that dtype (CuPy would take ``T`` from the output; stating it is plainer).
    Under the stand-in its NumPy twin is registered, so a call runs the twin and counts one launch."""
    key = (xp.__name__, name, None if dtype is None else np.dtype(dtype).name)
    k = _built.get(key)
    if k is None:
        inp, out, op, twin = KERNELS[name]
        full = f"fastcnn_{name}"
        if dtype is not None:
            dt = np.dtype(dtype)
            inp, out = (re.sub(r"\bT\b", dt.name, s) for s in (inp, out))
            op = f"typedef {_CTYPE[dt.name]} T;\n" + op
            full += f"_{dt.name}"
        register = getattr(xp, "register_twin", None)  # the stand-in's only (CuPy has no twins)
        if register is not None:
            register(full, twin)
        k = _built[key] = xp.ElementwiseKernel(inp, out, op, full, preamble=PREAMBLE)
    return k


def twin(name: str):
    """The NumPy twin of kernel ``name`` (for tests)."""
    return KERNELS[name][3]
