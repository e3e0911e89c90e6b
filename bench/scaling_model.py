#!/usr/bin/env python3
"""A performance model of RingGAN's data-parallel step, from measured inputs, validated against
the emulated cluster (bench/emucluster.py) and extrapolated to 256 workers. Writes
docs/SCALING.md.

  python3 bench/scaling_model.py [--fit bench/emucluster-dcgan32-weak-1gbit.json]
                                 [--check bench/emucluster-farlinks-new.json ...] [--out docs/SCALING.md]

The step of one worker, weak scaling (b images per worker), N workers:

  T(N) = C + S(N) + phi * G(N)

  C     compute of one step (the N = 1 step on the same CPU budget: measured);
  G(N)  the gradient all-reduces' time on the ring's collective thread:
          G(N) = bytes(N) / rate + k * 2 (N - 1) * alpha
        bytes(N) = g * 2 (N - 1) / N: g, the gradient bytes a worker sends per step at N = 2
        (after the codec; measured), and the ring's bandwidth term (Patarasuk & Yuan 2009);
        k gradient all-reduces per step (2: D's and G's), each 2 (N - 1) hops of latency alpha;
  S(N)  the statistics all-reduces (SyncBatchNorm: n per step, latency-bound):
          S(N) = n * (a + hops(N) * alpha),  hops = N - 1 round the ring, ceil(log2 N) with far links;
        a is what one costs besides its hops (waiting for the slowest rank to reach it);
  phi   the part of G the training thread waits for (the rest is hidden behind compute by the
        overlapped real-image pass and the gradient buckets).

alpha, the latency of one hop: half the TCP round trip plus, on the rig, the wait for a
throttled peer's next slice of CPU (about half the time it is throttled in a period:
period x (1 - core) / 2). a and phi are fitted on the N = 2 run only; every other N is a
prediction. E(N) = C / T(N) (weak scaling: throughput(N) / (N throughput(1))).
"""
import argparse
import datetime
import json
import math
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def hops(n, far):
    if n <= 1:
        return 0
    return math.ceil(math.log2(n)) if far and n > 2 else n - 1


class Model:
    def __init__(self, C, g_bytes, rate_bps, alpha, a, phi, n_stats=18, k_grad=2):
        self.C, self.g, self.rate, self.alpha, self.a, self.phi = C, g_bytes, rate_bps, alpha, a, phi
        self.n_stats, self.k = n_stats, k_grad

    def grad(self, n):
        if n <= 1:
            return 0.0
        return self.g * 2 * (n - 1) / n / (self.rate / 8) + self.k * 2 * (n - 1) * self.alpha

    def stats(self, n, far):
        return 0.0 if n <= 1 else self.n_stats * (self.a + hops(n, far) * self.alpha)

    def step(self, n, far):
        return self.C + self.stats(n, far) + self.phi * self.grad(n)

    def efficiency(self, n, far):
        return self.C / self.step(n, far)


def ringgan_rows(path):
    d = json.load(open(path))
    rows = {r["workers"]: r for r in d["rows"] if r["side"].startswith("RingGAN")}
    return d, rows


def fit(path, rtt_s):
    d, rows = ringgan_rows(path)
    r1, r2 = rows[1], rows[2]
    core, period = r1["core"], r1["period_us"] * 1e-6
    alpha = rtt_s / 2 + period * (1 - core) / 2
    C = r1["step_s"]
    g = r2["tx_mb_per_worker_step"] * 1e6
    m = Model(C, g, r2["rate_bps"], alpha, 0.0, 0.0)
    n_stats = r2.get("statistics_allreduces_per_step", 18)
    m.n_stats = n_stats
    per_stat = r2["statistics_allreduce_ms"] * 1e-3 / n_stats
    m.a = per_stat - hops(2, False) * alpha
    grad_model = m.grad(2)
    m.phi = max(0.0, (r2["blocked_ms"] - r2["statistics_allreduce_ms"]) * 1e-3 / grad_model)
    return d, rows, m


def validation(rows, m, far, label):
    out = []
    for n in sorted(rows):
        r = rows[n]
        pred = m.step(n, far)
        meas = r["step_s"]
        line = {"n": n, "label": label, "meas": meas, "pred": pred, "err": pred / meas - 1,
                "E_meas": rows[1]["step_s"] / meas if 1 in rows else float("nan"), "E_pred": m.efficiency(n, far)}
        if "statistics_allreduce_ms" in r:
            line["stats_meas"] = r["statistics_allreduce_ms"] * 1e-3
            line["stats_pred"] = m.stats(n, far)
            line["grad_meas"] = r["gradient_allreduce_ms"] * 1e-3
            line["grad_pred"] = m.grad(n)
        out.append(line)
    return out


