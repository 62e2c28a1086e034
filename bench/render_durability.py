"""The "Durability" section of bench/RESULTS.md: cometboxd with a journal
(each journal-sync setting) against memory-only, and issue 18's targets.

Imported by render.py; formats what results.jsonl holds, measures nothing.
"""
from render import Check, f, fr, g, ratio

MEMORY = "cometboxd/pool"  # the mode compared
# memory-only, measured beside the journal settings
OFF = MEMORY + "/journal-off"
SETTINGS = ("always", "batch", "none")
TARGET = "batch"           # the default journal-sync: issue 18's targets
TRANSPORTS = {"lp": "long-poll", "sse": "SSE", "stream": "XHR stream"}


def cfg_of(setting):
    return MEMORY + "/journal-" + setting


def pair(res, setting, sc, t, n):
    """A setting's record of a cell and memory-only's (journal-off: the
    memory-only runs of bench/run --journal off,..., measured beside the
    journal settings in the same passes)."""
    r = res.get(cfg_of(setting), sc, t, n)
    ref = res.get(OFF, sc, t, n)
    return r, ref


PASS_KEY = {("round_ms", "p50"): "round_ms_p50",
            ("lat_ms", "p50"): "lat_ms_p50", ("lat_ms", "p99"): "lat_ms_p99",
            ("publish", "msgs_per_s"): "msgs_per_s",
            ("pub_rtt_ms", "p50"): "pub_rtt_ms_p50",
            ("pub_rtt_ms", "p99"): "pub_rtt_ms_p99",
            ("srv", "cpu_us_per_msg"): "cpu_us_per_msg"}


def per_pass(r, ref, path, higher_is_better=False):
    """The ratios of r to ref pass by pass (bench/run --repeat K measures
    every config once per pass, minutes apart), or [] when the two records
    do not come from the same passes of one run."""
    key = PASS_KEY.get(tuple(path))
    pa, pb = (r or {}).get("passes"), (ref or {}).get("passes")
    if key is None or not pa or not pb or len(pa) != len(pb) or \
            r.get("run_id") != ref.get("run_id"):
        return []
    out = []
    for a, b in zip(pa, pb):
        a, b = a.get(key), b.get(key)
        v = ratio(b, a) if higher_is_better else ratio(a, b)
        if v is not None:
            out.append(v)
    return sorted(out)


