"""The README's settings table is the settings table: generated from SETTINGS, checked here,
so a setting cannot be added, renamed or given a new default without the README saying so."""
from __future__ import annotations

from pathlib import Path

from nexus_chat.config import SETTINGS, render_settings_table

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_lists_every_setting_as_declared():
    table = render_settings_table()
    assert table.count("\n") == len(SETTINGS) + 2
    assert table in README.read_text(encoding="utf-8"), (
        "README.md (Configuration) is out of date: replace its settings table with "
        "python -c 'from nexus_chat.config import render_settings_table as r; print(r(), end=\"\")'")
