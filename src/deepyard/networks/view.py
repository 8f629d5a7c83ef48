"""Draw a network as an SVG graph: one box per layer with its type, output shape and parameter count.

Layout is Graphviz's `dot` (layered graph drawing), through the `graphviz` package; the web UI's "Visualize"
button shows the same picture. Needs Graphviz's `dot` program on the PATH (the Makefile installs it).
"""

from __future__ import annotations

import graphviz  # type: ignore[import-untyped]

from deepyard.errors import DeepyardError
from deepyard.networks.summary import Summary

_COLOURS = {  # fill colour by kind of layer, matched on the lower-cased type name
    "conv": "#cfe2ff",
    "pool": "#d1e7dd",
    "linear": "#ffe5d0",
    "norm": "#e2d9f3",
    "concat": "#fff3cd",
    "sum": "#fff3cd",
    "add": "#fff3cd",
    "dropout": "#eeeeee",
    "upsample": "#f8d7da",
    "crop": "#f8d7da",
}


def _colour(kind: str) -> str:
    low = kind.lower()
    return next((c for key, c in _COLOURS.items() if key in low), "#ffffff")


def _shape(shape: tuple[int, ...]) -> str:
    return "x".join(map(str, shape))


def render_svg(summary: Summary) -> str:
    """The graph of `summary` as SVG text."""
    dot = graphviz.Digraph(summary.network, graph_attr={"rankdir": "TB", "fontname": "Helvetica"})
    dot.attr("node", shape="box", style="rounded,filled", fontname="Helvetica", fontsize="10")
    dot.node("input", f"input\n{_shape(summary.input_shape)}", fillcolor="#f8f9fa")
    for row in summary.rows:
        params = f"\n{row.params:,} params" if row.params else ""
        label = f"{row.name}\n{row.type}  {_shape(row.output_shape)}{params}"
        dot.node(row.name, label, fillcolor=_colour(row.type))
        for source in row.inputs:
            dot.edge(source, row.name)
    try:
        svg: str = dot.pipe(format="svg", encoding="utf-8")
        return svg
    except graphviz.ExecutableNotFound:
        raise DeepyardError(
            "drawing a network needs Graphviz's 'dot' program: install it (Debian/Ubuntu: apt-get install "
            "graphviz; macOS: brew install graphviz) or run `make demo`, which installs it"
        ) from None
