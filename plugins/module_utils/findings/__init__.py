"""troubleshoot's findings: the catalogue and one module per concern."""
