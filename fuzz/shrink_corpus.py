#!/usr/bin/env python3
"""Shrinks a fuzz target's corpus (after `cargo fuzz cmin`) to at most MAX_FILES files and
MAX_BYTES bytes, keeping every coverage edge the corpus reaches when that fits.

`cargo fuzz cmin` keeps every input that adds a feature (an edge, or a new hit count of one),
smallest first: often far more files than a committed corpus should hold. This measures each
input on its own (one libFuzzer merge run per file, which lists all its edges and features),
then picks greedily: first the input adding the most edges not yet covered, until every edge
is; then the input adding the most new features, until the limits. The files not picked are
deleted.

Usage, from fuzz/: python3 shrink_corpus.py TARGET (after cargo +nightly fuzz build TARGET).
"""

import os
import shutil
import subprocess
import sys
import tempfile

MAX_FILES = 200
MAX_BYTES = 1 << 20
BINARY = "target/x86_64-unknown-linux-gnu/release/{target}"


def measure(binary, path, scratch):
    """The edges and the features of one input, from a libFuzzer merge run on it alone."""
    source = os.path.join(scratch, "in")
    out = os.path.join(scratch, "out")
    control = os.path.join(scratch, "control")
    for directory in (source, out):
        os.makedirs(directory, exist_ok=True)
        for name in os.listdir(directory):
            os.remove(os.path.join(directory, name))
    shutil.copyfile(path, os.path.join(source, "input"))
    if os.path.exists(control):
        os.remove(control)  # libFuzzer would resume from it
    subprocess.run(
        [binary, "-merge=1", f"-merge_control_file={control}", out, source],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=False,
    )
    edges, features = set(), set()
    with open(control) as lines:
        for line in lines:
            words = line.split()
            if words[:1] == ["COV"]:
                edges.update(words[2:])
            elif words[:1] == ["FT"]:
                features.update(words[2:])
    return edges, features


def pick(inputs):
    """Greedy set cover of the edges, then of the features, within the limits. Returns the
    names picked, how many of them cover the edges, and the edges and features covered."""
    picked = Picked()
    remaining = dict(inputs)
    picked.grow(remaining, lambda measured: measured[1] - picked.edges)
    covering = len(picked.names)
    picked.grow(remaining, lambda measured: measured[2] - picked.features)
    return picked, covering


class Picked:
    """The inputs picked so far, and what they cover."""

    def __init__(self):
        self.names, self.edges, self.features, self.size = [], set(), set(), 0

    def grow(self, remaining, new):
        """Picks from `remaining` the input with the most `new` items, while one has any
        and the limits allow."""
        while remaining and len(self.names) < MAX_FILES:
            name = max(remaining, key=lambda n: (len(new(remaining[n])), -remaining[n][0]))
            size, edges, features = remaining[name]
            if not new(remaining[name]) or self.size + size > MAX_BYTES:
                return
            del remaining[name]
            self.names.append(name)
            self.edges |= edges
            self.features |= features
            self.size += size


def main():
    target = sys.argv[1]
    binary = BINARY.format(target=target)
    corpus = os.path.join("corpus", target)
    names = sorted(os.listdir(corpus))
    inputs = {}
    with tempfile.TemporaryDirectory() as scratch:
        for name in names:
            path = os.path.join(corpus, name)
            edges, features = measure(binary, path, scratch)
            inputs[name] = (os.path.getsize(path), edges, features)
    every_edge = set().union(*(edges for _, edges, _ in inputs.values()))
    picked, covering = pick(inputs)
    for name in names:
        if name not in picked.names:
            os.remove(os.path.join(corpus, name))
    print(
        f"{target}: kept {len(picked.names)} of {len(names)} files, {picked.size} bytes, "
        f"{len(picked.edges)} of {len(every_edge)} edges ({covering} files cover them), "
        f"{len(picked.features)} features"
    )


if __name__ == "__main__":
    main()
