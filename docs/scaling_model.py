#!/usr/bin/env python3
"""Performance model of one mpigan training step on N ranks (docs/scaling.md).

    docs/scaling_model.py                       the tables of docs/scaling.md, as markdown
    docs/scaling_model.py step --model mnist --ranks 64 --rows 1.5625 --gbps 25
                                                one prediction, key=value (tests/sim uses it)
    docs/scaling_model.py skeleton-args --model mnist --ranks 64 --rows 1.5625 --host-speed 7.6e10
                                                tests/sim/skeleton's arguments for the same case
    docs/scaling_model.py rate --model mnist    measured flop/s of one rank at the model's batch
    docs/scaling_model.py batch --model dcgan   the model's global batch
    docs/scaling_model.py fit FILE...           CALIBRATION entries from tests/sim/measure.sh rows
    ... step|skeleton-args --path sharded --node 8 --bf16 1
                                                the same for the current step (current_step_time)

The current step (buckets overlapped with the backward pass, the sharded update, hierarchical
sums in nodes of R ranks, bf16 between nodes) is current_step_time's, below; docs/scaling.md
section 9 describes it. The old step, one replicated allreduce per update, is this:

One step of Algorithm 1 (src/train.c, alternating mode) on every rank:
    k times: D compute on r rows | allreduce D's gradients | D update
    once:    G compute on r rows | allreduce G's gradients | G update
nothing overlapped, so  T(N, r) = k (tD(r) + AR(bytes_D, N)) + tG(r) + AR(bytes_G, N) + u
(+ the batch norms' small allreduces of their statistics, inside the compute, for models whose
batch norms are synchronised: DCGAN).

Compute tD(r), tG(r) is measured on this machine with one rank at r rows (a + b r fits, below);
the update u (SGD with momentum on every parameter) is the same on every rank whatever N is.
AR is the allreduce: Open MPI 4.1's tuned decision and SimGrid's "ompi" selector both choose
Rabenseifner's algorithm (recursive-halving reduce-scatter, recursive-doubling allgather) for
sums of more than 256 KiB, the ring for comparison:
    rabenseifner: 2 log2(N) alpha + 2 (N-1)/N bytes / beta    (+ 2 (alpha + bytes/beta) if N is
                                                               not a power of two)
    ring:         2 (N-1) alpha   + 2 (N-1)/N bytes / beta
and below 10,000 bytes (batch norm statistics) recursive doubling:
    log2(N) (alpha + bytes / beta)                           (+ 2 (alpha + bytes/beta) likewise;
                                                              alpha / 2 to partners in one leaf)
Standard library only.
"""
import argparse
import collections
import math
import sys

STATS_FLOATS = 4  # mpigan's loss and counters ride in each gradient buffer (src/train.c)
FLOAT_BYTES = 4

# A layer as the model sees it: its parameters (weights, biases, a batch norm's scale and shift) and
# its multiply-adds per example in the forward pass, which its input gradient and its weight
# gradient each repeat (a dense layer of W weights: W; a convolution: W times its output
# positions; a transposed one: W times its input positions). bn is a batch norm's channel count
# (0 for other layers): its statistics are what a synchronised batch norm sums over ranks.
Layer = collections.namedtuple("Layer", "params macs bn")


def dense(i, u, p=1):
    """i inputs to u units of p pieces (maxout has p > 1 and feeds u values on), with biases."""
    return Layer(i * u * p + u * p, i * u * p, 0)


def conv(ic, oc, k, out, bias=0):
    """ic -> oc channels, k x k kernel, out x out output positions, `bias` bias values."""
    return Layer(oc * ic * k * k + bias, oc * ic * k * k * out * out, 0)


def deconv(ic, oc, k, inp, bias=0):
    """Transposed: ic -> oc channels, k x k kernel, on an inp x inp input."""
    return Layer(ic * oc * k * k + bias, ic * oc * k * k * inp * inp, 0)


def batchnorm(c):
    """c channels: a scale and a shift each; its arithmetic is O(values), left out like biases."""
    return Layer(2 * c, 0, c)


# The paper's models, and DCGAN. Counts agree with `mpigan info` on checkpoints of every
# configuration. batch: the global batch of the configuration (strong scaling splits it, weak
# scaling gives every rank that many rows); bn_sync: batch norm statistics summed over ranks.
MODELS = {
    "mnist": {
        "name": "MNIST (configs/mnist.yaml, fashion-mnist.yaml)", "batch": 100,
        "g": [dense(100, 1200), dense(1200, 1200), dense(1200, 784)],
        "d": [dense(784, 240, 5), dense(240, 240, 5), dense(240, 1)],
    },
    "cifar10": {
        "name": "CIFAR-10 MLP (configs/cifar10-mlp.yaml)", "batch": 100,
        "g": [dense(100, 8000), dense(8000, 8000), dense(8000, 3072)],
        "d": [dense(3072, 1600, 5), dense(1600, 1600, 5), dense(1600, 1)],
    },
    "tfd": {
        "name": "TFD (configs/tfd.yaml)", "batch": 100,
        "g": [dense(100, 8000), dense(8000, 8000), dense(8000, 2304)],
        "d": [dense(2304, 1200, 5), dense(1200, 1200, 5), dense(1200, 1)],
    },
    # G: two dense layers, (80, 10, 10), a 5x5 stride-3 deconv to 3 x 32 x 32 with a bias per
    # output value; D: maxout convolutions of 2 pieces (the channels before the maxout), 8x8 pad 4
    # on 32x32 (33x33 positions, pooled to 16x16), 8x8 pad 3 on 16x16 (15x15, to 7x7), 5x5 pad 3
    # on 7x7 (9x9, to 5x5), then maxout 4800 -> 500 x 5 and the logit. Pooling and maxout are
    # O(values), left out.
    "cifar10conv": {
        "name": "CIFAR-10 conv (configs/cifar10-conv.yaml)", "batch": 128,
        "g": [dense(100, 8000), dense(8000, 8000), deconv(80, 3, 5, 10, bias=3 * 32 * 32)],
        "d": [conv(3, 64, 8, 33, bias=64), conv(32, 64, 8, 15, bias=64),
              conv(32, 384, 5, 9, bias=384), dense(4800, 500, 5), dense(500, 1)],
    },
    # DCGAN at 32x32: no biases, a batch norm after every layer but G's last and D's first and
    # last, statistics synchronised over the ranks (the configuration's default).
    "dcgan": {
        "name": "DCGAN 32x32 (configs/cifar10-dcgan.yaml)", "batch": 64, "bn_sync": True,
        "g": [deconv(100, 256, 4, 1), batchnorm(256), deconv(256, 128, 4, 4), batchnorm(128),
              deconv(128, 64, 4, 8), batchnorm(64), deconv(64, 3, 4, 16)],
        "d": [conv(3, 64, 4, 16), conv(64, 128, 4, 8), batchnorm(128), conv(128, 256, 4, 4),
              batchnorm(256), conv(256, 1, 4, 1)],
    },
}

