"""LR schedule multipliers: values at the key steps, continuity, monotonicity, argument checks."""
import math

import pytest

from minildm.optim import cosine_decay, linear_warmup, warmup_cosine


def test_linear_warmup():
    assert [linear_warmup(s, 4) for s in range(6)] == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    assert linear_warmup(0, 0) == 1.0 and linear_warmup(7, 0) == 1.0
    with pytest.raises(ValueError, match="warmup_steps must be >= 0"):
        linear_warmup(0, -1)


def test_cosine_decay():
    assert cosine_decay(0, 10) == 1.0
    assert cosine_decay(5, 10) == pytest.approx(0.5)
    assert cosine_decay(10, 10) == pytest.approx(0.0, abs=1e-15)
    assert cosine_decay(25, 10) == cosine_decay(10, 10)  # flat after the end
    assert cosine_decay(10, 10, final_ratio=0.1) == pytest.approx(0.1)
    assert cosine_decay(5, 10, final_ratio=0.1) == pytest.approx(0.55)
    t = 3
    assert cosine_decay(t, 10, 0.2) == pytest.approx(0.2 + 0.8 * 0.5 * (1 + math.cos(math.pi * t / 10)))
    values = [cosine_decay(s, 50, 0.05) for s in range(60)]
    assert all(a >= b for a, b in zip(values, values[1:]))
    with pytest.raises(ValueError, match="final_ratio"):
        cosine_decay(0, 10, final_ratio=1.5)
    with pytest.raises(ValueError, match="total_steps must be > 0"):
        cosine_decay(0, 0)


def test_warmup_cosine():
    values = [warmup_cosine(s, 4, 14, final_ratio=0.1) for s in range(20)]
    assert values[:4] == [0.25, 0.5, 0.75, 1.0]           # warmup reaches 1 at its last step...
    assert values[4] == 1.0                                # ...and the cosine starts at 1
    assert values[9] == pytest.approx(0.55)                # halfway through the decay
    assert values[14] == pytest.approx(0.1) and values[19] == pytest.approx(0.1)
    assert all(a >= b for a, b in zip(values[3:], values[4:]))
    assert warmup_cosine(0, 0, 10) == 1.0
    with pytest.raises(ValueError, match="warmup_steps < total_steps"):
        warmup_cosine(0, 10, 10)
