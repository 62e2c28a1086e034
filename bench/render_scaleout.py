"""The "Scale-out on Redis (issue 20)" section of bench/RESULTS.md: one
cometboxd node (broker = memory) against two nodes on one redis-server and
against Nchan with its Redis storage on two nginx instances, and issue
20's targets.

Imported by render.py; formats what results.jsonl holds (the records of
`bench/run --scaleout`), measures nothing.
"""
from render import Check, f, g, ratio, where
from render_durability import fslower, slower, spread

MODE = "pool"
ONE = "cometboxd/%s/broker-memory" % MODE    # one node, the baseline
CBX = "cometboxd/%s/broker-redis" % MODE     # nodes on one Redis
NCHAN = "nchan/1w/redis"                     # nginx instances on one Redis
CONFIGS = (ONE, CBX, NCHAN)
TRANSPORTS = {"lp": "long-poll", "stream": "XHR stream", "sse": "SSE",
              "ws": "WebSocket"}
HEADS = {"fanout": "Fan-out", "mailbox": "Mailboxes"}
P99_LIMIT = 2.0   # p99 with Redis at most 2x one node's


def name(cfg, r):
    """How a table names a config; the node count comes from the record
    (rounds: the nodes of --nodes; publish: one node with its Redis)."""
    nodes = (r or {}).get("nodes")
    if cfg == ONE:
        return "cometboxd, one node (memory)"
    what = "cometboxd" if cfg == CBX else "Nchan (nginx, 1 worker each)"
    if nodes == 1:
        return "%s, one node + Redis" % what
    return "%s, %s nodes + Redis" % (what, nodes or "?")


class Below(Check):
    """A target that asks for strictly less than the limit ("below
    Nchan+Redis's")."""

    def ok(self, v):
        return v < self.limit

    def fmt(self, v):
        # three decimals: 0.996x is below 1.00x, which two would hide
        return "%.3fx" % v


def cells(res, scenarios=("fanout", "mailbox")):
    """The rounds cells (scenario, transport, n) any scale-out config has."""
    ks = {k[1:] for k in res.idx if k[0] in CONFIGS and k[1] in scenarios}
    order = {"fanout": 0, "mailbox": 1}
    return sorted(ks, key=lambda k: (order[k[0]], list(TRANSPORTS).index(
        k[1]) if k[1] in TRANSPORTS else 9, k[2]))


def redis_cell(r):
    """Redis's CPU per message and its share of the server's."""
    us, share = g(r, "redis", "cpu_us_per_msg"), g(r, "redis", "cpu_share")
    if us is None:
        return "–"
    return "%s (%s)" % (f(us, 1), "%.0f %%" % (share * 100)
                        if share is not None else "–")


def node_p99(r):
    """p99 per node: node 1 takes the publishes, the others are woken
    through Redis."""
    ts = (r or {}).get("targets") or []
    if not ts:
        return "–"
    return " / ".join(f(g(t, "lat_ms", "p99"), 1) for t in ts)


def pss_cell(r):
    """The server's PSS with everyone held, MiB, and Redis's part."""
    all_ = g(r, "srv", "pss_kb_held")
    red = g(r, "redis", "pss_kb_held")
    if all_ is None:
        return "–"
    s = f(all_ / 1024, 1)
    if red is not None:
        s += " (%s)" % f(red / 1024, 1)
    return s


def rounds_table(res, sc, t):
    rows = ["| N | server | round p50 ms | latency p50 / p99 ms | p99 per "
            "node ms | server CPU µs/msg, Redis included | of which Redis "
            "µs/msg (share) | server PSS held MiB (Redis) | generator CPU "
            "µs/msg | lost / dup | p99 ÷ one node | round ÷ Nchan+Redis "
            "| CPU ÷ Nchan+Redis |", "|" + "---|" * 13]
    for n in sorted({k[2] for k in cells(res) if k[:2] == (sc, t)}):
        one, nch = res.get(ONE, sc, t, n), res.get(NCHAN, sc, t, n)
        for cfg in CONFIGS:
            r = res.get(cfg, sc, t, n)
            if r is None:
                continue
            if "lat_ms" not in r:
                rows.append("| %d | %s | error: %s |%s" % (
                    n, name(cfg, r), (r.get("error") or "")[:80],
                    " |" * 10))
                continue
            cbx = cfg == CBX
            rows.append("| " + " | ".join([
                str(n), name(cfg, r),
                spread(r, ("round_ms", "p50"), lambda v: f(v, 1)),
                "%s / %s" % (f(g(r, "lat_ms", "p50"), 2),
                             spread(r, ("lat_ms", "p99"),
                                    lambda v: f(v, 2))),
                node_p99(r),
                spread(r, ("srv", "cpu_us_per_msg"), lambda v: f(v, 1)),
                redis_cell(r), pss_cell(r),
                f(g(r, "gen", "cpu_us_per_msg"), 1),
                "%s / %s" % (r.get("missing"), r.get("duplicates")),
                fslower(r, one, ("lat_ms", "p99")) if cbx else "",
                fslower(r, nch, ("round_ms", "p50")) if cbx else "",
                fslower(r, nch, ("srv", "cpu_us_per_msg")) if cbx else "",
            ]) + " |")
    return rows


