"""The pictures' captions: characters the font cannot draw are written plainly, never as a box."""

from __future__ import annotations

import numpy as np

from deepyard import pictures


def test_an_arrow_the_font_lacks_is_drawn_as_ascii_and_what_it_has_is_kept() -> None:
    face = pictures.font(10)
    assert pictures._glyph(face, "→") == pictures._missing_glyph(face)  # Pillow's default font: no arrow
    assert pictures.drawable("7 → 1", face) == "7 -> 1"
    assert pictures.drawable("± 2", face) == "± 2"  # it has this one
    tile = [np.full((8, 8), 200, np.uint8)]
    assert pictures.grid_png(tile, ["7 → 1\n90% sure"]) == pictures.grid_png(tile, ["7 -> 1\n90% sure"])
    assert pictures.grid_png(tile, ["7 → 1"]) != pictures.grid_png(tile, ["7 \uffff 1"])  # not the box
