#!/usr/bin/env python3
"""mpigan's benchmark: the machine's GEMM bound, mpigan and PyTorch on the paper's MNIST model and
on DCGAN at 32x32, in one run, with the targets of the performance issues as ratios.

    bench/run.py                 # the full run: MLP 300 steps, DCGAN 40, x 3 repeats each
    bench/run.py --quick         # CI's short form: proves every part works, times mean little
    bench/run.py --model dcgan   # one part only (mlp, dcgan, scale; default all)
    bench/run.py --model scale   # buckets, sharded update, bf16: both MLPs, about 20 minutes

DCGAN (configs/cifar10-dcgan.yaml, global batch 64) trains on a generated CIFAR-10-shaped data set
(3 x 32 x 32 random bytes in the binary format, written to a temporary folder), which mpigan and
the PyTorch twin read alike: the timing does not depend on the pixels.

`--model scale` runs the paper's MNIST model and its CIFAR-10 MLP (configs/cifar10-mlp.yaml, 127
million parameters, on the same generated data) on 1 rank of 100 rows and on 2 ranks of 100 rows
each, with gradient buckets, the sharded update and bf16 transport added one at a time, for the
exposed communication share of the step, weak scaling, optimizer state and peak RSS per rank, and
the update's time (SCALE_CONFIGS below); --quick runs the CIFAR-10 MLP at a tenth of its width.

Every configuration runs `repeats` times, the configurations interleaved round by round, so
drift on a shared machine hits all of them alike. The benchmark reports; it never fails on a
time (it exits non-zero only when something did not run). Stdlib only; PyTorch runs under
/usr/bin/python3 (Debian's python3-torch) when it is there.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
TORCH_PYTHON = "/usr/bin/python3"

# name, ranks, threads per rank, global batch, weak, extra --set of mpigan (None: a PyTorch twin)
CONFIGS = [
    ("1 rank x 1 thread", 1, 1, 100, False, None),
    ("1 rank x 2 threads", 1, 2, 100, False, None),
    ("2 ranks x 1 thread, global batch 100 (strong)", 2, 1, 100, False, None),
    ("2 ranks x 1 thread, 100 per rank (weak)", 2, 1, 200, True, None),
    # The strong configuration with the gradients summed by MPI_Allreduce instead of the node's
    # shared memory: the before/after of train.shared_allreduce in the same run.
    ("  the same, MPI_Allreduce (shared_allreduce off)", 2, 1, 100, False,
     "train.shared_allreduce=false"),
]


# DCGAN: name, ranks, global batch, weak, batch norm statistics synchronised over ranks, PyTorch
# twin, in --quick. mpigan's configuration syncs them (the global batch's statistics); PyTorch's
# DDP does not (each process normalises its own rows), so the comparison with DDP runs mpigan
# with sync off, and sync on is measured apart, with the share of its small allreduces.
DCGAN_CONFIGS = [
    ("1 rank x 1 thread", 1, 64, False, True, True, True),
    ("2 ranks x 1 thread, global 64 (strong), BN per rank", 2, 64, False, False, True, True),
    ("2 ranks x 1 thread, 64 per rank (weak), BN per rank", 2, 128, True, False, False, True),
    ("2 ranks x 1 thread, global 64 (strong), BN sync", 2, 64, False, True, False, True),
    ("2 ranks x 1 thread, 64 per rank (weak), BN sync", 2, 128, True, True, False, False),
    # The convolutions through im2col and one GEMM each (algorithm: gemm), the path before
    # Winograd's (algorithm: auto, the default above): the before and after in the same run.
    (DCGAN_GEMM_ROW := "1 rank x 1 thread, convolutions by GEMM (algorithm: gemm)", 1, 64, False,
     True, False, True),
]
# The conv and deconv layers of configs/cifar10-dcgan.yaml, and the overrides that run them all
# through the GEMM (the first and last of each network are dense shapes, GEMMs either way).
DCGAN_CONV_LAYERS = [("generator", 0), ("generator", 2), ("generator", 4), ("generator", 6),
                     ("discriminator", 0), ("discriminator", 1), ("discriminator", 3),
                     ("discriminator", 5)]
DCGAN_GEMM_PATH = [f"{net}.layers.{l}.algorithm=gemm" for net, l in DCGAN_CONV_LAYERS]
# The batch norm layers of configs/cifar10-dcgan.yaml (a --set of sync on any other layer fails).
DCGAN_BN_LAYERS = [("generator", 1), ("generator", 3), ("generator", 5),
                   ("discriminator", 2), ("discriminator", 4)]
DCGAN_RECORDS = 1000  # per data_batch file: 5,000 examples, 4,500 train, 500 validate


def write_cifar_like(folder):
    """data_batch_1.bin ... data_batch_5.bin of random 3 x 32 x 32 images (label, then bytes)."""
    import random
    rng = random.Random(20140610)
    os.makedirs(folder, exist_ok=True)
    for b in range(1, 6):
        with open(os.path.join(folder, f"data_batch_{b}.bin"), "wb") as f:
            for i in range(DCGAN_RECORDS):
                f.write(bytes([i % 10]) + rng.randbytes(3072))
    return ["data.path=" + folder, f"data.train_count={5 * DCGAN_RECORDS * 9 // 10}",
            f"data.valid_count={5 * DCGAN_RECORDS // 10}"]


def mpi_env(threads):
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads))
    if os.geteuid() == 0:  # Open MPI refuses root without these
        env.update(OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    return env


def mpirun(ranks, threads):
    # A rank meant to use 2 threads must not be bound to one core.
    bind = ["--bind-to", "none"] if threads > 1 else ["--bind-to", "core"]
    return ["mpirun", "-q", "--oversubscribe", "-np", str(ranks)] + bind


def run(cmd, env, what):
    p = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if p.returncode != 0:
        sys.exit(f"bench: {what} failed (exit {p.returncode}): {' '.join(cmd)}\n{p.stderr.strip()}")
    return p.stdout


def sets(overrides):
    return [a for o in overrides for a in ("--set", o)]


def gemm_bound(args, config=None, iterations=None, ranks=1, overrides=(), repeats=None):
    cmd = mpirun(ranks, 1) + [os.path.join(args.build, "bench", "gemm_bound"),
                              config or args.config, str(iterations or args.gemm_iterations),
                              str(repeats or args.repeats)] + sets(overrides)
    return json.loads(run(cmd, mpi_env(1), "gemm_bound").strip().splitlines()[-1])


def mpigan_once(args, ranks, threads, batch, extra, tmp, tag, config=None, steps=None,
                overrides=()):
    out = os.path.join(tmp, tag)
    steps = steps or args.steps
    cmd = mpirun(ranks, threads) + [
        os.path.join(args.build, "mpigan"), "train", config or args.config, "--steps", str(steps),
        "--out", out, "--force", "--quiet", "--set", f"train.batch_size={batch}",
        "--set", "samples.every=0", "--set", "checkpoint.every=0",
        "--set", f"train.log_every={max(1, steps // 10)}"] + (["--set", extra] if extra else [])
    cmd += sets(overrides)
    run(cmd, mpi_env(threads), f"mpigan {tag}")
    with open(os.path.join(out, "run.json")) as f:
        rec = json.load(f)
    timers = {k: v["mean"] for k, v in rec["timers"].items()}
    steady = rec.get("steady_state", {})
    # Steady state, as PyTorch's timed iterations after its warm-up: the metrics intervals after
    # the first (start-up) one; the final checkpoint's write is in none of them.
    with open(os.path.join(out, "metrics.jsonl")) as f:
        rates = [json.loads(line)["samples_per_s"] for line in f if line.strip()][1:]
    return {"samples_per_s": statistics.median(rates) if rates else rec["samples_per_s"],
            "run_samples_per_s": rec["samples_per_s"], "seconds": rec["seconds"],
            "steps": rec["steps"], "timers": timers,
            "peak_rss_mb": rec["memory_mb"].get("peak_rss_max"), "run_dir": out,
            "memory_mb": rec["memory_mb"], "optimizer_state": rec.get("optimizer_state"),
            "gradient_sums": rec.get("gradient_sums"), "steady_steps": steady.get("steps", 0),
            "steady_timers": {k: v["mean"] for k, v in steady.get("timers", {}).items()}}


def torch_available():
    if not os.path.exists(TORCH_PYTHON):
        return False
    return subprocess.run([TORCH_PYTHON, "-c", "import torch"], stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL).returncode == 0


def torch_once(args, ranks, threads, batch, weak, model="mlp", data=None, steps=None,
               warmup=None):
    per = batch // ranks if weak else batch
    cmd = [TORCH_PYTHON, os.path.join(HERE, "torch_gan.py"), "--steps", str(steps or args.steps),
           "--warmup", str(args.warmup if warmup is None else warmup), "--repeats", "1",
           "--threads", str(threads), "--procs", str(ranks), "--batch", str(per),
           "--model", model] + (["--data", data] if data else [])
    if weak:
        cmd.append("--weak")
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    rec = json.loads(run(cmd, env, "torch_gan.py").strip().splitlines()[-1])
    return {"samples_per_s": rec["median"], "peak_rss_mb": rec.get("peak_rss_mb"),
            "cpu_s_per_step": rec.get("cpu_s_per_step")}


def spread(values):
    return {"min": min(values), "median": statistics.median(values), "max": max(values)}


def parzen_eval(args, ckpt_dir):
    cmd = mpirun(2, 1) + [os.path.join(args.build, "mpigan"), "eval", ckpt_dir, "--quiet",
                          "-n", str(args.parzen_samples), "--test", str(args.parzen_test),
                          "-o", os.path.join(ckpt_dir, "bench-eval.json")]
    run(cmd, mpi_env(1), "mpigan eval")
    with open(os.path.join(ckpt_dir, "bench-eval.json")) as f:
        return json.load(f)


def print_targets(targets):
    print("targets:")
    for what, value, op, bound in targets:
        if value is None:
            print(f"  {what}: not measured (no PyTorch)")
            continue
        if op == "info":
            print(f"  {what}: {value:.3g}")
            continue
        met = value <= bound if op == "<=" else value >= bound
        print(f"  {what}: {value:.3g} (target {op} {bound:g}) {'met' if met else 'NOT met'}")


def run_dcgan(args, use_torch):
    """DCGAN 32x32, global batch 64: the GEMM bound of a step and its allocations, mpigan in
    DCGAN_CONFIGS and the PyTorch twins; prints its table and targets, returns its record."""
    t0 = time.time()
    config = os.path.join(ROOT, "configs", "cifar10-dcgan.yaml")
    steps = args.dcgan_steps
    warmup = 2 if args.quick else 5
    configs = [c for c in DCGAN_CONFIGS if c[6] or not args.quick]
    tmp = tempfile.mkdtemp(prefix="mpigan-bench-dcgan-")
    try:
        data_dir = os.path.join(tmp, "cifar-like")
        data = write_cifar_like(data_dir)
        # Short alternations, many of them: the best of each is the steadier figure here.
        gemm = gemm_bound(args, config, 2 if args.quick else 3, 1, data, 2 if args.quick else 8)
        # The same for the GEMM path: issue 15's bound on im2col, col2im, BN and pooling.
        gemm_path = gemm_bound(args, config, 2 if args.quick else 3, 1, data + DCGAN_GEMM_PATH,
                               2 if args.quick else 8)
        # Two ranks with synchronised batch norms: their allocations in the steady state.
        gemm2 = gemm_bound(args, config, 2, 2, data, 1)
        results = {c[0]: {"mpigan": [], "torch": []} for c in configs}
        for r in range(args.repeats):
            for i, (name, ranks, batch, weak, sync, twin, _) in enumerate(configs):
                tag = f"dcgan{i}r{ranks}b{batch}"
                overrides = data + ([] if sync else
                                    [f"{net}.layers.{l}.sync=false" for net, l in DCGAN_BN_LAYERS])
                overrides += DCGAN_GEMM_PATH if name == DCGAN_GEMM_ROW else []
                results[name]["mpigan"].append(
                    mpigan_once(args, ranks, 1, batch, None, tmp, tag, config, steps, overrides))
                if use_torch and twin:
                    results[name]["torch"].append(
                        torch_once(args, ranks, 1, batch, weak, "dcgan", data_dir, steps, warmup))
                print(f"  DCGAN round {r + 1}/{args.repeats}: {name}: mpigan "
                      f"{results[name]['mpigan'][-1]['samples_per_s']:.0f} samples/s" +
                      (f", PyTorch {results[name]['torch'][-1]['samples_per_s']:.0f}"
                       if use_torch and twin else ""), file=sys.stderr)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    rows = []
    for name, ranks, batch, weak, sync, twin, _ in configs:
        runs = results[name]["mpigan"]
        rate = spread([x["samples_per_s"] for x in runs])
        mid = sorted(runs, key=lambda x: x["samples_per_s"])[len(runs) // 2]
        t, secs = mid["timers"], mid["seconds"]
        row = {"config": name, "ranks": ranks, "global_batch": batch, "bn_sync": sync,
               "mpigan": rate, "phases_s_per_step": {k: v / mid["steps"] for k, v in t.items()},
               "allreduce_share": (t["d_allreduce"] + t["g_allreduce"]) / secs,
               "bn_allreduce_share": t.get("bn_allreduce", 0) / secs,
               "compute_share": (t["d_compute"] + t["g_compute"]) / secs,
               "peak_rss_mb": max(x["peak_rss_mb"] for x in runs)}
        if use_torch and twin:
            row["torch"] = spread([x["samples_per_s"] for x in results[name]["torch"]])
            row["torch_peak_rss_mb"] = max(x["peak_rss_mb"] or 0 for x in results[name]["torch"])
            row["torch_cpu_s_per_step"] = min(x["cpu_s_per_step"] for x in results[name]["torch"])
            row["mpigan_over_torch"] = rate["median"] / row["torch"]["median"]
        rows.append(row)
    by = {r["config"]: r for r in rows}

    def med(i, who="mpigan"):
        r = by.get(DCGAN_CONFIGS[i][0])
        return r[who]["median"] if r and who in r else None

    def ratio(a, b):
        return a / b if a is not None and b else None

    targets = [
        ("iteration time / time of its GEMMs alone, 1 rank x 1 thread, convolutions by GEMM "
         f"(best of {gemm_path['repeats']} alternations each)",
         gemm_path["iteration_over_gemm_min"], "<=", 1.25),
        ("  the same, medians", gemm_path["iteration_over_gemm"], "info", None),
        ("  the same by Winograd (the default; its transforms are the overhead), best",
         gemm["iteration_over_gemm_min"], "info", None),
        ("samples/s by Winograd / by GEMM, 1 rank x 1 thread (medians)",
         ratio(med(0), by[DCGAN_GEMM_ROW]["mpigan"]["median"] if DCGAN_GEMM_ROW in by else None),
         "info", None),
        ("mpigan / PyTorch, 1 rank x 1 thread", ratio(med(0), med(0, "torch")), ">=", 1.5),
        ("  the same in CPU seconds per step (PyTorch's / mpigan's, best runs: time slices "
         "given to other jobs left out)",
         ratio(by[DCGAN_CONFIGS[0][0]].get("torch_cpu_s_per_step"),
               gemm["cpu_seconds_per_iteration_min"]), "info", None),
        ("mpigan 2 ranks / PyTorch DDP 2 processes (strong, global 64, BN per rank)",
         ratio(med(1), med(1, "torch")), ">=", 2.0),
        ("weak scaling, 2 ranks vs 1 rank (64 per rank, BN per rank)", ratio(med(2), med(0)),
         ">=", 1.85),
    ] + ([("weak scaling, 2 ranks vs 1 rank (64 per rank, BN sync)", ratio(med(4), med(0)),
           ">=", 1.85)] if DCGAN_CONFIGS[4][0] in by else []) + [
        ("allocations by mpigan's code in the steady state, 1 rank and 2 ranks (BN sync), "
         f"{gemm['steady_state_steps']} + {gemm2['steady_state_steps']} steps",
         gemm["steady_state_allocations_mpigan"] + gemm2["steady_state_allocations_mpigan"],
         "<=", 0),
        ("allocations by Open MPI per step and rank, 2 ranks (BN sync)",
         gemm2["steady_state_allocations"] / gemm2["steady_state_steps"] / 2, "info", None),
        ("exposed BN-statistics allreduce share of the step, 2 ranks strong, BN sync",
         by[DCGAN_CONFIGS[3][0]]["bn_allreduce_share"], "info", None),
        ("exposed gradient allreduce share of the step, 2 ranks strong, BN per rank",
         by[DCGAN_CONFIGS[1][0]]["allreduce_share"], "info", None),
        ("peak RSS per rank, mpigan (MB)", max(r["peak_rss_mb"] for r in rows), "info", None),
    ]

    print(f"DCGAN 32x32: {os.path.relpath(config, ROOT)}, global batch 64, generated CIFAR-10-"
          f"shaped data, {steps} steps x {args.repeats} repeats{' (quick)' if args.quick else ''}")
    print(f"GEMM bound, convolutions by GEMM: {gemm_path['gflop_per_iteration']:.3f} GFLOP per "
          f"step in {gemm_path['gemm_calls']} GEMMs, {gemm_path['gemm_seconds'] * 1e3:.1f} ms "
          f"alone at {gemm_path['gemm_gflops']:.0f} GFLOP/s; the step took "
          f"{gemm_path['iteration_seconds'] * 1e3:.1f} ms")
    print(f"GEMM bound (Winograd): {gemm['gflop_per_iteration']:.3f} GFLOP per step in "
          f"{gemm['gemm_calls']} GEMMs, {gemm['gemm_seconds'] * 1e3:.1f} ms alone at "
          f"{gemm['gemm_gflops']:.0f} GFLOP/s = {gemm['gemm_bound_samples_per_s']:.0f} samples/s "
          f"(best {gemm['gemm_seconds_min'] * 1e3:.1f} ms); the step took "
          f"{gemm['iteration_seconds'] * 1e3:.1f} ms "
          f"(best {gemm['iteration_seconds_min'] * 1e3:.1f}), of which "
          f"{gemm['gemm_in_iteration_seconds'] * 1e3:.1f} ms in its GEMMs; "
          f"{gemm['steady_state_allocations']:.0f} allocations and "
          f"{gemm['steady_state_page_faults']:.0f} page faults in {gemm['steady_state_steps']} "
          f"steps (2 ranks: {gemm2['steady_state_allocations']:.0f}, of which "
          f"{gemm2['steady_state_allocations_mpigan']:.0f} by mpigan's code, and "
          f"{gemm2['steady_state_page_faults']:.0f})")
    hdr = f"{'configuration':54} {'mpigan samples/s (min/med/max)':>32}"
    if use_torch:
        hdr += f" {'PyTorch (med)':>14} {'ratio':>6}"
    hdr += f" {'compute':>8} {'grad sum':>8} {'BN sum':>7} {'peak RSS':>9}"
    print(hdr)
    for r in rows:
        m = r["mpigan"]
        line = f"{r['config']:54} {m['min']:>10.0f} {m['median']:>10.0f} {m['max']:>10.0f}"
        if "torch" in r:
            line += f" {r['torch']['median']:>14.0f} {r['mpigan_over_torch']:>6.2f}"
        elif use_torch:
            line += f" {'':>14} {'':>6}"
        line += (f" {100 * r['compute_share']:>7.0f}% {100 * r['allreduce_share']:>7.0f}%"
                 f" {100 * r['bn_allreduce_share']:>6.0f}% {r['peak_rss_mb']:>6.0f} MB")
        print(line)
    print_targets(targets)
    return {"config": config, "steps": steps, "repeats": args.repeats, "gemm_bound": gemm,
            "gemm_bound_gemm_path": gemm_path, "gemm_bound_2_ranks": gemm2,
            "configurations": rows,
            "targets": [{"what": w, "value": v, "op": o, "bound": b} for w, v, o, b in targets],
            "seconds": time.time() - t0}


def run_mlp(args, use_torch):
    """The paper's MNIST model (args.config): prints its table and targets, returns its record."""
    t0 = time.time()
    tmp = tempfile.mkdtemp(prefix="mpigan-bench-")
    try:
        gemm = gemm_bound(args)
        results = {c[0]: {"mpigan": [], "torch": []} for c in CONFIGS}
        for r in range(args.repeats):
            for i, (name, ranks, threads, batch, weak, extra) in enumerate(CONFIGS):
                tag = f"c{i}r{ranks}t{threads}b{batch}"
                results[name]["mpigan"].append(
                    mpigan_once(args, ranks, threads, batch, extra, tmp, tag))
                if use_torch and not extra:
                    results[name]["torch"].append(torch_once(args, ranks, threads, batch, weak))
                print(f"  round {r + 1}/{args.repeats}: {name}: mpigan "
                      f"{results[name]['mpigan'][-1]['samples_per_s']:.0f} samples/s" +
                      (f", PyTorch {results[name]['torch'][-1]['samples_per_s']:.0f}"
                       if use_torch and not extra else ""), file=sys.stderr)
        strong_dir = results[CONFIGS[2][0]]["mpigan"][-1]["run_dir"]
        parzen = parzen_eval(args, strong_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    rows = []
    for name, ranks, threads, batch, weak, extra in CONFIGS:
        runs = results[name]["mpigan"]
        rate = spread([x["samples_per_s"] for x in runs])
        mid = sorted(runs, key=lambda x: x["samples_per_s"])[len(runs) // 2]
        t = mid["timers"]
        secs = mid["seconds"]
        row = {"config": name, "ranks": ranks, "threads": threads, "global_batch": batch,
               "mpigan": rate,
               "phases_s_per_step": {k: v / mid["steps"] for k, v in t.items()},
               "allreduce_share": (t["d_allreduce"] + t["g_allreduce"]) / secs,
               "compute_share": (t["d_compute"] + t["g_compute"]) / secs,
               "peak_rss_mb": max(x["peak_rss_mb"] for x in runs)}
        if use_torch and not extra:
            row["torch"] = spread([x["samples_per_s"] for x in results[name]["torch"]])
            row["mpigan_over_torch"] = rate["median"] / row["torch"]["median"]
        rows.append(row)

    def med(i, who="mpigan"):
        return rows[i][who]["median"] if who in rows[i] else None

    targets = [
        ("iteration time / GEMM-bound time, 1 rank x 1 thread", gemm["iteration_over_gemm"], "<=", 1.10),
        ("mpigan / PyTorch, 1 rank x 1 thread",
         med(0) / med(0, "torch") if use_torch else None, ">=", 1.25),
        ("mpigan 2 ranks / PyTorch DDP 2 processes (strong, global 100)",
         med(2) / med(2, "torch") if use_torch else None, ">=", 1.6),
        ("weak scaling, 2 ranks vs 1 rank (100 per rank)", med(3) / med(0), ">=", 1.85),
        ("exposed allreduce share of the step, 2 ranks (strong)", rows[2]["allreduce_share"], "<=", 0.10),
        ("peak RSS per rank (MB)", max(r["peak_rss_mb"] for r in rows), "<=", 200),
        (f"Parzen evaluation on 2 ranks ({parzen['samples']} samples, {parzen['valid_points']} "
         f"validation, {parzen['test_points']} test points), s", parzen["seconds"], "<=", 5.0),
    ]

    print(f"mpigan benchmark: {os.path.relpath(args.config, ROOT)}, {args.steps} steps x "
          f"{args.repeats} repeats{' (quick)' if args.quick else ''}")
    print(f"GEMM bound: {gemm['gflop_per_iteration']:.3f} GFLOP per iteration in "
          f"{gemm['gemm_calls']} GEMMs, {gemm['gemm_seconds'] * 1e3:.1f} ms at "
          f"{gemm['gemm_gflops']:.0f} GFLOP/s = {gemm['gemm_bound_samples_per_s']:.0f} samples/s; "
          f"the iteration took {gemm['iteration_seconds'] * 1e3:.1f} ms, of which "
          f"{gemm['gemm_in_iteration_seconds'] * 1e3:.1f} ms in its GEMMs (OpenBLAS "
          f"{gemm['blas_kernels']} kernels); {gemm['steady_state_allocations']:.0f} allocations "
          f"in {gemm['steady_state_steps']} steady-state steps")
    hdr = f"{'configuration':48} {'mpigan samples/s (min/med/max)':>32}"
    if use_torch:
        hdr += f" {'PyTorch (med)':>14} {'ratio':>6}"
    hdr += f" {'compute':>8} {'allreduce':>9} {'peak RSS':>9}"
    print(hdr)
    for r in rows:
        m = r["mpigan"]
        line = f"{r['config']:48} {m['min']:>10.0f} {m['median']:>10.0f} {m['max']:>10.0f}"
        if "torch" in r:
            line += f" {r['torch']['median']:>14.0f} {r['mpigan_over_torch']:>6.2f}"
        elif use_torch:
            line += f" {'':>14} {'':>6}"
        line += (f" {100 * r['compute_share']:>7.0f}% {100 * r['allreduce_share']:>8.0f}%"
                 f" {r['peak_rss_mb']:>6.0f} MB")
        print(line)
    print_targets(targets)
    record = {"config": args.config, "steps": args.steps, "repeats": args.repeats,
              "quick": args.quick, "gemm_bound": gemm, "configurations": rows,
              "parzen": {"seconds": parzen["seconds"], "samples": parzen["samples"],
                         "valid_points": parzen["valid_points"],
                         "test_points": parzen["test_points"], "timers": parzen["timers"]},
              "targets": [{"what": w, "value": v, "op": o, "bound": b} for w, v, o, b in targets],
              "seconds": time.time() - t0}
    return record


# The communication work of the data-parallel issue, on 2 ranks of 100 rows each (global batch
# 200) against 1 rank of 100: key, name, ranks, --set of mpigan. The ladder adds one change at a
# time to the replicated update with no buckets in float32 (train.overlap at its default, on: D's
# allreduce under G's forward where sums go by MPI). Buckets act only where MPI sums the
# gradients (shared sums ignore bucket_mb) and bf16 only on MPI messages (between nodes with
# shared sums, none on one node), so both are measured with shared_allreduce false. "shared-sharded"
# is mpigan's default on one node, the weak-scaling figure.
SCALE_CONFIGS = [
    ("1-rank", "1 rank, 100 rows", 1, []),
    ("shared-base", "2 ranks, shared sums, replicated (baseline)", 2,
     ["train.shared_allreduce=true", "train.sharded_update=false", "train.bucket_mb=0"]),
    ("shared-sharded", "  + sharded update (the default)", 2,
     ["train.shared_allreduce=true", "train.sharded_update=true"]),
    ("mpi-base", "2 ranks, MPI sums, replicated, no buckets (baseline)", 2,
     ["train.shared_allreduce=false", "train.sharded_update=false", "train.bucket_mb=0"]),
    ("mpi-buckets", "  + buckets of 25 MB", 2,
     ["train.shared_allreduce=false", "train.sharded_update=false", "train.bucket_mb=25"]),
    ("mpi-sharded", "  + sharded update, gathers waited for", 2,
     ["train.shared_allreduce=false", "train.sharded_update=true", "train.bucket_mb=25",
      "train.overlap=false"]),
    ("mpi-prefetch", "  + gathers prefetched by the next forward pass", 2,
     ["train.shared_allreduce=false", "train.sharded_update=true", "train.bucket_mb=25",
      "train.overlap=true"]),
    ("mpi-bf16", "  + bf16 transport (error feedback)", 2,
     ["train.shared_allreduce=false", "train.sharded_update=true", "train.bucket_mb=25",
      "train.overlap=true", "train.gradient_dtype=bf16"]),
]
SCALE_FLOAT = ["train.gradient_dtype=float32"]
# Communication a step waits for: the sums' waits after each pass, starting and driving bucket
# sums inside the backward passes, and the sharded update's exchange of parameters. What the
# overlap hides is in none of them.
SCALE_COMM = ("d_allreduce", "g_allreduce", "bucket_sums", "param_gather")
# The timers that make up a steady-state step (io holds the end-of-run checkpoint, eval is off).
SCALE_STEP = ("data", "d_compute", "d_allreduce", "g_compute", "g_allreduce", "update",
              "bn_allreduce", "bucket_sums", "param_gather")
# --quick's CIFAR-10 MLP: the same layers and code paths at a tenth of the width (1.3 million
# parameters instead of 127 million), so that ctest's bench_quick stays short.
SCALE_QUICK_NARROW = ["generator.layers.0.units=800", "generator.layers.1.units=800",
                      "discriminator.layers.0.units=160", "discriminator.layers.1.units=160"]


def scale_models(args):
    """(label, config, steps, extra --set, needs generated CIFAR-shaped data)"""
    cifar = os.path.join(ROOT, "configs", "cifar10-mlp.yaml")
    mnist = os.path.join(ROOT, "configs", "fashion-mnist.yaml")
    return [("MNIST MLP", mnist, args.scale_mnist_steps, [], False),
            ("CIFAR-10 MLP" + (" (a tenth of the width)" if args.quick else ""), cifar,
             args.scale_cifar_steps, SCALE_QUICK_NARROW if args.quick else [], True)]


def scale_row(key, name, ranks, runs, one_rank_rate):
    rate = spread([x["samples_per_s"] for x in runs])
    per_step = []
    for x in runs:
        st, n = x["steady_timers"], max(1, x["steady_steps"])
        step = sum(st.get(k, 0.0) for k in SCALE_STEP) / n
        comm = sum(st.get(k, 0.0) for k in SCALE_COMM) / n
        per_step.append({"step_s": step, "comm_s": comm, "share": comm / step if step else None,
                         "update_s": st.get("update", 0.0) / n,
                         "param_gather_s": st.get("param_gather", 0.0) / n,
                         "phases_s": {k: v / n for k, v in st.items() if k not in ("io", "eval")}})
    mid = sorted(range(len(runs)), key=lambda i: runs[i]["samples_per_s"])[len(runs) // 2]
    opt, mem = runs[mid]["optimizer_state"] or {}, runs[mid]["memory_mb"]
    share = [p["share"] for p in per_step]
    return {"key": key, "config": name, "ranks": ranks, "mpigan": rate,
            "weak_scaling": rate["median"] / one_rank_rate if one_rank_rate and ranks > 1 else None,
            "gradient_sums": runs[mid]["gradient_sums"],
            "exposed_comm_share": statistics.median(share), "exposed_comm_share_runs": share,
            "step_s": statistics.median(p["step_s"] for p in per_step),
            "exposed_comm_s": statistics.median(p["comm_s"] for p in per_step),
            "update_s": statistics.median(p["update_s"] for p in per_step),
            "param_gather_s": statistics.median(p["param_gather_s"] for p in per_step),
            "phases_s_per_step": per_step[mid]["phases_s"],
            "optimizer_state": opt, "memory_mb": mem,
            "peak_rss_mb_min": min(x["memory_mb"].get("peak_rss_min", 0) for x in runs),
            "peak_rss_mb_max": max(x["memory_mb"].get("peak_rss_max", 0) for x in runs)}


def run_scale(args):
    """Buckets, the sharded update and bf16 transport on both MLPs, 2 ranks against 1: the
    exposed communication of the step before and after each change, weak scaling, optimizer
    state and peak RSS per rank, the update's time; prints the tables, returns the record."""
    t0 = time.time()
    load0 = os.getloadavg()
    # Run directories in memory where there is room: the end-of-run checkpoint of the CIFAR-10
    # MLP is 1 GB, which a disk takes seconds to write (outside the timed steps, but not the run).
    shm = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
    tmp = tempfile.mkdtemp(prefix="mpigan-bench-scale-", dir=shm)
    models = []
    try:
        data = write_cifar_like(os.path.join(tmp, "cifar-like"))
        for label, config, steps, extra, cifar in scale_models(args):
            overrides = extra + (data if cifar else []) + SCALE_FLOAT
            results = {c[0]: [] for c in SCALE_CONFIGS}
            for r in range(args.scale_repeats):
                for key, name, ranks, sets_ in SCALE_CONFIGS:
                    x = mpigan_once(args, ranks, 1, 100 * ranks, None, tmp, "scale-" + key, config,
                                    steps, overrides + sets_)
                    shutil.rmtree(x["run_dir"], ignore_errors=True)  # its checkpoint: 1 GB
                    results[key].append(x)
                    print(f"  scale round {r + 1}/{args.scale_repeats}: {label}: {name.strip()}: "
                          f"{x['samples_per_s']:.0f} samples/s", file=sys.stderr)
            one = statistics.median(x["samples_per_s"] for x in results["1-rank"])
            rows = [scale_row(key, name, ranks, results[key], one)
                    for key, name, ranks, _ in SCALE_CONFIGS]
            models.append({"model": label, "config": config, "steps": steps,
                           "overrides": overrides, "configurations": rows})
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    load1 = os.getloadavg()

    targets = []
    for m in models:
        by = {r["key"]: r for r in m["configurations"]}

        def ratio(a, b, what):
            return by[a][what] / by[b][what] if by[b][what] else None

        opt_s = by["shared-sharded"]["optimizer_state"]
        whole = by["shared-base"]["optimizer_state"]["values_max"]  # the replicated update's
        lab = m["model"]
        targets += [
            (f"{lab}: exposed communication share of the step, 2 ranks, shared sums, sharded "
             "(the default)", by["shared-sharded"]["exposed_comm_share"], "<=", 0.05),
            (f"{lab}: the same, MPI sums, buckets + sharded + bf16",
             by["mpi-bf16"]["exposed_comm_share"], "<=", 0.05),
            (f"{lab}: weak scaling, 2 ranks (default) vs 1 rank, 100 rows per rank",
             by["shared-sharded"]["weak_scaling"], ">=", 1.85),
            # The parts are cut at aligned offsets within each tensor, so the larger part can
            # be a few dozen values over half; 0.1% over 1/R is what that allows.
            (f"{lab}: optimizer state per rank, sharded / replicated (1/R = 0.5; parts cut at "
             "aligned offsets, 0.1% allowed)", opt_s["values_max"] / whole, "<=", 0.5 * 1.001),
            (f"{lab}: update time per step, sharded / replicated, shared sums",
             ratio("shared-sharded", "shared-base", "update_s"), "<=", 0.6),
            (f"{lab}:   the same with the parameters' exchange (update + param_gather)",
             (by["shared-sharded"]["update_s"] + by["shared-sharded"]["param_gather_s"]) /
             by["shared-base"]["update_s"], "info", None),
            (f"{lab}: update time per step, sharded / replicated, MPI sums (buckets)",
             ratio("mpi-sharded", "mpi-buckets", "update_s"), "<=", 0.6),
            (f"{lab}:   the same with the parameters' exchange (update + param_gather)",
             (by["mpi-sharded"]["update_s"] + by["mpi-sharded"]["param_gather_s"]) /
             by["mpi-buckets"]["update_s"], "info", None),
            (f"{lab}: parameters' exchange per step, prefetched / waited for, MPI sums "
             "(param_gather: the wait the next forward pass saw)",
             ratio("mpi-prefetch", "mpi-sharded", "param_gather_s"), "info", None),
            (f"{lab}: peak RSS per rank, sharded (default), MB (highest rank)",
             by["shared-sharded"]["peak_rss_mb_max"], "info", None),
        ]

    print(f"Buckets, sharded update, bf16: 2 ranks of 100 rows (global 200) against 1 rank of "
          f"100, {args.scale_repeats} interleaved round(s){' (quick)' if args.quick else ''}; "
          f"load average {load0[0]:.2f} at the start, {load1[0]:.2f} at the end")
    for m in models:
        print(f"{m['model']}: {os.path.relpath(m['config'], ROOT)}, {m['steps']} steps per run"
              + (", generated CIFAR-10-shaped data" if "cifar" in m["config"] else ""))
        print(f"  {'configuration':52} {'samples/s min/med/max':>23} {'x 1 rank':>8} "
              f"{'step ms':>8} {'exposed comm':>12} {'update ms':>9} {'gather ms':>9} "
              f"{'opt. state/rank':>15} {'peak RSS/rank':>14}")
        for r in m["configurations"]:
            x, o = r["mpigan"], r["optimizer_state"]
            ws = f"{r['weak_scaling']:.2f}" if r["weak_scaling"] else "-"
            print(f"  {r['config']:52} {x['min']:>7.0f} {x['median']:>7.0f} {x['max']:>7.0f} "
                  f"{ws:>8} {1e3 * r['step_s']:>8.1f} {100 * r['exposed_comm_share']:>11.1f}% "
                  f"{1e3 * r['update_s']:>9.1f} {1e3 * r['param_gather_s']:>9.1f} "
                  f"{o.get('mb_max', 0):>12.1f} MB "
                  f"{r['peak_rss_mb_min']:>5.0f}-{r['peak_rss_mb_max']:.0f} MB")
    print_targets(targets)
    return {"repeats": args.scale_repeats, "rows_per_rank": 100,
            "load_average_start": load0, "load_average_end": load1, "models": models,
            "targets": [{"what": w, "value": v, "op": o, "bound": b} for w, v, o, b in targets],
            "seconds": time.time() - t0}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="CI's short form (20 steps, 1 repeat)")
    ap.add_argument("--steps", type=int, default=300, help="training steps per run")
    ap.add_argument("--warmup", type=int, default=20, help="PyTorch's untimed iterations")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--config", default=os.path.join(ROOT, "configs", "fashion-mnist.yaml"))
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--torch", choices=["auto", "yes", "no"], default="auto")
    ap.add_argument("--out", default=None, help="JSON record (default BUILD/bench.json)")
    ap.add_argument("--model", choices=["all", "mlp", "dcgan", "scale"], default="all")
    ap.add_argument("--dcgan-steps", type=int, default=40, help="DCGAN training steps per run")
    ap.add_argument("--scale-mnist-steps", type=int, default=100,
                    help="--model scale: MNIST MLP steps per run")
    ap.add_argument("--scale-cifar-steps", type=int, default=8,
                    help="--model scale: CIFAR-10 MLP steps per run")
    ap.add_argument("--scale-repeats", type=int, default=3, help="--model scale: rounds")
    args = ap.parse_args()
    if args.quick:
        args.steps, args.warmup, args.repeats, args.dcgan_steps = 20, 3, 1, 8
        args.scale_mnist_steps, args.scale_cifar_steps, args.scale_repeats = 20, 4, 1
    args.gemm_iterations = 5 if args.quick else 30
    args.parzen_samples, args.parzen_test = (500, 500) if args.quick else (10000, 10000)
    if not shutil.which("mpirun"):
        sys.exit("bench: mpirun not found (jobs/setup-debian.sh installs Open MPI)")
    use_torch = args.torch == "yes" or (args.torch == "auto" and torch_available())
    if args.torch == "yes" and not torch_available():
        sys.exit(f"bench: --torch yes, but {TORCH_PYTHON} cannot import torch (apt-get install python3-torch)")

    t0 = time.time()
    record = {"quick": args.quick, "command": sys.argv,
              "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    if args.model in ("all", "mlp"):
        record.update(run_mlp(args, use_torch))
    if args.model in ("all", "dcgan"):
        record["dcgan"] = run_dcgan(args, use_torch)
    if args.model in ("all", "scale"):
        record["scale"] = run_scale(args)
    record["seconds"] = time.time() - t0
    out = args.out or os.path.join(args.build, "bench.json")
    with open(out + ".tmp", "w") as f:
        json.dump(record, f, indent=1)
    os.replace(out + ".tmp", out)
    print(f"record: {out} ({time.time() - t0:.0f} s)")


if __name__ == "__main__":
    main()
