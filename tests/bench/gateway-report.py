#!/usr/bin/env python3
"""Direct mode against gateway mode, from one `tests/bench/run --gateway`.

  tests/bench/gateway-report.py OUT_DIR PAGE|none WORKERS

Reads OUT_DIR/load.json (direct), OUT_DIR/gateway/load.json (the same
steps through Janus and the workers), OUT_DIR/gateway/failover.json and
OUT_DIR/gateway/failover-gaps.txt (one gap in ms per moved call, from the
front's log); writes OUT_DIR/gateway/gateway.md and, unless PAGE is none,
the part of PAGE between <!-- gateway:begin --> and <!-- gateway:end -->.
"""
import datetime
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from report import machine, replace_between  # noqa: E402

GOAL_V2V_DELTA_MS = 10
GOAL_WORKER_CPU_PCT = 1.2
GOAL_WORKER_THREADS = 6
GOAL_GAP_P95_MS = 100


def load(path):
    with open(path) as f:
        return json.load(f)


def get(step, group, key):
    v = step.get(group, {}).get(key) if group else step.get(key)
    return v


def num(v, fmt="{:.0f}"):
    return "–" if v is None else fmt.format(v)


def cpu(v):
    # Idle is subtracted: a process that does nearly nothing per call can
    # come out below zero by the machine's noise.
    if v is None:
        return "–"
    return "< 0.01 %" if v < 0.01 else f"{v:.2f} %"


def percentile(values, p):
    if not values:
        return None
    v = sorted(values)
    rank = p / 100 * (len(v) - 1)
    lo = int(rank)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (rank - lo) * (v[hi] - v[lo])


def side_by_side(direct, gateway):
    rows = ["| calls | v2v p50 direct / gateway (ms) | v2v p95 direct / gateway "
            "| server CPU / call, direct | worker CPU / call | Janus CPU / call "
            "| front CPU / call | threads / call: direct, worker, Janus |",
            "|---|---|---|---|---|---|---|---|"]
    by_calls = {s["calls"]: s for s in gateway["steps"]}
    for d in direct["steps"]:
        g = by_calls.get(d["calls"])
        if g is None:
            continue
        v2v = [s["voice_to_voice_ms"] for s in (d, g)]
        rows.append(
            f"| {d['calls']:.0f} "
            f"| {num(v2v[0].get('p50'))} / {num(v2v[1].get('p50'))} "
            f"| {num(v2v[0].get('p95'))} / {num(v2v[1].get('p95'))} "
            f"| {cpu(get(d, 'server', 'cpu_pct_per_call'))} "
            f"| {cpu(get(g, 'server', 'cpu_pct_per_call'))} "
            f"| {cpu(get(g, 'gateway', 'cpu_pct_per_call'))} "
            f"| {cpu(get(g, 'front', 'cpu_pct_per_call'))} "
            f"| {num(get(d, 'server', 'threads_per_call'), '{:.1f}')}, "
            f"{num(get(g, 'server', 'threads_per_call'), '{:.1f}')}, "
            f"{num(get(g, 'gateway', 'threads_per_call'), '{:.1f}')} |")
    return "\n".join(rows) + "\n"


def failover_text(failover, gaps):
    step = failover["steps"][0] if failover["steps"] else {}
    p50, p95 = percentile(gaps, 50), percentile(gaps, 95)
    return (
        f"Failover step: {step.get('calls', 0):.0f} callers, the first "
        f"worker killed with SIGKILL mid-call. Calls moved: {len(gaps)}; gap "
        f"from the worker's death to the new worker receiving the caller's "
        f"audio p50 {num(p50, '{:.1f}')} ms, p95 {num(p95, '{:.1f}')} ms, max "
        f"{num(max(gaps) if gaps else None, '{:.1f}')} ms (goal p95 ≤ "
        f"{GOAL_GAP_P95_MS} ms). Calls the callers lost: "
        f"{step.get('calls_dropped', 0):.0f} dropped, "
        f"{step.get('calls_failed', 0):.0f} failed; turns without an answer: "
        f"{step.get('turns_failed', 0):.0f} of {step.get('turns', 0):.0f}; "
        f"voice-to-voice p50 over the step "
        f"{num(step.get('voice_to_voice_ms', {}).get('p50'))} ms.\n", p95)


def verdicts(direct, gateway, gap_p95):
    out = []
    by_calls = {s["calls"]: s for s in gateway["steps"]}
    for d in direct["steps"]:
        g = by_calls.get(d["calls"])
        if g is None:
            continue
        dv, gv = d["voice_to_voice_ms"].get("p50"), g["voice_to_voice_ms"].get("p50")
        cpu_pct = get(g, "server", "cpu_pct_per_call")
        thr = get(g, "server", "threads_per_call")
        if dv is not None and gv is not None:
            ok = gv - dv <= GOAL_V2V_DELTA_MS
            out.append(f"{d['calls']:.0f} calls: voice-to-voice p50 {gv - dv:+.0f} ms "
                       f"against direct ({'met' if ok else 'NOT met'}: ≤ "
                       f"{GOAL_V2V_DELTA_MS} ms)")
        if cpu_pct is not None:
            ok = cpu_pct <= GOAL_WORKER_CPU_PCT
            out.append(f"{d['calls']:.0f} calls: worker {cpu_pct:.2f} % of a core per call "
                       f"({'met' if ok else 'NOT met'}: ≤ {GOAL_WORKER_CPU_PCT} %)")
        if thr is not None:
            ok = thr <= GOAL_WORKER_THREADS
            out.append(f"{d['calls']:.0f} calls: worker {thr:.1f} threads per call "
                       f"({'met' if ok else 'NOT met'}: ≤ {GOAL_WORKER_THREADS})")
    if gap_p95 is not None:
        out.append(f"failover gap p95 {gap_p95:.1f} ms "
                   f"({'met' if gap_p95 <= GOAL_GAP_P95_MS else 'NOT met'}: ≤ "
                   f"{GOAL_GAP_P95_MS} ms)")
    return "".join(f"- {v}\n" for v in out)


def main():
    out, page_path, workers = sys.argv[1], sys.argv[2], int(sys.argv[3])
    gw = os.path.join(out, "gateway")
    direct = load(os.path.join(out, "load.json"))
    gateway = load(os.path.join(gw, "load.json"))
    failover = load(os.path.join(gw, "failover.json"))
    with open(os.path.join(gw, "failover-gaps.txt")) as f:
        gaps = [float(x) for x in f.read().split()]
    fo, gap_p95 = failover_text(failover, gaps)
    rel = os.path.relpath(gw, "docs")
    text = (f"Latest run: {datetime.date.today().isoformat()} on {machine()}, "
            f"`tests/bench/run --gateway`: the same callers and steps in direct "
            f"mode, then through Janus (janus.plugin.voiceagent, "
            f"`event_loops = 2`), a front and {workers} workers. CPU is % of one core; per call = (step − idle) / calls.\n\n"
            f"{side_by_side(direct, gateway)}\n{fo}\nGoals:\n\n"
            f"{verdicts(direct, gateway, gap_p95)}\n"
            f"Raw numbers: [{rel}/load.json]({rel}/load.json), "
            f"[{rel}/failover.json]({rel}/failover.json).\n")
    with open(os.path.join(gw, "gateway.md"), "w") as f:
        f.write(text)
    print(text)
    if page_path == "none":
        return
    with open(page_path) as f:
        page = f.read()
    with open(page_path, "w") as f:
        f.write(replace_between(page, "gateway", text))
    print(f"updated {page_path}")


if __name__ == "__main__":
    main()
