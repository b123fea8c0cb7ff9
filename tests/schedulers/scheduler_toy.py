"""The toy "model" and loop runner behind the scheduler parity tests (twin of scripts/fixtures/schedulers.py).

    out = 0.1 · x + sin(t / 100) · c          (+ C channels 0.5 + 0.4 · sin(x + t / 300) for learned variances)
"""
import json
import math

from helpers import load_fixture, to_backend

from minildm import backend, schedulers


def toy_model(x, t, c, learned=False):
    xp = backend.get_array_module(x)
    out = 0.1 * x + math.sin(t / 100) * c
    if learned:
        out = xp.concatenate([out, 0.5 + 0.4 * xp.sin(x + t / 300)], axis=1)
    return out


def load_loop_cases(name):
    """(fixture arrays, list of cases) of tests/fixtures/schedulers_<name>.npz."""
    fixture = load_fixture(f"schedulers_{name}.npz")
    return fixture, json.loads(str(fixture["cases"]))


def case_id(case):
    """A readable pytest id: dtype, config, steps, step options."""
    parts = [case["dtype"]]
    parts += [f"{k}={v}" for k, v in case["config"].items() if k not in ("beta_start", "beta_end")]
    parts += [f"n={case['n']}"] if case.get("n") else []
    parts += [f"{k}={v}" for k, v in case.get("step_kwargs", {}).items()]
    parts += ["grid_prev"] if case.get("grid_prev") else []
    return "|".join(parts)


def run_loop(case, fixture, own_betas=False):
    """Run the case's sampling loop with minildm; returns the last SchedulerOutput.

    By default the scheduler gets diffusers' betas as ``trained_betas`` (the loop then tests the stepping math);
    ``own_betas=True`` keeps minildm's own schedule.
    """
    cls = getattr(schedulers, case["scheduler"])
    config = case["config"] if own_betas else {**case["config"], "trained_betas": fixture[case["betas"]]}
    scheduler = cls(**config)
    if "timesteps" in case:
        scheduler.set_timesteps(timesteps=case["timesteps"])
    elif case.get("n") is not None:
        scheduler.set_timesteps(case["n"])
    dtype = case["dtype"]
    x, c = to_backend(fixture["x_T"], dtype), to_backend(fixture["c"], dtype)
    noise = to_backend(fixture["noise"], dtype)
    learned = case["config"].get("variance_type") in ("learned", "learned_range")
    kwargs = dict(case.get("step_kwargs", {}))
    stochastic = case["scheduler"] == "DDPMScheduler" or kwargs.get("eta", 0) > 0
    for i, t in enumerate(scheduler.timesteps.tolist()):
        if stochastic:
            kwargs["variance_noise"] = noise[i]
        output = scheduler.step(toy_model(x, t, c, learned), t, x, **kwargs)
        x = output.prev_sample
    return output