def publish_table(res):
    rows = ["| server | messages per POST | messages/s | POST round trip "
            "p50 / p99 ms | server CPU µs/msg, Redis included | of which "
            "Redis µs/msg (share) | failed | CPU ÷ Nchan+Redis |",
            "|" + "---|" * 8]
    nch = res.get(NCHAN, "publish", "single", 0)
    for t in ("single", "batch100"):
        for cfg in CONFIGS:
            r = res.get(cfg, "publish", t, 0)
            if r is None:
                continue
            if "publish" not in r:
                rows.append("| %s | %s | error: %s | | | | | |" % (
                    name(cfg, r), 1 if t == "single" else 100,
                    (r.get("error") or "")[:80]))
                continue
            rows.append("| " + " | ".join([
                name(cfg, r), "1" if t == "single" else "100",
                spread(r, ("publish", "msgs_per_s"),
                       lambda v: "–" if v is None else "{:,.0f}".format(v)),
                "%s / %s" % (f(g(r, "pub_rtt_ms", "p50"), 2),
                             f(g(r, "pub_rtt_ms", "p99"), 2)),
                f(g(r, "srv", "cpu_us_per_msg"), 1), redis_cell(r),
                f(g(r, "publish", "messages_failed")),
                fslower(r, nch, ("srv", "cpu_us_per_msg"))
                if cfg == CBX and t == "single" else ""]) + " |")
    return rows if len(rows) > 2 else []


def targets(res):
    """Issue 20's targets, each over the cells measured: fan-out (the
    issue's scenario) and mailboxes (spread the same way) in rows of
    their own, so that neither hides the other."""
    rows = ["| target (issue 20) | scenario | limit | status | measured in "
            "(run) |", "|---|---|---|---|---|"]

    def row(tname, scen, limit, c):
        rows.append("| %s | %s | %s | %s | %s |" % (
            tname, scen, limit, c.status(),
            c.measured_in().replace("; Nchan-1w from another run",
                                    "; reference from another run")))

    recs = [r for k, r in res.idx.items() if k[0] in CONFIGS]
    bad = [r for r in recs if r.get("missing") or r.get("duplicates")
           or not r.get("ok")]
    runs = ", ".join(sorted({r.get("run_id") or "?" for r in recs})) or "–"
    rows.append("| 0 lost, 0 duplicates, no error, every scale-out run | "
                "all | 0 | %s | %s |" % (
                    ("met" if not bad else "**not met**") +
                    ": %d of %d runs clean" % (len(recs) - len(bad),
                                               len(recs)) +
                    (" (not: %s)" % ", ".join(
                        "%s %s" % (r.get("config"), where(
                            (r.get("scenario"), r.get("transport"),
                             r.get("n")))) for r in bad) if bad else ""),
                    runs))
    for sc in ("fanout", "mailbox"):
        cs = [k for k in cells(res) if k[0] == sc]
        if not cs:
            continue
        c = Check(P99_LIMIT)
        for k in cs:
            r, one = res.get(CBX, *k), res.get(ONE, *k)
            c.add(k, slower(r, one, ("lat_ms", "p99")), r, one)
        row("latency p99, two nodes + Redis ÷ one node", HEADS[sc],
            "≤ %.1fx" % P99_LIMIT, c)
        c = Below(1.0)
        for k in cs:
            r, nch = res.get(CBX, *k), res.get(NCHAN, *k)
            c.add(k, slower(r, nch, ("srv", "cpu_us_per_msg")), r, nch)
        row("server CPU per message (Redis included), cometboxd + Redis "
            "÷ Nchan + Redis", HEADS[sc], "< 1.00x", c)
        c = Below(1.0)
        for k in cs:
            r, nch = res.get(CBX, *k), res.get(NCHAN, *k)
            c.add(k, slower(r, nch, ("round_ms", "p50")), r, nch)
        row("round time, cometboxd + Redis ÷ Nchan + Redis", HEADS[sc],
            "< 1.00x", c)
    r, nch = res.get(CBX, "publish", "single", 0), \
        res.get(NCHAN, "publish", "single", 0)
    if r is not None or nch is not None:
        c = Below(1.0)
        c.add(("publish", "single", 0),
              slower(r, nch, ("srv", "cpu_us_per_msg")), r, nch)
        row("server CPU per message (Redis included), cometboxd + Redis "
            "÷ Nchan + Redis", "single-message publishes, one node",
            "< 1.00x", c)
    return rows