# Measured on this machine (AMD EPYC, 2 cores, 32 MiB L3; Debian 12, OpenBLAS with 1 thread) by
# tests/sim/measure.sh rows and fitted by `docs/scaling_model.py fit`: seconds per step on one rank
# at r rows, tD = d_a + d_b r (D compute and the data phase) and tG = g_a + g_b r. The intercepts
# are what a step costs however few rows it has: every weight matrix streams through the core
# three times per step (forward, input gradient, weight gradient), which is memory-bound at small
# r. u is both networks' SGD update per step (with TFD's column-norm constraint), the same on every
# rank whatever N is. MNIST: Fashion-MNIST, r = 1, 4, 12, 25, 50, 100, 60 steps, best of 3 runs;
# CIFAR-10 and TFD: generated data of their shapes (tests/make_data), r = 1, 12, 100, 6 steps,
# best of 2. Worst relative residual of the fits: MNIST 12% (D) and 16% (G), CIFAR-10 11% and
# 0.5%, TFD 14% and 1.4%. The machine was shared (load average 3 to 4 on 2 cores).
CALIBRATION = {
    "mnist": {"d_a": 0.0014844, "d_b": 0.00016401, "g_a": 0.0025595, "g_b": 0.00021618,
              "u": 0.00158},
    "cifar10": {"d_a": 0.084786, "d_b": 0.0057964, "g_a": 0.23961, "g_b": 0.008585,
                "u": 0.13443},
    "tfd": {"d_a": 0.074353, "d_b": 0.0036502, "g_a": 0.1651, "g_b": 0.0065107, "u": 0.21875},
    # The convolutional models, the same way on generated CIFAR-10-shaped data (3 x 32 x 32 random
    # bytes): DCGAN at r = 1, 2, 4, 8, 16, 32, 64, 12 steps, best of 3 to 5 runs; the paper's conv
    # model at r = 1, 16, 128, 5 steps, best of 2. Worst relative residual: DCGAN 27% (D and G:
    # per row a step of 8 to 64 rows costs more than the line, of 1 to 4 less), CIFAR-10 conv 11%
    # and 1.6%.
    "cifar10conv": {"d_a": 0.035443, "d_b": 0.018206, "g_a": 0.20223, "g_b": 0.014057,
                    "u": 0.22115},
    "dcgan": {"d_a": 0.0014508, "d_b": 0.003077, "g_a": 0.002712, "g_b": 0.0031751, "u": 0.00738},
}

ALPHA = 2e-6        # seconds per message between hosts on different leaf switches (see doc)
# Bytes/s one core streams through memory, from the CIFAR-10 update: 126.8 M parameters x 20 bytes
# (read parameter, gradient, velocity; write parameter, velocity) in 134 ms. Only for the size
# of the allreduce's own arithmetic, which the model and the simulation leave out.
STREAM = 18.9e9
SMALL_BYTES = 10000  # Open MPI's tuned allreduce: recursive doubling below this many bytes
RANKS = [8, 16, 32, 64, 128, 256, 512, 1024]
GBPS = [10, 25, 100]


def weights(layers):
    """Multiply-adds per example of each layer's forward pass."""
    return [layer.macs for layer in layers]


def params(layers):
    return sum(layer.params for layer in layers)


def buffer_floats(layers):
    """Length of the allreduced gradient buffer: parameters and the stats slots."""
    return params(layers) + STATS_FLOATS


def bn_messages(model, k=1):
    """Bytes of each allreduce of batch norm statistics in one step (k D updates), when the
    model's batch norms are synchronised (src/nn.c, src/train.c). A D batch norm of C channels
    sums (2 C + 1) doubles per group of rows forward and 2 C backward: in a D update its real and
    fake rows are two groups, in the G update the fake rows one. A G batch norm sums for the k + 1
    phases of one forward pass (k + 1 groups), and 2 C backward in the G update."""
    return [n for _, n in bn_phases(model, k)]


def bn_phases(model, k=1):
    """bn_messages with the phase each belongs to: "d" (the k D updates) or "g" (the G update,
    and G's forward pass)."""
    if not model.get("bn_sync"):
        return []
    out = []
    for layer in model["d"]:
        if layer.bn:
            c = layer.bn
            out += k * [("d", 2 * (2 * c + 1)), ("d", 2 * 2 * c)] + [("g", 2 * c + 1), ("g", 2 * c)]
    for layer in model["g"]:
        if layer.bn:
            c = layer.bn
            out += [("g", (k + 1) * (2 * c + 1)), ("g", 2 * c)]
    return [(phase, 8 * n) for phase, n in out]


def flops_per_example(model):
    """Multiply-adds x 2 of the dense and convolutional layers per example of the global batch,
    per phase.

    Forward, the input gradient and the weight gradient each cost 2 W per row of a layer with W
    multiply-adds; biases, batch norms, pooling, activations and losses are O(values) and left
    out (about 1%). D step: G forward on
    the fake row, D forward and backward on the real and the fake row, no input gradient into D's
    first layer. G step: G forward, D forward, D's input gradients only (its weights get no
    gradient), G's weight and input gradients except into the noise."""
    wg, wd = weights(model["g"]), weights(model["d"])
    g, d = sum(wg), sum(wd)
    d_step = 2 * g + 2 * (2 * d) + 2 * (2 * d) + 2 * (2 * (d - wd[0]))
    g_step = 2 * g + 2 * d + 2 * d + 2 * g + 2 * (g - wg[0])
    return d_step, g_step


def compute_time(key, rows):
    c = CALIBRATION[key]
    return c["d_a"] + c["d_b"] * rows, c["g_a"] + c["g_b"] * rows, c["u"]


