"""Feature extractors: media (audio, transcripts, video) to the frame-level features MMIN trains on."""