def load_note(res):
    loads = sorted(p.get("loadavg_before")
                   for k, r in res.idx.items() if k[0] in CONFIGS
                   for p in r.get("passes") or [r]
                   if p.get("loadavg_before") is not None)
    if not loads:
        return []
    return ["The load average (1 min) before these measurements went from "
            "%.2f to %.2f (the run's own load included)." % (loads[0],
                                                              loads[-1]),
            ""]


def section(res):
    """The markdown lines of the scale-out section, or [] when
    results.jsonl has no scale-out record."""
    if not any(k[0] in CONFIGS for k in res.idx):
        return []
    md = ["## Scale-out on Redis (issue 20)", "",
          "`bench/run --scaleout` (bench/README.md, \"Scale-out on "
          "Redis\"): in every pass, each cell is measured with one "
          "cometboxd node (`broker = memory`, `%s`), with two cometboxd "
          "nodes (`threads = pool`) on one redis-server (`broker = "
          "redis`, `%s`) and with two nginx instances (one worker each) "
          "whose Nchan keeps its channels in one redis-server (`%s`, "
          "`bench/nchan/redis.conf`), one after the other. Subscribers "
          "are spread evenly over the nodes (subscriber i on node i mod "
          "2); every publish goes to node 1, so half the subscribers are "
          "woken across Redis. The `publish` scenario (no subscribers) "
          "runs against one node with its Redis. **Server CPU and memory "
          "include redis-server's** (all nodes' processes and Redis "
          "summed; Redis's share beside it). Everything, the nodes, Redis "
          "and the generator, shares the machine's 2 cores." % (ONE, CBX,
                                                                 NCHAN),
          "",
          "Absolute figures are the kept record of each cell (the median "
          "of its passes by round time, or message rate), with the range "
          "over the passes in brackets; each ratio is the median of the "
          "per-pass ratios, with their range (a pass measures the three "
          "configs of a cell within a minute). \"p99 per node\" is node 1 "
          "(the one that takes the publishes) / node 2. Redis's share is "
          "of the server CPU in the same column. In mailboxes cometboxd "
          "gets XML batches of 100 per POST, Nchan one message per POST "
          "(as in the main tables).", ""] + load_note(res)
    md += ["### Targets of issue 20", "",
           "\"With Redis, p99 at most 2x the single-node figure, and CPU "
           "and round time below Nchan+Redis's.\" Every measured cell is "
           "checked; worst is the highest ratio. Why a target is not met: "
           "bench/README.md, \"Scale-out on Redis\".", ""] + targets(res)
    for sc in ("fanout", "mailbox"):
        for t in TRANSPORTS:
            if not any(k[:2] == (sc, t) for k in cells(res)):
                continue
            md += ["", "### Scale-out: %s, %s" % (HEADS[sc], TRANSPORTS[t]),
                   ""] + rounds_table(res, sc, t)
    p = publish_table(res)
    if p:
        md += ["", "### Scale-out: publish throughput", "",
               "No subscribers; 200,000 single-message POSTs or batches "
               "of 100 (2,000,000 messages), 1,000 queues round-robin, 8 "
               "keep-alive publishers, bounded to 5 s, against one node "
               "(and its Redis): what Redis adds to each publish.", ""] + p
    return md + [""]
