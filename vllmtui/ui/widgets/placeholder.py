"""A tab whose feature has not landed yet says so plainly."""

from __future__ import annotations

from textual.widgets import Static


class FeatureMissing(Static):
    """'The GPU panel is not available yet ...'."""

    def __init__(self, feature: str, what: str, **kwargs: object) -> None:
        super().__init__(
            f"The {feature} panel is not available yet: {what}.",
            classes="feature-missing",
            **kwargs,  # type: ignore[arg-type]
        )
