"""Retrieval-quality evaluation: holidays-dev mAP and near-duplicate recall."""
