"""The release's `serving/` model: the vision classifier and the location prior composed in one SavedModel.

`compose` builds it (the ComposeServing component runs after both Trainers); `geo_map` draws one taxon's geo
scores on a world map for the gate report.
"""
