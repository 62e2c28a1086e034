"""Renders bench/RESULTS.md and bench/plots/*.png from bench/results.jsonl.

Used by bench/run (and `bench/run --render-only`). Reads only the committed
results; measures nothing. Python 3 standard library and gnuplot.
"""
import json
import os
import platform
import subprocess

CONFIGS = ["cometboxd/pool", "cometboxd/per-connection", "nchan/1w",
           "nchan/2w"]
REF = "nchan/1w"
TRANSPORTS = {"lp": "long-poll", "stream": "XHR stream", "sse": "SSE"}


def load_jsonl(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(l) for l in f if l.strip()]


def add_run(here, run_id, argv, minutes, count, git_rev=None,
            cbx_version=None):
    with open(os.path.join(here, "runs.jsonl"), "a") as f:
        f.write(json.dumps({"run_id": run_id, "args": argv,
                            "minutes": round(minutes, 1),
                            "measurements": count, "git": git_rev,
                            "cometboxd": cbx_version}) + "\n")


def g(rec, *path):
    """rec[path...] or None."""
    for p in path:
        if not isinstance(rec, dict) or p not in rec:
            return None
        rec = rec[p]
    return rec


def f(v, nd=None):
    if v is None:
        return "–"
    if nd is None:
        return str(v)
    return "%.*f" % (nd, v)


def ratio(a, b):
    if a is None or b in (None, 0):
        return None
    return a / b


def fr(v):
    return "–" if v is None else "%.2fx" % v


def lost_dup(r):
    if r is None:
        return "–"
    if not r.get("ok", False) and r.get("missing") is None:
        return "error"
    return "%s / %s" % (r.get("missing"), r.get("duplicates"))


def machine():
    model = ""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return "%d cores (%s), Linux %s" % (os.cpu_count(), model,
                                         platform.release())


def versions():
    out = []
    try:
        v = subprocess.run(["dpkg-query", "-W", "-f",
                            "${Package} ${Version}\\n", "nginx-light",
                            "nginx", "libnginx-mod-nchan"],
                           capture_output=True, text=True).stdout
        out += [l for l in v.splitlines() if l.strip()]
    except OSError:
        pass
    return out


class Results:
    def __init__(self, recs):
        self.idx = {}
        for r in recs:
            n = r.get("n") if r.get("scenario") != "publish" else 0
            self.idx[(r.get("config"), r.get("scenario"),
                      r.get("transport"), n)] = r
        self.ns = sorted({k[3] for k in self.idx
                          if k[1] in ("mailbox", "fanout", "idle")})
        self.configs = [c for c in CONFIGS
                        if any(k[0] == c for k in self.idx)]

    def get(self, cfg, sc, t, n):
        return self.idx.get((cfg, sc, t, n))


def rounds_table(res, sc, t):
    rows = []
    head = ("| N | server | held | round p50 ms | latency p50 / p99 / max ms "
            "| server CPU µs/msg | generator CPU µs/msg | lost / dup "
            "| round ÷ Nchan-1w | p99 ÷ Nchan-1w | CPU ÷ Nchan-1w |")
    rows.append(head)
    rows.append("|" + "---|" * 11)
    for n in res.ns:
        ref = res.get(REF, sc, t, n)
        for cfg in res.configs:
            r = res.get(cfg, sc, t, n)
            if r is None:
                continue
            if "lat_ms" not in r:
                rows.append("| %d | %s | – | error: %s | | | | | | | |"
                            % (n, cfg, (r.get("error") or "")[:80]))
                continue
            rp = g(r, "round_ms", "p50")
            p99 = g(r, "lat_ms", "p99")
            cpu = g(r, "srv", "cpu_us_per_msg")
            rows.append("| %d | %s | %s | %s | %s / %s / %s | %s | %s | %s "
                        "| %s | %s | %s |" % (
                            n, cfg, f(r.get("held")), f(rp, 1),
                            f(g(r, "lat_ms", "p50"), 2), f(p99, 2),
                            f(g(r, "lat_ms", "max"), 1), f(cpu, 1),
                            f(g(r, "gen", "cpu_us_per_msg"), 1), lost_dup(r),
                            fr(ratio(rp, g(ref, "round_ms", "p50")))
                            if cfg != REF else "",
                            fr(ratio(p99, g(ref, "lat_ms", "p99")))
                            if cfg != REF else "",
                            fr(ratio(cpu, g(ref, "srv", "cpu_us_per_msg")))
                            if cfg != REF else ""))
    return rows


