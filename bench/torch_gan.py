#!/usr/bin/python3
"""PyTorch reference for mpigan's benchmark: the GAN paper's MNIST model (Goodfellow et al.,
2014) or DCGAN at 32x32 (Radford et al., 2015), trained the way mpigan trains them (Algorithm 1,
k = 1, non-saturating G loss; the MLP with SGD lr 0.1 momentum 0.5 on Fashion-MNIST, DCGAN with
Adam 2e-4 beta1 0.5 on CIFAR-10's binary files), timed.

    /usr/bin/python3 bench/torch_gan.py [--model mlp|dcgan] [--data DIR] [--steps 200]
                                        [--warmup 20] [--repeats 3] [--batch 100] [--threads 1]
                                        [--procs 1] [--weak] [--seed 1]

samples/s = real examples consumed per second = k * global batch * steps / seconds.
The last line of stdout is one JSON object; the lines before it are for people.

Design notes
- Data is held as float32 in [0, 1] (50,000 x 784, ~157 MB per process), as mpigan holds it
  (mg_real = float). Each epoch uses one random permutation, the same on every process; a process
  takes its own contiguous rows of each global minibatch.
- G's output bias is the logit of the training pixel means (clamped to [1e-7, 1 - 1e-7]), as
  configs/fashion-mnist.yaml does (generator.output_bias_from_data: true); every other bias is 0.
  It changes nothing in the timing.
- DCGAN (--model dcgan; configs/cifar10-dcgan.yaml): G is z (100, 1, 1) -> ConvTranspose 4x4 to
  256 (4x4), BN, ReLU -> ConvT 4x4 s2 p1 to 128 (8x8), BN, ReLU -> 64 (16x16), BN, ReLU -> ConvT
  to 3 (32x32), tanh; D is Conv 4x4 s2 p1 to 64, LeakyReLU 0.2 -> 128, BN, leaky -> 256, BN, leaky
  -> Conv 4x4 to one logit; no biases, weights normal(0, 0.02), BN scales normal(1, 0.02), Adam
  2e-4 (0.5, 0.999). mpigan's batch norm statistics are per group of rows: D's real and fake rows
  are normalised apart (one forward over [real; fake], as PyTorch's DCGAN example runs two), and
  so is each phase of G; GroupBN does the same inside one forward. Pixels are bytes / 255, as
  mpigan reads them; data: DIR/data_batch_{1..5}.bin, or random pixels without --data. Batch
  norms are each process's own (DDP's default, no SyncBatchNorm), and DDP broadcasts rank 0's
  running averages at each forward (its default broadcast_buffers).
- Each process divides its loss sums by its LOCAL batch; DDP averages gradients over the P
  processes, so the gradient is (sum over the global batch) / global batch, as in mpigan.
- With P > 1, G and D are each wrapped in DistributedDataParallel (gloo). The D step calls the
  DDP wrapper of D (its backward all-reduces D's gradients); the fake rows come from G's plain
  module under torch.no_grad(), so G takes no part. The G step calls G's DDP wrapper but D's
  plain module (D_ddp.module, same parameter tensors) with D's parameters set to
  requires_grad=False: no gradient is computed for D at all, none of D's DDP hooks fire, and
  D's reducer is never prepared for a backward that would leave its buckets unfinished. (Calling
  D's DDP wrapper here would make the next D step fail, or need find_unused_parameters=True,
  which walks the graph every step and still all-reduces D's zero gradients.) After training
  the script checks that the replicas' parameters are identical across processes.
"""
import argparse
import gzip
import json
import math
import os
import resource
import socket
import sys
import time



