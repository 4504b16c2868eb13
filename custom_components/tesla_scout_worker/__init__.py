"""Tesla Scout & Worker integration."""