def slower(r, ref, path, higher_is_better=False):
    """How many times worse r is than ref on path: journal ÷ memory for a
    time or a cost, memory ÷ journal for a rate. With passes, the median
    of the per-pass ratios; else the ratio of the two kept records."""
    ps = per_pass(r, ref, path, higher_is_better)
    if ps:
        return ps[len(ps) // 2]
    a, b = g(r, *path), g(ref, *path)
    return ratio(b, a) if higher_is_better else ratio(a, b)


def fslower(r, ref, path, higher_is_better=False):
    """slower() as a table cell, with the range of the per-pass ratios."""
    ps = per_pass(r, ref, path, higher_is_better)
    v = fr(slower(r, ref, path, higher_is_better))
    if len(ps) > 1:
        v += " (%.2f–%.2f)" % (ps[0], ps[-1])
    return v


def rate(v):
    return "–" if v is None else "{:,.0f}".format(v)


def spread(r, path, fmt):
    """The kept record's figure, and the range over its passes."""
    v = fmt(g(r, *path))
    key = PASS_KEY.get(tuple(path))
    vals = sorted(p.get(key) for p in (r or {}).get("passes") or []
                  if p.get(key) is not None)
    if len(vals) > 1:
        v += " (%s–%s)" % (fmt(vals[0]), fmt(vals[-1]))
    return v


def syncs_per(r, per):
    s = g(r, "journal_stats", "syncs")
    return None if s is None or not per else s / per


def disk_table(res):
    rows = ["| append before each fdatasync | p50 ms | p90 ms | p99 ms "
            "| max ms | syncs | file system | measured (run) |",
            "|---|---|---|---|---|---|---|---|"]
    for t in ("append-128", "append-8192"):
        r = res.get("disk", "fdatasync", t, 0)
        if r is None:
            continue
        d = r.get("fdatasync_ms") or {}
        rows.append("| %s bytes | %s | %s | %s | %s | %s | %s (%s) | %s |" % (
            t.split("-")[1], f(d.get("p50"), 3), f(d.get("p90"), 3),
            f(d.get("p99"), 3), f(d.get("max"), 2), f(d.get("count")),
            r.get("fs", "?"), r.get("path", "?"), r.get("run_id")))
    return rows if len(rows) > 2 else []


def publish_table(res):
    rows = ["| journal | batches of 100: msg/s | memory-only ÷ this "
            "| single POSTs, 8 publishers: msg/s | memory-only ÷ this "
            "| round trip p50 / p99 ms | server CPU µs/msg | this ÷ "
            "memory-only | publishes per fdatasync | one publisher: round "
            "trip p50 / p99 ms | this ÷ memory-only (p50) | server CPU "
            "µs/msg |", "|" + "---|" * 12]
    for setting in ("off",) + SETTINGS:
        b, bref = pair(res, setting, "publish", "batch100", 0)
        s, sref = pair(res, setting, "publish", "single", 0)
        o, oref = pair(res, setting, "publish", "single1", 0)
        if b is None and s is None and o is None:
            continue
        mem = setting == "off"
        vs = (lambda *a: "") if mem else fslower
        cells = [
            "memory-only" if mem else "`%s`" % setting,
            spread(b, ("publish", "msgs_per_s"), rate),
            vs(b, bref, ("publish", "msgs_per_s"), True),
            spread(s, ("publish", "msgs_per_s"), rate),
            vs(s, sref, ("publish", "msgs_per_s"), True),
            "%s / %s" % (f(g(s, "pub_rtt_ms", "p50"), 2),
                         f(g(s, "pub_rtt_ms", "p99"), 2)),
            f(g(s, "srv", "cpu_us_per_msg"), 1),
            vs(s, sref, ("srv", "cpu_us_per_msg")),
            "" if mem else f(ratio(g(s, "publish", "requests"),
                                   g(s, "journal_stats", "syncs")), 1),
            "%s / %s" % (f(g(o, "pub_rtt_ms", "p50"), 3),
                         f(g(o, "pub_rtt_ms", "p99"), 3)),
            vs(o, oref, ("pub_rtt_ms", "p50")),
            f(g(o, "srv", "cpu_us_per_msg"), 1)]
        rows.append("| " + " | ".join(cells) + " |")
    return rows if len(rows) > 2 else []


def mailbox_table(res):
    rows = ["| N | transport | journal | round p50 ms | this ÷ memory-only "
            "| latency p50 / p99 ms | p99 ÷ memory-only | server CPU "
            "µs/msg | this ÷ memory-only | fdatasyncs per message "
            "| lost / dup |", "|" + "---|" * 11]
    ns = sorted({k[3] for k in res.idx if k[1] == "mailbox1"
                 and k[0] in [cfg_of(s) for s in SETTINGS]})
    for n in ns:
        for t in ("lp", "sse"):
            for setting in ("off",) + SETTINGS:
                r, ref = pair(res, setting, "mailbox1", t, n)
                if r is None:
                    continue
                mem = setting == "off"
                vs = (lambda *a: "") if mem else fslower
                name = "memory-only" if mem else "`%s`" % setting
                if "lat_ms" not in r:
                    rows.append("| %d | %s | %s | error: %s | | | | | | | |"
                                % (n, TRANSPORTS[t], name,
                                   (r.get("error") or "")[:80]))
                    continue
                cells = [
                    str(n), TRANSPORTS[t], name,
                    spread(r, ("round_ms", "p50"), lambda v: f(v, 0)),
                    vs(r, ref, ("round_ms", "p50")),
                    "%s / %s" % (f(g(r, "lat_ms", "p50"), 2),
                                 f(g(r, "lat_ms", "p99"), 2)),
                    vs(r, ref, ("lat_ms", "p99")),
                    f(g(r, "srv", "cpu_us_per_msg"), 1),
                    vs(r, ref, ("srv", "cpu_us_per_msg")),
                    "" if mem else f(syncs_per(
                        r, g(r, "publish", "messages_ok")), 2),
                    "%s / %s" % (r.get("missing"), r.get("duplicates"))]
                rows.append("| " + " | ".join(cells) + " |")
    return rows if len(rows) > 2 else []


def targets(res):
    """Issue 18's targets for journal-sync batch, each ratio against
    memory-only in the same pool mode."""
    rows = ["| target (issue 18) | limit | `%s` | measured in (run) |"
            % TARGET, "|---|---|---|---|"]

    def row(name, limit, c):
        rows.append("| %s | %s | %s | %s |" % (
            name, limit, c.status(), c.measured_in().replace(
                "Nchan-1w from another run", "memory-only from another run")))

    c = Check(500000, "msg/s", higher_is_better=True)
    r = res.get(cfg_of(TARGET), "publish", "batch100", 0)
    c.add(("publish", "batch100", 0), g(r, "publish", "msgs_per_s"), r)
    row("publishes in batches of 100 (1,000 queues, 8 publishers)",
        "≥ 500,000 msg/s", c)
    # "within 1.3x": how many times slower than memory-only, for what a
    # single POST's publisher and browser see: the rate of 8 publishers,
    # a lone publish's round trip, a single-POST mailbox round
    c = Check(1.3)
    cells = [("publish", "single", 0, ("publish", "msgs_per_s"), True),
             ("publish", "single1", 0, ("pub_rtt_ms", "p50"), False)]
    ns = sorted({k[3] for k in res.idx if k[0] == cfg_of(TARGET)
                 and k[1] == "mailbox1"})
    cells += [("mailbox1", t, n, ("round_ms", "p50"), False)
              for n in ns for t in ("lp", "sse")]
    for sc, t, n, path, up in cells:
        r, ref = pair(res, TARGET, sc, t, n)
        c.add((sc, t, n), slower(r, ref, path, up), r, ref)
    row("single POSTs: memory-only's rate ÷ this (8 publishers); a lone "
        "publish's round trip p50 ÷ memory-only's (`publish single1`); "
        "single-POST mailbox round ÷ memory-only's (`mailbox1`)",
        "≤ 1.3x", c)
    c = Check(1.3)
    for n in ns:
        for t in ("lp", "sse"):
            r, ref = pair(res, TARGET, "mailbox1", t, n)
            c.add(("mailbox1", t, n), slower(r, ref, ("srv",
                                                      "cpu_us_per_msg")),
                  r, ref)
    r, ref = pair(res, TARGET, "publish", "single", 0)
    c.add(("publish", "single", 0), slower(r, ref, ("srv", "cpu_us_per_msg")),
          r, ref)
    row("(not a target, beside it) server CPU per single-POST message "
        "÷ memory-only's", "–", c)
    rows[-1] = rows[-1].replace("**not met**", "over 1.3x")
    return rows


def load_note(res):
    """The machine's load average before the measurements of this section:
    the machine is shared, and the ratios are only as good as the passes
    were alike."""
    loads = [p.get("loadavg_before") for k, r in res.idx.items()
             if k[0] and k[0].startswith(MEMORY + "/journal-") and
             k[1] in ("publish", "mailbox1")
             for p in r.get("passes") or [r]]
    loads = sorted(x for x in loads if x is not None)
    if not loads:
        return []
    return ["Absolute figures are the kept record of each cell (the median "
            "of its passes), with the range over its passes in brackets; "
            "each ratio is the median of the per-pass ratios (each pass "
            "measures every setting of a cell minutes apart), with their "
            "range. The load average (1 min) before these measurements "
            "went from %.2f to %.2f: other work shared the machine and "
            "its disk, and the ranges show it." % (loads[0], loads[-1]),
            ""]


def section(res):
    """The markdown lines of the Durability section, or [] when
    results.jsonl has no journal record."""
    if not any(k[0].startswith(MEMORY + "/journal-") for k in res.idx
               if k[0]):
        return []
    md = ["## Durability: the journal", "",
          "cometboxd/pool with `--state-dir` (a fresh directory on the "
          "real disk for each measurement, removed after it) in each "
          "`journal-sync` setting, against memory-only in the same mode "
          "(`cometboxd/pool/journal-off`), measured by `bench/run "
          "--journal off,always,batch,none`, which measures every setting "
          "of a cell one after the other in each pass "
          "(docs/DURABILITY.md says what each setting promises). Every "
          "ratio is this setting against "
          "memory-only, oriented so that above 1.00x is worse. "
          "`publish`: no subscribers, 1,000 queues round-robin, for 5 s; "
          "batches of 100 and single POSTs over 8 keep-alive publishers "
          "with one POST in flight each, and single POSTs from one "
          "publisher (`single1`: the round trip of a lone publish, "
          "unqueued). The round trip is from building the POST to its "
          "answer. `mailbox1`: the single-POST mailbox rounds (above), "
          "where a message reaches its browser only once it is written. "
          "Publishes per fdatasync (group commit) and fdatasyncs per "
          "message come from the daemon's `stats` journal counters at the "
          "end of each measurement; in `mailbox1` they include the "
          "acknowledgement records of the long-polls' cursors and of the "
          "SSE deliveries.", "",
          ] + load_note(res) + ["### Targets of issue 18", ""] + targets(res)
    d = disk_table(res)
    if d:
        md += ["", "### What a sync costs on this disk", "",
               "`bench/run` appends and `fdatasync`s 300 times in the "
               "directory the journals go to, at the start of the run "
               "(and 50 times, 4 KiB each, before each measurement: "
               "`fdatasync_probe_ms` in its record). A publish in `always` "
               "or `batch` waits for at least one of these.", ""] + d
    p = publish_table(res)
    if p:
        md += ["", "### Publish throughput and round trip", ""] + p
    m = mailbox_table(res)
    if m:
        md += ["", "### Single-POST mailboxes", ""] + m
    return md + [""]
