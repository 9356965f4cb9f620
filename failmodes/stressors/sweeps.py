"""sweeps stressors (see registry.py for the contract)."""
