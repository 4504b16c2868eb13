"""Tests for Tesla Scout & Worker."""
