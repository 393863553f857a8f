"""The fonts a figure falls back along, glyph by glyph, and the characters none can draw.

Latin first, then fonts that cover Chinese, Japanese and Korean arm names; fonts installed
after matplotlib built its cache (fonts-noto-cjk) are registered on first use.
"""

from __future__ import annotations

import re
from pathlib import Path

from matplotlib import font_manager

# Latin first, then fonts that cover Chinese, Japanese and Korean arm names: matplotlib falls
# back glyph by glyph along this list. Only installed families are named (no findfont noise).
FONT_CHAIN = (
    "DejaVu Sans",
    "Noto Sans CJK JP",
    "Noto Sans CJK SC",
    "Noto Sans CJK TC",
    "Noto Sans CJK KR",
    "WenQuanYi Zen Hei",
    "Droid Sans Fallback",
)
_registered = False


def _register_system_fonts() -> None:
    """Make fonts installed after matplotlib built its font cache (fonts-noto-cjk) known."""
    global _registered
    if _registered:
        return
    _registered = True
    known = {f.name for f in font_manager.fontManager.ttflist}
    if any(name in known for name in FONT_CHAIN[1:]):
        return
    for path in font_manager.findSystemFonts():
        if re.search(r"CJK|WenQuanYi|wqy|DroidSansFallback", Path(path).name, re.IGNORECASE):
            try:
                font_manager.fontManager.addfont(path)
            except (OSError, RuntimeError, ValueError):
                continue


def font_chain() -> list[str]:
    _register_system_fonts()
    known = {f.name for f in font_manager.fontManager.ttflist}
    return [name for name in FONT_CHAIN if name in known] or ["sans-serif"]


def undrawable(text: str) -> set[str]:
    """The characters of text that no font of the chain has a glyph for."""
    from matplotlib.ft2font import FT2Font

    wanted = {c for c in text if not c.isspace()}
    if not wanted or all(ord(c) < 0x250 for c in wanted):
        return set()  # Latin: DejaVu has it
    covered: set[int] = set()
    for name in font_chain():
        path = font_manager.findfont(font_manager.FontProperties(family=name))
        covered |= set(FT2Font(path).get_charmap())
    return {c for c in wanted if ord(c) not in covered}
