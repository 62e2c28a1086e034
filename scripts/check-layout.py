#!/usr/bin/env python3
"""check-layout.py - checks the source layout that STYLE.md ("Layout") asks for:

  1. cometboxd's module graph, read from its #include lines, has no cycle.
     A module is foo.c with foo.h; foo -> bar when foo.c or foo.h includes
     "bar.h" (server.h is the module "server"). Headers of common/ are a
     library below the daemon and are not modules here.
  2. server.h declares no function: it is the daemon's shared data; a
     module's functions belong in that module's header. Otherwise the hub
     hides the real graph from check 1.
  3. With --objects, the same for the link graph: foo -> bar when foo.o uses
     a symbol that bar.o defines (what `nm` shows).
  4. No source file of cometboxd/ or common/ is over --max-lines lines.
  5. No file of cometboxd/ but settings.c reads a reloadable key (one not
     marked KR_RESTART in common/config.c's key table) from the config at
     start (`s->cfg.KEY`): it must come from the config in force,
     cbx_settings_get() (docs/THREADS.md, "The config in force"), or a
     reload would never reach it.

It prints the graphs, then every failure (each cycle with the files that
make its edges), and exits 1 when there is one. Not for style inside files.

usage: check-layout.py [--root DIR] [--max-lines N] [--objects FILE.o ...]
"""
import argparse
import os
import re
import subprocess
import sys

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"/]+)\.h"', re.M)
DATA_HEADERS = ("server.h",)
MAX_CYCLES = 20  # printed per strongly connected component


def module_of(filename):
    base = os.path.basename(filename)
    for suffix in (".c.o", ".o", ".c", ".h"):
        if base.endswith(suffix):
            return base[: -len(suffix)]
    return base


def include_graph(src):
    """{module: {dep: [files that include dep.h]}} for the .c and .h files in src."""
    graph = {}
    for name in sorted(os.listdir(src)):
        if not name.endswith((".c", ".h")):
            continue
        mod = module_of(name)
        graph.setdefault(mod, {})
        with open(os.path.join(src, name), encoding="utf-8") as f:
            text = f.read()
        for dep in INCLUDE.findall(text):
            if dep != mod:
                graph[mod].setdefault(dep, []).append(name)
    return graph


def link_graph(objects):
    """{module: {dep: [symbols mod's object takes from dep's]}} from nm."""
    defined, used = {}, {}
    for obj in objects:
        mod = module_of(obj)
        out = subprocess.run(["nm", obj], check=True, capture_output=True, text=True).stdout
        for line in out.splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[0] == "U":
                used.setdefault(mod, set()).add(parts[1])
            elif len(parts) == 3 and parts[1] in "TDBRVWG":
                defined[parts[2]] = mod
        used.setdefault(mod, set())
    graph = {}
    for mod, syms in used.items():
        graph[mod] = {}
        for sym in sorted(syms):
            dep = defined.get(sym)
            if dep is not None and dep != mod:
                graph[mod].setdefault(dep, []).append(sym)
    return graph