def _early_threads():
    """--threads, read before torch (and its BLAS and OpenMP runtimes) loads."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--threads", type=int, default=1)
    try:
        return max(1, pre.parse_known_args()[0].threads)
    except SystemExit:  # a malformed value: main()'s parser reports it
        return 1


# Debian's torch calls the system BLAS, OpenBLAS (pthreads build), whose thread count
# torch.set_num_threads does not control: it starts one thread per core unless told. Give it
# --threads, as mpigan's ranks get OPENBLAS_NUM_THREADS. OpenMP (torch's own kernels) gets
# --threads too, and a passive wait policy unless one is set: with 2 threads on 2 cores, idle
# OpenMP threads spinning against OpenBLAS's threads made a 2-thread run ~8x slower than a
# 1-thread run on this (shared) machine. Spawned processes inherit these variables.
_T = _early_threads()
os.environ["OPENBLAS_NUM_THREADS"] = str(_T)
os.environ["OMP_NUM_THREADS"] = str(_T)
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

try:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
except ImportError as e:  # pragma: no cover
    sys.stderr.write("torch_gan.py: PyTorch is not importable by %s (%s); "
                     "use /usr/bin/python3 with python3-torch\n" % (sys.executable, e))
    sys.exit(1)

DATA_PATH = "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"
N_TRAIN = 50000
DIM = 784
NOISE = 100
CIFAR_RECORD = 3073  # a label byte, then 3 x 32 x 32 pixel bytes


def load_cifar(path, n_max):
    """(n, 3, 32, 32) float32 in [0, 1] from DIR/data_batch_{1..5}.bin (at most n_max rows),
    or random pixels without a directory; and the source name."""
    if not path:
        g = torch.Generator().manual_seed(12345)
        return torch.rand(n_max, 3, 32, 32, generator=g), "random"
    chunks, n = [], 0
    for b in range(1, 6):
        with open(os.path.join(path, "data_batch_%d.bin" % b), "rb") as f:
            raw = f.read()
        if not raw or len(raw) % CIFAR_RECORD:
            raise SystemExit("torch_gan.py: %s/data_batch_%d.bin is not whole CIFAR-10 records"
                             % (path, b))
        rec = torch.frombuffer(bytearray(raw), dtype=torch.uint8).view(-1, CIFAR_RECORD)
        chunks.append(rec[:, 1:].clone())
        n += rec.shape[0]
    x = torch.cat(chunks)[:n_max]
    return x.float().div_(255.0).view(-1, 3, 32, 32), "cifar10-files"


def load_data():
    """(N_TRAIN, 784) float32 in [0, 1] and the source name."""
    try:
        with gzip.open(DATA_PATH, "rb") as f:
            head = f.read(16)
            magic, n, rows, cols = (int.from_bytes(head[i:i + 4], "big") for i in range(0, 16, 4))
            if len(head) != 16 or magic != 0x803 or rows * cols != DIM or n < N_TRAIN:
                raise SystemExit("torch_gan.py: %s is not an IDX file of >= %d 28x28 images"
                                 % (DATA_PATH, N_TRAIN))
            buf = bytearray(N_TRAIN * DIM)  # read in place: no transient copies of the file
            if f.readinto(buf) != len(buf):
                raise SystemExit("torch_gan.py: %s is truncated" % DATA_PATH)
    except OSError:
        g = torch.Generator().manual_seed(12345)
        return torch.rand(N_TRAIN, DIM, generator=g), "random"
    x = torch.frombuffer(buf, dtype=torch.uint8).view(N_TRAIN, DIM).float().div_(255.0)
    del buf
    return x, "fashion-mnist"


class Maxout(nn.Module):
    """Linear(n_in, units*pieces), then the max over each unit's `pieces` consecutive outputs
    (mpigan's layout: unit u uses columns u*pieces .. u*pieces + pieces - 1)."""

    def __init__(self, n_in, units, pieces):
        super().__init__()
        self.units, self.pieces = units, pieces
        self.lin = nn.Linear(n_in, units * pieces)

    def forward(self, x):
        return self.lin(x).view(x.shape[0], self.units, self.pieces).max(dim=2).values


def make_g():
    g = nn.Sequential(nn.Linear(NOISE, 1200), nn.ReLU(),
                      nn.Linear(1200, 1200), nn.ReLU(),
                      nn.Linear(1200, DIM), nn.Sigmoid())
    for m in g.modules():
        if isinstance(m, nn.Linear):
            nn.init.uniform_(m.weight, -0.05, 0.05)
            nn.init.zeros_(m.bias)
    return g


def make_d():
    d = nn.Sequential(nn.Dropout(p=0.2), Maxout(DIM, 240, 5),
                      nn.Dropout(p=0.5), Maxout(240, 240, 5),
                      nn.Dropout(p=0.5), nn.Linear(240, 1))
    for m in d.modules():
        if isinstance(m, nn.Linear):
            nn.init.uniform_(m.weight, -0.005, 0.005)
            nn.init.zeros_(m.bias)
    return d


def uniform_noise(rows, gen):
    s = math.sqrt(3.0)
    return torch.rand(rows, NOISE, generator=gen).mul_(2 * s).sub_(s)


class GroupBN(nn.BatchNorm2d):
    """BatchNorm2d whose input is `groups` equal blocks of rows, each normalised with its own
    statistics (and each updating the running averages), as mpigan's batch norm groups."""
    groups = 1

    def forward(self, x):
        if self.groups == 1:
            return super().forward(x)
        return torch.cat([super(GroupBN, self).forward(c) for c in x.chunk(self.groups)])


def make_dcgan():
    def bn(c):
        return GroupBN(c)
    g = nn.Sequential(
        nn.ConvTranspose2d(NOISE, 256, 4, 1, 0, bias=False), bn(256), nn.ReLU(),
        nn.ConvTranspose2d(256, 128, 4, 2, 1, bias=False), bn(128), nn.ReLU(),
        nn.ConvTranspose2d(128, 64, 4, 2, 1, bias=False), bn(64), nn.ReLU(),
        nn.ConvTranspose2d(64, 3, 4, 2, 1, bias=False), nn.Tanh())
    d = nn.Sequential(
        nn.Conv2d(3, 64, 4, 2, 1, bias=False), nn.LeakyReLU(0.2),
        nn.Conv2d(64, 128, 4, 2, 1, bias=False), bn(128), nn.LeakyReLU(0.2),
        nn.Conv2d(128, 256, 4, 2, 1, bias=False), bn(256), nn.LeakyReLU(0.2),
        nn.Conv2d(256, 1, 4, 1, 0, bias=False))
    for m in list(g.modules()) + list(d.modules()):
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, 0.02)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)
    return g, d


