#!/usr/bin/env python3
"""The PyTorch baseline the C++ code is measured against.

Chapter 04's four timed operations written as a careful PyTorch user would
write them -- the networks as nn.Modules, the tables as Python floats, no
per-step tensor lookups -- so that the C++ side has a fair opponent:

  unet_train   one training step of the U-Net at batch 64: ε-loss with
               t ~ U{1..1000} (linear schedule), backward, gradient norm
               clipped to 1, Adam (lr 2e-4, linear warmup over 500 steps),
               EMA 0.999 of the weights
  unet_sample  one ancestral step t = 500 -> 499 (fixedlarge variance, x̂₀
               clipped to [-1, 1]) at batch 128
  mlp_train    one training step of the 2D ε-MLP (hidden 128, 3 layers) at
               batch 512, lr 2e-3 (warmup 100), EMA 0.995
  mlp_sample   the whole 1000-step ancestral chain of 2000 2D samples

Each prints one JSON line with the same fields as dm_vs_pytorch (the C++
side, tests/bench/pytorch/vs_pytorch.cpp); tools/bench_vs_pytorch.sh runs both.

  python3 baseline.py --case unet_train [--batch 64] [--iters 20] [--warmup 3] [--threads 1] [--device cpu]
  python3 baseline.py --verify DIR     # DIR from `dm_vs_pytorch --export DIR`

--cuda-graphs (sampling cases, on CUDA): the network is captured once in a
CUDA graph and replayed at every step, as NetModel::use_cuda_graphs does.

--verify checks that these networks are the C++ ones: the same parameter
names and shapes in the same order (so the same parameter count), and, with
the C++ weights loaded, the same outputs on the same inputs.
"""
import argparse
import json
import math
import os
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


# ---------------------------------------------------------------------------
# The networks (dm/nn/networks.hpp). Module names follow the C++ ones so that
# the parameters' names match one for one.

def sinusoidal_embedding(t, dim, max_period=10000.0):
    half = dim // 2
    step = math.log(max_period) / (half - 1) if half > 1 else 0.0
    omega = torch.exp(-step * torch.arange(half, dtype=t.dtype, device=t.device))
    angle = t[:, None] * omega[None, :]
    emb = torch.cat([torch.sin(angle), torch.cos(angle)], dim=1)
    if dim % 2 == 1:
        emb = F.pad(emb, (0, 1))
    return emb


