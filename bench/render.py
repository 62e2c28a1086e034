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
TRANSPORTS = {"lp": "long-poll", "stream": "XHR stream", "sse": "SSE",
              "ws": "WebSocket"}
HELD = ("lp", "stream", "sse", "ws")  # the transports of rounds and idle


def load_jsonl(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(l) for l in f if l.strip()]


def add_run(here, run_id, argv, minutes, count, git_rev=None,
            cbx_version=None, loadavg=None, redis=None):
    """One line of runs.jsonl; loadavg: /proc/loadavg's 1, 5 and 15
    minute figures when the run started; redis: redis-server's version
    (scale-out runs)."""
    run = {"run_id": run_id, "args": argv, "minutes": round(minutes, 1),
           "measurements": count, "git": git_rev, "cometboxd": cbx_version}
    if loadavg is not None:
        run["loadavg_start"] = loadavg
    if redis is not None:
        run["redis_server"] = redis
    with open(os.path.join(here, "runs.jsonl"), "a") as f:
        f.write(json.dumps(run) + "\n")


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
                          if k[1] in ("mailbox", "mailbox1", "fanout",
                                      "idle")})
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
        for cfg in res.configs:
            r, ref = pair(res, sc, t, n, cfg)
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
        for t in HELD:
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


TARGET_CFG = "cometboxd/pool"  # the default mode, held to issue 17's targets
TARGET_NS = (5000, 10000)
ROUNDS = ("mailbox", "mailbox1", "fanout")  # the rounds scenarios


def where(k):
    """(scenario, transport, n) as the targets table names a cell."""
    sc, t, n = k
    return "%s %s" % (sc, t) + (" n=%s" % n if sc != "publish"
                                and n is not None else "")


def pair(res, sc, t, n, cfg=TARGET_CFG):
    """cfg's record of a cell and its Nchan-1w reference: from the same run
    when results.jsonl has one. For single-POST mailboxes Nchan's mailbox
    record is a reference too: Nchan gets one message per POST in both."""
    r = res.get(cfg, sc, t, n)
    cands = [res.get(REF, sc, t, n)]
    if sc == "mailbox1":
        cands.append(res.get(REF, "mailbox", t, n))
    cands = [c for c in cands if c is not None]
    same = [c for c in cands
            if r is not None and c.get("run_id") == r.get("run_id")]
    return r, (same or cands or [None])[0]


class Check:
    """One target over its cells: the figures found, the cells with none,
    the runs they came from and the cells compared across runs."""

    def __init__(self, limit, unit="x", higher_is_better=False):
        self.limit, self.unit, self.up = limit, unit, higher_is_better
        self.vals, self.missing, self.cross, self.runs = [], [], [], set()

    def add(self, k, v, rec=None, ref=None):
        if rec is not None and rec.get("run_id"):
            self.runs.add(rec["run_id"])
        if v is None:
            self.missing.append(where(k))
            return
        self.vals.append((v, where(k)))
        if ref is not None and rec.get("run_id") != ref.get("run_id"):
            self.cross.append(where(k))

    def ok(self, v):
        return v >= self.limit if self.up else v <= self.limit

    def fmt(self, v):
        if self.unit == "x":
            return "%.2fx" % v
        if self.unit == "msg/s":
            return "{:,.0f} msg/s".format(v)
        return "%.2f %s" % (v, self.unit)

    def status(self):
        if not self.vals:
            return "not measured" + (
                " (%s)" % ", ".join(self.missing) if self.missing else "")
        pick = min if self.up else max
        worst = pick(self.vals)
        bad = [w for v, w in self.vals if not self.ok(v)]
        text = "worst %s (%s)" % (self.fmt(worst[0]), worst[1])
        if bad:
            s = "**not met**: " + text
            if len(self.vals) > 1:
                s += "; %d of %d cells over: %s" % (
                    len(bad), len(self.vals), ", ".join(bad))
        elif self.missing:
            s = "met where measured: " + text
        else:
            s = "met: " + text
        if self.missing:
            s += "; not measured: " + ", ".join(self.missing)
        return s

    def measured_in(self):
        s = ", ".join(sorted(self.runs)) or "–"
        if self.cross:
            s += "; Nchan-1w from another run: " + ", ".join(self.cross)
        return s


def ratio_check(res, cells, path, limit):
    """cometboxd/pool ÷ Nchan-1w of path, over cells (scenario, transport,
    n)."""
    c = Check(limit)
    for k in cells:
        r, ref = pair(res, *k)
        c.add(k, ratio(g(r, *path), g(ref, *path)), r, ref)
    return c


