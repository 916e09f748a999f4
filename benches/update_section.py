#!/usr/bin/env python3
"""Replace the generated part of one BENCHMARKS.md section: the text between
`<!-- bench:NAME -->` and `<!-- /bench:NAME -->` becomes the contents of FILE. The prose around
the markers (analysis, before/after notes) is written by hand and kept.

Usage: update_section.py NAME FILE [BENCHMARKS.md]
"""
import re
import sys

name, source = sys.argv[1], sys.argv[2]
target = sys.argv[3] if len(sys.argv) > 3 else "BENCHMARKS.md"
text = open(target).read()
body = open(source).read().strip()
start, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.S)
if not pattern.search(text):
    sys.exit(f"{target} has no {start} ... {end} section")
text = pattern.sub(lambda _: f"{start}\n{body}\n{end}", text)
open(target, "w").write(text)