class ResBlock(nn.Module):
    def __init__(self, cin, cout, temb_dim, groups):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.temb_proj = nn.Linear(temb_dim, cout)
        self.norm2 = nn.GroupNorm(groups, cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else None

    def forward(self, x, temb):
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.temb_proj(F.silu(temb))[:, :, None, None]
        h = self.conv2(F.silu(self.norm2(h)))
        return (self.skip(x) if self.skip is not None else x) + h


class AttentionBlock(nn.Module):
    def __init__(self, channels, groups):
        super().__init__()
        self.norm = nn.GroupNorm(groups, channels)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.proj = nn.Conv2d(channels, channels, 1)

    def forward(self, x):
        n, c, h, w = x.shape
        qkv = self.qkv(self.norm(x)).reshape(n, 3, c, h * w)
        q, k, v = qkv[:, 0], qkv[:, 1], qkv[:, 2]
        attn = torch.softmax(torch.bmm(q.transpose(1, 2), k) / math.sqrt(c), dim=-1)
        out = torch.bmm(v, attn.transpose(1, 2)).reshape(n, c, h, w)
        return x + self.proj(out)


class UNet(nn.Module):
    """Chapter 04's U-Net: base 16, mults 1-2-4-4, one ResBlock per level, attention at 8x8."""

    def __init__(self, base=16, mults=(1, 2, 4, 4), res_blocks=1, attention=(8,), groups=8,
                 image_size=32, in_channels=1, out_channels=1):
        super().__init__()
        self.base = base
        temb_dim = 4 * base
        self.time_fc1 = nn.Linear(base, temb_dim)
        self.time_fc2 = nn.Linear(temb_dim, temb_dim)
        self.conv_in = nn.Conv2d(in_channels, base, 3, padding=1)
        skip_channels = [base]
        ch, size = base, image_size
        self.down = []  # per level: ([(res, attn or None)], downsample or None)
        for i, m in enumerate(mults):
            out, blocks = base * m, []
            for r in range(res_blocks):
                res = self._add(f"down{i}_res{r}", ResBlock(ch, out, temb_dim, groups))
                ch = out
                attn = (self._add(f"down{i}_attn{r}", AttentionBlock(ch, groups))
                        if size in attention else None)
                blocks.append((res, attn))
                skip_channels.append(ch)
            down = None
            if i + 1 < len(mults):
                down = self._add(f"down{i}_downsample", nn.Conv2d(ch, ch, 3, stride=2, padding=1))
                skip_channels.append(ch)
                size //= 2
            self.down.append((blocks, down))
        self.mid_res1 = ResBlock(ch, ch, temb_dim, groups)
        self.mid_attn = AttentionBlock(ch, groups)
        self.mid_res2 = ResBlock(ch, ch, temb_dim, groups)
        self.up = []
        for i in reversed(range(len(mults))):
            out, blocks = base * mults[i], []
            for r in range(res_blocks + 1):
                skip = skip_channels.pop()
                res = self._add(f"up{i}_res{r}", ResBlock(ch + skip, out, temb_dim, groups))
                ch = out
                attn = (self._add(f"up{i}_attn{r}", AttentionBlock(ch, groups))
                        if size in attention else None)
                blocks.append((res, attn))
            upsample = None
            if i > 0:
                upsample = self._add(f"up{i}_upsample", nn.Conv2d(ch, ch, 3, padding=1))
                size *= 2
            self.up.append((blocks, upsample))
        self.norm_out = nn.GroupNorm(groups, ch)
        self.conv_out = nn.Conv2d(ch, out_channels, 3, padding=1)
        nn.init.zeros_(self.conv_out.weight)
        nn.init.zeros_(self.conv_out.bias)

    def _add(self, name, module):
        self.add_module(name, module)
        return module

    def forward(self, x, t):
        temb = self.time_fc2(F.silu(self.time_fc1(sinusoidal_embedding(t, self.base))))
        h = self.conv_in(x)
        skips = [h]
        for blocks, down in self.down:
            for res, attn in blocks:
                h = res(h, temb)
                if attn is not None:
                    h = attn(h)
                skips.append(h)
            if down is not None:
                h = down(h)
                skips.append(h)
        h = self.mid_res2(self.mid_attn(self.mid_res1(h, temb)), temb)
        for blocks, upsample in self.up:
            for res, attn in blocks:
                h = res(torch.cat([h, skips.pop()], dim=1), temb)
                if attn is not None:
                    h = attn(h)
            if upsample is not None:
                h = upsample(F.interpolate(h, scale_factor=2, mode="nearest"))
        return self.conv_out(F.silu(self.norm_out(h)))


class ScoreMLP(nn.Module):
    """Chapter 04's 2D ε-MLP: hidden 128, 3 layers, a 32-dim time embedding."""

    def __init__(self, dim=2, hidden=128, layers=3, time_dim=32):
        super().__init__()
        self.time_dim = time_dim
        self.time_fc = nn.Linear(time_dim, hidden)
        self.hidden, self.cond = [], []
        for l in range(layers):
            self.hidden.append(self._add(f"hidden{l}", nn.Linear(dim if l == 0 else hidden, hidden)))
            self.cond.append(self._add(f"cond_proj{l}", nn.Linear(hidden, hidden)))
        self.out = nn.Linear(hidden, dim)

    def _add(self, name, module):
        self.add_module(name, module)
        return module

    def forward(self, x, t):
        e = F.silu(self.time_fc(sinusoidal_embedding(t, self.time_dim)))
        h = x
        for lin, proj in zip(self.hidden, self.cond):
            h = F.silu(lin(h) + proj(e))
        return self.out(h)


# ---------------------------------------------------------------------------
# DDPM: the linear schedule (float64 tables, as the C++ library), the loss,
# the ancestral step, the training step.

class Schedule:
    def __init__(self, T=1000, beta_start=1e-4, beta_end=0.02, device="cpu"):
        self.T = T
        betas = torch.linspace(beta_start, beta_end, T, dtype=torch.float64)
        alphas = 1 - betas
        ab = torch.cumprod(alphas, 0)
        ab_prev = torch.cat([torch.ones(1, dtype=torch.float64), ab[:-1]])
        post_var = betas * (1 - ab_prev) / (1 - ab)
        # Index t = 0…T (t = 0: the data), on the device, for the loss's gather.
        self.sqrt_ab = torch.cat([torch.ones(1, dtype=torch.float64), ab.sqrt()]).to(device)
        self.sqrt_1m_ab = torch.cat([torch.zeros(1, dtype=torch.float64), (1 - ab).sqrt()]).to(device)
        # Python floats for the sampler, index t = 1…T at [t - 1].
        self.a = ab.sqrt().tolist()
        self.s = (1 - ab).sqrt().tolist()
        self.coef1 = (betas * ab_prev.sqrt() / (1 - ab)).tolist()
        self.coef2 = ((1 - ab_prev) * alphas.sqrt() / (1 - ab)).tolist()
        # fixedlarge: log σ² = log β_t, with β̃_2 at t = 1 (the DDPM code)
        self.large_log_var = torch.cat([post_var[1:2], betas[1:]]).log().tolist()


def loss_eps(net, sched, x0):
    n = x0.shape[0]
    t = torch.randint(1, sched.T + 1, (n,), device=x0.device)
    eps = torch.randn_like(x0)
    shape = (n,) + (1,) * (x0.dim() - 1)
    a = sched.sqrt_ab[t].to(x0.dtype).reshape(shape)
    s = sched.sqrt_1m_ab[t].to(x0.dtype).reshape(shape)
    xt = a * x0 + s * eps
    return (net(xt, (t - 1).to(x0.dtype)) - eps).pow(2).mean()


def graphed(net, example_x):
    """net(x, t) replayed from a CUDA graph captured for x's shape (inference only)."""
    static_x = example_x.clone()
    static_t = torch.zeros(example_x.shape[0], device=example_x.device)
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(3):
            net(static_x, static_t)
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        static_out = net(static_x, static_t)

    def forward(x, t):
        static_x.copy_(x)
        static_t.copy_(t)
        graph.replay()
        return static_out.clone()
    return forward


def ancestral_step(net, sched, x, t, clip):
    """x_t -> x_{t-1}: x̂₀ from ε̂, the posterior mean, fixedlarge noise."""
    eps = net(x, torch.full((x.shape[0],), float(t - 1), device=x.device))
    x0 = (x - sched.s[t - 1] * eps) / sched.a[t - 1]
    if clip:
        x0 = x0.clamp(-1.0, 1.0)
    mean = sched.coef1[t - 1] * x0 + sched.coef2[t - 1] * x
    if t == 1:
        return mean
    return mean + math.exp(0.5 * sched.large_log_var[t - 1]) * torch.randn_like(x)


class Trainer:
    def __init__(self, net, lr, warmup, ema_decay, clip=1.0):
        self.net, self.lr, self.warmup, self.decay, self.clip = net, lr, warmup, ema_decay, clip
        self.params = list(net.parameters())
        self.opt = torch.optim.Adam(self.params, lr=lr)
        self.ema = [p.detach().clone() for p in self.params]
        self.step = 0

    def train_step(self, loss_fn):
        self.step += 1
        for g in self.opt.param_groups:
            g["lr"] = self.lr * min(1.0, self.step / self.warmup)
        self.opt.zero_grad(set_to_none=True)
        loss = loss_fn()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.params, self.clip)
        self.opt.step()
        d = min(self.decay, (1 + self.step) / (10 + self.step))  # the EMA warm-up
        with torch.no_grad():
            for e, p in zip(self.ema, self.params):
                e.mul_(d).add_(p, alpha=1 - d)
        return loss.detach()