def targets(res):
    """Issue 17's targets for cometboxd/pool against Nchan with one worker,
    checked against what results.jsonl holds."""
    rows = ["| | target (issue 17; \"ws\" rows: issue 19) | limit | %s "
            "| measured in (run) |" % TARGET_CFG, "|---|---|---|---|---|"]

    def row(num, name, limit, check):
        if isinstance(check, Check):
            rows.append("| %s | %s | %s | %s | %s |" % (
                num, name, limit, check.status(), check.measured_in()))
        else:
            rows.append("| %s | %s | %s | %s | %s |" % (
                num, name, limit, check[0], check[1]))

    # 1: correctness, 15,000 held, batch publishes
    recs = [r for k, r in res.idx.items() if k[0] == TARGET_CFG]
    row("1", "0 lost, 0 duplicates, no error, every run", "0", clean(recs))
    held = [r for r in recs if r.get("n") == 15000
            and r.get("scenario") in ROUNDS + ("idle",)]
    if not held:
        h = ("not measured", "–")
    else:
        short = [r for r in held if not r.get("ok")
                 or r.get("held") != 15000]
        h = (("met" if not short else "**not met**") +
             ": %d of %d runs held 15,000 cleanly" % (
                 len(held) - len(short), len(held)) +
             (" (not: %s)" % ", ".join(where(
                 (r.get("scenario"), r.get("transport"), r.get("n")))
                 for r in short) if short else ""),
             ", ".join(sorted({r.get("run_id") or "?" for r in held})))
    row("1", "15,000 subscribers held at once", "all, no error", h)
    c = Check(1e6, "msg/s", higher_is_better=True)
    r = res.get(TARGET_CFG, "publish", "batch100", 0)
    c.add(("publish", "batch100", 0), g(r, "publish", "msgs_per_s"), r)
    row("1", "publishes in batches of 100", "≥ 1,000,000 msg/s", c)

    # 2, 3: round times
    row("2", "long-poll fan-out round ÷ Nchan-1w, N = 5,000 and 10,000",
        "≤ 1.3x", ratio_check(res, [("fanout", "lp", n) for n in TARGET_NS],
                              ("round_ms", "p50"), 1.3))
    cells = [(sc, t, n) for n in TARGET_NS for sc, t in
             [("mailbox", "lp"), ("mailbox", "stream"), ("mailbox", "sse"),
              ("fanout", "stream"), ("fanout", "sse")]]
    row("3", "mailbox rounds (long-poll, stream, SSE; batches of 100) and "
        "stream/SSE fan-out rounds ÷ Nchan-1w, N = 5,000 and 10,000",
        "≤ 0.8x", ratio_check(res, cells, ("round_ms", "p50"), 0.8))

    # 4: CPU per message everywhere (single POSTs: target 6)
    cells = [(sc, t, n) for n in TARGET_NS for sc in ("mailbox", "fanout")
             for t in ("lp", "stream", "sse")]
    for t in ("lp", "sse"):
        ns = sorted(k[3] for k in res.idx if k[0] == TARGET_CFG
                    and k[1] == "churn" and k[2] == t)
        cells += [("churn", t, n) for n in ns or [None]]
    cells.append(("publish", "single", 0))
    row("4", "server CPU per message ÷ Nchan-1w in every scenario "
        "(mailboxes, fan-out at N = 5,000 and 10,000; churn; single "
        "publishes)", "≤ 1.0x",
        ratio_check(res, cells, ("srv", "cpu_us_per_msg"), 1.0))

    # 5: memory per held subscriber
    c = Check(8.0, "KiB")
    for t in ("lp", "stream", "sse"):
        r = res.get(TARGET_CFG, "idle", t, 10000)
        v = g(r, "srv", "pss_b_per_sub")
        c.add(("idle", t, 10000), v / 1024 if v is not None else None, r)
    row("5", "server memory (PSS) per held subscriber, each transport, "
        "N = 10,000", "≤ 8 KiB", c)

    # 6: single-message POSTs into mailboxes
    cells = [("mailbox1", t, 10000) for t in ("lp", "sse")]
    row("6", "single-message POSTs to mailboxes: server CPU per message "
        "÷ Nchan-1w, N = 10,000", "≤ 1.2x",
        ratio_check(res, cells, ("srv", "cpu_us_per_msg"), 1.2))
    c = Check(2.0, "ms")
    for k in cells:
        r = res.get(TARGET_CFG, *k)
        c.add(k, g(r, "lat_ms", "p99"), r)
    row("6", "single-message POSTs to mailboxes: latency p99, N = 10,000",
        "≤ 2 ms", c)

    # issue 19: "a WebSocket fan-out row beside Nchan's WebSocket
    # endpoint, with the same targets as streams" (targets 1, 3, 4, 5)
    same = "issue 19, WebSocket, the same targets as streams: "
    row("1 (ws)", same + "0 lost, 0 duplicates, no error, every WebSocket "
        "run", "0", clean([r for r in recs if r.get("transport") == "ws"]))
    cells = [(sc, "ws", n) for n in TARGET_NS for sc in ("mailbox", "fanout")]
    row("3 (ws)", same + "mailbox and fan-out rounds ÷ Nchan-1w's "
        "WebSocket, N = 5,000 and 10,000", "≤ 0.8x",
        ratio_check(res, cells, ("round_ms", "p50"), 0.8))
    row("4 (ws)", same + "server CPU per message ÷ Nchan-1w's WebSocket, "
        "mailboxes and fan-out, N = 5,000 and 10,000", "≤ 1.0x",
        ratio_check(res, cells, ("srv", "cpu_us_per_msg"), 1.0))
    c = Check(8.0, "KiB")
    r = res.get(TARGET_CFG, "idle", "ws", 10000)
    v = g(r, "srv", "pss_b_per_sub")
    c.add(("idle", "ws", 10000), v / 1024 if v is not None else None, r)
    row("5 (ws)", same + "server memory (PSS) per held WebSocket, "
        "N = 10,000", "≤ 8 KiB", c)
    return rows


