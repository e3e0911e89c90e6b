#!/usr/bin/env python3
"""Judges and summarises a soak (cluster/soak.sh): per process RSS, descriptors and threads over
the run, the run's exit and steps, the replica checks and the checkpoint rotation. Prints a table;
--report FILE also writes it as markdown. Exit 0 when every check passes, 1 otherwise.

    soak-report.py --samples TSV --steps-json FILE --coordinator-log FILE --run-dir DIR --exit RC ...
    soak-report.py --self-test     (the judge on made-up series: flat ones pass, leaking ones fail)
"""
import argparse, glob, json, os, re, statistics, sys


def quarters(xs):
    """The samples split in four by position (time order); each part non-empty."""
    n = len(xs)
    return [xs[(i * n) // 4:((i + 1) * n) // 4] for i in range(4)]


def judge(rss_kb, fds, rss_pct, rss_mb):
    """(rss_ok, fd_ok, details) for one process's samples in time order (at least 8)."""
    q = quarters(rss_kb)
    r2, r4 = statistics.median(q[1]), statistics.median(q[3])
    bound = r2 * (1 + rss_pct / 100) + rss_mb * 1024
    f = quarters(fds)
    f2m, f4m = statistics.median(f[1]), statistics.median(f[3])
    f2x, f4x = max(f[1]), max(f[3])
    fd_ok = f4m <= f2m and f4x <= f2x + 2
    return r4 <= bound, fd_ok, dict(rss_q2=r2, rss_q4=r4, rss_bound=bound, fd_q2_median=f2m, fd_q4_median=f4m,
                                   fd_q2_max=f2x, fd_q4_max=f4x)


def self_test():
    import random
    rnd = random.Random(1)
    n = 200
    flat = [100_000 + rnd.randint(-500, 500) for _ in range(n)]
    warm = [60_000 + 40_000 * min(1, i / 30) + rnd.randint(-300, 300) for i in range(n)]   # grows, then flat
    slow = [100_000 + 60 * i for i in range(n)]      # +12 MiB over the run: Q4 - Q2 = 6 MiB, under 5% + 4 MiB
    leak = [100_000 + 150 * i for i in range(n)]     # +30 MiB over the run: Q4 - Q2 = 15 MiB
    fd_flat = [20] * n
    fd_blip = [20 + (1 if i % 37 == 0 else 0) for i in range(n)]                          # a file open now and then
    fd_leak = [20 + i // 20 for i in range(n)]                                             # one more every 20 samples
    cases = [("flat", flat, fd_flat, True, True), ("warm-up then flat", warm, fd_blip, True, True),
             ("slow growth under the bound", slow, fd_flat, True, True), ("RSS leak", leak, fd_flat, False, True), ("fd leak", flat, fd_leak, True, False)]
    bad = 0
    for what, r, f, want_r, want_f in cases:
        got_r, got_f, _ = judge(r, f, 5, 4)
        ok = (got_r, got_f) == (want_r, want_f)
        bad += not ok
        print(f"soak-report self-test: {what}: rss {'flat' if got_r else 'grows'}, fds {'flat' if got_f else 'grow'}"
              f" -> {'ok' if ok else 'WRONG'}")
    return 1 if bad else 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--self-test", action="store_true")
    for a in ("samples", "steps-json", "coordinator-log", "run-dir", "title", "command", "report"):
        ap.add_argument("--" + a)
    for a in ("exit", "steps", "workers", "checksum-every", "checkpoint-every", "keep"):
        ap.add_argument("--" + a, type=int)
    for a in ("wall", "rss-pct", "rss-mb"):
        ap.add_argument("--" + a, type=float)
    o = ap.parse_args()
    if o.self_test:
        return self_test()

    rows = {}
    ck_max = 0
    with open(o.samples) as fh:
        next(fh)
        for line in fh:
            t, step, proc, rss, fds, thr, ck = line.rstrip("\n").split("\t")
            ck_max = max(ck_max, int(ck))
            # Judged: the samples taken while training, after the first step is shown and before
            # the last (start-up and the shutdown after the run are not the steady state).
            if 0 < int(step) < o.steps:
                rows.setdefault(proc, []).append((float(t), int(step), int(rss), int(fds), int(thr or 0)))
    checks = []   # (name, ok, detail)

    # The run: exit, steps.
    last_step, lines = 0, 0
    with open(o.steps_json) as fh:
        for line in fh:
            if line.startswith("{"):
                lines += 1
                last_step = json.loads(line)["step"]
    log = open(o.coordinator_log, errors="replace").read()
    checks.append(("run exit status 0", o.exit == 0, f"exit {o.exit}"))
    checks.append((f"all {o.steps} steps done", last_step == o.steps, f"last step shown {last_step} ({lines} step lines)"))

    # Replica checks: the steps on which every rank sends a checksum (Worker: s % K == 0 or the last).
    compared = sum(1 for s in range(1, last_step + 1) if s % o.checksum_every == 0 or s == o.steps)
    diverged = "replicas diverged" in log
    checks.append(("replica checksums equal", not diverged and o.exit == 0,
                   f"{compared} checksum sets compared (every {o.checksum_every} steps and the last, of {last_step} done);"
                   f" {'a mismatch was reported' if diverged else 'no mismatch reported'}"))

    # Rotation.
    written = sorted(set(list(range(o.checkpoint_every, o.steps + 1, o.checkpoint_every)) + [o.steps]))
    want = [f"step_{s:08d}.rgan" for s in written[-o.keep:]]
    ckdir = os.path.join(o.run_dir, "checkpoints")
    have = sorted(os.path.basename(p) for p in glob.glob(os.path.join(ckdir, "step_*.rgan")))
    leftovers = sorted(os.path.basename(p) for p in glob.glob(os.path.join(ckdir, ".*")))
    # A new checkpoint is written before the oldest is removed (so K complete ones always remain):
    # a sample may fall between the two and see K + 1.
    checks.append((f"checkpoints rotated (--keep {o.keep})", have == want and ck_max <= o.keep + 1 and not leftovers,
                   f"{len(written)} written, at most {ck_max} on disk at any sample, left: {', '.join(have) or 'none'}"
                   + (f"; temporaries left: {leftovers}" if leftovers else "")
                   + ("" if have == want else f"; expected {', '.join(want)}")))

    # Flatness, per process.
    table = []
    for proc, xs in rows.items():
        rss = [x[2] for x in xs]; fds = [x[3] for x in xs]; thr = [x[4] for x in xs]
        if len(xs) < 8:
            checks.append((f"{proc}: enough samples", False, f"{len(xs)} samples (need 8)"))
            continue
        rss_ok, fd_ok, d = judge(rss, fds, o.rss_pct, o.rss_mb)
        mid = xs[len(xs) // 2]
        table.append((proc, len(xs), xs[0][2], mid[2], xs[-1][2], max(rss), d, fds[0], min(fds[len(fds) // 4:]),
                      max(fds[len(fds) // 4:]), fds[-1], thr[0], max(thr), thr[-1], rss_ok, fd_ok))
        checks.append((f"{proc}: RSS flat", rss_ok,
                       f"last-quarter median {d['rss_q4'] / 1024:.1f} MiB vs second-quarter {d['rss_q2'] / 1024:.1f} MiB"
                       f" (bound {d['rss_bound'] / 1024:.1f} MiB)"))
        checks.append((f"{proc}: fds flat", fd_ok,
                       f"after warm-up {min(fds[len(fds) // 4:])}..{max(fds[len(fds) // 4:])}; medians Q2 {d['fd_q2_median']:g}, Q4 {d['fd_q4_median']:g}"))

    wall = o.wall or 0
    ok = all(c[1] for c in checks)
    mb = lambda kb: f"{kb / 1024:.1f}"
    head = ["process", "samples", "RSS start MiB", "RSS mid MiB", "RSS end MiB", "RSS max MiB", "RSS Q2 median", "RSS Q4 median",
            "fds start", "fds after warm-up (min..max)", "fds end", "threads start/max/end", "flat"]
    body = [[p, str(n), mb(a), mb(m), mb(e), mb(x), mb(d["rss_q2"]), mb(d["rss_q4"]), str(f0), f"{fmin}..{fmax}", str(fe),
             f"{t0}/{tx}/{te}", ("yes" if rok and fok else "NO")]
            for (p, n, a, m, e, x, d, f0, fmin, fmax, fe, t0, tx, te, rok, fok) in table]

    title = f"Soak: {o.title}"
    cx = rows.get("coordinator", [])
    every = (cx[-1][0] - cx[0][0]) / (len(cx) - 1) if len(cx) > 1 else 0
    summary = (f"wall {wall:.0f} s ({wall / 60:.1f} min), {last_step} steps ({last_step / wall if wall else 0:.1f} steps/s"
               f" including start-up), {len(cx)} samples per process, one every {every:.1f} s")
    widths = [max(len(r[i]) for r in [head] + body) for i in range(len(head))]
    print(f"soak: {title}")
    print(f"soak: {summary}")
    for r in [head] + body:
        print("  " + "  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))))
    for name, good, detail in checks:
        print(f"  [{'ok' if good else 'FAIL'}] {name}: {detail}")
    print(f"soak: {'PASSED' if ok else 'FAILED'}")

    if o.report:
        md = [f"### {title}", "", f"`{o.command}`", "", summary + ".", "",
              "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        md += ["| " + " | ".join(r) + " |" for r in body]
        md += ["", "| check | result | detail |", "|---|---|---|"]
        md += [f"| {n} | {'ok' if g else 'FAIL'} | {d} |" for n, g, d in checks]
        md += ["", f"Verdict: {'PASSED' if ok else 'FAILED'}.", ""]
        with open(o.report, "w") as fh:
            fh.write("\n".join(md))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