# ---------------------------------------------------------------------------
# The cases

def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def time_it(warmup, iters, device, body):
    ms = []
    for i in range(warmup + iters):
        start = time.perf_counter()
        body()
        sync(device)
        stop = time.perf_counter()
        if i >= warmup:
            ms.append(1e3 * (stop - start))
    return ms


def run_case(args):
    device = torch.device(args.device)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    sched = Schedule(device=device)
    defaults = {"unet_train": (20, 3), "unet_sample": (20, 3), "mlp_train": (300, 30),
                "mlp_sample": (5, 1)}
    if args.case not in defaults:
        sys.exit(f"baseline.py: unknown case {args.case!r}")
    iters = args.iters if args.iters > 0 else defaults[args.case][0]
    warmup = args.warmup if args.warmup >= 0 else defaults[args.case][1]
    if args.case.startswith("unet"):
        net = UNet().to(device)
    else:
        net = ScoreMLP().to(device)
    params = sum(p.numel() for p in net.parameters())
    chapter_batch = {"unet_train": 64, "unet_sample": 128, "mlp_train": 512, "mlp_sample": 2000}
    batch = args.batch if args.batch > 0 else chapter_batch[args.case]
    use_graphs = args.cuda_graphs and device.type == "cuda"

    if args.case == "unet_train":
        trainer = Trainer(net, 2e-4, 500, 0.999)
        x0 = torch.rand(batch, 1, 32, 32, device=device) * 2 - 1
        times = time_it(warmup, iters, device,
                        lambda: trainer.train_step(lambda: loss_eps(net, sched, x0)))
    elif args.case == "mlp_train":
        trainer = Trainer(net, 2e-3, 100, 0.995)
        x0 = torch.randn(batch, 2, device=device)
        times = time_it(warmup, iters, device,
                        lambda: trainer.train_step(lambda: loss_eps(net, sched, x0)))
    elif args.case == "unet_sample":
        net.eval()
        x = torch.randn(batch, 1, 32, 32, device=device)
        with torch.inference_mode():
            fwd = graphed(net, x) if use_graphs else net
            times = time_it(warmup, iters, device,
                            lambda: ancestral_step(fwd, sched, x, 500, clip=True))
    else:  # mlp_sample
        net.eval()

        def chain(fwd):
            x = torch.randn(batch, 2, device=device)
            for t in range(sched.T, 0, -1):
                x = ancestral_step(fwd, sched, x, t, clip=False)
            return x

        with torch.inference_mode():
            fwd = graphed(net, torch.zeros(batch, 2, device=device)) if use_graphs else net
            times = time_it(warmup, iters, device, lambda: chain(fwd))
    return {"impl": "python", "case": args.case, "torch": torch.__version__.split("+")[0],
            "device": args.device, "threads": torch.get_num_threads(), "params": params,
            "batch": batch, "cuda_graphs": args.cuda_graphs, "iters": iters, "times_ms": times, "median_ms": statistics.median_low(times)}


