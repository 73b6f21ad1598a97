#!/bin/bash
# check-layers.sh - keeps src/'s folders a stack of layers, so that each can be
# read, tested and replaced knowing only what lies below it.
#
# Bottom to top: util, store, proto, net, server. A file may include headers
# of its own folder or of a folder below; src/bpf (the eBPF program, built for
# another target) may include util/ only. Fails (exit 1) on
#   - an include that points up (or sideways into bpf): file:line -> header
#   - a circle between folders (implied by the above, reported on its own so
#     the loop is visible even when it runs through several folders)
#   - a circle between headers of one folder (a.h includes b.h includes a.h,
#     directly or through other headers of that folder): such headers cannot
#     be understood, or reordered, one at a time
# Includes that resolve to no file under src/ (generated headers such as
# steer.skel.h, system headers) are not checked. tests/ and fuzz/ may include
# anything and are not read.
#
# usage: scripts/check-layers.sh [SRC_DIR]   (default: src/ next to this script)
# Plain python3 standard library: no build, runs in well under a second.
set -u
src=${1:-$(cd "$(dirname "$0")/.." && pwd)/src}
py=/usr/bin/python3
[ -x "$py" ] || py=python3
exec "$py" - "$src" <<'PY'
import os, re, sys

ORDER = ["util", "store", "proto", "net", "server"]   # bottom -> top
RANK = {layer: i for i, layer in enumerate(ORDER)}
# Folders outside the stack and the only folders they may include.
SIDE = {"bpf": {"bpf", "util"}}

src = os.path.abspath(sys.argv[1])
inc_re = re.compile(r'^\s*#\s*include\s*"([^"]+)"')

def folder(path):
    """First path component under src/ ('' for a file directly in src/)."""
    rel = os.path.relpath(path, src)
    return rel.split(os.sep)[0] if os.sep in rel else ""

def allowed(frm, to):
    if frm in SIDE:
        return to in SIDE[frm]
    if to in SIDE or frm not in RANK or to not in RANK:
        return False
    return RANK[to] <= RANK[frm]

files = []
for root, dirs, names in os.walk(src):
    dirs.sort()
    for n in sorted(names):
        if n.endswith((".c", ".h")):
            files.append(os.path.join(root, n))

# edges: (file, line, included file), resolved as the compiler would for
# quoted includes here: the including file's folder first, then -Isrc.
edges = []
for f in files:
    with open(f, encoding="utf-8", errors="replace") as fh:
        for lineno, line in enumerate(fh, 1):
            m = inc_re.match(line)
            if not m:
                continue
            for base in (os.path.dirname(f), src):
                cand = os.path.normpath(os.path.join(base, m.group(1)))
                if os.path.isfile(cand) and cand.startswith(src + os.sep):
                    edges.append((f, lineno, cand))
                    break

def rel(p):
    return os.path.relpath(p, os.path.dirname(src))

def cycles(graph):
    """Strongly connected components with more than one node, or a node with
    an edge to itself (Tarjan), each as a sorted list."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]
    def visit(v):
        index[v] = low[v] = counter[0]; counter[0] += 1
        stack.append(v); on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop(); on.discard(w); comp.append(w)
                if w == v:
                    break
            if len(comp) > 1 or v in graph.get(v, ()):
                out.append(sorted(comp))
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out

def loops_in(graph, comp, limit=20):
    """The elementary closed paths inside a strongly connected component (at
    most limit of them), each starting at its smallest member, for the report."""
    members, out = set(comp), []
    def dfs(start, v, path, seen):
        for w in sorted(graph.get(v, ())):
            if len(out) >= limit:
                return
            if w == start:
                out.append(path + [start])
            elif w in members and w > start and w not in seen:
                dfs(start, w, path + [w], seen | {w})
    for start in comp:
        dfs(start, start, [start], {start})
    return out

problems = 0

# 1. includes that point up
for f, line, h in edges:
    a, b = folder(f), folder(h)
    if a != b and not allowed(a, b):
        if (a not in RANK and a not in SIDE) or (b not in RANK and b not in SIDE):
            why = "folder not in the layer order"
        elif a in SIDE:
            why = "%s may include %s only" % (a, ", ".join(sorted(SIDE[a] - {a})))
        elif b in SIDE:
            why = "only %s is built for that target" % b
        else:
            why = "up"
        print("%s:%d -> %s  (%s includes %s: %s)" % (rel(f), line, os.path.relpath(h, src), a or "src", b or "src", why))
        problems += 1

# 2. circles between folders
fgraph = {}
for f, line, h in edges:
    a, b = folder(f), folder(h)
    if a != b:
        fgraph.setdefault(a, set()).add(b)
for comp in cycles(fgraph):
    for loop in loops_in(fgraph, comp):
        print("folder circle: " + " -> ".join(loop))
        problems += 1

# 3. circles between the headers of one folder
hgraph, where = {}, {}
for f, line, h in edges:
    if f.endswith(".h") and h.endswith(".h") and folder(f) == folder(h):
        hgraph.setdefault(f, set()).add(h)
        where.setdefault((f, h), line)
for loop in (l for comp in cycles(hgraph) for l in loops_in(hgraph, comp)):
    steps = ["%s:%d" % (rel(a), where[(a, b)]) for a, b in zip(loop, loop[1:])]
    print("header circle in %s/: %s  (%s)" % (folder(loop[0]),
          " -> ".join(os.path.relpath(p, src) for p in loop), ", ".join(steps)))
    problems += 1

if problems:
    print("check-layers: %d problem(s); order bottom->top: %s; bpf may include util only"
          % (problems, " < ".join(ORDER)))
    sys.exit(1)
print("check-layers: %d includes in %d files, no upward include, no circle" % (len(edges), len(files)))
PY
