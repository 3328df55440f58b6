"""Corpus-scale feature extraction: media manifest -> dataset, as an Apache Beam pipeline."""
