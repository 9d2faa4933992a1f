"""Deterministic MP4 renderer for the local WAN simulator (``wanlab sim``).

The simulator must answer every generation request with a *real*, playable
H.264 MP4 that visibly says "SIMULATION", shows what was asked for (prompt,
seed, resolution, duration, model) and makes use of the inputs (first/last
frame, grid picture, reference media, the video to edit or extend).  It also
has to be fast (a 720P x 5 s clip in well under a second on two cores) and
byte-for-byte reproducible, so that notebooks and tests can compare hashes.

Why frames are built directly as yuv420p planes
-----------------------------------------------
The obvious implementation -- draw every frame as an RGB picture with PIL and
let PyAV convert it -- spends most of its time outside the encoder: a full
frame PIL draw plus an RGB->YUV conversion (swscale) costs several
milliseconds per 1080P frame, which is as much as libx264 ``ultrafast``
needs to encode that frame.  Instead:

* every picture (seeded background, input image, grid tile, decoded video
  frame) is converted to yuv420p *once*, at slightly more than the output
  size, and motion is produced by moving an integer crop window over it
  (a slice, i.e. free) before one memcpy into the encoder's frame buffer;
* the numpy views we write into *are* the ``av.VideoFrame`` planes (their
  ``line_size`` padding is respected), so there is no extra copy;
* all text is rasterised once with PIL into small grayscale masks and
  composited into the Y plane with two cheap uint8 operations per frame; the
  frame counter is assembled from ten pre-rendered digit glyphs;
* frame synthesis runs in a producer thread while the encoder (which releases
  the GIL) runs in the caller's thread, so both cores are busy.

Determinism comes from a fixed x264 thread count (x264 is deterministic for
a fixed count), no wall-clock metadata in the container (``creation_time``
is never set, so ``mvhd``/``tkhd`` carry zero), and randomness that is only
ever drawn from generators seeded by sha256 of (salt, seed) -- never Python's
per-process salted ``hash()``.

Where things are
----------------
``spec``        RenderSpec, MODES, the checks, seeded randomness
``planes``      yuv420p planes, RGB->YUV, the oversized canvas motion crops from
``background``  the seeded procedural picture (t2v, and wherever no input exists)
``images``      input images (or their placeholders) cover-fitted onto canvases
``video``       input clips decoded lazily into output-size planes
``text``        per-thread fonts, word wrap by rendered width, text masks
``overlay``     banner, frame counter and caption composited per frame
``modes``       how each mode uses its inputs, one generator per mode
``defects``     known defects rendered on purpose (flicker, frozen, blur, drift) at a strength
``mp4``         encoding with PyAV, faststart, probe
``pipeline``    render(): frame producer thread + encoder
"""

from .background import procedural_rgb as _procedural_rgb  # noqa: F401 (private re-export, see below)
from .mp4 import CRF as _CRF  # noqa: F401 (private re-export, see below)
from .mp4 import X264_THREADS as _X264_THREADS  # noqa: F401 (private re-export, see below)
from .mp4 import probe
from .pipeline import render
from .spec import MODES, RenderSpec
from .text import thread_font as _font  # noqa: F401 (private re-export, see below)
from .text import wrap as _wrap  # noqa: F401 (private re-export, see below)

__all__ = ["MODES", "RenderSpec", "render", "probe"]
# The underscored names are not API: tests/test_sim_render.py (_font, _wrap) and bench/bench_render.py
# (_procedural_rgb, _CRF, _X264_THREADS) reach for them, as they did when render was one module.
