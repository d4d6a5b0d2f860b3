#!/usr/bin/env python3
"""jobs/scaling.sh -x's tables: DIR/sweep.csv (one row per run) and DIR/sweep.txt (the medians of
each configuration over the rounds) from DIR/runs/sweep-*/run.json.

    jobs/scaling_sweep.py DIR N1     # N1: the first rank count, the base of the efficiencies
"""
import glob
import json
import os
import statistics
import sys

# Communication a step waits for: the sums' waits after each pass, starting and driving bucket
# sums inside the backward passes, a sharded update's exchange of parameters (bench/run.py's).
COMM = ("d_allreduce", "g_allreduce", "bucket_sums", "param_gather")
COLUMNS = ("round", "ranks", "shared_allreduce", "bucket_mb", "bucket_mb_used", "sharded_update",
           "gradient_dtype",
           "global_batch", "steps", "samples_per_s", "step_s", "exposed_comm_s",
           "exposed_comm_share", "update_s", "param_gather_s", "optimizer_mb_per_rank",
           "peak_rss_mb", "efficiency")


def config_of(x):
    return (x["shared_allreduce"], x["bucket_mb"], x["sharded_update"], x["gradient_dtype"])


def order(t):
    """A sort key for tuples holding bucket sizes: numbers in order, then auto."""
    return tuple((1, 0) if v == "auto" else (0, v) for v in t)


def read(path):
    # sweep-ROUND-RANKS-KIND-bMB-UPDATE-DTYPE
    _, rnd, _, kind, b, sd, dt = os.path.basename(os.path.dirname(path)).split("-")
    try:
        with open(path) as f:
            r = json.load(f)
        st = r["steady_state"]
        n = max(1, st["steps"])
        t = {k: v["mean"] / n for k, v in st["timers"].items()}
        step = sum(v for k, v in t.items() if k not in ("io", "eval"))  # io: the last checkpoint
        comm = sum(t.get(k, 0.0) for k in COMM)
        return {"round": int(rnd), "ranks": r["ranks"], "shared_allreduce": kind,
                "bucket_mb": b[1:] if b[1:] == "auto" else int(b[1:]),
                "bucket_mb_used": r.get("bucket_mb"), "sharded_update": sd, "gradient_dtype": dt,
                "global_batch": r["global_batch"], "steps": r["steps"],
                "samples_per_s": r["samples_per_s"], "step_s": step, "exposed_comm_s": comm,
                "exposed_comm_share": comm / step if step else 0.0,
                "update_s": t.get("update", 0.0), "param_gather_s": t.get("param_gather", 0.0),
                "optimizer_mb_per_rank": r["optimizer_state"]["mb_max"],
                "peak_rss_mb": r["memory_mb"]["peak_rss_max"]}
    except (OSError, ValueError, KeyError, TypeError) as e:
        sys.exit(f"scaling_sweep.py: {path}: not a run record of this mpigan ({e!r})")


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__.strip().splitlines()[-1].strip())
    out, n1 = sys.argv[1], int(sys.argv[2])
    rows = [read(p) for p in sorted(glob.glob(os.path.join(out, "runs", "sweep-*", "run.json")))]
    if not rows:
        sys.exit(f"scaling_sweep.py: no {out}/runs/sweep-*/run.json")
    base = {}
    for x in rows:  # on 1 rank the configurations are one: nothing to communicate
        if x["ranks"] == n1:
            base.setdefault(config_of(x) if n1 > 1 else None, []).append(x["samples_per_s"])
    for x in rows:
        b = base.get(config_of(x) if n1 > 1 else None)
        x["efficiency"] = x["samples_per_s"] / (statistics.median(b) * x["ranks"] / n1) if b else None
    rows.sort(key=lambda x: order((x["round"], x["ranks"]) + config_of(x)))

    def cell(v):
        return "" if v is None else f"{v:.6g}" if isinstance(v, float) else str(v)

    with open(os.path.join(out, "sweep.csv"), "w") as f:
        f.write(",".join(COLUMNS) + "\n")
        for x in rows:
            f.write(",".join(cell(x[c]) for c in COLUMNS) + "\n")

    groups = {}
    for x in rows:
        groups.setdefault((x["ranks"],) + config_of(x), []).append(x)

    def med(g, c):
        v = [x[c] for x in g if x[c] is not None]
        return statistics.median(v) if v else None

    rounds = max(x["round"] for x in rows)
    with open(os.path.join(out, "sweep.txt"), "w") as f:
        f.write(f"medians of {rounds} round(s); exposed comm: (d_allreduce + g_allreduce + "
                "bucket_sums + param_gather) / step\n")
        f.write(f"{'ranks':>5} {'sums':>6} {'bucket MB':>9} {'update':>10} {'dtype':>7} "
                f"{'samples/s':>9} {'step ms':>8} {'exposed comm':>12} {'update ms':>9} "
                f"{'gather ms':>9} {'opt. MB/rank':>12} {'peak RSS MB':>11} {'efficiency':>10}\n")
        for k in sorted(groups, key=order):
            g = groups[k]
            e = med(g, "efficiency")
            f.write(f"{k[0]:>5} {k[1]:>6} {k[2]:>9} {k[3]:>10} {k[4]:>7} "
                    f"{med(g, 'samples_per_s'):>9.1f} {1e3 * med(g, 'step_s'):>8.1f} "
                    f"{100 * med(g, 'exposed_comm_share'):>11.1f}% "
                    f"{1e3 * med(g, 'update_s'):>9.2f} {1e3 * med(g, 'param_gather_s'):>9.2f} "
                    f"{med(g, 'optimizer_mb_per_rank'):>12.1f} {med(g, 'peak_rss_mb'):>11.0f} "
                    f"{'-' if e is None else f'{e:.3f}':>10}\n")


if __name__ == "__main__":
    main()