def clean(recs):
    """Target 1's first row over recs: (status, runs)."""
    runs = ", ".join(sorted({r.get("run_id") or "?" for r in recs})) or "–"
    if not recs:
        return "not measured", runs
    bad = [r for r in recs if r.get("missing") or r.get("duplicates")
           or not r.get("ok")]
    text = ("met" if not bad else "**not met**") + \
        ": %d of %d runs clean" % (len(recs) - len(bad), len(recs))
    if bad:
        text += " (not: %s)" % ", ".join(
            where((r.get("scenario"), r.get("transport"), r.get("n")))
            for r in bad)
    return text, runs


def kernel_table(res):
    """Server CPU per message split into kernel and user time, at N=10,000
    (churn and publishes at their own sizes), for cometboxd/pool and the
    reference, with what the kernel time alone is against the reference."""
    cfg = "cometboxd/pool"
    rows = ["| scenario | transport | N | cometboxd/pool CPU µs/msg | of "
            "which kernel | Nchan-1w CPU µs/msg | of which kernel | CPU ÷ "
            "Nchan-1w | cometboxd kernel alone ÷ Nchan-1w CPU |",
            "|" + "---|" * 9]
    keys = [(sc, t, 10000) for sc in ("mailbox", "fanout") for t in HELD]
    keys += [("mailbox1", t, 10000) for t in ("lp", "sse")]
    keys += sorted(k[1:] for k in res.idx
                   if k[0] == cfg and k[1] in ("churn", "publish"))
    for sc, t, n in keys:
        r, ref = pair(res, sc, t, n, cfg)
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
        script = ['set terminal pngcairo size %d,%d font ",10"'
                  % (500 * layout[1], 480 * layout[0]),
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
            if any(pts for _, pts in blocks):
                script.append("plot " + ", ".join(plots_cmd))
            else:
                # gnuplot stops at a plot with no defined point: an empty
                # panel says so instead
                script += ['set label 1 "not measured" at graph 0.5,0.5 '
                           'center', "plot [0:1] [0:1] NaN notitle",
                           "unset label 1"]
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

    grid = [(sc, t) for sc in ("mailbox", "fanout") for t in HELD]
    multiplot("round-time.png", "Round completion (first publish to last "
              "receipt), median of the rounds", "ms",
              [("%s, %s" % (sc, TRANSPORTS[t]),
                series(sc, t, ("round_ms", "p50"))) for sc, t in grid],
              (2, 4))
    multiplot("latency-p99.png", "p99 latency, publish to receipt, per "
              "(subscriber, message)", "ms",
              [("%s, %s" % (sc, TRANSPORTS[t]),
                series(sc, t, ("lat_ms", "p99"))) for sc, t in grid],
              (2, 4))
    multiplot("server-cpu.png", "Server CPU (utime+stime) per delivered "
              "message", "µs", [("%s, %s" % (sc, TRANSPORTS[t]),
                                 series(sc, t, ("srv", "cpu_us_per_msg")))
                                for sc, t in grid], (2, 4))
    multiplot("memory.png", "Server memory (PSS) per held subscriber, idle",
              "KiB", [("idle %s" % TRANSPORTS[t],
                       series("idle", t, ("srv", "pss_b_per_sub"),
                              1 / 1024)) for t in HELD],
              (1, 4))
    return made


def repeat_note(res):
    """Says how many runs each rounds cell is the median of, if more than one."""
    reps = sorted({r.get("repeats", 1) for r in res.idx.values()
                   if r.get("scenario") in ROUNDS})
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
    md += ["", "## Targets of issue 17", "",
           "The default mode (`%s`) against Nchan with one worker "
           "(`%s`), each ratio from the two servers' records of the same "
           "cell (scenario, transport, N) in results.jsonl, which holds "
           "the newest record of each; where the two records come from "
           "different runs of `bench/run`, the last column says so. A "
           "cell is named scenario, transport, n; worst is the highest "
           "ratio or figure (the lowest for a rate). `per-connection` is "
           "not held to these targets; its figures are in the tables "
           "below." % (TARGET_CFG, REF), ""] + targets(res)
    md += ["", "Ratios are cometboxd ÷ Nchan with one worker at the same N. "
           "In the `mailbox` scenario cometboxd receives XML batches of "
           "100 messages per POST and Nchan one message per POST, so a "
           "message's latency, counted from the send of the POST that "
           "carries it, includes up to a whole batch for cometboxd and "
           "one message for Nchan, and, since 8 connections post batches "
           "faster than any server here delivers them, the time the "
           "message waited behind earlier batches; the round time "
           "compares the same work, and no latency target is set for it. "
           "`mailbox1` is the same rounds with one message per POST for "
           "both servers (what a PHP page that publishes once per user "
           "does); for Nchan it is the same work as `mailbox`, whose "
           "record serves as its reference when no `mailbox1` record of "
           "Nchan is there.", "",
           "The rows marked (ws) hold the WebSocket transport to the "
           "targets of streams, as issue 19 asks: cometboxd's `GET /ws/Q` "
           "(a text frame per batch, one JSON array, the first frame the "
           "cursor) against Nchan's `nchan_subscriber websocket` (a text "
           "frame per message). The generator answers pings and sends "
           "nothing else: no `{\"ack\":ID}` frames (the JavaScript "
           "client sends one per frame with messages; Nchan has no "
           "acknowledgement), so cometboxd's WebSocket figures leave out "
           "the cost of reading acknowledgements. Row 1 covers the "
           "WebSocket runs too.", "",
           "Why the targets that are not met are not, with system call "
           "counts and profiles: bench/README.md (\"Targets not met\") "
           "and docs/THREADS.md."]
    ktab = kernel_table(res)
    if ktab:
        md += ["", "### Kernel time alone", "",
               "Server CPU per message split into time in the kernel "
               "(stime in /proc/PID/stat: system calls and the loopback "
               "network work they do, which includes putting the data in "
               "the generator's sockets) and the rest. The last column is "
               "cometboxd's kernel time alone against Nchan's whole CPU: "
               "where it is above the CPU target's limit (1.00x; 1.20x "
               "for single-POST mailboxes), making user-space code "
               "faster, ours or libmicrohttpd's, cannot meet the target; "
               "only fewer or cheaper system calls could. /proc counts in 10 ms ticks "
               "and splits user from kernel time by sampling, so each "
               "figure carries a few percent of noise.", ""] + ktab
    if made:
        md += ["", "## Plots", ""] + ["![%s](%s)" % (m, m) for m in made]
    md += ["", "## Mailboxes and fan-out", "",
           "Mailboxes: N subscribers each on its own queue; every round "
           "publishes one message to every queue (cometboxd: XML batches "
           "of 100 per POST; Nchan: one POST per message), 8 publisher "
           "connections with keep-alive. Mailboxes, single POSTs "
           "(`mailbox1`): the same with one message per POST for both "
           "servers. Fan-out: N subscribers on one "
           "queue, one message per round. 10 measured rounds (at N = "
           "1,000: 50, so that /proc's 10 ms CPU ticks stay small against "
           "the total) after one warm-up round; latency is per (subscriber, message), from the "
           "publish request's send to receipt; round time from the first "
           "publish to the last receipt. CPU per delivered message over "
           "the measured rounds." + repeat_note(res), ""]
    heads = {"mailbox": "Mailboxes", "mailbox1": "Mailboxes, single POSTs",
             "fanout": "Fan-out"}
    for sc in ("mailbox", "mailbox1", "fanout"):
        for t in HELD:
            if not any(k[1] == sc and k[2] == t for k in res.idx):
                continue
            md += ["### %s, %s" % (heads[sc], TRANSPORTS[t]), ""]
            md += rounds_table(res, sc, t) + [""]
    if any(k[1] == "idle" for k in res.idx):
        md += ["## Idle cost per held subscriber", "",
               "N subscribers held (long-poll, XHR stream, SSE or "
               "WebSocket), nothing "
               "published; "
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
    # imported here: render_durability imports this module's helpers
    import render_durability
    import render_scaleout
    md += render_durability.section(res)
    md += render_scaleout.section(res)
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
