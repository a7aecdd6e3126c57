"""Modal screens: confirmations, errors, prompts, help."""
