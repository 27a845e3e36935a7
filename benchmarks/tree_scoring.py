"""The ranker's scoring alone: LightGBM's ``Booster.predict`` against the compiled model
(``recsmith.trees``: the machine's kernel, and on an AVX-512 machine its AVX2 kernel too, built
with AVX-512 turned off, and the nested ifs) and, when installed, tl2cgen, on the candidate
features a trained pipeline really scores (in the layout it is handed), for batches of 1,
12 and 32 users.

Loads a pipeline (``serve_load.py --workdir DIR`` builds one in ``DIR/model``), answers users
drawn at random while recording the feature matrices its ranker is handed, then scores each
matrix with every evaluator in turn, call by call (interleaved, so they share the machine's
state), and reports process CPU µs per row and ms per call. Every evaluator's scores are checked
against LightGBM's (max |difference|, and whether bit-identical) before any timing.
``--against SRC`` adds another checkout's compiled model ("against"): its library is built by
that checkout's own code in a subprocess, then loaded here and called as its ``predict`` calls it
for the ranker's float32 rows, so both are timed in this one process. ``--random SEED`` scores a
model trained on random features instead of a pipeline's (the ranker's shape: 22 features, 100
trees of 31 leaves, NaN and zeros among the values), 257 random rows a user.

    .venv/bin/python benchmarks/tree_scoring.py /tmp/large/model --rounds 5
    .venv/bin/python benchmarks/tree_scoring.py --random 0
    PYTHONPATH=src:benchmarks .venv/bin/python benchmarks/tree_scoring.py /tmp/large/model \
        --against /tmp/base/src
"""

from __future__ import annotations

import argparse
import ctypes
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np
from calibration import calibration_line

Scorer = Callable[[np.ndarray], np.ndarray]


