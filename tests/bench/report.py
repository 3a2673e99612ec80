#!/usr/bin/env python3
"""Plots and the benchmark page from voiceagent-loadgen's results.

  tests/bench/report.py OUT_DIR PAGE|none

Reads OUT_DIR/load.json (and OUT_DIR/load.md, OUT_DIR/micro.md), writes
OUT_DIR/latency.svg and OUT_DIR/cost.svg with gnuplot, and rewrites the
parts of PAGE between the <!-- load:begin/end --> and <!-- micro:begin/end -->
markers.
"""
import datetime
import json
import os
import re
import subprocess
import sys


def dist(step, name, q):
    v = step.get(name, {}).get(q)
    return "NaN" if v is None else f"{v:.2f}"


def write_data(out, steps):
    with open(os.path.join(out, "load.dat"), "w") as f:
        f.write("# calls v2v_p50 v2v_p95 over_p50 over_p95 barge_p50 barge_p95 "
                "cpu_per_call total_cpu rss_per_call threads_per_call loadgen_cpu\n")
        for s in steps:
            srv = s.get("server", {})
            cols = [f"{s['calls']:.0f}"]
            for name in ("voice_to_voice_ms", "overhead_ms", "barge_in_ms"):
                cols += [dist(s, name, "p50"), dist(s, name, "p95")]
            for key in ("cpu_pct_per_call", "cpu_pct", "rss_mb_per_call", "threads_per_call"):
                v = srv.get(key)
                cols.append("NaN" if v is None else f"{v:.3f}")
            cols.append(f"{s.get('loadgen_cpu_pct') or 0:.1f}")
            f.write(" ".join(cols) + "\n")


GNUPLOT = r"""
set terminal svg size 720,420 dynamic font "sans,12"
set datafile missing "NaN"
set key top left
set grid
set logscale x
set xrange [0.8:{xmax}]
set yrange [0:*]
set xlabel "concurrent calls"
set xtics (1, 10, 25, 50, 100, 200)
set output "{out}/latency.svg"
set title "Latency measured by the callers (p50 solid, p95 dashed)"
set logscale y
set yrange [20:*]
set ylabel "milliseconds"
plot "{out}/load.dat" using 1:4 with linespoints lw 2 lc 1 title "pipeline overhead p50", \
     "" using 1:5 with linespoints lw 2 lc 1 dt 2 title "pipeline overhead p95", \
     "" using 1:6 with linespoints lw 2 lc 2 title "barge-in p50", \
     "" using 1:7 with linespoints lw 2 lc 2 dt 2 title "barge-in p95", \
     {overhead_target} with lines lc 1 dt 3 title "overhead target (p95, 50 calls)", \
     {barge_target} with lines lc 2 dt 3 title "barge-in target (p95)"
set output "{out}/cost.svg"
unset logscale y
set yrange [0:*]
set title "Server CPU per call (% of one core) and in all"
set ylabel "% of one core per call"
set y2label "% of one core, whole server"
set y2tics
set ytics nomirror
plot "{out}/load.dat" using 1:8 with linespoints lw 2 lc 1 title "server CPU per call", \
     "" using 1:9 axes x1y2 with linespoints lw 2 lc 3 title "server CPU in all (right axis)", \
     1.6 with lines lc 1 dt 3 title "target per call"
"""


def plot(out, data):
    t = data["targets"]
    xmax = max([s["calls"] for s in data["steps"]] + [1]) * 1.25
    script = GNUPLOT.format(out=out, xmax=xmax, overhead_target=t["max_overhead_p95_ms"],
                            barge_target=t["barge_in_p95_ms"])
    subprocess.run(["gnuplot"], input=script, text=True, check=True)


def replace_between(page, marker, text):
    pattern = re.compile(r"(<!-- %s:begin -->\n).*?(<!-- %s:end -->)" % (marker, marker), re.S)
    if not pattern.search(page):
        sys.exit(f"report.py: the page has no <!-- {marker}:begin/end --> markers")
    return pattern.sub(lambda m: m.group(1) + text + m.group(2), page)


def machine():
    model = "unknown CPU"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return f"{os.cpu_count()} cores ({model})"


def load_section(out, data):
    rel = os.path.relpath(out, "docs")
    with open(os.path.join(out, "load.md")) as f:
        table = f.read()
    t = data["targets"]
    return (f"Latest run: {datetime.date.today().isoformat()} on {machine()}, "
            f"`tests/bench/run`. Overhead = voice-to-voice − ({t['eot_silence_ms']} ms "
            f"end-of-turn silence + {t['service_ms']} ms of emulated service latency). "
            f"Last step that held every target: **{data['last_held']} calls**.\n\n"
            f"{table}\n"
            f"![latency]({rel}/latency.svg)\n\n![cost]({rel}/cost.svg)\n\n"
            f"Raw numbers: [{rel}/load.json]({rel}/load.json).\n")


def main():
    out, page_path = sys.argv[1], sys.argv[2]
    with open(os.path.join(out, "load.json")) as f:
        data = json.load(f)
    write_data(out, data["steps"])
    plot(out, data)
    print(f"plots: {out}/latency.svg {out}/cost.svg")
    if page_path == "none":
        return
    with open(page_path) as f:
        page = f.read()
    page = replace_between(page, "load", load_section(out, data))
    micro = os.path.join(out, "micro.md")
    if os.path.exists(micro):
        with open(micro) as f:
            page = replace_between(page, "micro", f.read())
    with open(page_path, "w") as f:
        f.write(page)
    print(f"updated {page_path}")


if __name__ == "__main__":
    main()
