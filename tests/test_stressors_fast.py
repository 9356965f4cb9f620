"""Fast paths of the stressor ops give the very bits of their slow, obvious references
(tests/_slow_stressors.py: the ops as they were before each fast path)."""
from __future__ import annotations

import dataclasses
import math
import sys
from pathlib import Path

import pytest
import torch

import failmodes.stressors._chunks as chunks
from failmodes.stressors import StressorError, get_stressor, suite
from failmodes.stressors._motion import motion_blur_u8
from failmodes.stressors.blur import _displace_pass

sys.path.insert(0, str(Path(__file__).parent))
import _slow_stressors as slow  # noqa: E402

torch.set_num_threads(1)


def _u8(n, c, h, w, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, c, h, w), generator=g).float()


def _images(n, h, w, seed=0):
    """Smooth colour images with texture on the 8-bit grid (flat areas, edges, noise)."""
    g = torch.Generator().manual_seed(seed)
    low = torch.nn.functional.interpolate(torch.rand(n, 3, max(1, h // 6), max(1, w // 6),
                                                     generator=g), size=(h, w), mode="bilinear")
    x = 0.75 * low + 0.25 * torch.rand(n, 3, h, w, generator=g)
    return torch.round(x.clamp(0, 1) * 255) / 255


# ----------------------------------------------------------------------------- motion
@pytest.mark.parametrize("n,c,h,w,radius,sigma", [
    (400, 3, 32, 32, 9, 2.5),     # CIFAR severity 5: every angle run of every tap
    (300, 1, 32, 32, 14, 12),     # snow's one-channel layer, its widest kernel
    (3, 3, 64, 48, 20, 15),       # ImageNet width on a non-square image
    (5, 3, 7, 5, 9, 2),           # kernel wider than the image: edge pixels repeat
])
def test_motion_blur_runs_equal_per_tap_gathers(n, c, h, w, radius, sigma):
    x = _u8(n, c, h, w)
    g = torch.Generator().manual_seed(1)
    angles = torch.rand(n, generator=g) * 360 - 180
    angles[: n // 4] = angles[0]  # ties keep their order (stable sort)
    assert torch.equal(motion_blur_u8(x, radius, sigma, angles),
                       slow.motion_blur_u8(x, radius, sigma, angles))


# ----------------------------------------------------------------------------- glass
@pytest.mark.parametrize("n,h,w,delta", [
    (20, 32, 32, 1),     # CIFAR: offsets up/left only, a single gather
    (4, 96, 96, 4),      # ImageNet's widest displacement: long chains of written pixels
    (5, 40, 52, 2),      # non-square
    (3, 9, 7, 3),        # margins that leave a 3 x 1 region
    (4, 64, 64, 1.5),    # fractional delta (floor of uniform(-1.5, 1.5))
])
def test_glass_displacement_links_equal_the_sequential_loops(n, h, w, delta):
    g = torch.Generator().manual_seed(2)
    y = torch.rand(n, 3, h, w, generator=g)
    m = max(1, math.ceil(delta - 1e-9))
    u = torch.rand(n, h - 2 * m, w - 2 * m, 2, generator=g)
    d = torch.floor(u * (2 * delta) - delta).long()
    assert torch.equal(_displace_pass(y, d, m), slow.glass_displace_pass(y, d, m))


# ----------------------------------------------------------------------------- pixelate
@pytest.mark.parametrize("h,w", [(32, 32), (5, 3), (64, 64), (96, 80), (224, 224), (160, 64)])
def test_pixelate_through_pil_equals_the_batched_box_port(h, w, monkeypatch):
    import failmodes.stressors.digital as digital

    x = _images(3, h, w)
    st = get_stressor("pixelate")
    via_pil = [st(x, s) for s in (1.0, 3.5, 5.0)]
    monkeypatch.setattr(digital, "_PIXELATE_CPU_VIA_PIL", False)
    for s, y in zip((1.0, 3.5, 5.0), via_pil):
        assert torch.equal(st(x, s), y)


@pytest.mark.parametrize("h,w", [(224, 224), (64, 80), (97, 131), (299, 299), (32, 32),
                                 (7, 5), (160, 64), (224, 96)])
def test_pixelate_pil_path_equals_pils_rgb_box_resizes(h, w):
    """The CPU path (PIL BOX passes on stacked planes, the BOX upscale as a gather)
    against the reference's own two RGB ``Image.resize(BOX)`` calls, byte for byte."""
    import numpy as np
    from PIL import Image

    import failmodes.stressors.digital as digital
    from failmodes.stressors._spatial import cv2_nearest_is_box_upscale, pil_box_upscale_index
    x = _images(2, h, w, seed=h + w)
    arr = torch.round(x * 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous().numpy()
    for frac in (0.25, 0.3, 0.5, 0.6, 0.65, 0.85, 0.95):
        sh, sw = max(1, int(h * frac)), max(1, int(w * frac))
        _UPSCALE_PATHS.add(cv2_nearest_is_box_upscale(sh, sw, h, w))
        # The reference generator's PIL: horizontal pass, then vertical (two one-sided
        # calls say so explicitly; for these sizes the installed Pillow's single call
        # is the same, checked below), then the BOX upscale.
        box = Image.Resampling.BOX
        want = np.stack([np.asarray(Image.fromarray(a).resize((sw, h), box).resize((sw, sh), box)
                                    .resize((w, h), box)) for a in arr])
        if h <= 2 * w:
            single = np.stack([np.asarray(Image.fromarray(a).resize((sw, sh), box)
                                          .resize((w, h), box)) for a in arr])
            assert np.array_equal(single, want), (h, w, frac)
        want = torch.from_numpy(want).permute(0, 3, 1, 2)
        assert torch.equal(digital._pixelate_pil(x, sh, sw), want), (h, w, frac)
        out = torch.full(x.shape, -1.0)
        assert digital._pixelate_pil(x, sh, sw, out) is out
        assert torch.equal(out, want.float() / 255), (h, w, frac)
    with pytest.raises(ValueError, match="not an upscale"):
        pil_box_upscale_index(50, 40)


_UPSCALE_PATHS: set = set()


def test_both_upscale_paths_were_checked_against_pil():
    # The sizes above reach OpenCV's nearest resize (where it matches PIL) and the gather.
    from failmodes.stressors._spatial import cv2_nearest_is_box_upscale
    assert cv2_nearest_is_box_upscale(112, 112, 224, 224)
    assert not cv2_nearest_is_box_upscale(4, 4, 6, 6)  # a tie OpenCV rounds the other way
    assert not cv2_nearest_is_box_upscale(8, 8, 6, 6)  # not an upscale
    if len(_UPSCALE_PATHS) < 2:  # run alone (-k): check the sizes here
        for h, w in ((224, 224), (97, 131), (7, 5)):
            for frac in (0.25, 0.3, 0.6, 0.65, 0.85):
                _UPSCALE_PATHS.add(cv2_nearest_is_box_upscale(
                    max(1, int(h * frac)), max(1, int(w * frac)), h, w))
    assert _UPSCALE_PATHS == {True, False}


def test_pil_box_upscale_is_one_tap_for_every_size_pair():
    # The gather rests on this: every output pixel of a BOX upscale has exactly one tap
    # (the function asserts it), for every input side up to the output side.
    from failmodes.stressors._spatial import pil_box_upscale_index
    for out in (33, 64, 97, 131, 224, 299):
        for size in range(1, out + 1):
            idx = pil_box_upscale_index(size, out)
            assert idx.shape == (out,) and int(idx.min()) == 0 and int(idx.max()) == size - 1
            assert bool((idx[1:] >= idx[:-1]).all())


@pytest.mark.parametrize("size", [32, 64, 224])
def test_u8_ops_equal_their_float_ops_and_need_no_quantisation(size):
    """Ops registered with ``u8_op`` skip the wrapper's quantisation: the float op must be
    u8_op / 255 and already on the 8-bit grid (quantising it changes no bit), and the
    stressor (chunked, written into one output) must give exactly that."""
    from failmodes.stressors.registry import list_stressors, quantize
    x = _images(3, size, size, seed=size)
    with_u8 = [get_stressor(n) for n in list_stressors() if get_stressor(n).u8_op is not None]
    assert {st.name for st in with_u8} == {"pixelate", "jpeg_compression", "brightness", "saturate"}
    for st in with_u8:
        for s in (1.0, 2.5, 5.0):
            p = st.resolve(s, size)
            y8, y = st.u8_op(x, p), st.op(x, p, None)
            assert y8.dtype == torch.uint8 and y.dtype == torch.float32
            assert torch.equal(y, y8.float() / 255)
            assert torch.equal(quantize(y, st.rounding), y), (st.name, size, s)
            assert torch.equal(st(x, s), y)
            assert torch.equal(st(x.double(), s), y.double())


def test_unit_to_u8_gives_torchs_bytes_ties_included():
    """OpenCV's one-pass conversion against torch's clamp/mul/round/cast on [0, 1]: random
    values, the grid itself, its half-way points (x * 255 exactly k + 0.5 in float32,
    where round-half-to-even decides) and the ends."""
    from failmodes.stressors._spatial import to_u8, u8_to_unit, unit_to_u8
    g = torch.Generator().manual_seed(7)
    k = torch.arange(256, dtype=torch.float32)
    halves = ((k[:-1] + 0.5) / 255).repeat(2)
    halves = torch.cat([halves, torch.nextafter(halves, torch.ones(()))])
    ties = halves[(halves * 255) == torch.floor(halves * 255) + 0.5]
    assert len(ties) > 100  # the tie case is really exercised
    x = torch.cat([torch.rand(300_000, generator=g), k / 255, ties,
                   torch.tensor([0.0, -0.0, 1.0, 1e-30, 1 - 2**-24])])
    x = x[: len(x) // 7 * 7].view(-1, 7)  # an odd row length
    want = to_u8(x).to(torch.uint8)
    assert torch.equal(unit_to_u8(x), want)
    assert torch.equal(unit_to_u8(x.t()), want.t())  # not contiguous: the torch branch
    out = torch.empty(x.shape)
    u8_to_unit(want.numpy(), out.numpy())
    assert torch.equal(out, want.float() / 255)


@pytest.mark.parametrize("size", [64, 97, 224])
def test_u8_ops_writing_into_chunk_outputs_equal_whole_batches(size, monkeypatch):
    """pixelate and JPEG from 64 px up write k/255 into the chunk's rows themselves: on two
    worker threads, under inference mode too, the batch equals the u8 op divided by 255."""
    x = _images(5, size, size + 3, seed=size)
    torch.set_num_threads(2)
    monkeypatch.setattr(chunks, "CHUNK_PIXELS", 2 * size * (size + 3))
    try:
        for name in ("pixelate", "jpeg_compression"):
            st = get_stressor(name)
            for s in (1.0, 3.0, 4.5, 5.0):
                want = st.u8_op(x, st.resolve(s, size)).float() / 255
                assert torch.equal(st(x, s), want), (name, s)
                with torch.inference_mode():
                    assert torch.equal(st(x.clone(), s), want), (name, s)
                out = torch.full(x.shape, -1.0)
                assert st.u8_op(x, st.resolve(s, size), out=out) is out
                assert torch.equal(out, want), (name, s)
    finally:
        torch.set_num_threads(1)


# ----------------------------------------------------------------------------- chunks
def test_chunked_threaded_batches_equal_whole_batches(monkeypatch):
    # Chunks of 8 images on two worker threads against one whole-batch call per stressor
    # (the whole batch on one thread: intra-op threads on a busy machine only spin).
    x = _images(20, 32, 32)
    idx = torch.arange(20) * 3 + 5
    for name in suite("all"):
        st = get_stressor(name)
        monkeypatch.setattr(chunks, "CHUNK_PIXELS", 1 << 30)
        whole = st(x, 2.5, seed=4, indices=idx)
        monkeypatch.setattr(chunks, "CHUNK_PIXELS", 8 * 32 * 32)
        torch.set_num_threads(2)
        try:
            assert torch.equal(st(x, 2.5, seed=4, indices=idx), whole), name
        finally:
            torch.set_num_threads(1)


def test_chunked_threads_under_inference_and_grad_modes(monkeypatch):
    # The evaluation stresses batches under torch.inference_mode(): its output buffer is an
    # inference tensor, which the worker threads (grad and inference mode are thread-local)
    # must be allowed to write; the numbers equal a plain whole-batch call. Failed before
    # the workers took the caller's modes ("Inplace update to inference tensor").
    x = _images(20, 32, 32)
    monkeypatch.setattr(chunks, "CHUNK_PIXELS", 1 << 30)
    whole = {n: get_stressor(n)(x, 3.0) for n in ("gaussian_noise", "pixelate", "contrast")}
    monkeypatch.setattr(chunks, "CHUNK_PIXELS", 8 * 32 * 32)
    torch.set_num_threads(2)
    try:
        for name, want in whole.items():
            with torch.inference_mode():
                xi = x.clone()
                got = get_stressor(name)(xi, 3.0)
                assert got.is_inference()
            assert torch.equal(got, want), name
            with torch.no_grad():
                assert torch.equal(get_stressor(name)(x, 3.0), want), name
    finally:
        torch.set_num_threads(1)


# ----------------------------------------------------------------------------- jpeg
@pytest.mark.parametrize("size,quality", [((32, 32), 80), ((32, 32), 40), ((64, 64), 58),
                                          ((224, 224), 7), ((37, 53), 25), ((1, 1), 65)])
@pytest.mark.parametrize("codecs", [("opencv", "torchvision"), ("torchvision",), ()])
def test_jpeg_codecs_give_pils_pixels(size, quality, codecs, monkeypatch):
    """jpeg_compression against PIL image by image (the reference kept as digital.jpeg_pil),
    on textured images of odd and ImageNet sizes, through each codec in turn: OpenCV's,
    else PIL with OpenCV's channel interleave from 64 x 64 px up and torchvision's batched
    codec below, else PIL itself."""
    from failmodes.stressors import digital
    for codec in codecs:  # the fast paths under test are really taken on this install
        assert digital._codec_matches_pil(codec, quality), codec
    monkeypatch.setattr(digital, "_codec_matches_pil", lambda c, q: c in codecs)
    x = _images(6, *size, seed=quality)
    u8 = torch.round(x * 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous().numpy()
    want = torch.from_numpy(digital.jpeg_pil(u8, quality)).permute(0, 3, 1, 2).float() / 255
    assert torch.equal(digital.jpeg_compression(x, (quality,), None), want)
    nhwc_view = x.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2)  # as datasets hand it
    assert torch.equal(digital.jpeg_compression(nhwc_view, (quality,), None), want)
    out = torch.full(x.shape, -1.0)
    assert digital._jpeg_u8(x, (quality,), out=out) is out and torch.equal(out, want)


def test_jpeg_codec_check_refuses_a_codec_that_differs(monkeypatch):
    from failmodes.stressors import digital
    digital._codec_matches_pil.cache_clear()
    try:
        real = digital.jpeg_pil
        monkeypatch.setattr(digital, "jpeg_pil", lambda a, q: real(a, q) ^ 1)  # one bit off
        assert not digital._codec_matches_pil("opencv", 50)
        assert not digital._codec_matches_pil("torchvision", 50)
        with pytest.raises(ValueError, match="unknown JPEG codec"):
            digital._codec_matches_pil("libjpeg", 50)
    finally:
        digital._codec_matches_pil.cache_clear()


# ----------------------------------------------------------------------------- outputs
def test_large_outputs_are_recycled_only_once_nothing_refers_to_them(monkeypatch):
    """A big batch's output buffer is reused by the next call only when no tensor, view or
    slice of the previous output is alive; the numbers are those of a fresh tensor."""
    monkeypatch.setattr(chunks, "RECYCLE_MIN_BYTES", 1 << 16)
    monkeypatch.setattr(chunks, "_buffers", [])
    x = _images(40, 32, 32)  # 480 KB: recycled under the lowered threshold
    monkeypatch.setattr(chunks, "CHUNK_PIXELS", 8 * 32 * 32)
    st = get_stressor("contrast")
    want = st(x.clone(), 3.0)  # (the clone: a fresh input each time)
    a = st(x, 3.0)
    assert torch.equal(a, want) and a.data_ptr() % 64 == 0
    ptr = a.data_ptr()
    b = st(x, 4.0)
    assert b.data_ptr() != ptr  # a is alive: a second buffer
    keep = a[5:7]
    del a
    c = st(x, 1.0)
    assert c.data_ptr() != ptr and torch.equal(keep, want[5:7])  # a slice keeps it
    del keep, b, c
    d = st(x, 3.0)
    assert d.data_ptr() in {ptr} | {int(e[0].ctypes.data) + (-e[0].ctypes.data % 64)
                                    for e in chunks._buffers}
    assert torch.equal(d, want) and len(chunks._buffers) <= chunks.RECYCLE_MAX_BUFFERS
    n = d.numpy()  # numpy and shared-memory uses of an output keep it too
    del d
    e = st(x, 5.0)
    assert e.data_ptr() != n.ctypes.data and torch.equal(torch.from_numpy(n), want)
    monkeypatch.setenv("FAILMODES_RECYCLE_OUTPUTS", "0")
    assert not any(e2[0].ctypes.data <= st(x, 3.0).data_ptr() < e2[0].ctypes.data + e2[0].nbytes
                   for e2 in chunks._buffers)
    channels_last = x.contiguous(memory_format=torch.channels_last)
    y = st(channels_last, 3.0)  # not contiguous NCHW: torch.empty_like keeps its layout
    assert y.is_contiguous(memory_format=torch.channels_last) and torch.equal(y, want)


def test_the_recycling_pool_holds_at_most_its_byte_budget(monkeypatch):
    # Budget 4 outputs' worth: a batch over half of it is never pooled; the pool drops
    # idle buffers to make room and never holds more than the budget.
    x = _images(10, 32, 32)
    size = x.numel() * 4
    monkeypatch.setattr(chunks, "RECYCLE_MIN_BYTES", 1)
    monkeypatch.setattr(chunks, "RECYCLE_MAX_BYTES", 4 * size + 4 * chunks._ALIGN)
    monkeypatch.setattr(chunks, "_buffers", [])
    outs = [chunks.empty_output(x) for _ in range(3)]  # three live outputs: three buffers
    assert len(chunks._buffers) == 3
    big = torch.zeros(30, 3, 32, 32)  # 3x the size: over half the budget, never pooled
    chunks.empty_output(big)
    assert len(chunks._buffers) == 3
    del outs
    mid = torch.zeros(20, 3, 32, 32)  # 2x: fits once idle buffers make room
    chunks.empty_output(mid)
    held = sum(e[0].nbytes for e in chunks._buffers)
    assert held <= chunks.RECYCLE_MAX_BYTES and any(e[0].nbytes >= 2 * size for e in chunks._buffers)


def test_the_pool_evicts_an_idle_buffer_behind_a_live_one(monkeypatch):
    # The oldest buffer is still referenced, an idle one sits behind it, and a new size
    # fits none: the idle one goes (found by identity, not by comparing arrays).
    monkeypatch.setattr(chunks, "RECYCLE_MIN_BYTES", 1)
    monkeypatch.setattr(chunks, "_buffers", [])
    keep = chunks.empty_output(torch.zeros(8, 3, 8, 8))
    idle = chunks.empty_output(torch.zeros(8, 3, 8, 8))
    idle_id = id(chunks._buffers[1][0])  # (an id: a reference would keep it busy)
    del idle
    third = chunks.empty_output(torch.zeros(20, 3, 8, 8))
    new = chunks.empty_output(torch.zeros(50, 3, 8, 8))
    assert len(chunks._buffers) == chunks.RECYCLE_MAX_BUFFERS
    assert all(id(e[0]) != idle_id for e in chunks._buffers)
    assert keep.shape[0] == 8 and third.shape[0] == 20 and new.shape[0] == 50


def test_border_index_follows_the_named_rules_everywhere():
    # The rules written out one index at a time (scipy's and OpenCV's definitions),
    # against the vectorised folds, on every side up to 40 and indices three periods out.
    from failmodes.stressors._spatial import border_index

    def reflect(i, n):  # cba|abcd|dcb
        i %= 2 * n
        return i if i < n else 2 * n - 1 - i

    def reflect101(i, n):  # dcb|abcd|cba
        if n == 1:
            return 0
        i %= 2 * n - 2
        return i if i < n else 2 * n - 2 - i

    for n in range(1, 41):
        i = torch.arange(-6 * n - 3, 6 * n + 4)
        for mode, rule in (("reflect", reflect), ("reflect101", reflect101)):
            want = torch.tensor([rule(int(v), n) for v in i])
            assert torch.equal(border_index(i, n, mode), want), (n, mode)
            near = i[(i >= -n + 1) & (i <= 2 * n - 2)]  # the fast branch alone
            assert torch.equal(border_index(near, n, mode), want[(i >= -n + 1) & (i <= 2 * n - 2)])
        assert torch.equal(border_index(i, n, "nearest"), i.clamp(0, n - 1))


def test_value_range_on_the_stressor_threads_equals_aminmax():
    """The input check's (min, max), reduced per chunk on the stressor threads (not by
    torch's OpenMP threads, whose spin-wait then slows the chunks), equals one aminmax:
    with NaN or inf in any chunk, batches of 1 to 7 images, and a StressorError for NaN."""
    from failmodes.stressors._chunks import value_range
    torch.set_num_threads(2)
    try:
        for n in range(1, 8):
            x = _images(n, 96, 96, seed=n)  # from 3 images up on the threads (2^16 values)
            assert value_range(x) == tuple(torch.stack(torch.aminmax(x)).tolist())
            for bad in (float("nan"), float("inf"), -float("inf")):
                y = x.clone()
                y[n - 1, 2, 5, 7] = bad  # in the last chunk
                lo, hi = value_range(y)
                want = torch.stack(torch.aminmax(y)).tolist()
                assert (math.isnan(lo) and math.isnan(hi)) if bad != bad else (lo, hi) == tuple(want)
        y = _images(6, 96, 96)
        y[0, 0, 0, 0] = float("nan")  # in the first chunk
        with pytest.raises(StressorError, match="NaN or inf"):
            get_stressor("contrast")(y, 3.0)
    finally:
        torch.set_num_threads(1)


def test_a_batch_of_one_chunk_is_written_into_its_output(monkeypatch):
    """A CPU batch that fits one chunk (one thread, or a small batch) still hands the
    8-bit ops the output to write their k/255 into (pixelate's float32 gather, JPEG's
    lookup), instead of their uint8 fallback and a division afterwards (1.7x for 20
    224-px images on one thread); the numbers are those of chunked batches."""
    st = get_stressor("pixelate")
    calls = []
    real = st.u8_op

    def spy(x, p, out=None):
        calls.append(out is not None)
        return real(x, p, out=out)

    spied = dataclasses.replace(st, u8_op=spy)
    x = _images(6, 40, 40, seed=3)
    monkeypatch.setattr(chunks, "CHUNK_PIXELS", 1 << 30)
    whole = spied(x, 3.0)
    assert calls == [True]
    monkeypatch.setattr(chunks, "CHUNK_PIXELS", 40 * 40 // 2)  # x chunk_scale 4: 2 images
    assert torch.equal(spied(x, 3.0), whole) and torch.equal(st(x, 3.0), whole)
    assert calls == [True] * 4


def test_small_jpeg_on_stressor_threads_takes_the_batched_codec(monkeypatch):
    """Below 64 x 64 px, chunks on the stressor threads go through torchvision's batched
    codec (one call per chunk, outside the GIL) and the main thread through OpenCV's;
    both give PIL's pixels (the reference, image by image)."""
    from failmodes.stressors import digital
    st = get_stressor("jpeg_compression")
    q = int(st.resolve(3.0, 32)[0])
    # (the codec probes run first: they call the same codec on images of their own)
    assert digital._codec_matches_pil("torchvision", 40)
    assert digital._codec_matches_pil("torchvision", q) and digital._codec_matches_pil("opencv", q)
    taken = []
    real = digital._jpeg_torchvision

    def spy(u8, quality):
        taken.append((chunks.in_worker(), len(u8)))
        return real(u8, quality)

    monkeypatch.setattr(digital, "_jpeg_torchvision", spy)
    x = _images(12, 32, 32, seed=11)
    u8 = torch.round(x * 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous().numpy()
    want = torch.from_numpy(digital.jpeg_pil(u8, q)).permute(0, 3, 1, 2).float() / 255
    assert torch.equal(st(x, 3.0), want) and taken == []  # one thread: OpenCV
    monkeypatch.setattr(chunks, "CHUNK_PIXELS", 3 * 32 * 32 // 4)  # x chunk_scale 4: 3 images
    torch.set_num_threads(2)
    try:
        assert torch.equal(st(x, 3.0), want)
    finally:
        torch.set_num_threads(1)
    assert taken == [(True, 3)] * 4


def test_opencv_runs_single_threaded_on_the_stressor_threads_and_is_restored(monkeypatch):
    """While chunks run on several stressor threads, OpenCV's own pool is set to one thread
    (it only contends with them); the caller's setting comes back afterwards, also when
    two callers overlap (the first sets it, the last restores it) and when a chunk raises."""
    import threading

    import cv2
    before = cv2.getNumThreads()
    cv2.setNumThreads(2)
    seen = []
    gate = threading.Barrier(2)

    def fn(images, indices, out=None):
        seen.append(cv2.getNumThreads())
        if out is not None:
            out.copy_(images)
        return images if out is None else out

    x = _images(8, 16, 16)
    monkeypatch.setattr(chunks, "CHUNK_PIXELS", 2 * 16 * 16)
    torch.set_num_threads(2)
    try:
        assert torch.equal(chunks.run_chunked(fn, x, torch.arange(8)), x)
        assert seen and set(seen) == {1} and cv2.getNumThreads() == 2

        def overlapping():
            torch.set_num_threads(2)  # per thread: a new one may start with 1 (conftest)
            gate.wait()
            chunks.run_chunked(fn, x, torch.arange(8))

        callers = [threading.Thread(target=overlapping) for _ in range(2)]
        for t in callers:
            t.start()
        for t in callers:
            t.join()
        assert set(seen) == {1} and cv2.getNumThreads() == 2

        def boom(images, indices, out=None):
            raise RuntimeError("chunk failed")

        with pytest.raises(RuntimeError, match="chunk failed"):
            chunks.run_chunked(boom, x, torch.arange(8))
        assert cv2.getNumThreads() == 2
    finally:
        torch.set_num_threads(1)
        cv2.setNumThreads(before)