def captured_features(model_dir: Path, batches: tuple[int, ...], calls: int) -> dict:
    """{users per call: [feature matrix per call]} and the ranker, from real answers."""
    from recsmith.pipeline.artifact import load_artifact

    pipe = load_artifact(model_dir)
    # measure the compiled ranker, built in the background (a checkout from before that, run
    # by --against, compiled it at load and has no wait_compiled)
    getattr(pipe.ranker, "wait_compiled", lambda: None)()
    ranker = pipe.ranker
    if ranker is None:
        raise SystemExit(f"{model_dir}: this pipeline has no ranker")
    known = np.asarray(pipe.bundle.users.external_ids, dtype=object)
    rng = np.random.default_rng(0)
    score = ranker.score
    out: dict[int, list[np.ndarray]] = {}
    for batch in batches:
        seen: list[np.ndarray] = []
        # copied in the layout handed (feature-major: ``candidate_features``' columns), so
        # each evaluator is timed on what the ranker really reads
        ranker.score = lambda f, seen=seen: (seen.append(f.copy(order="K")), score(f))[1]
        for _ in range(max(1, calls // batch)):
            pipe.answer(list(rng.choice(known, batch, replace=False)), 10)
        out[batch] = seen
    ranker.score = score
    return {"features": out, "ranker": ranker}


def random_features(seed: int, batches: tuple[int, ...], calls: int) -> dict:
    """``captured_features``' shape for a model trained on random features: a regression of
    the ranker's size, scored on 257 random float32 rows a user (NaN and 0 among them)."""
    import lightgbm as lgb

    rng = np.random.default_rng(seed)

    def rows(n: int) -> np.ndarray:
        x = rng.normal(size=(n, 22)).astype(np.float32)
        x[rng.random(x.shape) < 0.05] = np.nan
        x[rng.random(x.shape) < 0.05] = 0.0
        return x

    x = rows(20_000)
    clean = np.nan_to_num(x)
    y = clean[:, 0] * clean[:, 1] + np.sin(3 * clean[:, 2]) + rng.normal(size=len(x))
    params = {"objective": "regression", "num_leaves": 31, "verbosity": -1, "num_threads": 1}
    booster = lgb.train(params, lgb.Dataset(x, label=y), num_boost_round=100)
    out = {b: [rows(257 * b) for _ in range(max(1, calls // b))] for b in batches}
    return {"features": out, "ranker": SimpleNamespace(booster=booster)}


def scorers(ranker: object, tl2cgen_dir: Path) -> dict[str, Scorer]:
    from recsmith.trees.build import NO_AVX512
    from recsmith.trees.forest import CompiledForest

    booster = ranker.booster  # type: ignore[attr-defined]
    text = booster.model_to_string()
    compiled = CompiledForest(text)
    out: dict[str, Scorer] = {
        "lightgbm": lambda f: booster.predict(f, raw_score=True, num_threads=1),
        "compiled": compiled.predict,
    }
    kernel = getattr(compiled, "kernel", None)  # a checkout from before it: the kernel unsaid
    if kernel is not None:
        print(f"compiled: the {kernel} kernel on float32 rows")
        avx2 = CompiledForest(text, narrowed=NO_AVX512)
        if avx2.kernel not in (kernel, "ifs"):  # an AVX-512 machine: its AVX2 kernel too
            out["avx2"] = avx2.predict
        out["ifs"] = CompiledForest(text, vectorised=False).predict
    try:
        import tl2cgen
        import treelite
    except ImportError:
        print("tl2cgen not installed: skipped")
        return out
    started = time.perf_counter()
    lib = tl2cgen_dir / "tl2cgen_model.so"
    tl2cgen.export_lib(
        treelite.frontend.from_lightgbm(booster), toolchain="gcc", libpath=str(lib), nthread=1
    )
    print(f"tl2cgen {tl2cgen.__version__}: compiled in {time.perf_counter() - started:.1f} s")
    predictor = tl2cgen.Predictor(str(lib), nthread=1)
    out["tl2cgen"] = lambda f: predictor.predict(
        tl2cgen.DMatrix(f, dtype=str(f.dtype)), pred_margin=True
    ).reshape(-1)
    return out


# run in a subprocess with the other checkout first on sys.path: prints the library it loads
_BUILD_OTHER = """
import ctypes, sys
loaded = []
opened = ctypes.CDLL
ctypes.CDLL = lambda path, *a, **k: (loaded.append(path), opened(path, *a, **k))[1]
from recsmith.trees.forest import CompiledForest
CompiledForest(sys.stdin.read())
print(loaded[-1])
"""


def other_checkout(src: Path, model_text: str) -> Scorer:
    """Another checkout's compiled model, scoring float32 rows as its ``predict`` does."""
    env = {**os.environ, "PYTHONPATH": str(src)}
    done = subprocess.run(
        [sys.executable, "-c", _BUILD_OTHER],
        input=model_text,
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    fn = ctypes.CDLL(done.stdout.strip()).forest_predict_f32
    # entries since BENCHMARKS §108 take the rows' two steps (row-major: n_features, 1)
    stepped = "row_step" in (src / "recsmith" / "trees" / "codegen.py").read_text()
    steps = [ctypes.c_int64] * 2 if stepped else []
    fn.argtypes = [ctypes.c_void_p, ctypes.c_int64, *steps, ctypes.c_void_p]
    fn.restype = ctypes.c_int32

    def score(rows: np.ndarray) -> np.ndarray:
        rows = np.asarray(rows, np.float32)
        if stepped and rows.flags.f_contiguous and not rows.flags.c_contiguous:
            at: tuple[int, ...] = (1, len(rows))  # feature-major, read in place as it reads them
        else:  # an older checkout's predict made the rows row-major first
            rows = np.ascontiguousarray(rows)
            at = (rows.shape[1], 1) if stepped else ()
        out = np.empty(len(rows), np.float64)
        fn(rows.ctypes.data, len(rows), *at, out.ctypes.data)
        return out

    return score


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_dir", type=Path, nargs="?", help="a pipeline (not with --random)")
    parser.add_argument("--random", type=int, metavar="SEED", help="a model of random features")
    parser.add_argument("--calls", type=int, default=384, help="users answered per batch size")
    parser.add_argument("--rounds", type=int, default=5, help="passes over the captured calls")
    parser.add_argument("--tmp", type=Path, default=Path("/tmp"), help="where tl2cgen builds")
    parser.add_argument("--against", type=Path, help="another checkout's src/ to time as well")
    args = parser.parse_args()
    print(calibration_line())
    if (args.model_dir is None) == (args.random is None):
        parser.error("give a pipeline's model_dir or --random SEED")
    if args.random is not None:
        got = random_features(args.random, (1, 12, 32), args.calls)
    else:
        got = captured_features(args.model_dir, (1, 12, 32), args.calls)
    run = scorers(got["ranker"], args.tmp)
    if args.against is not None:
        run["against"] = other_checkout(args.against, got["ranker"].booster.model_to_string())
    for batch, matrices in got["features"].items():
        rows = sum(len(m) for m in matrices)
        for name, score in run.items():
            diffs = [np.abs(score(m) - run["lightgbm"](m)) for m in matrices]
            worst = max(float(d.max()) for d in diffs if len(d))
            same = all(not d.any() for d in diffs)
            print(f"{batch:>2} users, {name}: max |diff| vs lightgbm {worst:.3g}, identical {same}")
        cpu = dict.fromkeys(run, 0.0)
        for _ in range(args.rounds):
            for m in matrices:
                for name, score in run.items():
                    started = time.process_time()
                    score(m)
                    cpu[name] += time.process_time() - started
        base = cpu["lightgbm"]
        for name, spent in cpu.items():
            per_call = spent / args.rounds / len(matrices)
            print(
                f"{batch:>2} users ({rows / len(matrices):,.0f} rows/call, {len(matrices)} calls)"
                f" {name:>9}: {1e6 * spent / args.rounds / rows:.3f} µs/row,"
                f" {1e3 * per_call:.3f} ms/call, {spent / base:.2f}× lightgbm's CPU"
                + (f", {spent / cpu['ifs']:.2f}× the ifs'" if "ifs" in cpu else "")
                + (f", {spent / cpu['against']:.2f}× against's" if "against" in cpu else "")
            )


if __name__ == "__main__":
    main()