def memory_table(res):
    rows = ["| N | transport | server | held | server PSS KiB/sub "
            "| server RSS KiB/sub | kernel TCP buffers B/sub | slab B/sub "
            "(system-wide) | server threads | generator CPU ms (whole run) "
            "| PSS ÷ Nchan-1w |", "|" + "---|" * 11]
    for n in res.ns:
        for t in ("lp", "sse"):
            ref = res.get(REF, "idle", t, n)
            for cfg in res.configs:
                r = res.get(cfg, "idle", t, n)
                if r is None:
                    continue
                if "srv" not in r:
                    rows.append("| %d | %s | %s | error: %s | | | | | | | |"
                                % (n, TRANSPORTS[t], cfg,
                                   (r.get("error") or "")[:80]))
                    continue
                pss = g(r, "srv", "pss_b_per_sub")
                rows.append("| %d | %s | %s | %s | %s | %s | %s | %s | %s "
                            "| %s | %s |" % (
                                n, TRANSPORTS[t], cfg, f(r.get("held")),
                                f(pss / 1024 if pss is not None else None, 2),
                                f(g(r, "srv", "rss_b_per_sub") / 1024, 2),
                                f(g(r, "kernel", "tcp_b_per_sub"), 0),
                                f(g(r, "kernel", "slab_b_per_sub"), 0),
                                f(g(r, "srv", "threads_held")),
                                f(g(r, "gen", "cpu_ms_total"), 0),
                                fr(ratio(pss, g(ref, "srv", "pss_b_per_sub")))
                                if cfg != REF else ""))
    return rows


def publish_table(res):
    rows = ["| server | messages per POST | messages/s | server CPU µs/msg "
            "| generator CPU µs/msg | failed | msgs/s ÷ Nchan-1w |",
            "|" + "---|" * 7]
    ref = res.get(REF, "publish", "single", 0)
    for cfg in res.configs:
        for t in ("single", "batch100"):
            r = res.get(cfg, "publish", t, 0)
            if r is None:
                continue
            rate = g(r, "publish", "msgs_per_s")
            rows.append("| %s | %s | %s | %s | %s | %s | %s |" % (
                cfg, 1 if t == "single" else 100, f(rate, 0),
                f(g(r, "srv", "cpu_us_per_msg"), 2),
                f(g(r, "gen", "cpu_us_per_msg"), 2),
                f(g(r, "publish", "messages_failed")) if r.get("ok") is not
                None else "error",
                fr(ratio(rate, g(ref, "publish", "msgs_per_s")))
                if cfg != REF else ""))
    return rows


def churn_table(res):
    rows = ["| server | transport | clients | cycles/s | publish→receipt "
            "p50 / p99 ms | connect→receipt p50 / p99 ms | server CPU "
            "µs/cycle | generator CPU µs/cycle | server RSS growth KiB "
            "| lost / dup |", "|" + "---|" * 10]
    for cfg in res.configs:
        for t in ("lp", "sse"):
            keys = [k for k in res.idx if k[0] == cfg and k[1] == "churn"
                    and k[2] == t]
            for k in keys:
                r = res.idx[k]
                if "srv" not in r:
                    rows.append("| %s | %s | %s | error: %s | | | | | | |"
                                % (cfg, TRANSPORTS[t], k[3],
                                   (r.get("error") or "")[:80]))
                    continue
                rows.append("| %s | %s | %s | %s | %s / %s | %s / %s | %s "
                            "| %s | %s | %s |" % (
                                cfg, TRANSPORTS[t], k[3],
                                f(r.get("cycles_per_s"), 0),
                                f(g(r, "lat_ms", "p50"), 2),
                                f(g(r, "lat_ms", "p99"), 2),
                                f(g(r, "cycle_ms", "p50"), 1),
                                f(g(r, "cycle_ms", "p99"), 1),
                                f(g(r, "srv", "cpu_us_per_msg"), 1),
                                f(g(r, "gen", "cpu_us_per_msg"), 1),
                                f(g(r, "srv", "rss_kb_end") -
                                  g(r, "srv", "rss_kb_base")),
                                lost_dup(r)))
    return rows


