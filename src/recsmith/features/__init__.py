"""Features: events turned into the matrices and signals models learn from."""