def cycles(graph):
    """[(component, [cycle, ...])] for each strongly connected component of
    more than one module (Tarjan's algorithm); a cycle is a list of
    modules with the first repeated last."""
    index, low, stack, on_stack, comps = {}, {}, [], set(), []
    counter = [0]
    sys.setrecursionlimit(10000)

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, {})):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                comps.append(set(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    # every simple cycle inside each component, shortest first (the graphs
    # are small), each found once: from its smallest module
    found = []
    for comp in comps:
        simple = []

        def walk(path, on_path):
            for w in sorted(graph.get(path[-1], {})):
                if w == path[0]:
                    simple.append(path + [w])
                elif w in comp and w > path[0] and w not in on_path:
                    walk(path + [w], on_path | {w})

        for start in sorted(comp):
            walk([start], {start})
        simple.sort(key=lambda c: (len(c), c))
        found.append((sorted(comp), simple[:MAX_CYCLES]))
    return found


def print_graph(title, graph):
    print(title)
    for mod in sorted(graph):
        deps = sorted(graph[mod])
        print("  %-12s -> %s" % (mod, " ".join(deps) if deps else "(nothing)"))


def report_cycles(kind, graph, why_label):
    failures = 0
    for comp, paths in cycles(graph):
        failures += 1
        print("FAIL: %s cycles among %s:" % (kind, ", ".join(comp)))
        for path in paths:
            print("      %s" % " -> ".join(path))
        edges = sorted({(a, b) for path in paths for a, b in zip(path, path[1:])})
        for a, b in edges:
            why = graph[a][b]
            shown = ", ".join(why[:6]) + (", ..." if len(why) > 6 else "")
            print("        %s -> %s: %s %s" % (a, b, why_label, shown))
    return failures


def declared_functions(path):
    """Names of the functions a header declares at file scope."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    text = re.sub(r"//[^\n]*", " ", text)
    text = re.sub(r"^\s*#.*?(?<!\\)$", " ", text, flags=re.M | re.S)
    names, depth, stmt = [], 0, []
    for ch in text:
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        elif depth == 0:
            if ch == ";":
                s = " ".join("".join(stmt).split())
                stmt = []
                if s.startswith("typedef"):
                    continue
                m = re.search(r"\b([A-Za-z_]\w*)\s*\(", s)
                if m and "=" not in s[: m.start()]:
                    names.append(m.group(1))
            else:
                stmt.append(ch)
    return names


KEY_ENTRY = re.compile(r'\{\s*"([a-z-]+)",\s*KT_\w+,\s*(?:STR|OFF)\((\w+)\).*?\b(KR_\w+)\s*\}', re.S)
START_READ = re.compile(r"\bcfg\.(\w+)")


def reloadable_fields(root):
    """{field: key} of the keys a reload changes, from common/config.c's table."""
    with open(os.path.join(root, "common", "config.c"), encoding="utf-8") as f:
        text = f.read()
    return {field: key for key, field, mark in KEY_ENTRY.findall(text) if mark != "KR_RESTART"}


def start_reads(src, fields):
    """[(file:line, key)] where a file reads a reloadable key from the config at start."""
    out = []
    for name in sorted(os.listdir(src)):
        if not name.endswith((".c", ".h")) or name == "settings.c":
            continue
        with open(os.path.join(src, name), encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                for field in START_READ.findall(line):
                    if field in fields:
                        out.append(("cometboxd/%s:%d" % (name, n), fields[field]))
    return out


def long_files(root, dirs, max_lines):
    out = []
    for d in dirs:
        folder = os.path.join(root, d)
        for name in sorted(os.listdir(folder)):
            if name.endswith((".c", ".h")):
                with open(os.path.join(folder, name), encoding="utf-8") as f:
                    n = sum(1 for _ in f)
                if n > max_lines:
                    out.append((os.path.join(d, name), n))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--root", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    ap.add_argument("--max-lines", type=int, default=700)
    ap.add_argument("--objects", nargs="*", default=[], help="cometboxd's object files, for the link graph")
    args = ap.parse_args()
    src = os.path.join(args.root, "cometboxd")
    failures = 0

    inc = include_graph(src)
    print_graph("cometboxd module graph (#include lines):", inc)
    failures += report_cycles("include", inc, "included by")

    for header in DATA_HEADERS:
        names = declared_functions(os.path.join(src, header))
        if names:
            failures += 1
            print("FAIL: %s declares %d function(s); each belongs in its module's header: %s"
                  % (header, len(names), " ".join(names)))

    if args.objects:
        objs = [o for o in args.objects if o.endswith(".o")]
        link = link_graph(objs)
        print_graph("cometboxd link graph (nm on %d object files):" % len(objs), link)
        failures += report_cycles("link", link, "uses")

    for path, n in long_files(args.root, ("cometboxd", "common"), args.max_lines):
        failures += 1
        print("FAIL: %s has %d lines (at most %d): split it" % (path, n, args.max_lines))

    fields = reloadable_fields(args.root)
    if len(fields) < 10:
        failures += 1
        print("FAIL: found %d reloadable keys in common/config.c's table: has its form changed?" % len(fields))
    for where, key in start_reads(src, fields):
        failures += 1
        print("FAIL: %s reads %s from the config at start; a reload changes it: read it from "
              "cbx_settings_get()" % (where, key))

    print("layout: %s" % ("%d failure(s)" % failures if failures else "ok"))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
