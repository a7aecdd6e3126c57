"""Widgets of the vllmtui screen."""
