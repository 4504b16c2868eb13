"""Browser test of the demo (scripts/test-e2e); not part of scripts/test."""
