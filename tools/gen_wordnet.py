#!/usr/bin/env python3
"""Derive the compact WordNet 3.0 table used by src/metrics/wordnet.rs.

Reads the Debian `wordnet-base` database (/usr/share/wordnet) and writes
src/metrics/data/wordnet_syn.txt.gz with three sections:
  S <names>            one line per synset (single-word lemma names, case kept), id = order
  I <pos> <lemma> <ids> index: lemma (lowercase, as in index.<pos>) -> synset ids
  E <pos> <form> <bases> morphological exception lists (<pos>.exc)
Usage: python3 tools/gen_wordnet.py [/usr/share/wordnet] [out]
"""
import gzip, re, sys

src = sys.argv[1] if len(sys.argv) > 1 else "/usr/share/wordnet"
out = sys.argv[2] if len(sys.argv) > 2 else "src/metrics/data/wordnet_syn.txt.gz"
files = {"n": "noun", "v": "verb", "a": "adj", "r": "adv"}
ids = {}
lines = []
for pos, name in files.items():
    with open(f"{src}/data.{name}", encoding="utf-8") as fh:
        for line in fh:
            if line.startswith("  "):
                continue
            f = line.split()
            off = int(f[0])
            n = int(f[3], 16)
            names = []
            for i in range(n):
                w = f[4 + 2 * i]
                w = re.match(r"(.*?)(\(.*\))?$", w).group(1)
                if "_" not in w and w not in names:
                    names.append(w)
            ids[(pos, off)] = len(lines)
            lines.append("S " + " ".join(names))
for pos, name in files.items():
    with open(f"{src}/index.{name}", encoding="utf-8") as fh:
        for line in fh:
            if line.startswith("  "):
                continue
            f = line.split()
            lemma = f[0]
            n_syn = int(f[2])
            n_ptr = int(f[3])
            offs = f[4 + n_ptr + 2:][:n_syn]
            lines.append(f"I {pos} {lemma} " + ",".join(str(ids[(pos, int(o))]) for o in offs))
for pos, name in files.items():
    with open(f"{src}/{name}.exc", encoding="utf-8") as fh:
        for line in fh:
            t = line.split()
            if t:
                lines.append(f"E {pos} " + " ".join(t))
with gzip.open(out, "wt", encoding="utf-8", compresslevel=9) as g:
    g.write("\n".join(lines) + "\n")