def targets(res):
    """Issue 5's targets, checked against what results.jsonl holds."""
    rows = ["| target | " + " | ".join(
        c for c in res.configs if c.startswith("cometboxd")) + " |"]
    cbx = [c for c in res.configs if c.startswith("cometboxd")]
    rows.append("|---|" + "---|" * len(cbx))
    if not cbx:
        return []

    def cell(vals, ok):
        if not vals:
            return "no data"
        return ("met" if ok else "**not met**") + ": " + vals

    def each(fn):
        return " | ".join(fn(c) for c in cbx)

    def zero_lost(c):
        rs = [r for k, r in res.idx.items() if k[0] in (c,)]
        bad = [r for r in rs if r.get("missing") or r.get("duplicates")
               or not r.get("ok")]
        return cell("%d of %d runs clean" % (len(rs) - len(bad), len(rs)),
                    not bad) if rs else "no data"
    rows.append("| zero lost, zero duplicate, no error, every run | %s |"
                % each(zero_lost))

    def cpu(c):
        worst = None
        for k, r in res.idx.items():
            if k[0] != c or k[1] == "idle":
                continue
            ref = res.idx.get((REF,) + k[1:])
            q = ratio(g(r, "srv", "cpu_us_per_msg"),
                      g(ref, "srv", "cpu_us_per_msg"))
            if q is not None and (worst is None or q > worst[0]):
                worst = (q, "%s %s n=%s" % k[1:])
        if worst is None:
            return "no data"
        return cell("worst %.2fx (%s)" % worst, worst[0] <= 0.7)
    rows.append("| server CPU per message ≤ 0.7x Nchan in every scenario | "
                "%s |" % each(cpu))

    def worst_ratio(c, path, scenarios):
        worst = None
        for n in (5000, 10000):
            for sc, t, lim in scenarios:
                q = ratio(g(res.get(c, sc, t, n), *path),
                          g(res.get(REF, sc, t, n), *path))
                if q is not None and (worst is None
                                      or q / lim > worst[0] / worst[1]):
                    worst = (q, lim, "%s %s n=%d" % (sc, t, n))
        return worst

    def show(worst):
        if worst is None:
            return "no data"
        return cell("worst %.2fx against ≤ %.1fx (%s)" % worst,
                    worst[0] <= worst[1])

    faster = [("mailbox", t, 0.8) for t in ("lp", "stream", "sse")] + \
        [("fanout", "stream", 0.8), ("fanout", "sse", 0.8),
         ("fanout", "lp", 1.0)]
    rows.append("| round time at N=5,000/10,000 ≤ 0.8x Nchan (mailboxes, "
                "stream and SSE fan-out; long-poll fan-out ≤ 1.0x) | %s |"
                % each(lambda c: show(worst_ratio(c, ("round_ms", "p50"),
                                                  faster))))
    rows.append("| p99 latency at N=5,000/10,000, same limits (mailboxes: "
                "see the note below) | %s |"
                % each(lambda c: show(worst_ratio(c, ("lat_ms", "p99"),
                                                  faster))))
    rows.append("| p99 latency, fan-out only (stream, SSE ≤ 0.8x; "
                "long-poll ≤ 1.0x) | %s |"
                % each(lambda c: show(worst_ratio(c, ("lat_ms", "p99"),
                                                  faster[3:]))))

    def pub1(c):
        q = ratio(g(res.get(c, "publish", "single", 0), "publish",
                    "msgs_per_s"),
                  g(res.get(REF, "publish", "single", 0), "publish",
                    "msgs_per_s"))
        return "no data" if q is None else cell("%.2fx" % q, q >= 1.5)
    rows.append("| single-message publishes ≥ 1.5x Nchan | %s |" % each(pub1))

    def pub100(c):
        v = g(res.get(c, "publish", "batch100", 0), "publish", "msgs_per_s")
        return "no data" if v is None else cell("%.0f msg/s" % v, v >= 200000)
    rows.append("| batches of 100 ≥ 200,000 messages/s | %s |" % each(pub100))

    def mem(c):
        r = res.get(c, "idle", "lp", 10000)
        v = g(r, "srv", "pss_b_per_sub")
        return "no data" if v is None else cell("%.2f KiB" % (v / 1024),
                                                v <= 8192)
    rows.append("| ≤ 8 KiB server memory per held long-poll at N=10,000 | "
                "%s |" % each(mem))

    def n15(c):
        rs = [r for k, r in res.idx.items() if k[0] == c and k[3] == 15000]
        if not rs:
            return "no data"
        bad = [r for r in rs if not r.get("ok") or r.get("held") != 15000]
        return cell("%d of %d runs held 15,000 cleanly" % (
            len(rs) - len(bad), len(rs)), not bad)
    rows.append("| 15,000 held at once without an error | %s |" % each(n15))
    return rows


