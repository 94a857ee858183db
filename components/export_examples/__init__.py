"""The "export to examples" stage: Open Data tables in, leaf model, splits and photo choices out.

`tables` reads and parses rows, `taxonomy` validates the tree, `rules` holds every inclusion, split and
photo rule as a pure function, `preview` applies them without reading photos, and `convert` turns an
export-tool CSV into the Open Data layout. The Beam stage and the preview call the same functions.
"""