def extrapolate(C_1core, g_bytes, n_stats, alpha, a, phi, rates, ns, far):
    table = []
    for rate in rates:
        m = Model(C_1core, g_bytes, rate, alpha, a, phi, n_stats)
        table.append((rate, [(n, m.step(n, far), m.efficiency(n, far)) for n in ns]))
    return table


def fmt_ms(s):
    return f"{s * 1000:.0f}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--fit", default=os.path.join(ROOT, "bench", "emucluster-dcgan32-weak-1gbit.json"),
                    help="emulated-cluster JSON of the build the model is fitted on (statistics round the ring)")
    ap.add_argument("--check", nargs="*", default=[],
                    help="emulated-cluster JSONs of builds with far links (statistics in log2 hops), predicted, not fitted")
    ap.add_argument("--rtt-ms", type=float, default=2.4, help="TCP round trip between two workers on the rig (the ring's TCP_INFO)")
    ap.add_argument("--out", default=os.path.join(ROOT, "docs", "SCALING.md"))
    a = ap.parse_args()

    d, rows, m = fit(a.fit, a.rtt_ms * 1e-3)
    lines = validation(rows, m, False, "fit build (ring gather)")
    checks = []
    for path in a.check:
        _, crow = ringgan_rows(path)
        checks += validation(crow, m, True, os.path.basename(path) + " (far links)")

    # Extrapolation: 1-core machines unthrottled. C from the rig's 1-core, 100 ms period run
    # (bench/RESULTS.md, "the cgroup period's cost": 382 ms for dcgan 32 at 64 images); alpha
    # without throttling: half the rig's round trip is an upper bound for a LAN hop, so a
    # range is given (25 us, a switched 10/25 GbE hop; and the rig's 1.2 ms).
    C1 = 0.382
    rates = [1e9, 10e9, 25e9]
    ns = [2, 4, 8, 16, 32, 64, 128, 256]
    ext = {}
    for alpha in (25e-6, a.rtt_ms * 1e-3 / 2):
        # a scales with the compute slice a rank waits for: on unthrottled machines, only the skew
        # between ranks; taken as 2 alpha.
        for far in (False, True):
            ext[(alpha, far)] = extrapolate(C1, m.g, m.n_stats, alpha, 2 * alpha, m.phi, rates, ns, far)

    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    o = []
    o.append("# Scaling: a model of the data-parallel step, checked against the emulated cluster\n")
    o.append(f"Generated by `python3 bench/scaling_model.py` ({now}); the measurements come from `bench/emucluster.py`"
             " (each worker a namespace with a tbf-shaped link and a cgroup CPU budget; `bench/RESULTS.md` has the runs)."
             " dcgan 32 (the tutorial's widths), weak scaling, 64 images per worker, lossless codec (shuffle-zstd).\n")
    o.append("## The model\n")
    o.append("```\nT(N) = C + S(N) + phi * G(N)\n"
             "G(N) = g * 2(N-1)/N / rate + k * 2(N-1) * alpha          (ring all-reduce: bandwidth and latency terms)\n"
             "S(N) = n * (a + hops(N) * alpha),  hops = N-1 round the ring, ceil(log2 N) over far links\n"
             "E(N) = C / T(N)                                            (weak scaling)\n```\n")
    o.append(f"Inputs, from `{os.path.relpath(a.fit, ROOT)}` ({d['date'] if 'date' in d else ''}, {d.get('cpu', '')}):\n")
    o.append(f"- C = {fmt_ms(m.C)} ms: the one-worker step at {rows[1]['core']} core (measured);")
    o.append(f"- g = {m.g / 1e6:.2f} MB: gradient bytes a worker sends per step at N = 2, after the codec (measured); k = {m.k} gradient all-reduces per step;")
    o.append(f"- rate = {m.rate / 1e6:.0f} Mbit/s: the tbf rate (the rig's {rows[1]['link_equiv']} equivalent at {rows[1]['core']} core);")
    o.append(f"- alpha = {m.alpha * 1000:.2f} ms per hop: half the {a.rtt_ms} ms TCP round trip plus half the throttled part of a "
             f"{rows[1]['period_us'] / 1000:.0f} ms CPU period (a hop waits for its peer's next slice);")
    o.append(f"- n = {m.n_stats:.0f} statistics all-reduces per step (SyncBatchNorm, forward and backward);")
    o.append(f"- fitted on N = 2 only: a = {m.a * 1000:.1f} ms per statistics all-reduce besides its hops (the wait for the slowest rank"
             f" to reach it), phi = {m.phi:.2f} (the part of the gradient time the training thread waits for; the rest is hidden).\n")
    o.append("## Validated: model against the rig\n")
    o.append("Every row but N = 1 and N = 2 of the fit build is a prediction; the far-link rows are predictions of a build the model"
             " never saw (only `hops` changes).\n")
    o.append("| build | N | step ms measured | step ms model | error | E(N) measured | E(N) model | statistics ms meas. / model | gradient ms meas. / model |")
    o.append("|---|---|---|---|---|---|---|---|---|")
    worst = 0.0
    for ln in lines + checks:
        st = f"{fmt_ms(ln['stats_meas'])} / {fmt_ms(ln['stats_pred'])}" if "stats_meas" in ln else "-"
        gr = f"{fmt_ms(ln['grad_meas'])} / {fmt_ms(ln['grad_pred'])}" if "grad_meas" in ln else "-"
        o.append(f"| {ln['label']} | {ln['n']} | {fmt_ms(ln['meas'])} | {fmt_ms(ln['pred'])} | {ln['err'] * 100:+.1f}% |"
                 f" {ln['E_meas']:.2f} | {ln['E_pred']:.2f} | {st} | {gr} |")
        worst = max(worst, abs(ln["err"]))
    if not checks:
        o.append("\nPredicted for the build with far links (statistics in ceil(log2 N) hops), before it was measured:\n")
        o.append("| N | step ms model | E(N) model | statistics ms model |")
        o.append("|---|---|---|---|")
        for n in sorted(rows):
            o.append(f"| {n} | {fmt_ms(m.step(n, True))} | {m.efficiency(n, True):.2f} | {fmt_ms(m.stats(n, True))} |")
    o.append(f"\nLargest step-time error: {worst * 100:.1f}% (target: within 15%). The step is mostly compute here"
             " (C is 2.3 s at 0.2 core), so the overhead columns are the sharper test: the statistics and gradient"
             " times measured on the collective thread against the model's terms.\n")
    o.append("## Extrapolated: 1-core machines, N up to 256\n")
    o.append("C = 382 ms (dcgan 32, 64 images, one unthrottled core: `bench/RESULTS.md`, the cgroup period's cost), the same g,"
             " phi and n. The hop latency of a real network is not measured here: two values bound it, 25 us (a switched"
             " 10/25 GbE hop) and the rig's 1.2 ms (half its round trip); a = 2 alpha (no throttled peer to wait for, only"
             " skew). E(N) per link rate:\n")
    for (alpha, far), table in ext.items():
        o.append(f"\n**alpha = {alpha * 1e6:.0f} us, statistics {'over far links (log2 hops)' if far else 'round the ring (N - 1 hops)'}**\n")
        o.append("| link | " + " | ".join(f"N={n}" for n in ns) + " |")
        o.append("|---|" + "---|" * len(ns))
        for rate, vals in table:
            o.append(f"| {rate / 1e9:.0f} Gbit/s | " + " | ".join(f"{e:.2f}" for _, _, e in vals) + " |")
    o.append("\n## Reading it\n")
    o.append("- At 1 Gbit/s the bandwidth term dominates: g x 2(N-1)/N approaches 2g, so E(N) levels off near"
             " C / (C + phi x 2g / rate) whatever N; only a better codec (smaller g) or more hidden wire (smaller phi) moves it.")
    o.append("- The latency terms grow with N: 2k(N-1) hops for the gradient ring, n x (N-1) for the statistics round the ring."
             " With a LAN hop of 25 us the ring's hops stay small up to 256 workers; with a slow hop (the rig's 1.2 ms)"
             " the statistics round the ring dominate from a few dozen workers, and far links (log2 N hops) are what keeps"
             " E(N) up. Hierarchical reduction, a latency-optimal algorithm for the gradients' small buckets and"
             " `--codec auto` are not in the model (not built yet).")
    o.append("- Anchors: Horovod reports 88-90% on 128-512 GPUs over 25 Gbit/s for ResNet-101 and Inception V3 (68% for VGG-16);"
             " Zhang et al. 2020: 2-5x compression suffices for near-linear scaling at 10 Gbit/s.")
    open(a.out, "w").write("\n".join(o) + "\n")
    print("\n".join(o))


if __name__ == "__main__":
    main()