# ---------------------------------------------------------------------------
# --verify: the C++ networks, loaded here, give the C++ outputs.

def read_floats(path, shape=None):
    with open(path, "rb") as f:
        data = torch.frombuffer(bytearray(f.read()), dtype=torch.float32)
    return data.reshape(shape) if shape is not None else data


def verify(directory):
    failures = 0
    for name, net in (("unet", UNet()), ("mlp", ScoreMLP())):
        with open(os.path.join(directory, name + ".json")) as f:
            desc = json.load(f)
        ours = [(n, list(p.shape)) for n, p in net.named_parameters()]
        theirs = list(zip(desc["names"], desc["shapes"]))
        count = sum(p.numel() for p in net.parameters())
        if ours != theirs:
            failures += 1
            diff = [(a, b) for a, b in zip(ours, theirs) if a != b][:5]
            print(f"{name}: parameters differ from the C++ net ({len(ours)} here, "
                  f"{len(theirs)} there); first differences: {diff}")
            continue
        if count != desc["params"]:
            failures += 1
            print(f"{name}: {count} parameters here, {desc['params']} in C++")
            continue
        flat = read_floats(os.path.join(directory, name + "_weights.bin"))
        offset = 0
        with torch.no_grad():
            for p in net.parameters():
                p.copy_(flat[offset:offset + p.numel()].reshape(p.shape))
                offset += p.numel()
        net.eval()
        x = read_floats(os.path.join(directory, name + "_x.bin"), desc["x_shape"])
        t = read_floats(os.path.join(directory, name + "_t.bin"))
        expected = read_floats(os.path.join(directory, name + "_out.bin"), desc["x_shape"])
        with torch.no_grad():
            out = net(x, t)
        err = (out - expected).abs().max().item()
        scale = expected.abs().max().item()
        # float32 sums in a different order: ~1e-6 relative; a wrong layer is O(1).
        ok = err <= 1e-4 * max(scale, 1.0) and scale > 0
        print(f"{name}: {count} parameters, {len(ours)} tensors with the C++ names and shapes; "
              f"max |out - C++ out| = {err:.2e} (outputs up to {scale:.3g}): "
              f"{'same' if ok else 'DIFFERENT'}")
        failures += not ok
    return failures


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--case")
    p.add_argument("--batch", type=int, default=0)
    p.add_argument("--iters", type=int, default=0)
    p.add_argument("--warmup", type=int, default=-1)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="cpu")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cuda-graphs", action="store_true",
                   help="sampling cases: the network replayed from a CUDA graph")
    p.add_argument("--verify", metavar="DIR")
    args = p.parse_args()
    if args.verify:
        sys.exit(1 if verify(args.verify) else 0)
    if not args.case:
        p.error("say --case or --verify")
    print(json.dumps(run_case(args)), flush=True)


if __name__ == "__main__":
    main()
