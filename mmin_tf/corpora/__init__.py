"""Readers of the raw corpus releases (IEMOCAP, MSP-IMPROV): each yields the media manifest records of one corpus."""
