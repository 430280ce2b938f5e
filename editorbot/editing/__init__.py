"""The edit language: action table, renderer, decision lists, raw-to-edit alignment (no Ray)."""