def kernel_table(res):
    """Server CPU per message split into kernel and user time, at N=10,000
    (churn and publishes at their own sizes), for cometboxd/pool and the
    reference, with what the kernel time alone is against the reference."""
    cfg = "cometboxd/pool"
    rows = ["| scenario | transport | N | cometboxd/pool CPU µs/msg | of "
            "which kernel | Nchan-1w CPU µs/msg | of which kernel | CPU ÷ "
            "Nchan-1w | cometboxd kernel alone ÷ Nchan-1w CPU |",
            "|" + "---|" * 9]
    keys = [(sc, t, 10000) for sc in ("mailbox", "fanout")
            for t in ("lp", "stream", "sse")]
    keys += sorted(k[1:] for k in res.idx
                   if k[0] == cfg and k[1] in ("churn", "publish"))
    for sc, t, n in keys:
        r, ref = res.get(cfg, sc, t, n), res.get(REF, sc, t, n)
        cpu, sys_ = g(r, "srv", "cpu_us_per_msg"), g(r, "srv", "sys_us_per_msg")
        rcpu = g(ref, "srv", "cpu_us_per_msg")
        if cpu is None or rcpu is None:
            continue
        rows.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            sc, TRANSPORTS.get(t, t), n if sc != "publish" else "–",
            f(cpu, 1), f(sys_, 1), f(rcpu, 1),
            f(g(ref, "srv", "sys_us_per_msg"), 1), fr(ratio(cpu, rcpu)),
            fr(ratio(sys_, rcpu))))
    return rows if len(rows) > 2 else []


def plot(here, res):
    """Writes bench/plots/*.png with gnuplot; returns the files made."""
    plots = os.path.join(here, "plots")
    os.makedirs(plots, exist_ok=True)
    made = []

    def series(sc, t, path, scale=1.0):
        blocks = []
        for cfg in res.configs:
            pts = []
            for n in res.ns:
                v = g(res.get(cfg, sc, t, n), *path)
                if v is not None:
                    pts.append("%d %g" % (n, v * scale))
            blocks.append((cfg, pts))
        return blocks

    def multiplot(name, title, ylabel, panels, layout):
        script = ['set terminal pngcairo size 1500,%d font ",10"'
                  % (480 * layout[0]),
                  'set output "%s"' % os.path.join(plots, name),
                  'set multiplot layout %d,%d title "%s"' % (
                      layout[0], layout[1], title),
                  'set xlabel "N (subscribers held)"',
                  'set ylabel "%s"' % ylabel,
                  "set key below horizontal maxrows 2 samplen 2",
                  "set grid", "set yrange [0:*]", "set xrange [0:*]"]
        any_pts = False
        for i, (ptitle, blocks) in enumerate(panels):
            plots_cmd = []
            for j, (cfg, pts) in enumerate(blocks):
                script.append("$d%d_%d << EOD" % (i, j))
                script += pts or ["0 NaN"]
                script.append("EOD")
                any_pts |= bool(pts)
                plots_cmd.append('$d%d_%d using 1:2 with linespoints lw 2 '
                                 'title "%s"' % (i, j, cfg))
            script.append('set title "%s"' % ptitle)
            script.append("plot " + ", ".join(plots_cmd))
        script.append("unset multiplot")
        if not any_pts:
            return
        try:
            subprocess.run(["gnuplot"], input="\n".join(script) + "\n",
                           text=True, check=True, capture_output=True,
                           timeout=60)
            made.append("plots/" + name)
        except (OSError, subprocess.SubprocessError) as e:
            print("render: gnuplot failed for %s: %s" % (name, e))

    grid = [(sc, t) for sc in ("mailbox", "fanout")
            for t in ("lp", "stream", "sse")]
    multiplot("round-time.png", "Round completion (first publish to last "
              "receipt), median of the rounds", "ms",
              [("%s, %s" % (sc, TRANSPORTS[t]),
                series(sc, t, ("round_ms", "p50"))) for sc, t in grid],
              (2, 3))
    multiplot("latency-p99.png", "p99 latency, publish to receipt, per "
              "(subscriber, message)", "ms",
              [("%s, %s" % (sc, TRANSPORTS[t]),
                series(sc, t, ("lat_ms", "p99"))) for sc, t in grid],
              (2, 3))
    multiplot("server-cpu.png", "Server CPU (utime+stime) per delivered "
              "message", "µs", [("%s, %s" % (sc, TRANSPORTS[t]),
                                 series(sc, t, ("srv", "cpu_us_per_msg")))
                                for sc, t in grid], (2, 3))
    multiplot("memory.png", "Server memory (PSS) per held subscriber, idle",
              "KiB", [("idle %s" % TRANSPORTS[t],
                       series("idle", t, ("srv", "pss_b_per_sub"),
                              1 / 1024)) for t in ("lp", "sse")], (1, 2))
    return made


