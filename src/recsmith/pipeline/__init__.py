"""The multi-stage pipeline: retrieval from several sources → learning-to-rank → re-ranking, with
a fallback at every step; configured in one TOML file and saved as one versioned artifact."""
