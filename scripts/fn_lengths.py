#!/usr/bin/env python3
"""Lists the workspace's Rust functions longer than a limit (default 80 lines, from the
`fn` line to its closing brace), longest first; unit-test modules are skipped.

    scripts/fn_lengths.py [LIMIT]

A reading aid for keeping functions to a screen, not a build step: it counts braces in
text (comments and string literals stripped), which is exact for rustfmt'd code."""

import os
import re
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
CRATES = ["dataplane/src", "control/src", "config/src", "bpf/src", "bench/src", "tests/src"]
FN = re.compile(r"\s*(pub(\([^)]*\))?\s+)?(const\s+)?(async\s+)?(unsafe\s+)?fn\s+(\w+)")


def code(line):
    line = re.sub(r'"(\\.|[^"\\])*"', '""', line)
    line = re.sub(r"'(\\.|[^'\\])'", "''", line)
    return re.sub(r"//.*", "", line)


def functions(lines):
    """(first line, length, name) of each function before the file's test module."""
    i = 0
    while i < len(lines):
        if re.match(r"\s*#\[cfg\(test\)\]", lines[i]):
            return
        m = FN.match(lines[i])
        if not m:
            i += 1
            continue
        depth, started, j = 0, False, i
        while j < len(lines):
            text = code(lines[j])
            for ch in text:
                depth += (ch == "{") - (ch == "}")
                started = started or ch == "{"
            if started and depth <= 0 or not started and text.rstrip().endswith(";"):
                break
            j += 1
        if started:
            yield i + 1, j - i + 1, m.group(6)
        i = j + 1


def main():
    limit = int(sys.argv[1]) if len(sys.argv) > 1 else 80
    long = []
    for crate in CRATES:
        for d, _, files in os.walk(os.path.join(ROOT, crate)):
            for f in sorted(files):
                if f.endswith(".rs"):
                    path = os.path.join(d, f)
                    with open(path) as src:
                        lines = src.read().split("\n")
                    rel = os.path.relpath(path, ROOT)
                    long += [(n, rel, at, name) for at, n, name in functions(lines) if n > limit]
    for n, rel, at, name in sorted(long, reverse=True):
        print(f"{n:5} {rel}:{at} {name}")
    print(f"{len(long)} function(s) over {limit} lines")


if __name__ == "__main__":
    main()
