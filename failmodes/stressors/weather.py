"""weather stressors (see registry.py for the contract)."""
