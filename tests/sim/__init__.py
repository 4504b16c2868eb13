"""Tests for the Fleet API simulator."""
