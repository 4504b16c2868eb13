"""The demo: the Fleet API simulator and a real Home Assistant with its frontend."""
