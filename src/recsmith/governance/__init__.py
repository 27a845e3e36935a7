"""Governance: model releases (versions, deploy, rollback) and, later, audit and privacy."""
