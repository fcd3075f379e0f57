"""Scores do not depend on the number of threads: the same inputs scored in processes with 1,
2 and 3 rayon threads give the same bits (float.hex of every number)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import numpy as np, wx_scoring as wx
    rng = np.random.default_rng(11)
    shape = (3, 181, 360)
    lats = np.linspace(90, -90, 181)
    truth = (250 + 30 * rng.standard_normal(shape)).astype(np.float32)
    clim = (truth + rng.standard_normal(shape)).astype(np.float32)
    fc = (truth + 2 * rng.standard_normal(shape)).astype(np.float32)
    ref = (truth + 3 * rng.standard_normal(shape)).astype(np.float32)
    fc[1, 10:20, 5:50] = np.nan
    v = wx.score_variable(fc, truth, clim, lats, [500, 850, 1000], reference=ref)
    values = [v.to_dict()] + [m.to_dict() for m in v.per_level]
    print(repr([{k: (x.hex() if isinstance(x, float) else x) for k, x in d.items()}
                for d in values]))
    """
)


def test_thread_count_does_not_change_the_bits():
    outputs = {}
    for threads in (1, 2, 3):
        env = dict(os.environ, RAYON_NUM_THREADS=str(threads))
        out = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True,
                             text=True)
        assert out.returncode == 0, out.stderr
        outputs[threads] = out.stdout
    assert "0x" in outputs[1]
    assert outputs[1] == outputs[2] == outputs[3]


def test_concurrent_python_threads_get_the_same_bits():
    # the GIL is released while the kernel runs: several Python threads score at once
    from concurrent.futures import ThreadPoolExecutor

    import numpy as np
    import wx_scoring as wx

    rng = np.random.default_rng(3)
    truth = (280 + rng.standard_normal((361, 720))).astype(np.float32)
    fc = (truth + rng.standard_normal((361, 720))).astype(np.float32)
    lats = np.linspace(90, -90, 361)
    expected = wx.score_field(fc, truth, lats, climatology=truth * np.float32(0.999)).to_dict()
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(
            lambda _: wx.score_field(fc, truth, lats, climatology=truth * np.float32(0.999))
            .to_dict(), range(8)))
    assert all(r == expected for r in results)
