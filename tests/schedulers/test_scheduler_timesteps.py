"""Inference grids: parity of set_timesteps with diffusers for every spacing, and the previous-timestep lookup."""
import json

import numpy as np
import pytest
from helpers import assert_close, host, load_fixture

from minildm.schedulers import DDIMScheduler, DDPMScheduler, DPMSolverMultistepScheduler, spaced_timesteps

FIXTURE = load_fixture("schedulers_timesteps.npz")
CASES = json.loads(str(FIXTURE["cases"]))
CLASSES = {c.__name__: c for c in (DDPMScheduler, DDIMScheduler, DPMSolverMultistepScheduler)}


def _id(case):
    return f"{case['scheduler']}|n={case['n']}|" + ",".join(f"{k}={v}" for k, v in case["config"].items())


@pytest.mark.parametrize("i", range(len(CASES)), ids=[_id(c) for c in CASES])
def test_timesteps_match_diffusers(i):
    case = CASES[i]
    scheduler = CLASSES[case["scheduler"]](**case["config"])
    scheduler.set_timesteps(case["n"])
    timesteps = host(scheduler.timesteps)
    assert timesteps.dtype == np.int64
    np.testing.assert_array_equal(timesteps, FIXTURE[f"{i}_timesteps"])
    assert scheduler.timestep_list == timesteps.tolist()
    if f"{i}_sigmas" in FIXTURE:
        assert_close(scheduler.sigmas, FIXTURE[f"{i}_sigmas"], rtol=1e-6, what="sigmas")


def test_table_2_of_lin_et_al():
    """The three spacings for T = 1000, n = 10 (Lin et al. 2023, Table 2)."""
    assert spaced_timesteps("leading", 10, 1000) == [900, 800, 700, 600, 500, 400, 300, 200, 100, 0]
    assert spaced_timesteps("leading", 10, 1000, steps_offset=1) == [901, 801, 701, 601, 501, 401, 301, 201, 101, 1]
    assert spaced_timesteps("trailing", 10, 1000) == [999, 899, 799, 699, 599, 499, 399, 299, 199, 99]
    assert spaced_timesteps("linspace", 10, 1000) == [999, 888, 777, 666, 555, 444, 333, 222, 111, 0]


@pytest.mark.parametrize("spacing", ["leading", "trailing", "linspace"])
@pytest.mark.parametrize("n", [1, 2, 7, 30, 48, 61, 103, 999, 1000])
def test_grids_have_n_distinct_decreasing_timesteps_in_range(spacing, n):
    """Including n = 61, 103 with trailing spacing, where diffusers' np.arange(T, 0, -T/n) yields n + 1 values
    ending in timestep -1 (a deliberate difference: we always return exactly n)."""
    grid = spaced_timesteps(spacing, n, 1000)
    assert len(grid) == n and all(a > b for a, b in zip(grid, grid[1:])) and 0 <= grid[-1] and grid[0] <= 999


def _next_on_grid(grid):
    return {t: (grid[i + 1] if i + 1 < len(grid) else -1) for i, t in enumerate(grid)}


@pytest.mark.parametrize("scheduler_cls", [DDPMScheduler, DDIMScheduler])
@pytest.mark.parametrize("spacing, n", [("trailing", 7), ("trailing", 30), ("linspace", 7), ("linspace", 50),
                                        ("leading", 7), ("leading", 50)])
def test_previous_timestep_is_the_next_grid_point(scheduler_cls, spacing, n):
    """t' must be the next timestep on the grid; t - T // n (diffusers' DDIM shortcut) is not, for trailing and
    linspace spacing when the steps are uneven. Computed here independently of the scheduler."""
    scheduler = scheduler_cls(timestep_spacing=spacing)
    scheduler.set_timesteps(n)
    grid = host(scheduler.timesteps).tolist()
    expected = _next_on_grid(grid)
    assert {t: scheduler.previous_timestep(t) for t in grid} == expected
    shortcut_right = all(expected[t] == t - 1000 // n or expected[t] < 0 and t - 1000 // n < 0 for t in grid)
    assert shortcut_right == (spacing == "leading")


def test_trailing_7_by_hand():
    """T = 1000, n = 7: t_i = round(1000 - i·1000/7) - 1."""
    scheduler = DDIMScheduler(timestep_spacing="trailing")
    scheduler.set_timesteps(7)
    assert scheduler.timestep_list == [999, 856, 713, 570, 428, 285, 142]
    assert scheduler.previous_timestep(999) == 856  # diffusers' DDIM would step to 999 - 142 = 857
    assert scheduler.previous_timestep(142) == -1


def test_full_grid_before_set_timesteps():
    scheduler = DDPMScheduler(num_train_timesteps=20)
    assert scheduler.timestep_list == list(range(19, -1, -1))
    assert scheduler.previous_timestep(5) == 4 and scheduler.previous_timestep(0) == -1
    assert len(scheduler) == 20


def test_custom_timesteps():
    scheduler = DDIMScheduler()
    scheduler.set_timesteps(timesteps=[900, 500, 20])
    assert scheduler.num_inference_steps == 3 and scheduler.previous_timestep(500) == 20
    for bad in ([500, 900], [1000, 10], [5, 5], [10, -1]):
        with pytest.raises(ValueError, match="strictly decreasing"):
            scheduler.set_timesteps(timesteps=bad)
    with pytest.raises(ValueError, match="exactly one"):
        scheduler.set_timesteps(10, timesteps=[5, 1])
    with pytest.raises(ValueError, match="num_inference_steps=1001"):
        scheduler.set_timesteps(1001)


def test_timestep_off_the_grid_is_a_clear_error():
    scheduler = DDIMScheduler()
    scheduler.set_timesteps(10)
    with pytest.raises(ValueError, match="timestep 901 is not on the current grid"):
        scheduler.previous_timestep(901)


def test_unknown_spacing_lists_the_valid_ones():
    with pytest.raises(ValueError, match="timestep_spacing='uniform'.*'leading', 'trailing', 'linspace'"):
        DDIMScheduler(timestep_spacing="uniform")
