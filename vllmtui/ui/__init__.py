"""The Textual UI. The only package that imports Textual or Rich."""
