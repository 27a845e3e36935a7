"""Who may call the API and how often: per-key rate limits and which documentation and metrics
endpoints a server exposes. Kept free of FastAPI so the settings can validate with it."""
