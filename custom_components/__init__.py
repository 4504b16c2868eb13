"""Custom integrations (needed so tests can import the package)."""