def repeat_note(res):
    """Says how many runs each rounds cell is the median of, if more than one."""
    reps = sorted({r.get("repeats", 1) for r in res.idx.values()
                   if r.get("scenario") in ("mailbox", "fanout")})
    if reps == [1] or not reps:
        return ""
    return (" Each cell is the run with the median round time of %s runs "
            "with a fresh server each (`bench/run --repeat`); the round "
            "times and CPU of every run are in results.jsonl "
            "(`round_ms_p50_all`, `cpu_us_per_msg_all`)."
            % " or ".join(str(r) for r in reps))


def render(here):
    recs = load_jsonl(os.path.join(here, "results.jsonl"))
    runs = load_jsonl(os.path.join(here, "runs.jsonl"))
    res = Results(recs)
    made = plot(here, res)
    dates = sorted(r.get("date", "") for r in recs if r.get("date"))
    full = set(res.ns) >= {1000, 5000, 10000, 15000}
    md = ["# cometboxd against Nchan: benchmark results", ""]
    if not full:
        md += ["**Preliminary:** the full matrix (N = 1,000 to 15,000) has "
               "not been run; these figures come from a partial run "
               "(N = %s). Run `bench/run` for the full matrix." % (
                   ", ".join("{:,}".format(n) for n in res.ns) or "none"), ""]
    md += ["Rendered by `bench/render.py` from `bench/results.jsonl`; "
           "do not edit by hand. Reproduce with `bench/run` (full matrix) "
           "or `bench/run --quick` (N = 1,000 and 5,000); see "
           "bench/README.md for what each scenario measures.", "",
           "- Machine: %s; the load generator (one process, one thread) "
           "shares these cores with the server, so every figure has the "
           "generator's own CPU beside it: where the generator is busy, "
           "the machine, not the server, bounds the number." % machine(),
           "- Measured: %s to %s." % (dates[0] if dates else "–",
                                      dates[-1] if dates else "–"),
           "- Nchan: %s; config `bench/nchan/nginx.conf`, 1 or 2 "
           "workers." % ("; ".join(versions()) or "not installed"),
           "- cometboxd: `--threads pool` and `--threads per-connection`, "
           "`--max-connections 19000`, other settings default.",
           "- Each measurement starts a fresh server. Ratios compare with "
           "Nchan with one worker at the same N (below 1.00x: cometboxd "
           "is faster, smaller or cheaper)."]
    if runs:
        md.append("- Runs: " + "; ".join(
            "`%s` (%s, %s measurements, %.1f min, tree %s%s)" % (
                " ".join(["bench/run"] + r["args"]), r["run_id"], r["measurements"],
                r["minutes"], r.get("git") or "?",
                ", " + r["cometboxd"] if r.get("cometboxd") else "")
            for r in runs[-5:]) + ".")
    md += ["", "## Targets of issue 5", ""] + targets(res)
    md += ["", "Ratios are cometboxd ÷ Nchan with one worker at the same N. "
           "In the mailbox scenario cometboxd receives XML batches of 100 "
           "messages per POST and Nchan one message per POST, so a "
           "message's latency, counted from the send of the POST that "
           "carries it, includes up to a whole batch for cometboxd and "
           "one message for Nchan, and, since 8 connections post batches "
           "faster than any server here delivers them, the time the "
           "message waited behind earlier batches; the round time "
           "compares the same work. `cbx-loadgen --batch 1` measures "
           "cometboxd with single POSTs (figures at N = 10,000 in "
           "bench/README.md, \"Targets not met\").", "",
           "Why the targets that are not met are not, with system call "
           "counts and profiles: bench/README.md (\"Targets not met\") "
           "and docs/THREADS.md (\"Choosing the mode\")."]
    ktab = kernel_table(res)
    if ktab:
        md += ["", "### Kernel time alone", "",
               "Server CPU per message split into time in the kernel "
               "(stime in /proc/PID/stat: system calls and the loopback "
               "network work they do, which includes putting the data in "
               "the generator's sockets) and the rest. The last column is "
               "cometboxd's kernel time alone against Nchan's whole CPU: "
               "where it is above 0.70x, making user-space code faster, "
               "ours or libmicrohttpd's, cannot meet the CPU target; only "
               "fewer or cheaper system calls could. /proc counts in 10 ms ticks "
               "and splits user from kernel time by sampling, so each "
               "figure carries a few percent of noise.", ""] + ktab
    if made:
        md += ["", "## Plots", ""] + ["![%s](%s)" % (m, m) for m in made]
    md += ["", "## Mailboxes and fan-out", "",
           "Mailboxes: N subscribers each on its own queue; every round "
           "publishes one message to every queue (cometboxd: XML batches "
           "of 100 per POST; Nchan: one POST per message), 8 publisher "
           "connections with keep-alive. Fan-out: N subscribers on one "
           "queue, one message per round. 10 measured rounds (at N = "
           "1,000: 50, so that /proc's 10 ms CPU ticks stay small against "
           "the total) after one warm-up round; latency is per (subscriber, message), from the "
           "publish request's send to receipt; round time from the first "
           "publish to the last receipt. CPU per delivered message over "
           "the measured rounds." + repeat_note(res), ""]
    for sc in ("mailbox", "fanout"):
        for t in ("lp", "stream", "sse"):
            if not any(k[1] == sc and k[2] == t for k in res.idx):
                continue
            md += ["### %s, %s" % ("Mailboxes" if sc == "mailbox"
                                    else "Fan-out", TRANSPORTS[t]), ""]
            md += rounds_table(res, sc, t) + [""]
    if any(k[1] == "idle" for k in res.idx):
        md += ["## Idle cost per held subscriber", "",
               "N subscribers held (long-poll or SSE), nothing published; "
               "server PSS (shared pages split between processes; nginx "
               "master and workers summed) and RSS after minus before, per "
               "subscriber. The kernel figures are system-wide deltas of "
               "/proc/net/sockstat TCP memory and /proc/meminfo Slab, which "
               "cover both ends of each loopback connection and anything "
               "else the machine did meanwhile.", ""]
        md += memory_table(res) + [""]
    if any(k[1] == "publish" for k in res.idx):
        md += ["## Publish throughput", "",
               "No subscribers; messages written round-robin to 1,000 "
               "queues over 8 keep-alive connections, one request in flight "
               "per connection, for 5 s or the message count.", ""]
        md += publish_table(res) + [""]
    if any(k[1] == "churn" for k in res.idx):
        md += ["## Churn", "",
               "Clients that connect, get one message and leave, "
               "continuously for 5 s: each client slot has its own queue; "
               "a message for it is published as it connects, it reads "
               "the message, closes, and the slot connects again, resuming "
               "from the last id. Server RSS growth is over the whole run "
               "and includes the messages the server retains.", ""]
        md += churn_table(res) + [""]
    logs = {}
    for r in recs:
        for msg in r.get("server_log_sample") or []:
            k = (r.get("config"), msg)
            runs_, lines = logs.get(k, (0, 0))
            logs[k] = (runs_ + 1, lines + r.get("server_log_lines", 0))
    if logs:
        md += ["## What the servers logged", "",
               "Lines on the server's standard error (cometboxd at "
               "`--log-level warn`) or in nginx's error log during the "
               "measurements; at the end of each run the generator resets "
               "the connections it still holds.", "",
               "| server | message (first distinct ones) | runs | lines in "
               "those runs |", "|---|---|---|---|"]
        for (cfg, msg), (n_runs, lines) in sorted(logs.items()):
            # nginx writes a NUL into some of these lines: shown as \x00
            shown = "".join(c if c >= " " else "\\x%02x" % ord(c)
                            for c in msg.replace("|", "/"))
            md.append("| %s | `%s` | %d | %d |" % (cfg, shown, n_runs, lines))
        md.append("")
    errs = [r for r in recs if not r.get("ok")]
    if errs:
        md += ["## Measurements that were not clean", ""]
        for r in errs:
            md.append("- %s %s %s n=%s: lost %s, dup %s, held %s, errors %s, "
                      "error: %s" % (r.get("config"), r.get("scenario"),
                                     r.get("transport"), r.get("n"),
                                     r.get("missing"), r.get("duplicates"),
                                     r.get("held"), r.get("errors"),
                                     r.get("error")))
        md.append("")
    with open(os.path.join(here, "RESULTS.md"), "w") as fh:
        fh.write("\n".join(md) + "\n")
