"""Merchandising: business rules that live in the store, not only in a trained release.

A merchandiser changes rules (``recsmith rules set``, ``PUT /v1/admin/rules``, the console) and
every worker and replica applies them within a second, without a retrain: ``document`` (what a
rule file holds and how it overlays the pipeline's own rules), ``rows`` (the versioned table in
both store backends), ``versions`` (set, read, audit), ``live`` (each server process's view,
polled and applied), ``request`` (rules sent with one request).
"""
