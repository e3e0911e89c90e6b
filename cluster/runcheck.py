#!/usr/bin/env python3
"""Verdicts on a run from what it wrote for machines, never from its log wording: the run
folder's events.jsonl (GAN/RunEvents.swift: started, formed, lost, ended) and the coordinator's
--json step lines. cluster/fault-matrix.sh and docker/test.sh keep the namespaces, links and
containers and ask this script what a run did; cluster/test_runcheck.py tests it (pytest).

  runcheck.py formations RUN            "COUNT WORKERS STEP FROM" of the last formation (FROM "-")
  runcheck.py lost-steps COORD_JSON     steps trained again after re-formations
  runcheck.py step-time COORD_JSON BATCH  seconds per step of the last formation
  runcheck.py expect RUN [--formations N] [--min-formations N] [--last-workers N] [--resumed]
                         [--ending completed|time-limit|stop-request|failed] [--step N]
                         exit 0 with a sentence of what the run did, or 1 naming what differs
"""
import argparse
import json
import os
import sys

ENDINGS = ("completed", "time-limit", "stop-request", "failed")


class RunError(Exception):
    """A run folder or output that cannot be read as what it should be (names the file)."""


def events(run):
    """The run's events, in order ([] when it has no event log)."""
    path = os.path.join(run, "events.jsonl")
    if not os.path.exists(path):
        return []
    out = []
    with open(path, encoding="utf-8") as f:
        for i, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                e = json.loads(line)
            except ValueError as err:
                raise RunError(f"{path}: line {i} is not JSON ({err})") from err
            if not isinstance(e, dict) or "event" not in e or "step" not in e:
                raise RunError(f"{path}: line {i} is not a run event: {line.strip()[:80]}")
            out.append(e)
    return out


def formations(evs):
    """The `formed` events (or, for a single process, `started`)."""
    return [e for e in evs if e["event"] in ("formed", "started")]


def step_lines(path):
    """The step numbers of a coordinator's --json output, in order (other lines skipped)."""
    steps = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            line = line.strip()
            if not line.startswith("{"):
                continue
            try:
                obj = json.loads(line)
            except ValueError:
                continue
            if isinstance(obj, dict) and isinstance(obj.get("step"), int):
                steps.append(obj)
    return steps


def lost_steps(steps):
    """Steps trained again: each drop of the step number (a re-formation from a checkpoint)
    loses the steps from the new first step back to the highest one before it."""
    lost, prev = 0, None
    for s in steps:
        if prev is not None and s <= prev:
            lost += prev - s + 1
        prev = s
    return lost


def step_seconds(lines, batch):
    """Seconds per step of the last --json line's images/s over the global batch, or None."""
    for obj in reversed(lines):
        ips = obj.get("images_per_sec")
        if isinstance(ips, (int, float)) and ips > 0:
            return batch / ips
    return None


def judge(evs, formations_eq=None, formations_min=None, last_workers=None, resumed=False, ending=None, step=None):
    """(ok, sentence): whether the events show the run expected, and what they show."""
    forms = formations(evs)
    ended = [e for e in evs if e["event"] == "ended"]
    last = forms[-1] if forms else None
    said = (f"{len(forms)} formation(s)"
            + (f", the last with {last.get('workers', 1)} worker(s) from step {last['step']}"
               + (f" ({last['from']})" if last.get("from") else "") if last else "")
            + (f"; lost ranks {[r for e in evs if e['event'] == 'lost' for r in e.get('ranks', [])]}"
               if any(e["event"] == "lost" for e in evs) else "")
            + (f"; ended at step {ended[-1]['step']}: {ended[-1].get('ending')}" if ended else "; no end recorded"))
    wrong = []
    if formations_eq is not None and len(forms) != formations_eq:
        wrong.append(f"expected {formations_eq} formation(s)")
    if formations_min is not None and len(forms) < formations_min:
        wrong.append(f"expected at least {formations_min} formation(s)")
    if last_workers is not None and (last is None or last.get("workers", 1) != last_workers):
        wrong.append(f"expected the last formation to have {last_workers} worker(s)")
    if resumed and (last is None or not last.get("from")):
        wrong.append("expected the last formation to resume from a checkpoint")
    if ending is not None and (not ended or ended[-1].get("ending") != ending):
        wrong.append(f"expected the run to end '{ending}'")
    if step is not None and (not ended or ended[-1]["step"] != step):
        wrong.append(f"expected the run to end at step {step}")
    return (not wrong, said if not wrong else "; ".join(wrong) + ": " + said)


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("formations"); f.add_argument("run")
    l = sub.add_parser("lost-steps"); l.add_argument("coord_json")
    t = sub.add_parser("step-time"); t.add_argument("coord_json"); t.add_argument("batch", type=int)
    e = sub.add_parser("expect"); e.add_argument("run")
    e.add_argument("--formations", type=int); e.add_argument("--min-formations", type=int)
    e.add_argument("--last-workers", type=int); e.add_argument("--resumed", action="store_true")
    e.add_argument("--ending", choices=ENDINGS); e.add_argument("--step", type=int)
    a = p.parse_args(argv)
    try:
        if a.cmd == "formations":
            forms = formations(events(a.run))
            last = forms[-1] if forms else {"workers": 0, "step": 0}
            print(len(forms), last.get("workers", 1), last["step"], last.get("from") or "-")
        elif a.cmd == "lost-steps":
            print(lost_steps([s["step"] for s in step_lines(a.coord_json)]))
        elif a.cmd == "step-time":
            s = step_seconds(step_lines(a.coord_json), a.batch)
            print("" if s is None else f"{s:.3f}")
        else:
            ok, said = judge(events(a.run), a.formations, a.min_formations, a.last_workers, a.resumed, a.ending, a.step)
            print(said)
            return 0 if ok else 1
    except (OSError, RunError) as err:
        print(f"runcheck: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
