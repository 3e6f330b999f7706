"""Sample data sets (deterministic) for the bootcamp and the docs."""