def allreduce_time(nbytes, ranks, beta, alpha=ALPHA, algorithm="rabenseifner"):
    """Seconds for a sum allreduce of nbytes over ranks at beta bytes/s per link and direction."""
    if ranks == 1:
        return 0.0
    pof2 = 1 << (ranks.bit_length() - 1)
    if nbytes < SMALL_BYTES:
        # Recursive doubling: log2 N exchanges of the whole buffer with partners 1, 2, 4, ...
        # ranks away. Latency decides, so where the partner is counts: on the fat tree of
        # section 6 (leaves of 2^ceil(log2(N) / 2) hosts) a partner in the same leaf is 2 links
        # away, alpha / 2, and one in another leaf 4, alpha.
        leaf = 1 << math.ceil(math.log2(ranks) / 2)
        t = sum((alpha / 2 if 1 << i < leaf else alpha) + nbytes / beta
                for i in range(int(math.log2(pof2))))
        return t + (2 * (alpha + nbytes / beta) if pof2 != ranks else 0)
    bandwidth = 2 * (ranks - 1) / ranks * nbytes / beta
    if algorithm == "ring":
        return 2 * (ranks - 1) * alpha + bandwidth
    t = 2 * math.log2(pof2) * alpha + 2 * (pof2 - 1) / pof2 * nbytes / beta
    if pof2 != ranks:  # the extra ranks fold into partners first and get the result last
        t += 2 * (alpha + nbytes / beta)
    return t


def step_time(key, ranks, rows, gbps, k=1, alpha=ALPHA, algorithm="rabenseifner"):
    """Seconds of one step and its parts on every rank (all ranks do the same work)."""
    model = MODELS[key]
    beta = gbps * 1e9 / 8
    td, tg, u = compute_time(key, rows)
    ard = allreduce_time(buffer_floats(model["d"]) * FLOAT_BYTES, ranks, beta, alpha, algorithm)
    arg = allreduce_time(buffer_floats(model["g"]) * FLOAT_BYTES, ranks, beta, alpha, algorithm)
    bn = sum(allreduce_time(n, ranks, beta, alpha) for n in bn_messages(model, k))
    total = k * (td + ard) + tg + arg + u + bn
    return {"step_s": total, "d_allreduce_s": ard, "g_allreduce_s": arg,
            "bn_allreduce_s": bn, "compute_s": k * td + tg + u}


def overlapped_step_time(key, ranks, rows, gbps, k=1, alpha=ALPHA):
    """Seconds per step if each layer's gradients were allreduced (MPI_Iallreduce, one at a time)
    as soon as backprop produced them, and G's forward pass of the G step ran while D's last
    gradients were still being reduced: a two-resource schedule, compute and network, with
    Algorithm 1's dependencies. Compute is split between passes and layers in proportion to
    their FLOPs; the network is assumed to progress without the core's help."""
    model = MODELS[key]
    beta = gbps * 1e9 / 8
    td, tg, u = compute_time(key, rows)
    wg, wd = weights(model["g"]), weights(model["d"])
    pg, pd = params(model["g"]), params(model["d"])
    g, d = sum(wg), sum(wd)
    # FLOPs per row of each pass, as in flops_per_example, kept apart by layer.
    d_fwd_g = 2 * g
    d_fwd_d = 4 * d
    d_bwd = [4 * w + (4 * w if l > 0 else 0) for l, w in enumerate(wd)]
    g_fwd_g, g_fwd_d, g_bwd_d = 2 * g, 2 * d, 2 * d
    g_bwd = [2 * w + (2 * w if l > 0 else 0) for l, w in enumerate(wg)]
    sd = td / (d_fwd_g + d_fwd_d + sum(d_bwd))  # seconds per FLOP-per-row in each phase
    sg = tg / (g_fwd_g + g_fwd_d + g_bwd_d + sum(g_bwd))
    ud, ug = u * pd / (pd + pg), u * pg / (pd + pg)

    def bucket(layers, l):
        n = layers[l].params + (STATS_FLOATS if l == len(layers) - 1 else 0)
        return allreduce_time(n * FLOAT_BYTES, ranks, beta, alpha) if n else 0.0

    # Batch norm sums stop the core where they happen: spread over their phase like compute.
    bn = {"d": 0.0, "g": 0.0}
    for phase, n in bn_phases(model, k):
        bn[phase] += allreduce_time(n, ranks, beta, alpha)
    sd += bn["d"] / k / (d_fwd_g + d_fwd_d + sum(d_bwd))
    sg += bn["g"] / (g_fwd_g + g_fwd_d + g_bwd_d + sum(g_bwd))

    cpu = net = 0.0  # when the core and the network are next free
    pending = None   # the update still waiting for its network's last bucket: (network, seconds)
    g_updated = []
    for _ in range(4):  # steps 2 to 4 are in steady state
        for j in range(k + 1):
            g_phase = j == k
            if pending and pending[0] == "g":  # the fakes need the updated G
                cpu = max(cpu, net) + pending[1]
                g_updated.append(cpu)
                pending = None
            cpu += g_fwd_g * sg if g_phase else d_fwd_g * sd
            if pending:                        # D's forward needs the updated D
                cpu = max(cpu, net) + pending[1]
                pending = None
            cpu += (g_fwd_d + g_bwd_d) * sg if g_phase else d_fwd_d * sd
            layers, bwd, s = (model["g"], g_bwd, sg) if g_phase else (model["d"], d_bwd, sd)
            for l in reversed(range(len(layers))):
                cpu += bwd[l] * s
                net = max(net, cpu) + bucket(layers, l)
            pending = ("g", ug) if g_phase else ("d", ud)
    return g_updated[-1] - g_updated[-2]


# ---- The current path (src/train.c, src/comm.c with their defaults): buckets overlapped with the
# backward pass, the sharded update (ZeRO-1), hierarchical sums in nodes of R ranks, bf16 between
# nodes. See docs/scaling.md section 9.

BUCKET_MB = 1           # train.bucket_mb's default between nodes (auto)
NODE_SIZES = [1, 8, 32, 128]
# Bytes/s a socket's memory streams for all its cores together. Assumption, not measured here
# (this machine has 2 cores): a socket of 8 DDR4-3200 channels (AMD EPYC 7003, Intel Xeon 3rd
# generation) peaks at 8 x 25.6 = 204.8 GB/s, and STREAM reaches about 75% of a DDR4 peak, so
# 150 GB/s. A node of 8 or 32 ranks is one such socket, a node of 128 ranks two (2 x 64 cores).
SOCKET_STREAM = 150e9
ALPHA_NODE = 0.5e-6     # a small MPI message between ranks of one node through shared memory
STATS_DOUBLES = STATS_FLOATS + 1  # the tail's sums and the verdict (comm.c tail_and_verdict)


def node_stream(ranks_per_node):
    """Bytes/s of memory traffic one rank gets when all ranks of its node stream at once: a core's
    own rate (STREAM, measured) or its share of the node's sockets, whichever is less."""
    sockets = 2 if ranks_per_node > 64 else 1
    return min(STREAM, sockets * SOCKET_STREAM / ranks_per_node)


