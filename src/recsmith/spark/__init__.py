"""Training on Apache Spark (``recsmith train --engine spark``; the ``spark`` extra).

The same preprocessing as ``features.interactions`` (event weights, clipping, time decay, actor
keys, first-appearance id maps) and the same artifact as ``ModelBundle.train``, with the heavy
aggregations — per-pair weights, item×item similarities and co-occurrences, ALS — done by Spark
SQL and MLlib. The driver then holds only what the artifact holds anyway: the id maps, the
user×item matrix, and each model's learned arrays.
"""
