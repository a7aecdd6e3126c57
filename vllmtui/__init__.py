"""vllmtui: run vLLM servers on a GPU box from one terminal screen."""

__version__ = "0.1.0"