def set_groups(net, groups):
    for m in net.modules():
        if isinstance(m, GroupBN):
            m.groups = groups


def worker(rank, args, port):
    P = args.procs
    torch.set_num_threads(args.threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass
    dist = None
    if P > 1:
        import torch.distributed as dist
        from torch.nn.parallel import DistributedDataParallel as DDP
        os.environ["MASTER_ADDR"] = "127.0.0.1"
        os.environ["MASTER_PORT"] = str(port)
        dist.init_process_group("gloo", rank=rank, world_size=P)

    local_b = args.batch if args.weak else args.batch // P
    global_b = local_b * P

    dcgan = args.model == "dcgan"
    if dcgan:
        data, source = load_cifar(args.data, N_TRAIN)
    else:
        data, source = load_data()
    n_train = data.shape[0]
    # Same initial parameters on every process (DDP would broadcast rank 0's anyway).
    torch.manual_seed(args.seed)
    if dcgan:
        G, D = make_dcgan()
    else:
        G, D = make_g(), make_d()
        with torch.no_grad():
            p = data.mean(0).double().clamp_(1e-7, 1 - 1e-7)
            G[4].bias.copy_(torch.log(p / (1 - p)).float())
    # Per-process streams: dropout masks (global RNG), noise; the data order is shared.
    torch.manual_seed(args.seed * 1000 + 1 + rank)
    zgen = torch.Generator().manual_seed(args.seed * 1000 + 500 + rank)
    pgen = torch.Generator().manual_seed(args.seed)

    if P > 1:
        G_run, D_run = DDP(G), DDP(D)        # the wrappers: their backward all-reduces
    else:
        G_run, D_run = G, D
    G.train()
    D.train()
    if dcgan:
        opt_g = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
        opt_d = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    else:
        opt_g = torch.optim.SGD(G.parameters(), lr=0.1, momentum=0.5)
        opt_d = torch.optim.SGD(D.parameters(), lr=0.1, momentum=0.5)
    d_params = list(D.parameters())

    def noise(rows, gen):
        if dcgan:  # mpigan's prior: normal, as (100, 1, 1)
            return torch.randn(rows, NOISE, 1, 1, generator=gen)
        return uniform_noise(rows, gen)

    state = {"perm": torch.randperm(n_train, generator=pgen), "pos": 0}
    lo, hi = rank * local_b, (rank + 1) * local_b

    def real_batch():
        if state["pos"] + global_b > n_train:
            state["perm"] = torch.randperm(n_train, generator=pgen)
            state["pos"] = 0
        idx = state["perm"][state["pos"] + lo:state["pos"] + hi]
        state["pos"] += global_b
        return data.index_select(0, idx)

    stats = torch.zeros(4, dtype=torch.float64)  # sum D(x), sum D(G(z)), D loss, G loss

    def step():
        # D step: fresh real rows and fresh noise, one forward over [real; fake] (2 * local_b).
        x = real_batch()
        with torch.no_grad():
            fake = G(noise(local_b, zgen))
        set_groups(D, 2)  # DCGAN: real and fake rows normalised apart
        logits = D_run(torch.cat([x, fake])).view(-1)
        set_groups(D, 1)
        l_real, l_fake = logits[:local_b], logits[local_b:]
        loss_d = (F.softplus(-l_real).sum() + F.softplus(l_fake).sum()) / local_b
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()
        # G step: fresh noise; D's plain module with its parameters frozen (see the notes above).
        for q in d_params:
            q.requires_grad_(False)
        l_g = D(G_run(noise(local_b, zgen))).view(-1)
        loss_g = F.softplus(-l_g).sum() / local_b
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
        for q in d_params:
            q.requires_grad_(True)
        with torch.no_grad():
            stats[0] += torch.sigmoid(l_real.detach()).sum().item()
            stats[1] += torch.sigmoid(l_fake.detach()).sum().item()
            stats[2] += loss_d.item()
            stats[3] += loss_g.item()

    def barrier():
        if dist is not None:
            dist.barrier()

    for _ in range(args.warmup):
        step()
    rates, cpus = [], []
    for r in range(args.repeats):
        stats.zero_()
        barrier()
        t0, c0 = time.perf_counter(), time.process_time()
        for _ in range(args.steps):
            step()
        barrier()
        dt = time.perf_counter() - t0
        cpus.append((time.process_time() - c0) / args.steps)  # this process's threads
        rates.append(global_b * args.steps / dt)
        if dist is not None:
            dist.all_reduce(stats)
            stats /= P
        if rank == 0:
            n = args.steps
            print("repeat %d: %d steps in %.3f s, %.1f samples/s; mean D(x) %.4f  D(G(z)) %.4f  "
                  "D loss %.4f  G loss %.4f" % (r + 1, n, dt, rates[-1], stats[0] / (n * local_b),
                                                 stats[1] / (n * local_b), stats[2] / n,
                                                 stats[3] / n), flush=True)

    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    diverged = False
    if dist is not None:
        # Replicas must agree bit for bit (DDP averages identical gradients on every process).
        flat = torch.cat([q.detach().reshape(-1) for q in list(G.parameters()) + d_params])
        ref = flat.clone()
        dist.broadcast(ref, 0)
        diff = torch.tensor([float((flat - ref).abs().max())])
        dist.all_reduce(diff, op=dist.ReduceOp.MAX)
        rss = [None] * P
        dist.all_gather_object(rss, rss_mb)
        rss_mb = max(rss)
        diverged = diff.item() != 0.0
        if rank == 0:
            print("replicas: max |param - rank 0 param| over processes = %g" % diff.item(),
                  flush=True)
            if diverged:
                print("torch_gan.py: replicas diverged", file=sys.stderr, flush=True)

    if rank == 0 and not diverged:
        srt = sorted(rates)
        med = srt[len(srt) // 2] if len(srt) % 2 else 0.5 * (srt[len(srt) // 2 - 1] + srt[len(srt) // 2])
        print(json.dumps({
            "framework": "pytorch", "torch_version": torch.__version__, "model": args.model,
            "procs": P,
            "threads": args.threads, "global_batch": global_b, "weak": bool(args.weak),
            "steps": args.steps, "samples_per_s": [round(v, 2) for v in rates],
            "median": round(med, 2), "cpu_s_per_step": round(min(cpus), 6),
            "peak_rss_mb": round(rss_mb, 1), "data": source}),
            flush=True)
    if dist is not None:
        # Leave without running destructors: in torch 1.13, freeing the DDP reducer (the last
        # owner of the gloo process group) joins gloo's worker thread while holding the GIL,
        # and that thread may need the GIL to free a tensor of its last work: a deadlock that
        # hung a run at exit. Every collective is complete after this barrier.
        dist.barrier()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(1 if diverged else 0)
    if diverged:
        sys.exit(1)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=200, help="timed iterations per repeat")
    ap.add_argument("--warmup", type=int, default=20, help="untimed iterations first")
    ap.add_argument("--repeats", type=int, default=3, help="timed repeats")
    ap.add_argument("--batch", type=int, default=100,
                    help="global batch (per process with --weak)")
    ap.add_argument("--threads", type=int, default=1, help="intra-op threads per process")
    ap.add_argument("--procs", type=int, default=1, help="DDP processes (gloo)")
    ap.add_argument("--weak", action="store_true", help="batch is per process")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--model", choices=["mlp", "dcgan"], default="mlp",
                    help="the paper's MNIST MLP, or DCGAN at 32x32")
    ap.add_argument("--data", default=None,
                    help="dcgan: a folder of CIFAR-10 data_batch_{1..5}.bin (else random pixels)")
    args = ap.parse_args()
    if min(args.steps, args.repeats, args.batch, args.threads, args.procs) < 1 or args.warmup < 0:
        ap.error("--steps, --repeats, --batch, --threads, --procs must be >= 1, --warmup >= 0")
    if not args.weak and args.batch % args.procs:
        ap.error("--batch %d is not a multiple of --procs %d" % (args.batch, args.procs))
    print("threads per process: torch %d, OPENBLAS_NUM_THREADS=%s, OMP_WAIT_POLICY=%s"
          % (args.threads, os.environ["OPENBLAS_NUM_THREADS"], os.environ["OMP_WAIT_POLICY"]),
          flush=True)
    if args.procs == 1:
        worker(0, args, 0)
    else:
        import torch.multiprocessing as mp
        mp.spawn(worker, args=(args, free_port()), nprocs=args.procs, join=True)


if __name__ == "__main__":
    main()
