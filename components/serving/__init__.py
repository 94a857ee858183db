"""The release's `serving/` model: the vision classifier and the location prior composed in one SavedModel.

`compose` builds it (the ComposeServing component runs after both Trainers), and `info` reads what the model
says about itself (`assets/serving_info.json`: with or without a prior, and why) without importing TFX.
"""