def layer_offsets(layers):
    offs, at = [], 0
    for layer in layers:
        offs.append(at)
        at += layer.params
    return offs


def bucket_cuts(layers, mb=BUCKET_MB):
    """train.c's buckets_for: from the last layer down, a cut where a layer's parameters start
    once the bucket being filled holds at least mb MiB."""
    target = mb * (1 << 20) / FLOAT_BYTES
    offs, top, cuts = layer_offsets(layers), params(layers), []
    for l in reversed(range(1, len(layers))):
        if top - offs[l] >= target and offs[l] > 0:
            cuts.append(offs[l])
            top = offs[l]
    return sorted(cuts)


def buckets(layers, mb=BUCKET_MB):
    """(lowest layer, floats) of each bucket, last bucket first: the order the backward pass
    finishes them in. A bucket starts when the backward pass of its lowest layer is done."""
    cuts = [0] + bucket_cuts(layers, mb) + [params(layers)]
    offs = layer_offsets(layers)
    out = []
    for b in reversed(range(len(cuts) - 1)):
        low = min(l for l, o in enumerate(offs) if o >= cuts[b] and layers[l].params)
        out.append((low, cuts[b + 1] - cuts[b]))
    return out


def small_sum_time(nbytes, ranks, beta, alpha=ALPHA, node=1):
    """A small allreduce (recursive doubling, ranks numbered node by node): an exchange with a
    partner on the same node costs ALPHA_NODE, in the same leaf switch alpha / 2, else alpha."""
    if ranks == 1:
        return 0.0
    hosts = max(1, ranks // node)
    leaf = 1 << math.ceil(math.log2(hosts) / 2) if hosts > 1 else 1
    t = 0.0
    for i in range(int(math.log2(ranks))):
        d = 1 << i
        if d < node:
            t += ALPHA_NODE + nbytes / STREAM
        else:
            t += (alpha / 2 if d // node < leaf else alpha) + nbytes / beta
    return t


def bucket_of_layer(layers, mb=BUCKET_MB):
    """For each layer, the index of the bucket that holds its parameters (buckets numbered from
    the first parameters, the order the gather posts them in), None for a layer without any; and
    each bucket's floats."""
    cuts = [0] + bucket_cuts(layers, mb) + [params(layers)]
    index = []
    for off, layer in zip(layer_offsets(layers), layers):
        index.append(max(b for b in range(len(cuts) - 1) if cuts[b] <= off)
                     if layer.params else None)
    return index, [cuts[b + 1] - cuts[b] for b in range(len(cuts) - 1)]


def prefetched_gather(layers, fwd, ranks, beta, alpha=ALPHA, mb=BUCKET_MB, start=0.0):
    """Seconds that a gather of updated parameters, left in flight (train.overlap with buckets),
    adds to the next forward pass through the network, which begins `start` seconds after the
    gather and whose layer l takes fwd[l] seconds. As comm.c does it: the first bucket is posted
    with the gather, each later one when the one before it is found in, by the wait for it before
    a layer that needs it or by the progress call before every layer; a bucket takes alpha +
    (N-1)/N of its bytes / beta through the rank's NIC (MPI_Iallgatherv, every piece sent
    straight), one at a time."""
    index, floats = bucket_of_layer(layers, mb)
    took = [alpha + (ranks - 1) / ranks * n * FLOAT_BYTES / beta for n in floats]
    arrive = [took[0]]  # of each bucket posted so far

    def post_while_in(t):  # the progress call at t, or the wait's end
        while len(arrive) < len(took) and arrive[-1] <= t:
            arrive.append(t + took[len(arrive)])

    t = start
    for l, f in enumerate(fwd):
        post_while_in(t)
        if index[l] is not None:
            while len(arrive) <= index[l]:  # wait for the last posted, post the next
                t = max(t, arrive[-1])
                arrive.append(t + took[len(arrive)])
            t = max(t, arrive[index[l]])
            post_while_in(t)
        t += f
    return t - start - sum(fwd)


def prefetch_passes(model, sd, sg, k=1):
    """Seconds of each layer of the forward passes that wait for a prefetched gather: G's, by the
    next step's G pass for the fakes of all k + 1 phases (in the model's accounting k passes of
    the D updates and one of the G update, 2 W flops per row each), and D's, by the G update's
    pass through D on the fake rows."""
    wg, wd = weights(model["g"]), weights(model["d"])
    return {"g": [2 * w * (k * sd + sg) for w in wg], "d": [2 * w * sg for w in wd]}


def reduce_scatter_time(nbytes, ranks, beta, alpha=ALPHA, algorithm="direct"):
    """One bucket's MPI_Ireduce_scatter among ranks with a NIC each. direct: every piece sent
    straight to its owner, all messages posted at once (SimGrid's SMPI; bandwidth-optimal);
    libnbc: Open MPI 4.1's (coll/libnbc, nbc_ireduce_scatter.c), a binomial reduce of the whole
    bucket to rank 0, then rank 0 sends each rank its piece."""
    if ranks == 1:
        return 0.0
    piece = (ranks - 1) / ranks * nbytes / beta
    if algorithm == "direct":
        return alpha + piece
    rounds = math.ceil(math.log2(ranks))
    return rounds * (alpha + nbytes / beta + 3 * nbytes / STREAM) + alpha + piece


def pass_flops(model):
    """FLOPs per row of the current step's passes: D's update (G's forward for the fakes, D's
    forward on real and fake rows), D's backward by layer (no input gradient for the first),
    G's update (G forward, D forward and backward to G's output), G's backward by layer."""
    wg, wd = weights(model["g"]), weights(model["d"])
    g, d = sum(wg), sum(wd)
    d_bwd = [4 * w + (4 * w if l > 0 else 0) for l, w in enumerate(wd)]
    g_bwd = [2 * w + (2 * w if l > 0 else 0) for l, w in enumerate(wg)]
    return 2 * g + 4 * d, d_bwd, 2 * g + 2 * d + 2 * d, g_bwd


def current_step_time(key, ranks, rows, gbps, node=1, bf16=False, k=1, alpha=ALPHA,
                      rs="direct", mb=BUCKET_MB, prefetch=True, node_buckets=True):
    """Seconds of one step of the current code path on `ranks` ranks in nodes of `node` ranks,
    and its parts. Defaults: train.sharded_update (ZeRO-1), bucket_mb 25, shared sums.

    node == 1 (a private buffer per rank, sums through MPI): each bucket's reduce-scatter starts
    when the backward pass has written it and runs (one at a time on the rank's NIC) while the
    pass goes on; the rank then waits for the rest, sums the tail (statistics and verdict),
    updates its 1/N of the parameters, gathers every bucket's pieces (MPI_Iallgatherv, float32
    always: parameters are not rounded), and agrees that all is finite. With prefetch
    (train.overlap, the default) the gather runs on into the next forward pass through the
    network, which waits for each layer's bucket (prefetched_gather): D's into the G update's
    pass through D, G's into the next step's pass through G. With k > 1 the gathers of the first
    k - 1 D updates are counted whole (the next D update's pass waits for them like the G
    update's, left out).

    node > 1 (shared sums) in buckets (node_buckets, the default between nodes): when the
    backward pass has written a bucket on every rank of the node, each rank sums its chunk of the
    bucket over the node's slots (memory time, on the rank's own timeline) and exchanges it with
    the ranks of its node index on the M = N / R nodes (R exchanges at once through the node's
    NIC: the bucket's bytes, (M - 1) / M of them, as one rank per node would send), one bucket at
    a time on the NIC while the pass goes on; then the tail, each rank's update of 1/N of the
    node's one copy, and the gather of every bucket's pieces (float32) into it, prefetched as for
    node == 1 (each layer's wait then a node barrier, whose latency is left out), or waited for
    without prefetch. The node barrier after each bucket is taken as immediate (comm.c tests it at
    the next progress call). With k > 1 the first k - 1 D gathers are counted whole, as for
    node == 1.

    node > 1 without buckets (bucket_mb: 0; what tests/sim/skeleton.c simulates): after the
    backward pass the node's ranks sum chunk i of every rank's slot in shared memory (rank i reads
    n floats and writes n / R), the chunks go round a ring over the M nodes (R rings at once
    through one NIC: reduce-scatter, bf16 if asked), the tail is summed, each rank updates 1/N of
    the node's one copy, and a second ring (float32) gathers the updated chunk into the node's
    window.

    bf16 halves the bytes of gradient sums between nodes; parameters and statistics travel in
    float32, and within a node nothing is rounded."""
    model = MODELS[key]
    beta = gbps * 1e9 / 8
    td, tg, u = compute_time(key, rows)
    pg, pd = params(model["g"]), params(model["d"])
    d_fwd, d_bwd, g_fwd, g_bwd = pass_flops(model)
    sd = td / (d_fwd + sum(d_bwd))
    sg = tg / (g_fwd + sum(g_bwd))
    grad_bytes = 2 if bf16 else FLOAT_BYTES
    hosts = max(1, ranks // node)
    bn = sum(small_sum_time(n, ranks, beta, alpha, node) for n in bn_messages(model, k))
    out = {"step_s": 0.0, "compute_s": k * td + tg, "bn_allreduce_s": bn, "d_sum_s": 0.0,
           "g_sum_s": 0.0, "d_gather_s": 0.0, "g_gather_s": 0.0, "update_s": 0.0,
           "node_sum_s": 0.0, "small_s": 0.0}

    def phase(name, layers, fwd, bwd, s, u_net):
        n = params(layers)
        t = fwd * s
        if ranks == 1:
            out["update_s"] += u_net
            return t + sum(bwd) * s + u_net
        small = small_sum_time(STATS_DOUBLES * 8, ranks, beta, alpha, node)
        if node == 1:
            net = 0.0
            order = buckets(layers, mb)
            for l in reversed(range(len(layers))):
                t += bwd[l] * s
                for low, floats in order:
                    if low == l:
                        net = max(net, t) + reduce_scatter_time(floats * grad_bytes, ranks,
                                                                beta, alpha, rs)
            wait = max(0.0, net - t)
            gather = alpha + (ranks - 1) / ranks * n * FLOAT_BYTES / beta
            if prefetch and (name == "g" or last_d[0]):
                # the pass through the network starts after the verdict's small sum
                gather = prefetched_gather(layers, pre[name], ranks, beta, alpha, mb, small)
            smalls = 2 * small
            node_sum = 0.0
        elif node_buckets and hosts > 1:
            per_float = FLOAT_BYTES * (1 + 1 / node) / node_stream(node)
            net = 0.0
            for l in reversed(range(len(layers))):
                t += bwd[l] * s
                for low, floats in buckets(layers, mb):
                    if low == l:
                        t += floats * per_float  # this rank's chunk of the node's sum
                        net = max(net, t) + reduce_scatter_time(floats * grad_bytes, hosts,
                                                                beta, alpha, rs)
            t += STATS_FLOATS * per_float
            wait = max(0.0, net - t)
            node_sum = (n + STATS_FLOATS) * per_float
            t -= node_sum  # counted apart below
            gather = alpha + (hosts - 1) / hosts * n * FLOAT_BYTES / beta
            if prefetch and (name == "g" or last_d[0]):
                # each rank its chunk of every bucket among the M nodes: the node's NIC carries
                # what one rank per node would (the node barriers' latency left out)
                gather = prefetched_gather(layers, pre[name], hosts, beta, alpha, mb, small)
            smalls = 2 * small
        else:
            t += sum(bwd) * s
            node_sum = (n + STATS_FLOATS) * FLOAT_BYTES * (1 + 1 / node) / node_stream(node)
            if hosts > 1:
                leaf = 1 << math.ceil(math.log2(hosts) / 2)
                hop = alpha if hosts > leaf else alpha / 2
                wait = (hosts - 1) * (hop + grad_bytes * n / (hosts * beta))
                gather = (hosts - 1) * (hop + FLOAT_BYTES * n / (hosts * beta))
                smalls = 2 * small
            else:
                wait = gather = smalls = 0.0
        update = u_net / ranks
        out[name + "_sum_s"] += wait
        out[name + "_gather_s"] += gather
        out["update_s"] += update
        out["node_sum_s"] += node_sum
        out["small_s"] += smalls
        return t + wait + node_sum + smalls + update + gather

    ud, ug = u * pd / (pd + pg), u * pg / (pd + pg)
    pre = prefetch_passes(model, sd, sg, k)
    last_d = [False]  # the D update whose gather the G update's pass through D waits for
    total = 0.0
    for j in range(k):
        last_d[0] = j == k - 1
        total += phase("d", model["d"], d_fwd, d_bwd, sd, ud)
    total += phase("g", model["g"], g_fwd, g_bwd, sg, ug)
    out["step_s"] = total + bn
    return out


def current_weak_efficiency(key, ranks, gbps, node=1, bf16=False, rs="direct", mb=BUCKET_MB,
                            prefetch=True, node_buckets=True):
    rows = MODELS[key]["batch"]
    t1 = step_time(key, 1, rows, gbps)["step_s"]
    return t1 / current_step_time(key, ranks, rows, gbps, node, bf16, rs=rs, mb=mb,
                                  prefetch=prefetch, node_buckets=node_buckets)["step_s"]


def sharded_skeleton_args(key, ranks, rows, node, bf16, k, speed, scale, prefetch=True,
                          node_buckets=True):
    """tests/sim/skeleton's arguments for the current step (--path sharded): the same slices of
    compute, buckets and memory time as current_step_time. With prefetched gathers (nodes of one
    rank, or of R summing in buckets) the passes that wait for them go as --g-pre (the step's pass
    through G) and --d-pre (the G update's pass through D), and the rest of each forward pass as
    --d-fwd and --g-fwd."""
    model = MODELS[key]
    td, tg, u = compute_time(key, rows)
    pg, pd = params(model["g"]), params(model["d"])
    d_fwd, d_bwd, g_fwd, g_bwd = pass_flops(model)
    sd, sg = td / (d_fwd + sum(d_bwd)), tg / (g_fwd + sum(g_bwd))
    out = (f"--path sharded --node {node} --node-buckets {int(bool(node_buckets))}"
           f" --bf16 {int(bool(bf16))} --k {k}")
    hosts = max(1, ranks // node)
    pre = (prefetch_passes(model, sd, sg, k)
           if prefetch and ranks > 1 and (node == 1 or (node_buckets and hosts > 1)) else None)
    if pre:
        g, d = sum(weights(model["g"])), sum(weights(model["d"]))
        fwd_rest = {"d": (d_fwd - 2 * g) * sd, "g": (g_fwd - 2 * g - 2 * d) * sg}
        for name in ("d", "g"):
            index, _ = bucket_of_layer(model[name])
            need, slices = 0, []
            for l, f in enumerate(pre[name]):
                need = index[l] + 1 if index[l] is not None else need
                slices.append(f"{f * speed:.6g}:{need}")
            out += f" --{name}-pre {','.join(slices)}"
    for name, layers, fwd, bwd, s, un in (("d", model["d"], d_fwd, d_bwd, sd, u * pd / (pd + pg)),
                                          ("g", model["g"], g_fwd, g_bwd, sg, u * pg / (pd + pg))):
        order = buckets(layers) if ranks > 1 and (node == 1 or node_buckets) else []
        slices = []
        for l in reversed(range(len(layers))):
            floats = sum(f for low, f in order if low == l)
            slices.append(f"{bwd[l] * s * speed:.6g}:{round(floats / scale)}")
        n = params(layers) + STATS_FLOATS
        node_sum = n * FLOAT_BYTES * (1 + 1 / node) / node_stream(node) if node > 1 else 0.0
        f = fwd_rest[name] if pre else fwd * s
        out += (f" --{name}-floats {round(n / scale)} --{name}-flops 0 --{name}-fwd {f * speed:.6g}"
                f" --{name}-bwd {','.join(slices)} --{name}-update {un / ranks * speed:.6g}"
                f" --{name}-node-sum {node_sum * speed:.6g}")
    for phase in ("d", "g"):  # batch norm sums, as for the replicated step
        sizes = [n for ph, n in bn_phases(model, k) if ph == phase]
        per = len(sizes) // k if phase == "d" else len(sizes)
        if per:
            mean = sum(sizes) / len(sizes) / 8 / scale
            out += f" --{phase}-small {per} --{phase}-small-doubles {max(1, round(mean))}"
    return out


def strong_efficiency(key, ranks, gbps, overlap=False, algorithm="rabenseifner"):
    """T(1) / (N T(N)) at the model's global batch B; None once a rank would get less than one
    row."""
    batch = MODELS[key]["batch"]
    if ranks > batch:
        return None
    rows = batch / ranks
    t1 = step_time(key, 1, batch, gbps)["step_s"]
    if overlap:
        tn = overlapped_step_time(key, ranks, rows, gbps)
    else:
        tn = step_time(key, ranks, rows, gbps, algorithm=algorithm)["step_s"]
    return t1 / (ranks * tn)


def weak_efficiency(key, ranks, gbps, rows=None, overlap=False, algorithm="rabenseifner"):
    """T(1, r) / T(N, r): the same rows per rank (the model's batch B unless given), global batch
    N r."""
    rows = rows or MODELS[key]["batch"]
    t1 = step_time(key, 1, rows, gbps)["step_s"]
    if overlap:
        tn = overlapped_step_time(key, ranks, rows, gbps)
    else:
        tn = step_time(key, ranks, rows, gbps, algorithm=algorithm)["step_s"]
    return t1 / tn


def effective_rate(key):
    """Flop/s of one rank computing a step of the model's batch, FLOPs by flops_per_example."""
    fd, fg = flops_per_example(MODELS[key])
    batch = MODELS[key]["batch"]
    td, tg, _ = compute_time(key, batch)
    return (fd + fg) * batch / (td + tg)


def fit(paths):
    """Fits a + b r to D (compute + data) and G compute over the rows of
    tests/sim/measure.sh tables (1 rank, batch r), keeping for each r the fastest step of all the
    files (other jobs on a shared machine only ever slow a run down); u is their median update."""
    best = {}
    for path in paths:
        for line in open(path):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if len(cells) < 10 or cells[0] != "1":
                continue
            r = float(cells[1])
            ms = [float(c) / 1e3 for c in cells[3:10]]  # step, D, D ar, G, G ar, update, data
            if r not in best or ms[0] < best[r][0]:
                best[r] = ms
    d = [(r, ms[1] + ms[6]) for r, ms in best.items()]
    g = [(r, ms[3]) for r, ms in best.items()]
    u = [ms[5] for ms in best.values()]
    if len(d) < 2:
        raise SystemExit("fit: need rows of at least two batch sizes")

    def line(points):
        """a + b r minimising the squared relative residuals, so that the few-row steps, which
        strong scaling lives on, count as much as the 100-row ones."""
        w = [1 / (y * y) for _, y in points]
        sw = sum(w)
        mx = sum(wi * x for wi, (x, _) in zip(w, points)) / sw
        my = sum(wi * y for wi, (_, y) in zip(w, points)) / sw
        b = (sum(wi * (x - mx) * (y - my) for wi, (x, y) in zip(w, points))
             / sum(wi * (x - mx) ** 2 for wi, (x, _) in zip(w, points)))
        a = my - b * mx
        worst = max(abs(y - (a + b * x)) / y for x, y in points)
        return a, b, worst

    da, db, dw = line(d)
    ga, gb, gw = line(g)
    u.sort()
    print(f'{{"d_a": {da:.5g}, "d_b": {db:.5g}, "g_a": {ga:.5g}, "g_b": {gb:.5g}, '
          f'"u": {u[len(u) // 2]:.5g}}}  # worst relative residual: D {dw:.1%}, G {gw:.1%}')


def pct(e):
    return "—" if e is None else f"{100 * e:.0f}%"


def print_tables():
    print("**Sizes, bytes and FLOPs** (k = 1; bytes are float32 gradient buffers with 4 stats "
          "floats)\n")
    print("| model | G params | D params | bytes per D allreduce | bytes per G allreduce "
          "| batch norm sums per step | bytes per step | MFLOP per example, D step "
          "| MFLOP per example, G step | global batch B | GFLOP per step "
          "| compute per step, 1 rank x B rows (measured) | effective GFLOP/s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for key, m in MODELS.items():
        bd, bg = buffer_floats(m["d"]) * FLOAT_BYTES, buffer_floats(m["g"]) * FLOAT_BYTES
        bn = bn_messages(m)
        fd, fg = flops_per_example(m)
        batch = m["batch"]
        td, tg, u = compute_time(key, batch)
        sums = f"{len(bn)} of {sum(bn) / 1e3:.1f} kB" if bn else "—"
        print(f"| {m['name']} | {params(m['g']):,} | {params(m['d']):,} | {bd / 1e6:.2f} MB "
              f"| {bg / 1e6:.2f} MB | {sums} | {(bd + bg + sum(bn)) / 1e6:.1f} MB "
              f"| {fd / 1e6:.1f} | {fg / 1e6:.1f} | {batch} | {(fd + fg) * batch / 1e9:.2f} "
              f"| {1e3 * (td + tg):.0f} ms + update {1e3 * u:.1f} ms "
              f"| {(fd + fg) * batch / (td + tg) / 1e9:.0f} |")

    def table(title, eff):
        print(f"\n**{title}**\n")
        print("| model | Gbit/s | " + " | ".join(f"N={n}" for n in RANKS) + " |")
        print("|---|---|" + "---|" * len(RANKS))
        for key, m in MODELS.items():
            for gbps in GBPS:
                cells = " | ".join(pct(eff(key, n, gbps)) for n in RANKS)
                print(f"| {key} | {gbps} | {cells} |")

    table("Strong scaling, each model's global batch B (rows per rank B/N; — where N > B)",
          strong_efficiency)
    table("Weak scaling, B rows per rank (global batch B N)", weak_efficiency)

    print("\n**Step time at 25 Gbit/s, milliseconds** (compute includes the update; "
          "allreduce = D + G, and the batch norm sums where they are synchronised; sums: the "
          "allreduces' additions, left out of everything else)\n")
    print("| model | regime | N | rows/rank | compute | allreduce | sums | step | efficiency "
          "| speedup | step with overlap | efficiency with overlap |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for key in MODELS:
        for regime, ranks in (("strong", 8), ("strong", 64), ("weak", 64), ("weak", 512),
                              ("weak", 1024)):
            batch = MODELS[key]["batch"]
            rows = batch / ranks if regime == "strong" else batch
            s = step_time(key, ranks, rows, 25)
            o = overlapped_step_time(key, ranks, rows, 25)
            e = (strong_efficiency if regime == "strong" else weak_efficiency)(key, ranks, 25)
            eo = (strong_efficiency if regime == "strong" else weak_efficiency)(
                key, ranks, 25, overlap=True)
            m = MODELS[key]
            n = buffer_floats(m["d"]) + buffer_floats(m["g"])
            sums = 3 * FLOAT_BYTES * (ranks - 1) / ranks * n / STREAM  # read 2, write 1 float
            ar = s["d_allreduce_s"] + s["g_allreduce_s"] + s["bn_allreduce_s"]
            print(f"| {key} | {regime} | {ranks} | {rows:g} | {1e3 * s['compute_s']:.1f} "
                  f"| {1e3 * ar:.1f} | {1e3 * sums:.1f} "
                  f"| {1e3 * s['step_s']:.1f} | {pct(e)} "
                  f"| {e * ranks:.1f}x | {1e3 * o:.1f} | {pct(eo)} |")

    print("\n**Latency: Rabenseifner against the ring, MNIST, weak scaling at 25 Gbit/s**\n")
    print("| alpha | algorithm | " + " | ".join(f"N={n}" for n in RANKS) + " |")
    print("|---|---|" + "---|" * len(RANKS))
    for alpha in (2e-6, 20e-6):
        for algorithm in ("rabenseifner", "ring"):
            cells = []
            for n in RANKS:
                rows = MODELS["mnist"]["batch"]
                t1 = step_time("mnist", 1, rows, 25)["step_s"]
                tn = step_time("mnist", n, rows, 25, alpha=alpha, algorithm=algorithm)
                cells.append(pct(t1 / tn["step_s"]))
            print(f"| {alpha * 1e6:g} us | {algorithm} | " + " | ".join(cells) + " |")

    print_current_tables()


def print_current_tables(ranks=512):
    """The current path's tables (docs/scaling.md section 9)."""
    print(f"\n**Current path: weak-scaling efficiency at {ranks} ranks**, B rows per rank, "
          "sharded update, 1 MB buckets, gathers prefetched by the next forward pass (nodes of "
          "1 rank); columns: ranks per node, gradients between nodes in float32 or bf16\n")
    heads = [f"{r}/node {'bf16' if b else 'fp32'}" for r in NODE_SIZES for b in (0, 1)]
    print("| model | Gbit/s | " + " | ".join(heads) + " |")
    print("|---|---|" + "---|" * len(heads))
    for key in MODELS:
        for gbps in GBPS:
            cells = [pct(current_weak_efficiency(key, ranks, gbps, r, b))
                     for r in NODE_SIZES for b in (0, 1)]
            print(f"| {key} | {gbps} | " + " | ".join(cells) + " |")

    print(f"\n**Current path: one step at {ranks} ranks, 25 Gbit/s, milliseconds per rank** "
          "(B rows per rank; sums: the gradient reduce-scatters' time the backward pass did not "
          "hide; node sums: the shared-memory sums of a node's ranks; small: statistics, verdicts "
          "and batch norm sums)\n")
    print("| model | ranks/node | bf16 | compute | update | node sums | sums | gathers | small "
          "| step | efficiency |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for key in ("mnist", "cifar10", "dcgan"):
        rows = MODELS[key]["batch"]
        t1 = step_time(key, 1, rows, 25)["step_s"]
        for r in NODE_SIZES:
            for b in (0, 1):
                t = current_step_time(key, ranks, rows, 25, r, b)
                ms = lambda x: f"{1e3 * x:.1f}"
                print(f"| {key} | {r} | {'yes' if b else 'no'} | {ms(t['compute_s'])} "
                      f"| {ms(t['update_s'])} | {ms(t['node_sum_s'])} "
                      f"| {ms(t['d_sum_s'] + t['g_sum_s'])} "
                      f"| {ms(t['d_gather_s'] + t['g_gather_s'])} "
                      f"| {ms(t['small_s'] + t['bn_allreduce_s'])} | {ms(t['step_s'])} "
                      f"| {pct(t1 / t['step_s'])} |")

    print(f"\n**Current path, nodes of 1 rank, {ranks} ranks: what the buckets' size and the "
          "gathers' prefetch give** (25 MB without prefetch was the default before; fp32 / bf16 "
          "between nodes)\n")
    print("| model | Gbit/s | 25 MB | 1 MB | 1 MB, prefetched (now) |")
    print("|---|---|---|---|---|")
    for key in MODELS:
        for gbps in GBPS:
            cells = ["%s / %s" % tuple(pct(current_weak_efficiency(key, ranks, gbps, 1, b, mb=mb,
                                                                   prefetch=pre))
                                       for b in (0, 1))
                     for mb, pre in ((25, False), (1, False), (1, True))]
            print(f"| {key} | {gbps} | " + " | ".join(cells) + " |")

    print(f"\n**Current path, nodes of 1 rank, {ranks} ranks, with Open MPI 4.1's "
          "MPI_Ireduce_scatter** (libnbc: a binomial reduce of each bucket to rank 0, then "
          "rank 0 sends the pieces), against the direct one the tables above assume\n")
    print("| model | Gbit/s | direct fp32 | direct bf16 | libnbc fp32 | libnbc bf16 |")
    print("|---|---|---|---|---|---|")
    for key in MODELS:
        for gbps in GBPS:
            cells = [pct(current_weak_efficiency(key, ranks, gbps, 1, b, rs))
                     for rs in ("direct", "libnbc") for b in (0, 1)]
            print(f"| {key} | {gbps} | " + " | ".join(cells) + " |")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command")
    sub.add_parser("fit").add_argument("files", nargs="+")
    sub.add_parser("rate").add_argument("--model", choices=sorted(MODELS), required=True)
    sub.add_parser("batch").add_argument("--model", choices=sorted(MODELS), required=True)
    for name in ("step", "skeleton-args"):
        s = sub.add_parser(name)
        s.add_argument("--model", choices=sorted(MODELS), required=True)
        s.add_argument("--ranks", type=int, required=True)
        s.add_argument("--rows", type=float, required=True, help="rows per rank")
        s.add_argument("--k", type=int, default=1)
        s.add_argument("--path", choices=("replicated", "sharded"), default="replicated",
                       help="replicated: the old step (one allreduce per update); sharded: the "
                            "current one (buckets, ZeRO-1, hierarchical sums, bf16)")
        s.add_argument("--node", type=int, default=1, help="ranks per node (--path sharded)")
        s.add_argument("--bf16", type=int, choices=(0, 1), default=0,
                       help="gradients in bfloat16 between nodes (--path sharded)")
        s.add_argument("--prefetch", type=int, choices=(0, 1), default=1,
                       help="the gathers of updated parameters run into the next forward pass "
                            "(train.overlap; --path sharded: nodes of one rank, or of R with "
                            "--node-buckets 1)")
        s.add_argument("--node-buckets", type=int, choices=(0, 1), default=1,
                       help="nodes of R > 1 ranks sum in buckets during the backward pass (1, "
                            "the default between nodes) or after it (0: bucket_mb 0; --path "
                            "sharded)")
        if name == "step":
            s.add_argument("--gbps", type=float, required=True)
            s.add_argument("--alpha", type=float, default=ALPHA, help="seconds per message")
            s.add_argument("--algorithm", choices=("rabenseifner", "ring"),
                           default="rabenseifner")
        else:
            s.add_argument("--host-speed", type=float, required=True, help="flop/s of a host")
            s.add_argument("--scale", type=float, default=1,
                           help="divide the buffers by this (and the links' bandwidth with it)")
    a = p.parse_args()
    if a.command is None:
        print_tables()
        return 0
    if a.command == "fit":
        fit(a.files)
        return 0
    if a.command == "rate":
        print(f"{effective_rate(a.model):.4g}")
        return 0
    if a.command == "batch":
        print(MODELS[a.model]["batch"])
        return 0
    if a.ranks < 1 or a.rows <= 0 or a.k < 1:
        p.error("--ranks and --k must be >= 1 and --rows > 0")
    if a.node < 1 or a.ranks % a.node:
        p.error("--node must be >= 1 and divide --ranks")
    if a.command == "step" and a.path == "sharded":
        t = current_step_time(a.model, a.ranks, a.rows, a.gbps, a.node, a.bf16, a.k, a.alpha,
                              prefetch=bool(a.prefetch), node_buckets=bool(a.node_buckets))
        print(" ".join(f"{k}={v:.6g}" for k, v in t.items()))
    elif a.command == "skeleton-args" and a.path == "sharded":
        print(sharded_skeleton_args(a.model, a.ranks, a.rows, a.node, a.bf16, a.k, a.host_speed,
                                    a.scale, bool(a.prefetch), bool(a.node_buckets)))
    elif a.command == "step":
        t = step_time(a.model, a.ranks, a.rows, a.gbps, a.k, a.alpha, a.algorithm)
        print(" ".join(f"{k}={v:.6g}" for k, v in t.items()))
    else:
        m = MODELS[a.model]
        td, tg, u = compute_time(a.model, a.rows)
        small = ""
        for phase in ("d", "g"):  # batch norm sums: a count per update and their mean size
            sizes = [n for ph, n in bn_phases(m, a.k) if ph == phase]
            per = len(sizes) // a.k if phase == "d" else len(sizes)
            if per:
                mean = sum(sizes) / len(sizes) / 8 / a.scale
                small += f" --{phase}-small {per} --{phase}-small-doubles {max(1, round(mean))}"
        print(f"--d-floats {round(buffer_floats(m['d']) / a.scale)} "
              f"--g-floats {round(buffer_floats(m['g']) / a.scale)} "
              f"--d-flops {td * a.host_speed:.6g} --g-flops {tg * a.host_speed:.6g} "
              f"--update-flops {u * a.host_speed:.6g} --k {a.k}{small}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
