"""The numba kernel (``kernel.blocked_loglik``) as a pytensor Op, so that it can stand in for
``graph.loglik_graph`` in any pytensor graph (the MAP objective's, the NUTS model's), and the check
that it computes the same function: ``likelihood_check`` compares value and gradient with the scan
graph's once per process, and a fit uses the kernel only when they agree. No Django import."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytensor
import pytensor.tensor as pt
from pytensor.compile.mode import Mode
from pytensor.gradient import disconnected_type
from pytensor.graph.basic import Apply
from pytensor.graph.op import Op
from pytensor.link.numba.dispatch.basic import numba_njit, register_funcify_and_cache_key

from .graph import flat_inputs, input_tensors, input_values, likelihood_globals, loglik_graph
from .kernel import blocked_layout, blocked_loglik, slot_outcomes
from .layout import TrainingLayout, training_layout
from .model import (
    FORECAST_WEIGHT,
    FORECASTER_PARAMS,
    GLOBAL_NAMES,
    N_COV,
    N_GLOBALS,
    N_VOLATILITY,
    ForecastData,
    default_population,
    gauss_hermite,
    vector_from_population,
)

logger = logging.getLogger(__name__)

_HERE = Path(__file__).parent
# The compiled Op is cached by numba under a key that changes with the kernel's source.
_KERNEL_SOURCE = b"".join((_HERE / name).read_bytes() for name in ("kernel.py", "kernel_op.py"))
_SOURCE_HASH = hashlib.sha256(_KERNEL_SOURCE).hexdigest()[:16]
# The sources that define the two likelihoods compared by ``likelihood_check``.
_CHECKED_SOURCES = ("model.py", "layout.py", "graph.py", "kernel.py", "kernel_op.py")
BLOCK_NAMES = ("bx", "bforecaster", "bz", "blogf", "bactive", "boffset", "bcount", "by")
_N_PARAMS = 8  # la, bias, ls, gb, gs, glob, scale, log_weight; then the data (BLOCK_NAMES)


# --- the likelihood as a pytensor Op --------------------------------------------------------------


class KalmanLogLik(Op):
    """``blocked_loglik`` as an Op. Outputs ``head`` (loglik, then d/d(m0, v0, q, kappa, q_event, eta))
    and the gradients with respect to la, bias, ls, gb, gs, scale. Only ``head[0]`` is
    differentiable (first derivatives: what NUTS needs)."""

    __props__ = ("forecast_weight",)

    def __init__(self, forecast_weight: float):
        self.forecast_weight = float(forecast_weight)

    def make_node(self, *inputs):
        floats = [pt.as_tensor_variable(v).astype("float64") for v in inputs[:_N_PARAMS]]
        data = [pt.as_tensor_variable(v) for v in inputs[_N_PARAMS:]]
        # integers as they come (pm.Data keeps them as int32): a cast would copy them at every call
        data = [v if "int" in v.dtype else v.astype("float64") for v in data]
        return Apply(self, floats + data, [pt.dvector() for _ in range(7)])

    def perform(self, node, inputs, outputs):
        result = blocked_loglik(*inputs[:_N_PARAMS], self.forecast_weight, *inputs[_N_PARAMS:])
        for storage, value in zip(outputs, result, strict=True):
            storage[0] = value

    def connection_pattern(self, node):
        return [[i < _N_PARAMS - 1] * 7 for i in range(len(node.inputs))]

    def pullback(self, inputs, outputs, cotangents):
        head, g_la, g_b, g_ls, g_gb, g_gs, g_scale = outputs
        bar = cotangents[0][0]
        grads = [g_la, g_b, g_ls, g_gb, g_gs, head[1:7], g_scale]
        return [bar * g for g in grads] + [disconnected_type() for _ in inputs[len(grads) :]]


@register_funcify_and_cache_key(KalmanLogLik)
def _funcify(op, node=None, **kwargs):
    weight = op.forecast_weight

    @numba_njit
    def kalman(la, bias, ls, gb, gs, glob, scale, log_weight, bx, bf, bz, blogf, bactive, boffset, bcount, by):
        return blocked_loglik(
            la,
            bias,
            ls,
            gb,
            gs,
            glob,
            scale,
            log_weight,
            weight,
            bx,
            bf,
            bz,
            blogf,
            bactive,
            boffset,
            bcount,
            by,
        )

    return kalman, f"forecasting.kernel_op.KalmanLogLik-{_SOURCE_HASH}-{weight!r}"


def question_arrays(layout: TrainingLayout) -> tuple[np.ndarray, np.ndarray]:
    """Per question with forecasts (in row order): where its rows start (plus the end) and its outcome."""
    last = np.concatenate([b[2] for b in layout.buckets]).astype(np.int64)
    y = np.concatenate([b[3] for b in layout.buckets]).astype(float)
    order = np.argsort(last, kind="stable")
    return np.r_[0, last[order] + 1].astype(np.int64), y[order]


def block_values(layout: TrainingLayout) -> dict[str, np.ndarray]:
    """The layout's rows in ``blocked_layout`` order, with each question slot's outcome: the values
    of ``block_tensors``."""
    start, y = question_arrays(layout)
    blocks = blocked_layout(start, layout.x, layout.forecaster, layout.z, layout.f)
    blocks["by"] = slot_outcomes(blocks.pop("bquestion"), y)
    return blocks


def block_tensors() -> dict:
    """Symbolic inputs for ``fast_loglik_graph`` (values: ``block_values``)."""
    integer = {"bforecaster", "boffset", "bcount"}
    return {
        name: (pt.dmatrix if name == "bz" else pt.lvector if name in integer else pt.dvector)(name)
        for name in BLOCK_NAMES
    }


def fast_loglik_graph(g: dict, gb, gs, par: dict, blocks: dict):
    """``graph.loglik_graph(g, gb, gs, par, inputs)`` computed by ``blocked_loglik``: the same
    arguments, with ``blocks`` (``block_tensors``, or constants of ``block_values``) as the data."""
    nodes, weights = gauss_hermite(N_VOLATILITY)
    op = KalmanLogLik(FORECAST_WEIGHT)
    head = op(
        par["log_alpha"],
        par["bias"],
        par["log_sigma"],
        gb,
        gs,
        pt.stack([g["m0"], g["s0"] ** 2, g["q"], g["kappa"], g["q_event"], g["eta"]]),
        pt.exp(g["omega"] * pt.as_tensor(nodes)),
        np.log(weights),
        *(blocks[name] for name in BLOCK_NAMES),
    )[0]
    return head[0]


# --- checking the kernel against the model's own likelihood -------------------------------------

_CHECK: dict[str, Any] = {}
_CHECK_LOCK = threading.RLock()


def likelihood_check() -> dict[str, Any]:
    """Compare ``fast_loglik_graph`` with ``graph.loglik_graph``: value and gradient at random
    parameters on a small synthetic data set. The result decides which likelihood the fits use,
    so that a change to the model is never fitted with a stale kernel. Once per process, and
    remembered on disk (pytensor's compile directory) for the same source of the modules that
    define both (``_CHECKED_SOURCES``)."""
    with _CHECK_LOCK:
        if not _CHECK:
            key = hashlib.sha256(b"".join((_HERE / name).read_bytes() for name in _CHECKED_SOURCES)).hexdigest()
            stored = _stored_check(key)
            if stored is not None:
                _CHECK.update(stored, cached=True)
            else:
                try:
                    _CHECK.update(_run_likelihood_check())
                except Exception as exc:  # a model change the kernel cannot even express
                    _CHECK.update(ok=False, error=repr(exc))
                _store_check(key, _CHECK)
            if not _CHECK["ok"]:
                logger.warning("fast Kalman likelihood unusable, sampling with pytensor's scan: %s", _CHECK)
        return dict(_CHECK)


def _check_file() -> Path:
    return Path(pytensor.config.compiledir) / "forecasting_bayes_likelihood_check.json"


def _stored_check(key: str) -> dict | None:
    try:
        stored = json.loads(_check_file().read_text())
    except (OSError, ValueError):
        return None
    return stored.get("result") if stored.get("key") == key else None


def _store_check(key: str, result: dict) -> None:
    with contextlib.suppress(OSError):  # read-only: check again next time
        _check_file().write_text(json.dumps({"key": key, "result": result}))


def _check_data() -> ForecastData:
    rng = np.random.default_rng(20240611)
    n_questions, keys = 12, [f"check-{i}" for i in range(6)]
    rows: dict[str, list] = {"q": [], "key": [], "p": [], "t": []}
    for i in range(n_questions):
        k = int(rng.integers(1, 6))
        rows["q"] += [i] * k
        rows["key"] += list(rng.choice(keys, size=k, replace=True))  # repeats: superseded forecasts
        rows["p"] += list(rng.uniform(0.0, 1.0, size=k))
        rows["t"] += list(np.sort(rng.uniform(0.0, 50.0, size=k))[::-1] * 86400.0)
    return ForecastData(
        question_index=np.array(rows["q"]),
        forecaster_key=rows["key"],
        probability=np.array(rows["p"]),
        seconds_to_resolution=np.array(rows["t"]),
        outcome=rng.integers(0, 2, size=n_questions),
        life_seconds=rng.uniform(50.0, 80.0, size=n_questions) * 86400.0,
    )


def _run_likelihood_check() -> dict[str, Any]:
    started = time.monotonic()
    layout = training_layout(_check_data())
    nf = len(layout.keys)
    theta = pt.dvector("theta")
    g, gb, gs, par = _split_theta(theta, nf)
    reference = input_tensors()
    blocks = block_values(layout)
    block_tensors = {name: pt.as_tensor(value) for name, value in blocks.items()}
    mode = Mode(linker="py", optimizer="fast_compile")
    outputs = []
    for loglik in (loglik_graph(g, gb, gs, par, reference), fast_loglik_graph(g, gb, gs, par, block_tensors)):
        fn = pytensor.function(
            [theta, *flat_inputs(reference)],
            [loglik, pytensor.grad(loglik, theta)],
            mode=mode,
            on_unused_input="ignore",
        )
        rng = np.random.default_rng(1)
        for _ in range(3):
            point = np.r_[
                vector_from_population(default_population()) + rng.normal(0.0, 0.4, N_GLOBALS + 2 * N_COV),
                rng.normal(0.0, 0.4, len(FORECASTER_PARAMS) * nf),
            ]
            outputs.append(fn(point, *input_values(layout)))
    pairs = list(zip(outputs[:3], outputs[3:], strict=True))
    value_error = max(abs(float(a[0]) - float(b[0])) for a, b in pairs)
    grad_error = max(float(np.max(np.abs(a[1] - b[1]))) for a, b in pairs)
    size = max(1.0, *(abs(float(a[0])) for a, _ in pairs))
    ok = bool(np.isfinite(value_error) and value_error <= 1e-9 * size and grad_error <= 1e-8 * size)
    return {"ok": ok, "value_error": value_error, "grad_error": grad_error, "seconds": time.monotonic() - started}


def _split_theta(theta, nf):
    """The model's parameters as slices of one vector (the MAP's layout)."""
    gv = {name: theta[i] for i, name in enumerate(GLOBAL_NAMES)}
    o = N_GLOBALS
    gb, gs = theta[o : o + N_COV], theta[o + N_COV : o + 2 * N_COV]
    o += 2 * N_COV
    par = {name: theta[o + i * nf : o + (i + 1) * nf] for i, name in enumerate(FORECASTER_PARAMS)}
    return likelihood_globals(gv), gb, gs, par
