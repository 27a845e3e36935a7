"""The decision log: every list served, the events attributed to it, and the KPIs read from both."""
