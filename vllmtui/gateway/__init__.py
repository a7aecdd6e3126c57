"""The gateway: one OpenAI endpoint for every model on the box (docs/gateway.md)."""
